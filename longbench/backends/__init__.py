"""Inference backends: one small interface (``base``), several engines, chosen by name in ``create_backend``."""

from __future__ import annotations

from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult, TokenizerLike
from longbench.errors import LongBenchError

BACKENDS: tuple[str, ...] = ("transformers", "openai", "vllm")

__all__ = ["BACKENDS", "Backend", "GenerationRequest", "GenerationResult", "TokenizerLike", "create_backend"]


def create_backend(name: str, **options: Any) -> Backend:
    """Build the backend called ``name`` with ``options`` (its constructor's keyword arguments).

    Engines are imported here, on demand, so that choosing one never loads the others' libraries.
    """
    if name == "transformers":
        from longbench.backends.hf import TransformersBackend

        return TransformersBackend(**options)
    if name == "openai":
        from longbench.backends.openai_api import OpenAIBackend

        return OpenAIBackend(**options)
    if name == "vllm":
        from longbench.backends.vllm_engine import VLLMBackend

        return VLLMBackend(**options)
    raise LongBenchError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
