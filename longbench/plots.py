"""Figures of results (optional ``plots`` extra: matplotlib): the paper's radar and length chart, task bars.

- :func:`radar`: the six categories of the English table per model, the paper's README figure, with the
  published models when asked;
- :func:`task_bars`: every task's score per model with its bootstrap 95% interval;
- :func:`length_lines`: LongBench-E, the average score over the length buckets per model ("Avg Score"
  over "Length", as the README's figure).

Each builder returns a matplotlib ``Figure`` (tests inspect them); :func:`figure_files` renders PNG and SVG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from longbench.errors import SettingError
from longbench.evaluation import BUCKETS, ModelResult
from longbench.published import (
    PAPER_CATEGORIES,
    PUBLISHED_MARK,
    display_name,
    paper_layout,
    paper_task_order,
    published_models,
)
from longbench.stats import interval
from longbench.tasks import all_tasks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from longbench.v2.scoring import V2Row


def _figure(**kwargs: object) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SettingError("{plots} needs matplotlib: pip install 'longbench[plots]'") from None
    return Figure(**kwargs)  # type: ignore[arg-type]


def _category_values(result: ModelResult) -> list[float] | None:
    from longbench.reports import category_scores

    scores = category_scores(result, "en")
    values = [scores[c] for c in paper_layout("en")]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def radar(results: Sequence[ModelResult], published: bool = False) -> Figure:
    """The six English categories per model on a radar (models with every task present)."""
    labels = [PAPER_CATEGORIES[c] for c in paper_layout("en")]
    series: list[tuple[str, list[float]]] = []
    for result in results:
        values = _category_values(result)
        if values is not None:
            series.append((result.name, values))
    if published:
        for model in published_models():
            cells = model.categories["en"]
            series.append((model.name + PUBLISHED_MARK, [float(cells[c]) for c in paper_layout("en")]))
    fig = _figure(figsize=(10, 6))
    ax = fig.add_subplot(projection="polar")
    angles = [2 * math.pi * i / len(labels) for i in range(len(labels))]
    for name, values in series:
        style = "--" if name.endswith(PUBLISHED_MARK) else "-"
        ax.plot([*angles, angles[0]], [*values, values[0]], style, linewidth=1.5, label=name)
    ax.set_xticks(angles)
    ax.set_xticklabels(labels)
    ax.set_ylim(0, 100)
    ax.set_yticks([20, 40, 60, 80, 100])
    ax.set_rlabel_position(180 / len(labels))
    ax.tick_params(axis="y", labelsize="small", labelcolor="#666")
    ax.set_title("LongBench English: categories", pad=24)
    if series:
        ax.legend(loc="center left", bbox_to_anchor=(1.25, 0.5), fontsize="small")
    ax.tick_params(axis="x", pad=12)
    return fig


def task_bars(results: Sequence[ModelResult]) -> Figure:
    """Every task's score per model, grouped by task, with the bootstrap 95% interval as error bars."""
    tasks = [t for t in paper_task_order() if any(t in r.scores for r in results)]
    fig = _figure(figsize=(max(6.0, 0.35 * len(tasks) * max(1, len(results)) ** 0.5 + 2), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(results))
    for k, result in enumerate(results):
        xs, ys, low, high = [], [], [], []
        for i, task in enumerate(tasks):
            if task not in result.scores:
                continue
            score = result.task_score(task)
            lo, hi = interval(result.bootstrap.tasks[task])
            xs.append(i + (k - (len(results) - 1) / 2) * width)
            ys.append(score)
            low.append(max(score - lo, 0.0))
            high.append(max(hi - score, 0.0))
        ax.bar(xs, ys, width=width, yerr=[low, high], capsize=2, label=result.name)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([display_name(t) for t in tasks], rotation=60, ha="right", fontsize="small")
    ax.set_ylabel("Score")
    ax.set_title("Scores per task (95% bootstrap intervals)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def bucket_averages(result: ModelResult) -> list[float]:
    """LongBench-E: per bucket, the mean of the tasks' bucket scores (NaN buckets left out)."""
    values = []
    for bucket in BUCKETS:
        scores = [s.bucket_scores()[bucket] for s in result.scores.values()]
        scores = [v for v in scores if not math.isnan(v)]
        values.append(sum(scores) / len(scores) if scores else math.nan)
    return values


def length_lines(results: Sequence[ModelResult]) -> Figure:
    """LongBench-E: the average score over the length buckets, one line per model."""
    fig = _figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for result in results:
        ax.plot(list(BUCKETS), bucket_averages(result), marker="o", label=result.name)
    ax.set_xlabel("Length")
    ax.set_ylabel("Avg Score")
    ax.set_title("LongBench-E: score over length")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def e_radar(results: Sequence[ModelResult]) -> Figure:
    """LongBench-E: the English categories per model on a radar, each the mean of its E tasks' scores over
    all lengths (LongBench-E has fewer tasks per category than v1; a category without one is left out)."""
    layout = {
        c: [t.name for t in all_tasks(e=True) if t.category == c and t.language == "en"]
        for c in PAPER_CATEGORIES
    }
    layout = {c: tasks for c, tasks in layout.items() if tasks}
    labels = [PAPER_CATEGORIES[c] for c in layout]
    fig = _figure(figsize=(10, 6))
    ax = fig.add_subplot(projection="polar")
    angles = [2 * math.pi * i / len(labels) for i in range(len(labels))]
    for result in results:
        values = []
        for tasks in layout.values():
            scores = [result.task_score(t) for t in tasks if t in result.scores]
            values.append(sum(scores) / len(scores) if scores else math.nan)
        ax.plot([*angles, angles[0]], [*values, values[0]], linewidth=1.5, label=result.name)
    ax.set_xticks(angles)
    ax.set_xticklabels(labels)
    ax.set_ylim(0, 100)
    ax.set_title("LongBench-E English: categories (all lengths)", pad=24)
    if results:
        ax.legend(loc="center left", bbox_to_anchor=(1.25, 0.5), fontsize="small")
    return fig


def v1_figures(results: Sequence[ModelResult], published: bool = False) -> dict[str, Figure]:
    """LongBench v1's figures: the category radar (with the published models on request) and task bars."""
    return {"radar": radar(results, published), "tasks": task_bars(results)}


def e_figures(results: Sequence[ModelResult]) -> dict[str, Figure]:
    """LongBench-E's figures: score over length, the category radar and task bars."""
    return {"length": length_lines(results), "radar": e_radar(results), "tasks": task_bars(results)}


def result_figures(results: Sequence[ModelResult], published: bool = False) -> dict[str, Figure]:
    """The figures of v1 or LongBench-E results (:func:`e_figures` or :func:`v1_figures`)."""
    return e_figures(results) if results and results[0].e else v1_figures(results, published)


def _v2_bars(rows: Sequence[V2Row], quantities: Sequence[str], title: str) -> Figure:
    """One group of bars per quantity, one bar per row, with the bootstrap 95% interval."""
    from longbench.stats import finite_interval

    fig = _figure(figsize=(max(6.0, 1.1 * len(quantities) + 2), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        values = {**row.values(), **row.domain_values()}
        xs, ys, low, high = [], [], [], []
        for i, name in enumerate(quantities):
            value, bounds = (
                values.get(name),
                finite_interval(row.bootstrap[name]) if name in row.bootstrap else None,
            )
            if value is None or bounds is None:
                continue
            xs.append(i + (k - (len(rows) - 1) / 2) * width)
            ys.append(value)
            low.append(max(value - bounds[0], 0.0))
            high.append(max(bounds[1] - value, 0.0))
        ax.bar(xs, ys, width=width, yerr=[low, high], capsize=2, label=row.name)
    ax.set_xticks(range(len(quantities)))
    ax.set_xticklabels(quantities, rotation=30 if len(quantities) > 6 else 0, ha="right", fontsize="small")
    ax.axhline(25.0, color="#999", linestyle=":", linewidth=1)  # chance: four choices
    ax.set_ylim(0, 100)
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def v2_figures(rows: Sequence[V2Row]) -> dict[str, Figure]:
    """LongBench v2: the six columns and the domains per row, with 95% intervals (chance dotted at 25%)."""
    from longbench.v2.scoring import COLUMNS

    domains = list(dict.fromkeys(d for row in rows for d in row.domain_values()))
    return {
        "v2": _v2_bars(rows, COLUMNS, "LongBench v2 (95% bootstrap intervals)"),
        "v2_domains": _v2_bars(rows, domains, "LongBench v2 by domain (95% bootstrap intervals)"),
    }


def render(fig: Figure, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes (SVG without timestamps, so equal runs give equal files)."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def figure_files(figures: dict[str, Figure], folder: Path) -> dict[Path, bytes]:
    """``<folder>/<name>.png`` and ``.svg`` for every figure."""
    return {
        folder / f"{name}.{fmt}": render(fig, fmt) for name, fig in figures.items() for fmt in ("png", "svg")
    }
