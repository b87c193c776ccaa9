"""Task scores from predictions: the reference ``eval.py`` arithmetic, computed on several processes.

:func:`score_tasks` scores the samples of many tasks (each sample with
:func:`longbench.metrics.score_sample` semantics), splitting the work into chunks that run in up to
``workers`` processes; Chinese chunks (the slowest per character) are handed out first, and with
``fork`` jieba is loaded once before the workers start, so they all share it.
:class:`TaskScores` then gives the task score exactly as the reference computes it: ``score()`` is
its ``scorer`` (sequential float sum, Python ``round``), ``bucket_scores()`` its ``scorer_e``
(``numpy.mean`` per length bucket, numpy's rounding).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from longbench.metrics import CHINESE_METRICS, SampleScore, sample_scorer
from longbench.tasks import get_task

BUCKETS: tuple[str, ...] = ("0-4k", "4-8k", "8k+")

# Rough cost per character (prediction + answers) of each metric, in arbitrary units, for balancing.
_COST_PER_CHAR = {"qa_f1_zh": 2.0, "rouge_zh": 2.0, "rouge": 0.3, "code_sim": 0.3}
_DEFAULT_COST_PER_CHAR = 0.05
_JIEBA_LOAD_COST = 100_000.0  # jieba start-up, in the same units (~0.2 s)
_PARALLEL_MIN_COST = 150_000.0  # below this, forking costs more than it saves
_CHUNKS_PER_WORKER = 4


@dataclass
class TaskPredictions:
    """The predictions of one task file and what the reference reads with them."""

    task: str
    predictions: list[str]
    answers: list[list[str]]
    all_classes: list[str] | None  # the reference uses the value of the file's LAST line
    lengths: list[int] | None = None


@dataclass
class TaskScores:
    """Per-sample scores of one task and the reference's task-level aggregates."""

    task: str
    samples: list[SampleScore]
    lengths: list[int] | None

    def score(self) -> float:
        """The reference ``scorer``: ``round(100 * sum / n, 2)`` with a sequential float sum."""
        if not self.samples:
            raise ValueError(f"{self.task}: no samples to score")
        total = 0.0
        for sample in self.samples:
            total += sample.score
        return round(100 * total / len(self.samples), 2)

    def bucket_scores(self) -> dict[str, float]:
        """The reference ``scorer_e``: per length bucket ``round(100 * numpy.mean(scores), 2)``.

        Buckets are ``length < 4000``, ``< 8000`` and the rest; an empty bucket gives NaN, as numpy does.
        """
        import warnings

        import numpy as np

        if self.lengths is None:
            raise ValueError(f"{self.task}: LongBench-E scores need the samples' lengths")
        buckets: dict[str, list[float]] = {name: [] for name in BUCKETS}
        for sample, length in zip(self.samples, self.lengths, strict=True):
            buckets[bucket_of(length)].append(sample.score)
        result: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty bucket
            for name, scores in buckets.items():
                result[name] = float(round(100 * np.mean(scores), 2))
        return result

    @property
    def recursion_zeroed(self) -> int:
        """How many samples the reference scored 0 because of rouge's recursion limit."""
        return sum(1 for sample in self.samples if sample.recursion_zeroed)


def bucket_of(length: int) -> str:
    """The LongBench-E length bucket of a sample: ``length < 4000``, ``< 8000``, or the rest."""
    return BUCKETS[0] if length < 4000 else BUCKETS[1] if length < 8000 else BUCKETS[2]


# One unit of work: (index of the TaskPredictions, first sample, end sample).
_Chunk = tuple[int, int, int]


def _check(item: TaskPredictions) -> None:
    get_task(item.task)  # raises UnknownTaskError for a bad name
    n = len(item.predictions)
    if len(item.answers) != n or (item.lengths is not None and len(item.lengths) != n):
        raise ValueError(f"{item.task}: predictions, answers and lengths differ in number")


def _sample_costs(item: TaskPredictions) -> list[float]:
    per_char = _COST_PER_CHAR.get(get_task(item.task).metric, _DEFAULT_COST_PER_CHAR)
    return [
        per_char * (len(prediction) + sum(len(answer) for answer in answers) + 20)
        for prediction, answers in zip(item.predictions, item.answers, strict=True)
    ]


def _plan(items: list[TaskPredictions], workers: int) -> tuple[list[_Chunk], float]:
    """Chunks of roughly equal cost, jieba-using ones first, then heaviest first; and the total cost."""
    costs = [_sample_costs(item) for item in items]
    total = sum(sum(c) for c in costs)
    target = max(total / (workers * _CHUNKS_PER_WORKER), 1.0)
    chunks: list[tuple[bool, float, _Chunk]] = []
    for index, (item, item_costs) in enumerate(zip(items, costs, strict=True)):
        chinese = get_task(item.task).metric in CHINESE_METRICS
        start, running = 0, 0.0
        for position, cost in enumerate(item_costs):
            running += cost
            if running >= target or position == len(item_costs) - 1:
                chunks.append((chinese, running, (index, start, position + 1)))
                start, running = position + 1, 0.0
    if any(chinese for chinese, _, _ in chunks):
        total += _JIEBA_LOAD_COST
    chunks.sort(key=lambda entry: (not entry[0], -entry[1]))
    return [chunk for _, _, chunk in chunks], total


def _score_chunk(
    task: str,
    predictions: list[str],
    answers: list[list[str]],
    all_classes: list[str] | None,
    corrected: bool,
) -> list[SampleScore]:
    scorer = sample_scorer(task, corrected)
    return [
        scorer(prediction, gold, all_classes) for prediction, gold in zip(predictions, answers, strict=True)
    ]


def _run_serial(items: list[TaskPredictions], corrected: bool) -> list[list[SampleScore]]:
    return [
        _score_chunk(item.task, item.predictions, item.answers, item.all_classes, corrected) for item in items
    ]


def _run_parallel(
    items: list[TaskPredictions], chunks: list[_Chunk], corrected: bool, workers: int
) -> list[list[SampleScore]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork shares the loaded modules (no re-import); elsewhere the platform default is the safe choice.
    fork = sys.platform.startswith("linux")
    context = multiprocessing.get_context("fork" if fork else None)
    if fork and any(get_task(items[index].task).metric in CHINESE_METRICS for index, _, _ in chunks):
        from longbench.metrics.chinese import warm_up

        warm_up()  # load jieba once, here, rather than in every worker
    results: list[list[SampleScore]] = [[] for _ in items]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        futures = [
            pool.submit(
                _score_chunk,
                items[index].task,
                items[index].predictions[start:stop],
                items[index].answers[start:stop],
                items[index].all_classes,
                corrected,
            )
            for index, start, stop in chunks
        ]
        done = [(chunk, future.result()) for chunk, future in zip(chunks, futures, strict=True)]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, drop the chunks not started
    for (index, _, _), part in sorted(done, key=lambda entry: entry[0]):
        results[index].extend(part)
    return results


def score_tasks(
    items: list[TaskPredictions], corrected: bool = False, workers: int | None = None
) -> list[TaskScores]:
    """Score every sample of every task; the result is in the order of ``items``.

    Uses up to ``workers`` processes (default: ``os.cpu_count()``); small jobs run in this process.
    ``corrected`` scores the samples that overflowed the reference's rouge recursion properly.
    Raises :class:`~longbench.errors.UnknownTaskError` for an unknown task and ``ValueError`` for
    mismatched list lengths or gold data a metric cannot read.
    """
    for item in items:
        _check(item)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    samples: list[list[SampleScore]]
    if workers == 1:
        samples = _run_serial(items, corrected)
    else:
        chunks, cost = _plan(items, workers)
        if cost < _PARALLEL_MIN_COST or len(chunks) < 2:
            samples = _run_serial(items, corrected)
        else:
            samples = _run_parallel(items, chunks, corrected, min(workers, len(chunks)))
    return [
        TaskScores(task=item.task, samples=item_samples, lengths=item.lengths)
        for item, item_samples in zip(items, samples, strict=True)
    ]
