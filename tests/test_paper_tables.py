"""The paper's layout for LongBench-E: task x bucket with display names, and category x bucket."""

from __future__ import annotations

import json
import math
from pathlib import Path

from longbench.evaluation import evaluate
from longbench.reports import e_category_table, e_table, tables


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _rows(n: int, every: int) -> list[dict]:
    return [
        {
            "pred": "yes" if i % every == 0 else "",
            "answers": ["yes"],
            "all_classes": None,
            "length": [100, 5000, 9000][i % 3],
        }
        for i in range(n)
    ]


def test_e_tables_by_task_and_by_category(tmp_path: Path) -> None:
    model = tmp_path / "toy"
    _write(model / "hotpotqa.jsonl", _rows(30, 2))
    _write(model / "2wikimqa.jsonl", _rows(30, 5))
    _write(model / "qasper.jsonl", _rows(30, 3))
    (result,) = evaluate([model], e=True, workers=1)
    by_task = e_table(result)
    assert [row[0] for row in by_task.rows] == [
        "Qasper*",
        "HotpotQA*",
        "2WikiMQA*",
        "Avg",
    ]  # paper order, partial
    by_category = e_category_table(result)
    assert "PARTIAL" in by_category.title and by_category.signature == result.signature()
    multi = next(row for row in by_category.rows if row[0].startswith("Multi-Doc QA"))
    for b, cell in zip(("0-4k", "4-8k", "8k+"), multi[1:], strict=True):
        values = [result.scores[t].bucket_scores()[b] for t in ("hotpotqa", "2wikimqa")]
        assert cell == f"{sum(values) / 2:.2f}" and not any(math.isnan(v) for v in values)
    assert [t.title for t in tables([result])] == [by_task.title, by_category.title]


def test_e_summary_has_bucket_intervals(tmp_path: Path) -> None:
    from longbench.reports import output_files

    model = tmp_path / "toy"
    _write(model / "hotpotqa.jsonl", _rows(30, 2))
    (result,) = evaluate([model], e=True, workers=1)
    summary = json.loads(output_files([result], tmp_path / "out")[tmp_path / "out" / "summary.json"])
    buckets = summary["ci95"]["buckets"]["hotpotqa"]
    scores = result.scores["hotpotqa"].bucket_scores()
    # lengths cycle 100/5000/9000 and every second sample is right: buckets differ, each interval holds its score
    assert set(buckets) == {"0-4k", "4-8k", "8k+"}
    for bucket, (lo, hi) in buckets.items():
        assert lo <= scores[bucket] <= hi and lo < hi
