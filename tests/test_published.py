"""The paper's published rows: shipped data equal to the README's numbers (parsed here from the spec's
copy), shown as printed beside the user's rows by `longbench eval --published`, in the paper's layout."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from longbench.published import (
    DISPLAY_NAMES,
    PAPER_CATEGORIES,
    PUBLISHED_MARK,
    paper_layout,
    published_models,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SPEC = SHARED / "spec" / "published-v1.md"
LLAMA2 = SHARED / "longbench-preds" / "v1" / "llama2-7b-chat-4k"
needs_spec = pytest.mark.skipif(not SPEC.is_file(), reason="../shared/spec is absent")


def spec_tables() -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """Section heading -> (column names, model -> printed cells), parsed from the Markdown tables."""
    tables: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    heading = ""
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            continue
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(set(c) <= set("-: ") for c in cells):
            continue
        if heading not in tables:
            tables[heading] = (cells[1:], {})
        else:
            tables[heading][1][cells[0]] = cells[1:]
    return tables


@needs_spec
def test_shipped_rows_equal_the_readme() -> None:
    tables = spec_tables()
    models = published_models()
    assert [m.name for m in models] == list(tables["English"][1])
    column_key = {v: k for k, v in PAPER_CATEGORIES.items()} | {"Avg": "Avg"}
    task_key = {v: k for k, v in DISPLAY_NAMES.items()}
    for model in models:
        for language, heading in (("en", "English"), ("zh", "Chinese")):
            columns, rows = tables[heading]
            assert [model.categories[language][column_key[c]] for c in columns] == rows[model.name]
        checked = 0
        for heading, (columns, rows) in tables.items():
            if heading in ("English", "Chinese"):
                continue
            assert [model.tasks[task_key[c]] for c in columns] == rows[model.name]
            checked += len(columns)
        assert checked == 21
    assert next(m for m in models if m.name == "ChatGLM3-6B-32k").tasks["dureader"] == "44.78"  # as printed


@needs_spec
def test_paper_column_order_and_names() -> None:
    columns, _ = spec_tables()["English"]
    assert columns == ["Avg", *(PAPER_CATEGORIES[c] for c in paper_layout("en"))]


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8").splitlines()))


@pytest.mark.skipif(not LLAMA2.is_dir() or not SPEC.is_file(), reason="../shared is absent")
def test_published_rows_beside_the_users(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "longbench", "eval", str(LLAMA2), "--published", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    tables = spec_tables()
    result = json.loads((LLAMA2 / "result.json").read_text())
    for language, heading, name in (
        ("en", "English", "table_english.csv"),
        ("zh", "Chinese", "table_chinese.csv"),
    ):
        header, user, *published = _csv(out / name)
        columns, rows = tables[heading]
        assert header == ["Model", *columns]
        assert {r[0].removesuffix(PUBLISHED_MARK): r[1:] for r in published} == rows
        assert all(r[0].endswith(PUBLISHED_MARK) for r in published)
        categories = [sum(result[t] for t in ts) / len(ts) for ts in paper_layout(language).values()]
        assert user == ["llama2-7b-chat-4k", f"{sum(categories) / 6:.1f}", *(f"{c:.1f}" for c in categories)]
    header, user, *published = _csv(out / "table_tasks_multi-doc_qa.csv")
    columns, rows = tables["Multi-Document QA"]
    assert header == ["Model", *columns]
    assert user[1:] == [f"{result[t]:.2f}" for t in ("hotpotqa", "2wikimqa", "musique", "dureader")]
    assert {r[0].removesuffix(PUBLISHED_MARK): r[1:] for r in published} == rows
    assert "LongBench README" in (out / "tables.md").read_text()  # credit
