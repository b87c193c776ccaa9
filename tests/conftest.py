"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def longbench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private longbench cache directory for this test session (use it as ``LONGBENCH_CACHE``)."""
    return tmp_path_factory.mktemp("longbench-cache")


@pytest.fixture(scope="session")
def tiny_model(longbench_cache: Path) -> Path:
    """The built-in tiny model's directory, built once per session inside ``longbench_cache``.

    Code that resolves ``--model builtin:tiny`` itself finds it when ``LONGBENCH_CACHE`` is set to
    ``str(tiny_model.parent)`` (``monkeypatch.setenv``), so nothing is built in the user's home.
    """
    from longbench.tinymodel import tiny_model_path

    return tiny_model_path(longbench_cache)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread: on a small shared CPU, OpenMP threads fighting other processes are ~15x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
