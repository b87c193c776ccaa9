"""Task-level scoring: the reference's arithmetic, bucket rules, and the multi-process driver."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest

from longbench import scoring
from longbench.errors import UnknownTaskError
from longbench.metrics import SampleScore, score_sample
from longbench.scoring import TaskPredictions, TaskScores, score_tasks

# Sixteen scores whose sequential float sum and numpy's pairwise mean round differently:
# 100 * sum / 16 == 31.875000000000004 but 100 * numpy.mean == 31.874999999999996.
SCORES = [0.1, 0.3, 0.2, 0.7, 0.2, 0.7, 0.2, 0.3, 0.2, 0.1, 0.3, 0.1, 0.7, 0.7, 0.1, 0.2]


def task_scores(values: list[float], lengths: list[int] | None = None) -> TaskScores:
    return TaskScores("qasper", [SampleScore(v, False) for v in values], lengths)


def test_score_is_a_sequential_sum_with_python_rounding():
    assert task_scores(SCORES).score() == 31.88
    assert task_scores([1.0, 0.0, 0.5]).score() == 50.0
    assert task_scores([1 / 3]).score() == 33.33


def test_bucket_scores_use_numpy_mean_and_rounding():
    buckets = task_scores(SCORES, [100] * len(SCORES)).bucket_scores()
    assert buckets["0-4k"] == 31.87  # numpy's pairwise mean, not the sequential 31.88
    assert math.isnan(buckets["4-8k"]) and math.isnan(buckets["8k+"])  # empty buckets, as numpy gives


def test_bucket_boundaries():
    values = [1.0, 0.5, 0.25, 0.0, 0.75]
    lengths = [3999, 4000, 7999, 8000, 100_000]
    assert task_scores(values, lengths).bucket_scores() == {"0-4k": 100.0, "4-8k": 37.5, "8k+": 37.5}
    with pytest.raises(ValueError, match="lengths"):
        task_scores(values).bucket_scores()


def test_empty_task_and_recursion_count():
    with pytest.raises(ValueError, match="no samples"):
        task_scores([]).score()
    scores = TaskScores(
        "gov_report", [SampleScore(0.0, True), SampleScore(0.5, False), SampleScore(0.0, True)], None
    )
    assert scores.recursion_zeroed == 2


def random_summary(rng: random.Random, words: int) -> str:
    vocab = ["the", "report", "says", "funds", "were", "spent", "on", "roads", "and", "schools", "in", "2019"]
    return " ".join(rng.choice(vocab) + ("." if rng.random() < 0.08 else "") for _ in range(words))


def sample_items(rng: random.Random) -> list[TaskPredictions]:
    return [
        TaskPredictions(
            "gov_report",
            [random_summary(rng, rng.randint(0, 120)) for _ in range(40)],
            [[random_summary(rng, 150)] for _ in range(40)],
            None,
            [rng.randint(0, 12_000) for _ in range(40)],
        ),
        TaskPredictions(
            "trec",
            ["\nLocation\nNumber", "Number of people", "Other", "Location"],
            [["Location"], ["Number"], ["Other"], ["Other"]],
            ["Location", "Number", "Other", "Person"],
        ),
        TaskPredictions(
            "vcsum", ["今天北京天气很好。我们去了大学。", ""], [["北京今天天气好"], ["会议讨论了预算"]], None
        ),
        TaskPredictions("lcc", ["x = 1\n", "# c\nreturn y"], [["x = 2"], ["return y"]], None),
        TaskPredictions("passage_count", [], [], None, []),
    ]


def expected_samples(item: TaskPredictions) -> list[SampleScore]:
    return [
        score_sample(item.task, p, a, item.all_classes)
        for p, a in zip(item.predictions, item.answers, strict=True)
    ]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_score_tasks_equals_score_sample_in_order(monkeypatch, workers):
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_COST", 0.0)  # use the processes even for this small job
    items = sample_items(random.Random(workers))
    results = score_tasks(items, workers=workers)
    assert [r.task for r in results] == [item.task for item in items]
    for item, result in zip(items, results, strict=True):
        assert result.samples == expected_samples(item)
        assert result.lengths == item.lengths


def test_plan_covers_every_sample_once_with_chinese_first():
    items = sample_items(random.Random(7))
    chunks, _ = scoring._plan(items, workers=2)
    assert items[chunks[0][0]].task == "vcsum"
    for index, item in enumerate(items):
        covered = sorted((start, stop) for i, start, stop in chunks if i == index)
        flat = [k for start, stop in covered for k in range(start, stop)]
        assert flat == list(range(len(item.predictions)))


def test_score_tasks_raises_worker_errors(monkeypatch):
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_COST", 0.0)
    good = TaskPredictions("passage_count", ["1 2"] * 50, [["1"]] * 50, None)
    bad = TaskPredictions("passage_retrieval_en", ["1"] * 50, [["Paragraph 1"]] * 49 + [["none"]], None)
    with pytest.raises(ValueError, match="paragraph"):
        score_tasks([good, bad], workers=2)


def test_score_tasks_rejects_bad_input():
    with pytest.raises(UnknownTaskError):
        score_tasks([TaskPredictions("nope", ["a"], [["a"]], None)])
    with pytest.raises(ValueError, match="differ in number"):
        score_tasks([TaskPredictions("qasper", ["a", "b"], [["a"]], None)])
    with pytest.raises(ValueError, match="paragraph"):
        score_tasks(
            [TaskPredictions("passage_retrieval_en", ["1"], [["no paragraph number"]], None)], workers=1
        )


def test_scoring_imports_no_heavy_modules():
    code = (
        "import sys, longbench.scoring, longbench.metrics\n"
        "heavy = [m for m in ('jieba', 'numpy', 'torch', 'transformers', 'datasets', 'rouge', 'fuzzywuzzy') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
