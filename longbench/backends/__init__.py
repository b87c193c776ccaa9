"""Inference backends: one small interface (``base``), several engines, chosen by name in ``create_backend``."""

from __future__ import annotations

import importlib
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult, TokenizerLike
from longbench.errors import LongBenchError

# name -> (module, class); engines are imported on demand, so that choosing one never loads the others'
# libraries. A new backend is one entry here and one module implementing :class:`Backend`.
REGISTRY: dict[str, tuple[str, str]] = {
    "transformers": ("longbench.backends.hf", "TransformersBackend"),
    "openai": ("longbench.backends.openai_api", "OpenAIBackend"),
    "vllm": ("longbench.backends.vllm_engine", "VLLMBackend"),
}
BACKENDS: tuple[str, ...] = tuple(REGISTRY)

__all__ = [
    "BACKENDS",
    "REGISTRY",
    "Backend",
    "GenerationRequest",
    "GenerationResult",
    "TokenizerLike",
    "create_backend",
]


def create_backend(name: str, **options: Any) -> Backend:
    """Build the backend called ``name`` with ``options`` (its constructor's keyword arguments)."""
    if name not in REGISTRY:
        raise LongBenchError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    module, cls = REGISTRY[name]
    backend: Backend = getattr(importlib.import_module(module), cls)(**options)
    return backend
