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


@pytest.fixture(scope="session")
def ray_cluster(tiny_model: Path) -> Iterator[object]:
    """A local Ray cluster of 2 CPUs, started once per test session (skipped without Ray).

    Kept small: no dashboard, a small object store, one torch thread per worker. Workers start with this
    environment, so ``LONGBENCH_CACHE`` (the tiny model's cache) and ``HF_HUB_OFFLINE`` are set first.
    """
    ray = pytest.importorskip("ray")
    import logging
    import os

    saved = {name: os.environ.get(name) for name in ("LONGBENCH_CACHE", "HF_HUB_OFFLINE", "OMP_NUM_THREADS")}
    os.environ.update(LONGBENCH_CACHE=str(tiny_model.parent), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    try:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=100 * 1024 * 1024,
            logging_level=logging.WARNING,
            log_to_driver=False,
            namespace="longbench",
        )
    finally:  # Ray's processes keep the environment they started with; this process gets its own back
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield ray
    ray.shutdown()
