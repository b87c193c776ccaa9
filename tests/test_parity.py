"""Parity with the official LongBench scorer on real predictions (skipped without ../shared).

``../shared/parity/*.json`` hold the reference's per-sample scores in file order; each prediction
set's ``result.json`` is what the official ``eval.py`` wrote. Both must be reproduced with
python-Levenshtein installed, which changes fuzzywuzzy's own results but not ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longbench.scoring import TaskPredictions, TaskScores, score_tasks

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SETS = ["v1/llama2-7b-chat-4k", "v1/llama3-8b-instruct", "e/llama2-7b-chat-4k"]
PARITY = {
    "v1/llama2-7b-chat-4k": "v1-llama2-7b-chat-4k.json",
    "e/llama2-7b-chat-4k": "e-llama2-7b-chat-4k.json",
}

pytestmark = pytest.mark.skipif(not (SHARED / "longbench-preds").is_dir(), reason="../shared is not present")


def read_set(name: str) -> list[TaskPredictions]:
    """The prediction files as the reference eval.py reads them (all_classes from the last line)."""
    items = []
    for path in sorted((SHARED / "longbench-preds" / name).glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
        items.append(
            TaskPredictions(
                task=path.name.split(".")[0],
                predictions=[row["pred"] for row in rows],
                answers=[row["answers"] for row in rows],
                all_classes=rows[-1]["all_classes"],
                lengths=[row["length"] for row in rows] if all("length" in row for row in rows) else None,
            )
        )
    return items


@pytest.fixture(scope="module")
def scored() -> dict[str, list[TaskScores]]:
    return {name: score_tasks(read_set(name), workers=2) for name in SETS}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_per_sample_scores_equal_the_reference(scored, name):
    expected = json.loads((SHARED / "parity" / PARITY[name]).read_text(encoding="utf-8"))["scores"]
    ours = {result.task: [sample.score for sample in result.samples] for result in scored[name]}
    assert sorted(ours) == sorted(expected)
    for task, values in expected.items():
        assert len(ours[task]) == len(values), task
        bad = [k for k, (a, b) in enumerate(zip(ours[task], values, strict=True)) if abs(a - b) > 1e-9]
        assert not bad, f"{task}: samples {bad[:10]} differ"


@pytest.mark.parametrize("name", SETS)
def test_task_scores_equal_result_json(scored, name):
    expected = json.loads((SHARED / "longbench-preds" / name / "result.json").read_text(encoding="utf-8"))
    e = name.startswith("e/")
    ours = {result.task: result.bucket_scores() if e else result.score() for result in scored[name]}
    assert ours == expected


def test_code_tasks_would_differ_on_fuzzywuzzys_levenshtein_path(scored):
    """The check above is meaningful: fuzzywuzzy itself, with python-Levenshtein, gives other numbers."""
    fuzz = pytest.importorskip("fuzzywuzzy.fuzz")
    pytest.importorskip("Levenshtein")
    from longbench.metrics.code import first_code_line

    (lcc,) = [item for item in read_set("v1/llama2-7b-chat-4k") if item.task == "lcc"]
    total = 0.0
    for prediction, answers in zip(lcc.predictions, lcc.answers, strict=True):
        total += max([0.0] + [fuzz.ratio(first_code_line(prediction), answer) / 100 for answer in answers])
    expected = json.loads((SHARED / "longbench-preds/v1/llama2-7b-chat-4k/result.json").read_text())["lcc"]
    assert round(100 * total / len(lcc.predictions), 2) != expected
