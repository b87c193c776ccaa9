"""Evaluation: prediction folders in, per-task and per-sample scores out (reference arithmetic)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from longbench.predictions import ModelPredictions, group_by_model, read_model
from longbench.scoring import TaskPredictions, TaskScores, score_tasks
from longbench.stats import Levels

BUCKETS: tuple[str, ...] = ("0-4k", "4-8k", "8k+")


@dataclass
class ModelResult:
    """The scores of one model: task -> :class:`TaskScores`, plus what was read."""

    predictions: ModelPredictions
    scores: dict[str, TaskScores]
    e: bool
    corrected: bool

    @property
    def name(self) -> str:
        return self.predictions.name

    def task_score(self, task: str) -> float:
        return self.scores[task].score()

    def result_json(self) -> dict[str, object]:
        """``result.json`` in the reference's shape: task -> score, or task -> {bucket: score} with ``e``."""
        if self.e:
            return {task: scores.bucket_scores() for task, scores in self.scores.items()}
        return {task: scores.score() for task, scores in self.scores.items()}

    @property
    def recursion_zeroed(self) -> dict[str, int]:
        """Samples per task that the reference scored 0 because rouge's backtrack overflowed the stack."""
        return {
            task: scores.recursion_zeroed for task, scores in self.scores.items() if scores.recursion_zeroed
        }

    @cached_property
    def bootstrap(self) -> Levels:
        """Seeded bootstrap resamples of every task, category and average (see :mod:`longbench.stats`)."""
        from longbench.published import paper_layout
        from longbench.stats import levels, task_resamples

        samples = {task: [s.score for s in scores.samples] for task, scores in self.scores.items()}
        return levels(task_resamples(samples), {lang: paper_layout(lang) for lang in ("en", "zh")})

    def partial(self) -> dict[str, dict[str, int]]:
        """Tasks scored on fewer samples than the benchmark has: task -> {"samples", "expected"}."""
        model = self.predictions
        return {
            task: {
                "samples": len(model.tasks[task]),
                "expected": model.benchmark.get(task, model.expected[task]),
            }
            for task in self.scores
            if model.short(task)
        }

    def output_health(self) -> dict[str, object]:
        """``summary.json``'s ``output_health``: per task and in total, the counts of :mod:`longbench.health`."""
        from longbench.health import count_health

        tasks = {
            task: count_health(r.health for r in records) for task, records in self.predictions.tasks.items()
        }
        total = count_health(r.health for records in self.predictions.tasks.values() for r in records)
        return {"total": total, "tasks": tasks}

    def signature(self) -> str:
        """Every setting that can change a score, in one line (see :mod:`longbench.signature`)."""
        from longbench.signature import completeness_parts, signature

        partial = self.partial()
        scored = sum(p["samples"] for p in partial.values())
        expected = sum(p["expected"] for p in partial.values())
        extra = completeness_parts(scored, expected, self.predictions.unverified)
        return signature(self.predictions.dirs, self.e, self.corrected) + extra


def _task_inputs(model: ModelPredictions, e: bool) -> list[TaskPredictions]:
    items = []
    for task, records in model.tasks.items():
        items.append(
            TaskPredictions(
                task=task,
                predictions=[r.pred for r in records],
                answers=[r.answers for r in records],
                all_classes=records[-1].all_classes,  # the reference keeps the last line's value
                lengths=[r.length for r in records] if e else None,  # type: ignore[misc]
            )
        )
    return items


def evaluate(
    pred_dirs: Sequence[Path],
    e: bool = False,
    corrected: bool = False,
    workers: int | None = None,
    tasks: Sequence[str] | None = None,
) -> list[ModelResult]:
    """Read every prediction folder (shards of one model merged), score all tasks of all models at once;
    ``tasks``: only those tasks."""
    models = [read_model(name, dirs, e, tasks) for name, dirs in group_by_model(pred_dirs).items()]
    return score_models(models, e, corrected, workers)


def score_models(
    models: Sequence[ModelPredictions], e: bool = False, corrected: bool = False, workers: int | None = None
) -> list[ModelResult]:
    """Score all tasks of all ``models`` at once (one pool of scoring processes)."""
    inputs = [_task_inputs(model, e) for model in models]
    flat = score_tasks([item for items in inputs for item in items], corrected=corrected, workers=workers)
    results, start = [], 0
    for model, items in zip(models, inputs, strict=True):
        chunk = flat[start : start + len(items)]
        start += len(items)
        results.append(ModelResult(model, {s.task: s for s in chunk}, e, corrected))
    return results
