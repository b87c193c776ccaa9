"""The Hugging Face transformers backend: greedy decoding exactly as the reference ``pred.py``, batched.

The reference calls ``model.generate(**input, max_new_tokens=max_gen, num_beams=1, do_sample=False,
temperature=1.0)`` on one prompt at a time, keeping the model's own generation config otherwise (its
EOS tokens, any repetition penalty); for samsum it also passes ``eos_token_id=[tokenizer.eos_token_id,
tokenizer.encode("\\n", add_special_tokens=False)[-1]]`` and ``min_length=context_length + 1``. Only the new
tokens are decoded, special tokens skipped. Here prompts are sorted by length and generated in left-padded
batches with an attention mask; each row is cut after its first stop token, which gives the tokens the
one-at-a-time call would give (tested on the tiny model). A batch that runs out of memory is retried one
sample at a time; a sample that still does not fit becomes a failed result.

Where the model runs is decided by :func:`plan_placement` (a pure function): CPU, one GPU, one worker
process per GPU (data parallel, see :mod:`longbench.backends.hf_workers`) when the model fits one GPU,
or ``device_map="auto"`` across GPUs when it does not.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.errors import LongBenchError

DTYPES: tuple[str, ...] = ("auto", "bfloat16", "float16", "float32")
FIT_FRACTION = 0.7  # the weights may use this share of one GPU; the rest is left for activations and cache

_WINDOW_BATCHES = 4  # batches read ahead per device: enough to sort by length, bounded in memory


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA out-of-memory error (``torch.OutOfMemoryError`` or a RuntimeError saying so)."""
    import torch

    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error)
    )


@dataclass(frozen=True)
class Placement:
    """Where the model runs: ``kind`` is "cpu", "single", "data_parallel" or "sharded" (device_map="auto")."""

    kind: str
    devices: tuple[str, ...]


def plan_placement(device: str | None, weight_bytes: int | None, gpu_memory: Sequence[int]) -> Placement:
    """Choose where to run from the ``--device`` option, the model's weight size and each GPU's memory.

    ``device`` None or "auto": every GPU, one worker per GPU when the weights fit one GPU (or their size is
    unknown), else one model spread over all GPUs; the CPU when there is no GPU. "cpu" and "cuda:N" are
    taken as given; "cuda" means all GPUs as for "auto".
    """
    if device not in (None, "auto", "cuda"):
        return Placement("cpu" if device == "cpu" else "single", (device,))
    if not gpu_memory:
        if device == "cuda":
            raise LongBenchError("--device cuda: no CUDA GPU is available")
        return Placement("cpu", ("cpu",))
    gpus = tuple(f"cuda:{index}" for index in range(len(gpu_memory)))
    fits = weight_bytes is None or weight_bytes <= FIT_FRACTION * min(gpu_memory)
    if not fits and len(gpus) > 1:
        return Placement("sharded", gpus)
    if len(gpus) == 1:
        return Placement("single", gpus)
    return Placement("data_parallel", gpus)


def resolve_dtype(option: str, placement: Placement) -> str:
    """The torch dtype name for ``--dtype``: "auto" is bfloat16 on GPUs that support it, float16 on other
    GPUs, float32 on the CPU."""
    if option not in DTYPES:
        raise LongBenchError(f"unknown dtype {option!r}; valid: {', '.join(DTYPES)}")
    if option != "auto":
        return option
    if placement.kind == "cpu":
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def default_attention(placement: Placement, dtype: str) -> str:
    """flash_attention_2 on GPUs in half precision when the flash_attn package is installed, else sdpa."""
    if placement.kind == "cpu" or dtype == "float32":
        return "sdpa"
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return "sdpa"
    return "flash_attention_2"


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to load the model (picklable, sent to worker processes)."""

    model: str
    revision: str | None
    dtype: str
    attn_implementation: str
    trust_remote_code: bool


@dataclass(frozen=True)
class TokenJob:
    """One prompt's token ids and its decoding budget; ``eos_ids`` None keeps the model's own EOS tokens."""

    ids: tuple[int, ...]
    max_new_tokens: int
    eos_ids: tuple[int, ...] | None
    min_new_tokens: int


def load_model(spec: EngineSpec, device: str | None, device_map: str | None = None) -> Any:
    """The causal LM of ``spec`` in eval mode, on ``device`` or spread by ``device_map``."""
    import torch
    from transformers import AutoModelForCausalLM

    if device_map is not None:
        try:
            import accelerate  # noqa: F401
        except ImportError:
            raise LongBenchError(
                "the model does not fit one GPU; spreading it over several needs `pip install accelerate`"
            ) from None
    model = AutoModelForCausalLM.from_pretrained(
        spec.model,
        revision=spec.revision,
        dtype=getattr(torch, spec.dtype),
        attn_implementation=spec.attn_implementation,
        trust_remote_code=spec.trust_remote_code,
        device_map=device_map,
    )
    if device_map is None and device is not None:
        model.to(device)
    return model.eval()


def cut_at_stop(ids: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
    """``ids`` up to and including the first stop token (what generation of this row alone returns)."""
    stops = set(stop_ids)
    for position, token in enumerate(ids):
        if token in stops:
            return list(ids[: position + 1])
    return list(ids)


class TokenEngine:
    """Greedy generation on token ids for batches of jobs that share their decoding settings."""

    def __init__(self, model: Any) -> None:
        self.model = model
        config = copy.deepcopy(model.generation_config)
        config.do_sample = False
        config.num_beams = 1
        self.generation_config = config
        eos = config.eos_token_id
        self.default_eos: tuple[int, ...] = (
            () if eos is None else tuple(eos if isinstance(eos, list) else [eos])
        )

    def run(self, jobs: Sequence[TokenJob]) -> list[list[int] | str]:
        """New token ids per job (cut after the first stop token), or an error text when it did not fit."""
        try:
            return self._generate(jobs)
        except Exception as error:  # noqa: BLE001 -- only out-of-memory is handled, anything else re-raised
            if not is_out_of_memory(error):
                raise
            failed = f"out of memory on a batch of {len(jobs)}"
        self._free_memory()  # outside the except block, so the error's frames no longer hold tensors
        if len(jobs) == 1:
            return [f"out of memory on a {len(jobs[0].ids)}-token prompt"]
        return [self._run_alone(job, failed) for job in jobs]

    def _run_alone(self, job: TokenJob, why: str) -> list[int] | str:
        try:
            return self._generate([job])[0]
        except Exception as error:  # noqa: BLE001
            if not is_out_of_memory(error):
                raise
        self._free_memory()
        return f"out of memory on a {len(job.ids)}-token prompt (alone, after {why})"

    def _free_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _generate(self, jobs: Sequence[TokenJob]) -> list[list[int]]:
        import torch

        first = jobs[0]
        width = max(len(job.ids) for job in jobs)
        pad = first.eos_ids[0] if first.eos_ids else (self.default_eos[0] if self.default_eos else 0)
        rows = [[pad] * (width - len(job.ids)) + list(job.ids) for job in jobs]
        mask = [[0] * (width - len(job.ids)) + [1] * len(job.ids) for job in jobs]
        device = self.model.device
        config = copy.deepcopy(self.generation_config)
        config.max_new_tokens = first.max_new_tokens
        config.pad_token_id = pad
        if first.eos_ids is not None:
            config.eos_token_id = list(first.eos_ids)
        if first.min_new_tokens:
            config.min_new_tokens = first.min_new_tokens
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=torch.tensor(rows, device=device),
                attention_mask=torch.tensor(mask, device=device),
                generation_config=config,
            )
        stops = first.eos_ids if first.eos_ids is not None else self.default_eos
        return [cut_at_stop(row[width:].tolist(), stops) for row in output]


def _gpu_memory() -> list[int]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]


def _weight_bytes(config: Any, dtype: str, trust_remote_code: bool) -> int | None:
    """The model's weight size in ``dtype``, from its config on the meta device (None if that fails)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 -- an estimate only; unknown size means "assume it fits"
        return None
    bits = torch.finfo(getattr(torch, "float32" if dtype == "auto" else dtype)).bits
    return sum(p.numel() for p in model.parameters()) * bits // 8


def _context_window(config: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class TransformersBackend(Backend):
    """Generation with a transformers causal LM; the tokenizer is loaded at once, the weights on first use."""

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        device: str | None = None,
        batch_size: int = 1,
        chat_template: str = "auto",
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        revision: str | None = None,
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from longbench.prompts import chat_template_from_option

        if batch_size < 1:
            raise LongBenchError(f"--batch-size must be at least 1, got {batch_size}")
        options = {"revision": revision, "trust_remote_code": trust_remote_code}
        local = Path(model).expanduser()
        if (local.is_absolute() or model.startswith((".", "~"))) and not local.is_dir():
            raise LongBenchError(f"model directory {model!r} does not exist")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, **options)
            self.config = AutoConfig.from_pretrained(model, **options)
        except OSError as error:
            raise LongBenchError(f"cannot load model {model!r}: {str(error).splitlines()[0]}") from None
        self.model_id = model
        self.batch_size = batch_size
        self.chat_template_option = chat_template
        self._template = chat_template_from_option(chat_template, self.tokenizer)
        gpus = _gpu_memory()
        weights = _weight_bytes(self.config, dtype, trust_remote_code) if gpus and device != "cpu" else None
        self.placement = plan_placement(device, weights, gpus)
        resolved = resolve_dtype(dtype, self.placement)
        self.spec = EngineSpec(
            model=model,
            revision=revision,
            dtype=resolved,
            attn_implementation=attn_implementation or default_attention(self.placement, resolved),
            trust_remote_code=trust_remote_code,
        )
        self._engine: TokenEngine | None = None
        self._pool: Any = None

    # -- what the runner asks ------------------------------------------------------------------------------
    def context_window(self) -> int | None:
        return _context_window(self.config)

    def chat_template(self) -> str | None:
        return self._template

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_id,
            "revision": getattr(self.config, "_commit_hash", None) or self.spec.revision,
            "dtype": self.spec.dtype,
            "placement": self.placement.kind,
            "devices": list(self.placement.devices),
            "attn_implementation": self.spec.attn_implementation,
            "batch_size": self.batch_size,
            "chat_template": self.chat_template_option,
            "trust_remote_code": self.spec.trust_remote_code,
        }

    @property
    def model(self) -> Any:
        """The loaded model of the in-process engine (loaded on first use)."""
        return self._local_engine().model

    # -- generation ----------------------------------------------------------------------------------------
    def job(self, request: GenerationRequest) -> TokenJob:
        """The token ids and decoding budget for ``request``, as the reference builds them."""
        from longbench.prompts import encode_model_input

        wrapped = request.chat and self._template is not None
        ids = encode_model_input(self.render(request), self.tokenizer, chat_wrapped=wrapped)
        if not request.stop_at_newline:
            return TokenJob(tuple(ids), request.max_new_tokens, None, 0)
        newline = self.tokenizer.encode("\n", add_special_tokens=False)[-1]
        return TokenJob(tuple(ids), request.max_new_tokens, (self.tokenizer.eos_token_id, newline), 1)

    def batches(
        self, requests: Sequence[GenerationRequest]
    ) -> list[list[tuple[GenerationRequest, TokenJob]]]:
        """Requests grouped by decoding settings, longest prompts first, in batches of ``batch_size``."""
        pairs = [(request, self.job(request)) for request in requests]
        pairs.sort(key=lambda pair: (pair[1].max_new_tokens, pair[1].eos_ids or (), -len(pair[1].ids)))
        out: list[list[tuple[GenerationRequest, TokenJob]]] = []
        for request, job in pairs:
            last = out[-1] if out else None
            same = last is not None and (last[0][1].max_new_tokens, last[0][1].eos_ids) == (
                job.max_new_tokens,
                job.eos_ids,
            )
            if same and last is not None and len(last) < self.batch_size:
                last.append((request, job))
            else:
                out.append([(request, job)])
        return out

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        """Read a bounded window of requests ahead (a few batches per device), sort and batch within it."""
        pending = iter(requests)
        workers = len(self.placement.devices) if self.placement.kind == "data_parallel" else 1
        window = self.batch_size * _WINDOW_BATCHES * workers
        while chunk := list(islice(pending, window)):
            yield from self._generate_window(chunk)

    def _generate_window(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        batches = self.batches(requests)
        if self.placement.kind == "data_parallel":
            outputs = self._worker_pool().run([[job for _, job in batch] for batch in batches])
        else:
            engine = self._local_engine()
            outputs = ((index, engine.run([job for _, job in batch])) for index, batch in enumerate(batches))
        for index, results in outputs:
            for (request, job), result in zip(batches[index], results, strict=True):
                yield self._result(request, job, result)

    def _result(self, request: GenerationRequest, job: TokenJob, output: list[int] | str) -> GenerationResult:
        if isinstance(output, str):
            return GenerationResult.failure(request, output)
        text = self.tokenizer.decode(output, skip_special_tokens=True)
        return GenerationResult(request, text, None, len(job.ids), len(output))

    def _local_engine(self) -> TokenEngine:
        if self._engine is None:
            if self.placement.kind == "sharded":
                model = load_model(self.spec, None, device_map="auto")
            else:
                model = load_model(self.spec, self.placement.devices[0])
            self._engine = TokenEngine(model)
        return self._engine

    def _worker_pool(self) -> Any:
        if self._pool is None:
            from longbench.backends.hf_workers import WorkerPool

            self._pool = WorkerPool(self.spec, self.placement.devices)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._engine = None
