"""The run side's layers, read from the source (every import, top-level or inside a function): data loading
and the runner know nothing of compression or of a particular benchmark, and compression does not reach up
into the runner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "longbench"


def imports(module: str) -> set[str]:
    """Every ``longbench`` module that ``module`` (a dotted name) imports, anywhere in its source."""
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("longbench")}


def reaches(module: str, prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in imports(module))


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("longbench.loading", "longbench.compression"),
        ("longbench.sources", "longbench.compression"),
        ("longbench.runner", "longbench.compression"),
        ("longbench.runner", "longbench.v2"),
        ("longbench.runner", "longbench.benchmarks.v1_run"),
        ("longbench.runner", "longbench.benchmarks.v2_run"),
        ("longbench.runner", "longbench.cli"),
        ("longbench.compression.pipeline", "longbench.runner"),
        ("longbench.compression.v2", "longbench.runner"),
        ("longbench.benchmarks.base", "longbench.runner"),
        ("longbench.benchmarks.v1_run", "longbench.runner"),
        ("longbench.benchmarks.v2_run", "longbench.runner"),
        ("longbench.sources", "longbench.runner"),
    ],
)
def test_no_upward_import(module: str, forbidden: str) -> None:
    assert not reaches(module, forbidden), f"{module} imports {forbidden}"


def test_the_scan_sees_function_level_imports() -> None:
    assert reaches("longbench.cli", "longbench.runner")  # imported inside functions only
    assert reaches("longbench.compression.pipeline", "longbench.sources")
