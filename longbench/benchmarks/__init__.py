"""The benchmark registry: LongBench v1, LongBench-E and LongBench v2, each one :class:`Benchmark`, by name."""

from __future__ import annotations

from longbench.benchmarks.base import Benchmark
from longbench.errors import LongBenchError

_REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Add ``benchmark`` to the registry under its name (a name is registered once)."""
    if benchmark.name in _REGISTRY:
        raise LongBenchError(f"benchmark {benchmark.name!r} is already registered")
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark called ``name`` ("v1", "e", "v2")."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise LongBenchError(f"unknown benchmark {name!r}; known: {known}") from None


def benchmark_names() -> list[str]:
    """The names of every registered benchmark."""
    _load_builtin()
    return list(_REGISTRY)


def _load_builtin() -> None:
    """Register v1, E and v2 on first use (their modules build both halves of each definition)."""
    if _REGISTRY:
        return
    from longbench.benchmarks.v1_run import V1, E
    from longbench.benchmarks.v1_scores import V1Scores
    from longbench.benchmarks.v2_run import V2
    from longbench.benchmarks.v2_scores import V2Scores

    register(Benchmark("v1", "LongBench", "pred", "metrics", runs=V1, scores=V1Scores(e=False)))
    register(Benchmark("e", "LongBench-E", "pred_e", "metrics_e", runs=E, scores=V1Scores(e=True)))
    register(Benchmark("v2", "LongBench v2", "pred_v2", "metrics_v2", runs=V2, scores=V2Scores()))
