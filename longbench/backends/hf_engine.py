"""The transformers generation engine: a model loaded with neutral decoding, and batches of token jobs run on it.

Used by :mod:`longbench.backends.hf` (in this process, or in a Ray replica); it knows nothing of prompts or
chat formats, only token ids.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from longbench.errors import LongBenchError

logger = logging.getLogger(__name__)


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA out-of-memory error (``torch.OutOfMemoryError`` or a RuntimeError saying so)."""
    import torch

    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error)
    )


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to load the model (picklable, sent to worker processes)."""

    model: str
    revision: str | None
    dtype: str
    attn_implementation: str | None  # None: transformers' own choice for the model
    trust_remote_code: bool


@dataclass(frozen=True)
class TokenJob:
    """One prompt's token ids and its decoding budget; ``eos_ids`` None keeps the model's own EOS tokens."""

    ids: tuple[int, ...]
    max_new_tokens: int
    eos_ids: tuple[int, ...] | None
    min_new_tokens: int
    temperature: float = 0.0  # 0: greedy (the reference); sampling only when a request asks for more
    seed: int | None = None  # a sampled call's own seed: its draw then depends on nothing else

    @property
    def seeded(self) -> bool:
        """Whether this job samples from its own seeded generator (it is then generated alone)."""
        return self.temperature > 0 and self.seed is not None


def dtype_keyword() -> str:
    """The ``from_pretrained`` keyword for the weights dtype: ``dtype`` from transformers 4.56, else
    ``torch_dtype``."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_model(spec: EngineSpec, device: str | None, device_map: str | None = None) -> Any:
    """The causal LM of ``spec`` in eval mode, loaded straight onto ``device`` (or spread by ``device_map``).

    On a GPU the weights go directly to their device (``device_map={"": device}``, which needs accelerate;
    without it they are loaded on the CPU and moved). The model's generation config is made neutral
    (:func:`neutral_generation_config`), so nothing in its ``generation_config.json`` can change decoding.
    """
    import torch
    from transformers import AutoModelForCausalLM

    _no_bars_off_terminal()
    on_gpu = device is not None and device != "cpu"
    if device_map is not None or on_gpu:
        try:
            import accelerate  # noqa: F401
        except ImportError:
            if device_map is not None:
                raise LongBenchError(
                    "the model does not fit one GPU; spreading it over several needs `pip install accelerate`"
                ) from None
            on_gpu = False  # load on the CPU, then move
    options: dict[str, Any] = {
        "revision": spec.revision,
        dtype_keyword(): getattr(torch, spec.dtype),
        "trust_remote_code": spec.trust_remote_code,
        "device_map": device_map if device_map is not None else ({"": device} if on_gpu else None),
    }
    if spec.attn_implementation is not None:
        options["attn_implementation"] = spec.attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(spec.model, **options)
    except (ValueError, ImportError) as error:
        if "attn_implementation" not in options:
            raise
        logger.warning(
            "longbench: attention implementation %r failed to load (%s); using transformers' default",
            spec.attn_implementation,
            str(error).splitlines()[0] if str(error) else type(error).__name__,
        )
        del options["attn_implementation"]
        model = AutoModelForCausalLM.from_pretrained(spec.model, **options)
    if device_map is None and not on_gpu and device is not None and device != "cpu":
        model.to(device)
    model.generation_config = neutral_generation_config(model.generation_config)
    _quiet_if_tiny(spec.model)
    return model.eval()


def _no_bars_off_terminal() -> None:
    """transformers' own progress bars ("Loading weights") only on a terminal: in a log file they are
    carriage-return drawings (longbench's progress there is a plain line now and then)."""
    import sys

    if not sys.stderr.isatty():
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _quiet_if_tiny(model: str) -> None:
    """Silence transformers' reminder that generation went past the model's window for the built-in tiny model:
    its 4,096 positions are a nominal window for tests (a chat template's tokens come on top of the truncated
    prompt), and the reminder would print on every tiny run."""
    import logging

    from longbench.tinymodel import is_tiny_model

    if is_tiny_model(model):
        logging.getLogger("transformers.generation.stopping_criteria").setLevel(logging.ERROR)


_TOKEN_FIELDS: tuple[str, ...] = ("eos_token_id", "bos_token_id", "pad_token_id", "decoder_start_token_id")


def neutral_generation_config(model_config: Any) -> Any:
    """A ``GenerationConfig`` built from scratch: greedy, no temperature, top-k/p, repetition penalty or any
    other logits processor, keeping only the model's special token ids (its EOS tokens end generation, as
    in the reference). Transformers 4.50+ fill settings equal to the library defaults from the model's own
    config, so the model's config itself is replaced by this one and the same is passed to ``generate``."""
    from transformers import GenerationConfig

    kept = {field: getattr(model_config, field, None) for field in _TOKEN_FIELDS}
    return GenerationConfig(do_sample=False, num_beams=1, **{k: v for k, v in kept.items() if v is not None})


def decoding_settings(job: TokenJob, pad: int) -> dict[str, Any]:
    """``GenerationConfig`` settings for a batch of jobs like ``job``: greedy unless the request asked for a
    positive temperature (then sampling at that temperature and nothing else)."""
    settings: dict[str, Any] = {"max_new_tokens": job.max_new_tokens, "pad_token_id": pad}
    if job.eos_ids is not None:
        settings["eos_token_id"] = list(job.eos_ids)
    if job.min_new_tokens:
        settings["min_new_tokens"] = job.min_new_tokens
    if job.temperature > 0:
        settings.update(do_sample=True, temperature=job.temperature, top_k=0, top_p=1.0)
    return settings


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
        config = neutral_generation_config(model.generation_config)
        model.generation_config = copy.deepcopy(config)
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
        config.update(**decoding_settings(first, pad))
        with torch.inference_mode(), _seeded_rng(first.seed if first.seeded else None, device):
            output = self.model.generate(
                input_ids=torch.tensor(rows, device=device),
                attention_mask=torch.tensor(mask, device=device),
                generation_config=config,
            )
        stops = first.eos_ids if first.eos_ids is not None else self.default_eos
        return [cut_at_stop(row[width:].tolist(), stops) for row in output]


@contextlib.contextmanager
def _seeded_rng(seed: int | None, device: Any) -> Iterator[None]:
    """Within the block, torch's random generators (the CPU's and ``device``'s) start from ``seed``; they are
    restored afterwards, so a seeded call neither depends on nor changes the draws of any other. None: the
    generators are left as they are."""
    if seed is None:
        yield
        return
    import torch

    devices = [device] if getattr(device, "type", "cpu") == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
