"""Scoring metrics of LongBench, reproducing the reference implementation exactly.

:func:`score_sample` scores one prediction of a task the way the reference ``eval.py`` does:
first-line cut for trec/triviaqa/samsum/lsht, then the max, starting from 0.0, of the task's metric
over the gold answers. Metric names are those of ``data/tasks.json``; see :data:`METRIC_NAMES`.

The ROUGE metrics reproduce the reference's stack-overflow failure by default (the sample's
comparison scores 0.0, and :attr:`SampleScore.recursion_zeroed` says so); ``corrected=True`` scores
those cases as if Python had no recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from longbench.metrics.code import code_sim
from longbench.metrics.rouge import CALL_LIMIT_EN, CALL_LIMIT_ZH, RecursionLimitExceeded, rouge_l_f
from longbench.metrics.text import classification, count, qa_f1, retrieval, retrieval_zh
from longbench.tasks import get_task

Metric = Callable[[str, str, "list[str] | None"], float]

METRIC_NAMES: tuple[str, ...] = (
    "qa_f1",
    "qa_f1_zh",
    "rouge",
    "rouge_zh",
    "classification",
    "retrieval",
    "retrieval_zh",
    "count",
    "code_sim",
)

CHINESE_METRICS: frozenset[str] = frozenset({"qa_f1_zh", "rouge_zh"})  # the ones that need jieba


@dataclass(frozen=True)
class SampleScore:
    """One sample's score and whether the reference's recursion failure decided it."""

    score: float  # in [0, 1], max over answers, exactly the reference's value
    recursion_zeroed: bool  # True when reference mode scored it 0 because of rouge's recursion limit


def _rouge(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    return rouge_l_f(prediction, answer, CALL_LIMIT_EN)


def _rouge_unlimited(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    return rouge_l_f(prediction, answer, None)


def _rouge_zh(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    from longbench.metrics.chinese import rouge_zh

    return rouge_zh(prediction, answer, CALL_LIMIT_ZH)


def _rouge_zh_unlimited(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    from longbench.metrics.chinese import rouge_zh

    return rouge_zh(prediction, answer, None)


def _qa_f1_zh(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    from longbench.metrics.chinese import qa_f1_zh

    return qa_f1_zh(prediction, answer)


_METRICS: dict[str, Metric] = {
    "qa_f1": qa_f1,
    "qa_f1_zh": _qa_f1_zh,
    "rouge": _rouge,
    "rouge_zh": _rouge_zh,
    "classification": classification,
    "retrieval": retrieval,
    "retrieval_zh": retrieval_zh,
    "count": count,
    "code_sim": code_sim,
}
_UNLIMITED: dict[str, Metric] = {"rouge": _rouge_unlimited, "rouge_zh": _rouge_zh_unlimited}


def metric_function(name: str, corrected: bool = False) -> Metric:
    """The metric called ``name`` as ``f(prediction, answer, all_classes) -> float``.

    ``rouge`` and ``rouge_zh`` raise ``ValueError`` where the ``rouge`` package does (empty text)
    and, unless ``corrected``, :class:`~longbench.metrics.rouge.RecursionLimitExceeded` where the
    reference overflowed its stack; :func:`score_sample` turns both into 0.0 as the reference does.
    """
    if name not in _METRICS:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRIC_NAMES)}")
    return _UNLIMITED[name] if corrected and name in _UNLIMITED else _METRICS[name]


SampleScorer = Callable[[str, "list[str]", "list[str] | None"], SampleScore]


def sample_scorer(task: str, corrected: bool = False) -> SampleScorer:
    """``scorer(prediction, answers, all_classes)``: :func:`score_sample` with the task lookups done once."""
    spec = get_task(task)
    metric = _METRICS[spec.metric]
    unlimited = _UNLIMITED.get(spec.metric) if corrected else None
    is_rouge = spec.metric in _UNLIMITED
    first_line_only = spec.first_line_only

    def scorer(prediction: str, answers: list[str], all_classes: list[str] | None) -> SampleScore:
        if first_line_only:
            prediction = prediction.lstrip("\n").split("\n")[0]
        best = reference_best = 0.0
        overflowed = False
        for answer in answers:
            if not is_rouge:
                value = reference_value = metric(prediction, answer, all_classes)
            else:
                try:
                    value = reference_value = metric(prediction, answer, all_classes)
                except RecursionLimitExceeded:
                    overflowed, reference_value = True, 0.0
                    value = unlimited(prediction, answer, all_classes) if unlimited else 0.0
                except ValueError:  # the reference's bare `except: return 0.0` (empty text)
                    value = reference_value = 0.0
            best = max(best, value)
            reference_best = max(reference_best, reference_value)
        return SampleScore(best, overflowed and reference_best == 0.0)

    return scorer


def score_sample(
    task: str,
    prediction: str,
    answers: list[str],
    all_classes: list[str] | None,
    corrected: bool = False,
) -> SampleScore:
    """The reference score of ``prediction`` for one sample of ``task`` (max over ``answers``).

    With ``corrected``, samples whose ROUGE overflowed the reference's stack are scored properly;
    ``recursion_zeroed`` always tells whether the reference scored the sample 0 because of it.
    """
    return sample_scorer(task, corrected)(prediction, answers, all_classes)
