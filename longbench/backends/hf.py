"""The Hugging Face transformers backend: greedy decoding exactly as the reference ``pred.py``, batched.

The reference calls ``model.generate(**input, max_new_tokens=max_gen, num_beams=1, do_sample=False,
temperature=1.0)`` on one prompt at a time, keeping the model's own generation config otherwise (its
EOS tokens, any repetition penalty); for samsum it also passes ``eos_token_id=[tokenizer.eos_token_id,
tokenizer.encode("\\n", add_special_tokens=False)[-1]]`` and ``min_length=context_length + 1``. Only the new
tokens are decoded, special tokens skipped. Here prompts are sorted by length and generated in left-padded
batches with an attention mask; each row is cut after its first stop token, which gives the tokens the
one-at-a-time call would give (tested on the tiny model). A batch that runs out of memory is retried one
sample at a time; a sample that still does not fit becomes a failed result. The model and its batches run in
:mod:`longbench.backends.hf_engine`; this module decides what they get and reads what comes back.

A request with a positive temperature samples at that temperature and nothing else; one with a seed is
generated alone from its own seeded generator, so its draw depends on nothing else in the run. A reasoning
model's thinking is split from the decoded answer (:meth:`Backend.result`), and each result says whether it
ended at a stop token or at ``max_new_tokens``.

Where the model runs is decided by :func:`plan_placement` (a pure function): CPU, one GPU, or
``device_map="auto"`` across GPUs when the model does not fit one. Copies of the model on several GPUs or
nodes (data parallelism) are Ray replicas of this backend (:mod:`longbench.backends.ray_replicas`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.backends.chat import load_chat_model
from longbench.backends.hf_engine import (
    EngineSpec,
    TokenEngine,
    TokenJob,
    cut_at_stop,  # noqa: F401 -- part of this module's interface, defined with the engine
    decoding_settings,  # noqa: F401
    is_out_of_memory,  # noqa: F401
    load_model,
    neutral_generation_config,  # noqa: F401
)
from longbench.errors import LongBenchError, SettingError
from longbench.thinking import DEFAULT_THINK_TAGS, ThinkTags, check_think_tags

logger = logging.getLogger(__name__)

DTYPES: tuple[str, ...] = ("auto", "bfloat16", "float16", "float32")
FIT_FRACTION = 0.7  # the weights may use this share of one GPU; the rest is left for activations and cache

_WINDOW_BATCHES = 4  # batches read ahead per device: enough to sort by length, bounded in memory


TORCH_MISSING = (
    "the transformers backend needs PyTorch to generate: pip install torch (https://pytorch.org/get-started); "
    "--dump-prompts works without it"
)


def torch_available() -> bool:
    """Whether PyTorch can be imported (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # a module object without a spec stands in for it
        return True


def require_torch() -> None:
    """Raise one line saying what to install when PyTorch is missing."""
    if not torch_available():
        raise LongBenchError(TORCH_MISSING)


@dataclass(frozen=True)
class Placement:
    """Where the model runs: ``kind`` is "cpu", "single" or "sharded" (device_map="auto")."""

    kind: str
    devices: tuple[str, ...]


def plan_placement(device: str | None, weight_bytes: int | None, gpu_memory: Sequence[int]) -> Placement:
    """Choose where to run from the ``--device`` option, the model's weight size and each GPU's memory.

    ``device`` None or "auto": the first GPU when the weights fit one GPU (or their size is unknown), else
    one model spread over all GPUs; the CPU when there is no GPU. "cpu" and "cuda:N" are taken as given;
    "cuda" means the GPUs as for "auto". One copy per GPU is ``--ray local --replicas N``.
    """
    if device not in (None, "auto", "cuda"):
        return Placement("cpu" if device == "cpu" else "single", (device,))
    if not gpu_memory:
        if device == "cuda":
            raise SettingError("{device} cuda: no CUDA GPU is available")
        return Placement("cpu", ("cpu",))
    gpus = tuple(f"cuda:{index}" for index in range(len(gpu_memory)))
    fits = weight_bytes is None or weight_bytes <= FIT_FRACTION * min(gpu_memory)
    if not fits and len(gpus) > 1:
        return Placement("sharded", gpus)
    return Placement("single", gpus[:1])


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


FLASH_ATTENTION = "flash_attention_2"
FLASH_MIN_CAPABILITY = (8, 0)  # FlashAttention 2 runs on Ampere (sm80) and newer


def choose_attention(requested: str | None, capability: tuple[int, int] | None, dtype: str) -> str | None:
    """The attention implementation to ask transformers for: None (its own default) unless ``--attn-
    implementation`` asks; FlashAttention 2 only on a GPU of compute capability 8.0+ in half precision
    (``capability`` None: no GPU), else refused with one line."""
    if requested is None or requested != FLASH_ATTENTION:
        return requested
    if capability is None or capability < FLASH_MIN_CAPABILITY or dtype == "float32":
        where = (
            "the CPU"
            if capability is None
            else f"a GPU of compute capability {capability[0]}.{capability[1]}"
        )
        raise LongBenchError(
            f"--attn-implementation {FLASH_ATTENTION} needs a GPU of compute capability 8.0 or newer and "
            f"bfloat16/float16 weights; this run has {where} and {dtype}"
        )
    return requested


def batch_invariant(placement: Placement, dtype: str, batch_size: int) -> bool:
    """Whether outputs are known not to depend on the batch: batch size 1 (the reference's one prompt at a
    time) anywhere, or float32 on the CPU (tested on the tiny model). Batched half precision on a GPU can
    change a few greedy tokens, because padded batches take other kernels and summation orders."""
    return batch_size == 1 or (placement.kind == "cpu" and dtype == "float32")


def cpu_threads(available: int, quota: float | None, load: float) -> int:
    """Torch threads for CPU inference: the cores this process may use (affinity, and a cgroup quota when
    lower) less those other processes keep busy (the 1-minute load average), at least 1. OpenMP threads
    competing for a busy core slow generation many times over, so fewer is better than too many."""
    cores = min(available, int(quota)) if quota else available
    return max(1, min(cores, cores - int(load)))


def _cgroup_cpu_quota() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else max(1.0, int(quota) / int(period))


def configure_cpu_threads() -> int:
    """Set torch's thread count for CPU inference (:func:`cpu_threads`) unless ``OMP_NUM_THREADS`` is set;
    returns the count in use."""
    import os

    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        available = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        )
        torch.set_num_threads(cpu_threads(available, _cgroup_cpu_quota(), os.getloadavg()[0]))
    return torch.get_num_threads()


def finish_reason(output: Sequence[int], job: TokenJob, stops: set[int]) -> str:
    """Why generation of ``output`` ended: "stop" at a stop token, "length" when the budget ran out first."""
    if output and output[-1] in stops:
        return "stop"
    return "length" if len(output) >= job.max_new_tokens else "stop"


def _gpu_memory() -> list[int]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]


def _gpu_capability() -> tuple[int, int] | None:
    import torch

    return tuple(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelProbe:
    """What instantiating the model on the meta device tells before loading: weight size, attention used."""

    weight_bytes: int | None  # in the resolved dtype; None when the model could not be built on meta
    attn_implementation: str | None  # what transformers chose (or accepted); None when unknown
    notice: str | None = None  # why a requested attention implementation was not used


def probe_model(
    config: Any, dtype: str, attn_implementation: str | None, trust_remote_code: bool
) -> ModelProbe:
    """Build the model on the meta device (no memory, no weights) to learn its size in ``dtype`` and the
    attention implementation transformers accepts; a requested one the model does not support falls back to
    transformers' default for it, with a notice."""
    import torch

    def build(attn: str | None) -> Any:
        from transformers import AutoModelForCausalLM

        options: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if attn is not None:
            options["attn_implementation"] = attn
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(copy.deepcopy(config), **options)

    notice = None
    try:
        model = build(attn_implementation)
    except Exception as error:  # noqa: BLE001 -- unsupported attention, or a model that cannot go on meta
        if attn_implementation is None:
            return ModelProbe(None, None)
        notice = (
            f"attention implementation {attn_implementation!r} is not available for this model "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__}); using transformers' default"
        )
        attn_implementation = None
        try:
            model = build(None)
        except Exception:  # noqa: BLE001
            return ModelProbe(None, None, notice)
    bits = torch.finfo(getattr(torch, dtype)).bits
    size = sum(p.numel() for p in model.parameters()) * bits // 8
    used = getattr(model.config, "_attn_implementation", None) or attn_implementation
    return ModelProbe(size, used, notice)


def _context_window(config: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _load_config(model: str, revision: str | None, trust_remote_code: bool) -> Any:
    """The config of ``model`` (a hub id or a local directory), or one line saying why not."""
    from transformers import AutoConfig

    from longbench.hub_access import from_hub

    options = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        return from_hub(AutoConfig.from_pretrained, model, "config", **options)
    except OSError as error:
        raise LongBenchError(f"cannot load model {model!r}: {str(error).splitlines()[0]}") from None


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
        chat_template_kwargs: Mapping[str, Any] | None = None,
        think_tags: ThinkTags | None = DEFAULT_THINK_TAGS,
    ) -> None:
        if batch_size < 1:
            raise SettingError("{batch_size} must be at least 1, got {value}", value=batch_size)
        self.think_tags = check_think_tags(think_tags)
        loaded = load_chat_model(
            model,
            chat_template=chat_template,
            trust_remote_code=trust_remote_code,
            revision=revision,
            template_kwargs=chat_template_kwargs,
        )
        self.tokenizer, self.chat_format = loaded.tokenizer, loaded.chat
        self.config = _load_config(loaded.load, revision, trust_remote_code)
        self.model_id = model
        self.batch_size = batch_size
        if not torch_available():  # the tokenizer alone: enough for --dump-prompts, not for generating
            self.placement = Placement("cpu", ("cpu",))
            self.spec = EngineSpec(loaded.load, revision, "float32", attn_implementation, trust_remote_code)
            self.attn_used = None
            self.cpu_threads = None
            self._engine = None
            return
        gpus = _gpu_memory()
        on_gpu = bool(gpus) and device != "cpu"
        gpu_dtype = resolve_dtype(dtype, Placement("single", ("cuda:0",))) if on_gpu else "float32"
        capability = _gpu_capability() if on_gpu else None
        requested = choose_attention(attn_implementation, capability, dtype if dtype != "auto" else gpu_dtype)
        probe = probe_model(self.config, gpu_dtype, requested, trust_remote_code)
        if probe.notice:
            logger.warning("longbench: %s", probe.notice)
        self.placement = plan_placement(device, probe.weight_bytes if on_gpu else None, gpus)
        if self.placement.kind == "single" and len(gpus) > 1 and device in (None, "auto", "cuda"):
            logger.warning(
                "longbench: the model fits one of the %d GPUs and runs on cuda:0; "
                "--ray local --replicas %d runs one copy per GPU",
                len(gpus),
                len(gpus),
            )
        self.spec = EngineSpec(
            model=loaded.load,
            revision=revision,
            dtype=resolve_dtype(dtype, self.placement),
            attn_implementation=requested if probe.notice is None else None,
            trust_remote_code=trust_remote_code,
        )
        self.attn_used = probe.attn_implementation
        self.cpu_threads = configure_cpu_threads() if self.placement.kind == "cpu" else None
        self._engine: TokenEngine | None = None

    # -- what the runner asks ------------------------------------------------------------------------------
    def context_window(self) -> int | None:
        return _context_window(self.config)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_id,
            "loaded_from": self.spec.model,
            "revision": getattr(self.config, "_commit_hash", None) or self.spec.revision,
            "dtype": self.spec.dtype,
            "placement": self.placement.kind,
            "devices": list(self.placement.devices),
            "attn_implementation": self.attn_used,
            "batch_size": self.batch_size,
            "cpu_threads": self.cpu_threads,
            "batch_invariant": batch_invariant(self.placement, self.spec.dtype, self.batch_size),
            **self.chat_format.describe(),
            "think_tags": list(self.think_tags) if self.think_tags else None,
            "trust_remote_code": self.spec.trust_remote_code,
            "decoding": {
                "temperature": "each request's (run.json temperature; 0 or absent: greedy)",
                "sampling": "at that temperature alone (no top-k, top-p or penalty); a seeded request is "
                "generated alone from its own seed",
                "generation_config": "not used, except the model's special token ids",
            },
        }

    @property
    def model(self) -> Any:
        """The loaded model of the in-process engine (loaded on first use)."""
        return self._local_engine().model

    # -- generation ----------------------------------------------------------------------------------------
    def job(self, request: GenerationRequest) -> TokenJob:
        """The token ids and decoding budget for ``request``, as the reference builds them."""
        ids = self.input_ids(request)
        temperature, seed = request.temperature, request.seed
        if not request.stop_at_newline:
            return TokenJob(tuple(ids), request.max_new_tokens, None, 0, temperature, seed)
        newline = self.tokenizer.encode("\n", add_special_tokens=False)[-1]
        return TokenJob(
            tuple(ids), request.max_new_tokens, (self.tokenizer.eos_token_id, newline), 1, temperature, seed
        )

    def batches(
        self, requests: Sequence[GenerationRequest]
    ) -> list[list[tuple[GenerationRequest, TokenJob]]]:
        """Requests grouped by decoding settings, longest prompts first, in batches of ``batch_size``."""
        pairs = [(request, self.job(request)) for request in requests]
        pairs.sort(
            key=lambda pair: (
                pair[1].max_new_tokens,
                pair[1].eos_ids or (),
                pair[1].temperature,
                -len(pair[1].ids),
            )
        )
        out: list[list[tuple[GenerationRequest, TokenJob]]] = []
        for request, job in pairs:
            last = out[-1] if out else None
            same = last is not None and (
                last[0][1].max_new_tokens,
                last[0][1].eos_ids,
                last[0][1].temperature,
            ) == (job.max_new_tokens, job.eos_ids, job.temperature)
            alone = job.seeded or (last is not None and last[0][1].seeded)  # its own generator: batch of 1
            if same and not alone and last is not None and len(last) < self.batch_size:
                last.append((request, job))
            else:
                out.append([(request, job)])
        return out

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        """Read a bounded window of requests ahead (a few batches per device), sort and batch within it."""
        require_torch()
        pending = iter(requests)
        window = self.batch_size * _WINDOW_BATCHES
        while chunk := list(islice(pending, window)):
            yield from self._generate_window(chunk)

    def _generate_window(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        engine = self._local_engine()
        for batch in self.batches(requests):
            outputs = engine.run([job for _, job in batch])
            for (request, job), output in zip(batch, outputs, strict=True):
                yield self._result(request, job, output)

    def _result(self, request: GenerationRequest, job: TokenJob, output: list[int] | str) -> GenerationResult:
        if isinstance(output, str):
            return GenerationResult.failure(request, output)
        text = self.clean_output(self.tokenizer.decode(output, skip_special_tokens=True))
        return self.result(
            request,
            text,
            finish_reason=finish_reason(output, job, self._engine_stops(job)),
            prompt_tokens=len(job.ids),
            generated_tokens=len(output),
        )

    def _engine_stops(self, job: TokenJob) -> set[int]:
        """The tokens that end ``job``'s generation: its own, else the model's and the tokenizer's EOS tokens."""
        if job.eos_ids is not None:
            return set(job.eos_ids)
        stops: set[int] = set()
        for eos in (getattr(self.config, "eos_token_id", None), self.tokenizer.eos_token_id):
            stops.update(eos if isinstance(eos, list) else [] if eos is None else [eos])
        return stops

    def _local_engine(self) -> TokenEngine:
        require_torch()
        if self._engine is None:
            if self.placement.kind == "sharded":
                model = load_model(self.spec, None, device_map="auto")
            else:
                model = load_model(self.spec, self.placement.devices[0])
            self._engine = TokenEngine(model)
        return self._engine

    def close(self) -> None:
        self._engine = None
