"""The package's structure: no import circle, and no module importing one of a higher layer.

Every ``import`` in ``longbench/`` is read with :mod:`ast` (those inside functions and under
``TYPE_CHECKING`` too: a lazy import is still a dependency), and each module is placed in a layer of the
pipeline drawn in docs/architecture.md. A module may import its own layer and the ones below, never one
above; a module no layer names fails the test, so a new module has to be placed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "longbench"

# Lowest first. A module belongs to the layer listing it, or its package (``longbench.metrics`` covers
# ``longbench.metrics.rouge``; ``longbench`` is the package's own ``__init__`` only); the most specific wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "longbench",
            "longbench.errors",
            "longbench.jsonl",
            "longbench.spec_data",
            "longbench.schema",
            "longbench.permissions",
            "longbench.redaction",
            "longbench.progress",
            "longbench.cache",
            "longbench.tokenization",
            "longbench.thinking",
            "longbench.health",
            "longbench.seeds",
            "longbench.stats",
            "longbench.fingerprints",
            "longbench.slurm",
            "longbench.hub_access",
            "longbench.result_folder",
            "longbench.tinymodel",
            "longbench.v2",
        ),
    ),
    (
        "definitions",
        ("longbench.tasks", "longbench.checksums", "longbench.published", "longbench.reference_models"),
    ),
    ("sources", ("longbench.archive", "longbench.loading", "longbench.sources", "longbench.v2.data")),
    ("prompts", ("longbench.prompts", "longbench.v2.prompts")),
    ("metrics", ("longbench.metrics",)),
    ("backends", ("longbench.backends",)),
    (
        "run halves",
        ("longbench.benchmarks.base", "longbench.benchmarks.v1_run", "longbench.benchmarks.v2_run"),
    ),
    ("runner", ("longbench.runner", "longbench.run_files")),
    (
        "scoring",
        (
            "longbench.scoring",
            "longbench.predictions",
            "longbench.evaluation",
            "longbench.signature",
            "longbench.v2.scoring",
        ),
    ),
    (
        "reports",
        (
            "longbench.reports",
            "longbench.v2.reports",
            "longbench.compare",
            "longbench.compare_runs",
            "longbench.plots",
            "longbench.html_report",
            "longbench.report_files",
            "longbench.benchmarks.v1_scores",
            "longbench.benchmarks.v2_scores",
        ),
    ),
    ("registry and compression", ("longbench.benchmarks", "longbench.compression")),
    ("api", ("longbench.api",)),
    ("cli", ("longbench.cli", "longbench.__main__")),
)


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (``data/`` is specification data, not code)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[:2] == ("longbench", "data"):
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(c for c in candidates if c in known and c != name)
    return found


def layer_of(name: str) -> int:
    """The index of ``name``'s layer (most specific listed prefix), or -1 when no layer names it."""
    best, depth = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = name == prefix or (prefix != "longbench" and name.startswith(prefix + "."))
            if covers and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or through others (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    assert circles(graph()) == []


def test_every_module_has_a_layer() -> None:
    assert [name for name in graph() if layer_of(name) < 0] == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {other} ({LAYERS[layer_of(other)][0]})"
        for name, others in sorted(graph().items())
        for other in sorted(others)
        if layer_of(other) > layer_of(name)
    ]
    assert upward == []


def test_the_checks_see_a_circle_and_an_upward_import() -> None:
    """The checks themselves can fail: a made-up circle is found, and a layer order is enforced."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert layer_of("longbench.runner") > layer_of("longbench.backends.hf") > layer_of("longbench.tasks")
    assert layer_of("longbench.cli") == len(LAYERS) - 1
    assert layer_of("longbench.not_placed_yet") == -1


# Beyond the layer order: the runner holds a benchmark's run half without knowing which one (LongBench v1's is
# only its default), data loading knows nothing of compression, and compression does not reach into the runner.
FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("longbench.loading", "longbench.compression"),
    ("longbench.sources", "longbench.compression"),
    ("longbench.runner", "longbench.compression"),
    ("longbench.runner", "longbench.v2"),
    ("longbench.runner", "longbench.benchmarks.v2_run"),
    ("longbench.compression.pipeline", "longbench.runner"),
    ("longbench.compression.v2", "longbench.runner"),
    ("longbench.benchmarks.v1_run", "longbench.runner"),
    ("longbench.benchmarks.v2_run", "longbench.runner"),
)


def test_no_forbidden_import() -> None:
    edges = graph()
    found = [
        f"{module} imports {target}"
        for module, prefix in FORBIDDEN
        for target in sorted(edges[module])
        if target == prefix or target.startswith(prefix + ".")
    ]
    assert found == []
    # imported inside a function only, and still seen
    assert "longbench.benchmarks.v1_run" in edges["longbench.benchmarks"]
