"""Helpers shared by the test files: the command line in a real subprocess, and JSON-lines files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def no_figures(args: tuple[str | Path, ...]) -> list[str]:
    """``--no-plots`` for a v1 eval that does not ask for figures: drawing them (the default where matplotlib is
    installed) takes a second, and these tests check the scores and tables (tests/test_html_report.py and
    tests/test_plots.py check the figures)."""
    v1_eval = args[:1] == ("eval",) and "--v2" not in args
    return ["--no-plots"] if v1_eval and not any(str(a) in ("--plots", "--no-plots") for a in args) else []


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -m longbench ARGS`` in a child process (``--no-plots`` added to a v1 eval, see :func:`no_figures`)."""
    return subprocess.run(
        [sys.executable, "-m", "longbench", *map(str, args), *no_figures(args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        preexec_fn=preexec,
        env={**os.environ, **(env or {})},
    )


def write_jsonl(path: Path, rows: list[dict], end: str = "\n") -> None:
    """``rows`` as JSON lines (the last one followed by ``end``), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + end, encoding="utf-8")
