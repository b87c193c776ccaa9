"""Generation with vLLM in this process: an engine step loop that streams each result as it finishes.

Requests are pulled from the runner's iterable as the engine has room (``IN_FLIGHT`` at a time, enough to keep
its scheduler's batches full) and each finished request is yielded, hence written, at once: a crash loses only
what was in flight. Prefix caching is on.

The model input is built exactly as the transformers backend builds it (the same chat format, with the same
``chat_template_kwargs``, from :mod:`longbench.backends.chat`) and handed to vLLM as token ids, so both engines
see identical inputs; for the reference's eight models that is the reference's own chat format. Decoding is
greedy (temperature 0, no repetition penalty: vLLM would otherwise take the model's generation_config.json,
which can ask for sampling), unless a request asks for a positive temperature; the model's EOS tokens end
generation.
samsum additionally stops at the reference's newline token (``tokenizer.encode("\\n")[-1]``) and must emit at
least one token (``min_tokens=1`` suppresses the stop tokens for the first step, as the reference's
``min_length`` does). Only the new token ids are decoded, with special tokens skipped.

vllm is an optional extra (``pip install longbench[vllm]``), imported only when this backend is built; it
needs a GPU. For several nodes, run ``vllm serve`` on a Ray cluster and use the openai backend
(docs/scale.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.errors import LongBenchError
from longbench.thinking import DEFAULT_THINK_TAGS, ThinkTags, check_think_tags


@dataclass(frozen=True)
class VLLMJob:
    """One request as vLLM receives it: prompt token ids and sampling settings (vllm-free, testable)."""

    request: GenerationRequest
    prompt_ids: tuple[int, ...]
    sampling: dict[str, Any]  # keyword arguments of vllm.SamplingParams


def newline_token_id(tokenizer: Any) -> int:
    """The token the reference stops samsum at: the last id of ``"\\n"`` encoded without special tokens."""
    return tokenizer.encode("\n", add_special_tokens=False)[-1]


IN_FLIGHT = 512  # requests handed to the engine ahead of completion: its scheduler picks batches from them


def sampling_settings(request: GenerationRequest, newline_id: int) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for ``request``: greedy (or the request's own temperature),
    nothing else from the model's generation config, the task's budget, samsum's stop."""
    settings: dict[str, Any] = {
        "n": 1,
        "temperature": request.temperature,
        "top_p": 1.0,
        "top_k": -1,  # disabled
        "repetition_penalty": 1.0,
        "max_tokens": request.max_new_tokens,
        "skip_special_tokens": True,
    }
    if request.stop_at_newline:
        settings["stop_token_ids"] = [newline_id]
        settings["min_tokens"] = 1
    if request.seed is not None:
        settings["seed"] = request.seed
    return settings


def generated_ids(token_ids: Sequence[int], stop_reason: Any) -> list[int]:
    """The new token ids as the reference decodes them: a stop token that ended generation is kept."""
    ids = list(token_ids)
    if (
        isinstance(stop_reason, int)
        and not isinstance(stop_reason, bool)
        and (not ids or ids[-1] != stop_reason)
    ):
        ids.append(stop_reason)
    return ids


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise LongBenchError(
            "--backend vllm needs vllm (and a GPU): pip install 'longbench[vllm]'; "
            "or serve the model with `vllm serve` and use --backend openai"
        ) from error
    return vllm


def stream_completions(
    engine: Any, jobs: Iterator[VLLMJob], make_params: Any, in_flight: int = IN_FLIGHT
) -> Iterator[tuple[VLLMJob, Any]]:
    """Run ``jobs`` on a vLLM ``LLMEngine`` (``add_request`` / ``step`` / ``has_unfinished_requests``) and
    yield ``(job, finished RequestOutput)`` as each finishes. Jobs are pulled from the iterator only while
    fewer than ``in_flight`` are in the engine, so a crash loses at most those."""
    pending: dict[str, VLLMJob] = {}
    exhausted = False
    counter = 0
    while True:
        while not exhausted and len(pending) < in_flight:
            job = next(jobs, None)
            if job is None:
                exhausted = True
                break
            counter += 1
            request_id = str(counter)
            pending[request_id] = job
            engine.add_request(request_id, {"prompt_token_ids": list(job.prompt_ids)}, make_params(job))
        if not pending:
            return
        for output in engine.step():
            if output.finished and output.request_id in pending:
                yield pending.pop(output.request_id), output


class VLLMBackend(Backend):
    """A vLLM engine in this process; the tokenizer loads at once, the engine on first use."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        dtype: str = "auto",
        chat_template: str = "auto",
        revision: str | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        think_tags: ThinkTags | None = DEFAULT_THINK_TAGS,
        pipeline_parallel_size: int = 1,
        data_parallel_size: int = 1,
    ) -> None:
        self.vllm = _import_vllm()
        from longbench.backends.chat import load_chat_model

        for value, option in (
            (tensor_parallel_size, "--tensor-parallel-size"),
            (pipeline_parallel_size, "--pipeline-parallel-size"),
            (data_parallel_size, "--data-parallel-size"),
        ):
            if value < 1:
                raise LongBenchError(f"{option} must be at least 1, got {value}")
        self.think_tags = check_think_tags(think_tags)
        loaded = load_chat_model(
            model,
            chat_template=chat_template,
            trust_remote_code=trust_remote_code,
            revision=revision,
            template_kwargs=chat_template_kwargs,
        )
        self.tokenizer, self.chat_format = loaded.tokenizer, loaded.chat
        self.load_id = loaded.load
        self.model_id = model
        self.revision = revision
        self.tensor_parallel_size = tensor_parallel_size
        self.pipeline_parallel_size = pipeline_parallel_size
        self.data_parallel_size = data_parallel_size
        self.max_model_len = max_model_len
        self.trust_remote_code = trust_remote_code
        self.dtype = dtype
        self._newline = newline_token_id(self.tokenizer)
        self._llm: Any = None

    def _engine(self) -> Any:
        if self._llm is None:
            self._llm = self.vllm.LLM(
                model=self.load_id,
                generation_config="vllm",  # vLLM's neutral defaults, not the model's generation_config.json
                revision=self.revision,
                tokenizer_revision=self.revision,
                tensor_parallel_size=self.tensor_parallel_size,
                pipeline_parallel_size=self.pipeline_parallel_size,
                data_parallel_size=self.data_parallel_size,
                max_model_len=self.max_model_len,
                trust_remote_code=self.trust_remote_code,
                dtype=self.dtype,
                enable_prefix_caching=True,
            )
        return self._llm

    # -- what the runner asks ------------------------------------------------------------------------------
    def context_window(self) -> int | None:
        if self.max_model_len is not None:
            return self.max_model_len
        return int(self._engine().llm_engine.model_config.max_model_len)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "vllm_version": getattr(self.vllm, "__version__", None),
            "dtype": self.dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "data_parallel_size": self.data_parallel_size,
            "max_model_len": self.max_model_len,
            "enable_prefix_caching": True,
            **self.chat_format.describe(),
            "think_tags": list(self.think_tags) if self.think_tags else None,
            "trust_remote_code": self.trust_remote_code,
            "decoding": {
                "temperature": "each request's (run.json temperature; 0 or absent: greedy)",
                "top_p": 1.0,
                "top_k": -1,
                "repetition_penalty": 1.0,
                "seed": "each request's when set (SamplingParams.seed)",
                "generation_config": "vllm (the model's generation_config.json is not used)",
            },
            "batch_invariant": False,  # vLLM batches continuously: outputs may depend on what runs together
        }

    # -- generation ----------------------------------------------------------------------------------------
    def job(self, request: GenerationRequest) -> VLLMJob:
        """The token ids and sampling settings for ``request``, built as the transformers backend builds them."""
        return VLLMJob(request, tuple(self.input_ids(request)), sampling_settings(request, self._newline))

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        window = self.max_model_len
        too_long: list[GenerationResult] = []

        def fitting_jobs() -> Iterator[VLLMJob]:
            nonlocal window
            for request in requests:
                job = self.job(request)
                if window is None:
                    window = self.context_window()
                if len(job.prompt_ids) >= window:
                    error = f"prompt of {len(job.prompt_ids)} tokens does not fit the {window}-token window"
                    too_long.append(GenerationResult.failure(request, error))
                    continue
                yield job

        jobs = fitting_jobs()
        first = next(jobs, None)
        yield from too_long
        too_long.clear()
        if first is None:
            return
        engine = self._engine().llm_engine

        def params(job: VLLMJob) -> Any:
            return self.vllm.SamplingParams(**job.sampling)

        for job, output in stream_completions(engine, itertools.chain([first], jobs), params):
            yield from too_long
            too_long.clear()
            completion = output.outputs[0]
            ids = generated_ids(completion.token_ids, getattr(completion, "stop_reason", None))
            text = self.clean_output(self.tokenizer.decode(ids, skip_special_tokens=True))
            yield self.result(
                job.request,
                text,
                finish_reason=getattr(completion, "finish_reason", None),
                prompt_tokens=len(job.prompt_ids),
                generated_tokens=len(ids),
            )
        yield from too_long

    def close(self) -> None:
        self._llm = None
