"""Generation with vLLM in this process (``vllm.LLM``): every prompt submitted at once, prefix caching on.

The model input is built exactly as the transformers backend builds it (same chat template option, same
token ids from :func:`longbench.prompts.encode_model_input`) and handed to vLLM as token ids, so both engines
see identical inputs. Decoding is greedy (temperature 0) with the model's own repetition penalty from its
generation config, as ``model.generate`` applies it in the reference; the model's EOS tokens end generation.
samsum additionally stops at the reference's newline token (``tokenizer.encode("\\n")[-1]``) and must emit at
least one token (``min_tokens=1`` suppresses the stop tokens for the first step, as the reference's
``min_length`` does). Only the new token ids are decoded, with special tokens skipped.

vllm is an optional extra (``pip install longbench[vllm]``), imported only when this backend is built; it
needs a GPU. For several nodes, run ``vllm serve`` on a Ray cluster and use the openai backend
(docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.errors import LongBenchError


@dataclass(frozen=True)
class VLLMJob:
    """One request as vLLM receives it: prompt token ids and sampling settings (vllm-free, testable)."""

    request: GenerationRequest
    prompt_ids: tuple[int, ...]
    sampling: dict[str, Any]  # keyword arguments of vllm.SamplingParams


def newline_token_id(tokenizer: Any) -> int:
    """The token the reference stops samsum at: the last id of ``"\\n"`` encoded without special tokens."""
    return tokenizer.encode("\n", add_special_tokens=False)[-1]


def sampling_settings(
    request: GenerationRequest, newline_id: int, repetition_penalty: float
) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for ``request``: greedy, the task's budget, samsum's stop."""
    settings: dict[str, Any] = {
        "n": 1,
        "temperature": request.temperature,
        "max_tokens": request.max_new_tokens,
        "repetition_penalty": repetition_penalty,
        "skip_special_tokens": True,
    }
    if request.stop_at_newline:
        settings["stop_token_ids"] = [newline_id]
        settings["min_tokens"] = 1
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
    ) -> None:
        self.vllm = _import_vllm()
        from transformers import AutoTokenizer, GenerationConfig

        from longbench.prompts import chat_template_from_option

        if tensor_parallel_size < 1:
            raise LongBenchError(f"--tensor-parallel-size must be at least 1, got {tensor_parallel_size}")
        options = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, **options)
        except OSError as error:
            raise LongBenchError(f"cannot load model {model!r}: {str(error).splitlines()[0]}") from None
        try:
            generation = GenerationConfig.from_pretrained(model, revision=revision)
            self.repetition_penalty = float(generation.repetition_penalty or 1.0)
        except OSError:  # no generation_config.json: transformers' default
            self.repetition_penalty = 1.0
        self.model_id = model
        self.revision = revision
        self.tensor_parallel_size = tensor_parallel_size
        self.max_model_len = max_model_len
        self.trust_remote_code = trust_remote_code
        self.dtype = dtype
        self.chat_template_option = chat_template
        self._template = chat_template_from_option(chat_template, self.tokenizer)
        self._newline = newline_token_id(self.tokenizer)
        self._llm: Any = None

    def _engine(self) -> Any:
        if self._llm is None:
            self._llm = self.vllm.LLM(
                model=self.model_id,
                revision=self.revision,
                tokenizer_revision=self.revision,
                tensor_parallel_size=self.tensor_parallel_size,
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

    def chat_template(self) -> str | None:
        return self._template

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "vllm_version": getattr(self.vllm, "__version__", None),
            "dtype": self.dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "max_model_len": self.max_model_len,
            "enable_prefix_caching": True,
            "chat_template": self.chat_template_option,
            "trust_remote_code": self.trust_remote_code,
            "decoding": {"temperature": 0.0, "repetition_penalty": self.repetition_penalty},
        }

    # -- generation ----------------------------------------------------------------------------------------
    def job(self, request: GenerationRequest) -> VLLMJob:
        """The token ids and sampling settings for ``request``, built as the transformers backend builds them."""
        from longbench.prompts import encode_model_input

        wrapped = request.chat and self._template is not None
        ids = encode_model_input(self.render(request), self.tokenizer, chat_wrapped=wrapped)
        settings = sampling_settings(request, self._newline, self.repetition_penalty)
        return VLLMJob(request, tuple(ids), settings)

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        jobs = [self.job(request) for request in requests]
        if not jobs:
            return
        window = self.context_window()
        fits = [job for job in jobs if window is None or len(job.prompt_ids) < window]
        for job in jobs:
            if window is not None and len(job.prompt_ids) >= window:
                error = f"prompt of {len(job.prompt_ids)} tokens does not fit the {window}-token window"
                yield GenerationResult.failure(job.request, error)
        if not fits:
            return
        prompts = [{"prompt_token_ids": list(job.prompt_ids)} for job in fits]
        params = [self.vllm.SamplingParams(**job.sampling) for job in fits]
        outputs = self._engine().generate(prompts, sampling_params=params, use_tqdm=True)
        for job, output in zip(fits, outputs, strict=True):
            completion = output.outputs[0]
            ids = generated_ids(completion.token_ids, getattr(completion, "stop_reason", None))
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            yield GenerationResult(job.request, text, None, len(job.prompt_ids), len(ids))

    def close(self) -> None:
        self._llm = None
