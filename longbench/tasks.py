"""The 21 LongBench tasks and 13 LongBench-E variants, described entirely by data in ``data/tasks.json``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from longbench.errors import UnknownTaskError
from longbench.spec_data import data_json

CATEGORIES: tuple[str, ...] = (
    "Single-Doc QA",
    "Multi-Doc QA",
    "Summarization",
    "Few-shot",
    "Synthetic",
    "Code",
)
# the name each category has in the paper's tables (and ours), accepted by --category as well
CATEGORY_TITLES: dict[str, str] = {
    "Few-shot": "Few-shot Learning",
    "Code": "Code Completion",
    "Synthetic": "Synthetic Tasks",
}


@dataclass(frozen=True)
class Task:
    """Everything the benchmark fixes about one task: prompt, decoding budget, metric, grouping."""

    name: str
    category: str
    language: str  # "en", "zh" or "code"
    metric: str  # key into longbench.metrics
    max_new_tokens: int
    samples: int  # records in <name>.jsonl
    e_samples: int | None  # records in <name>_e.jsonl, None when the task has no LongBench-E variant
    chat: bool  # wrapped in the model's chat format; False for the six completion-style tasks
    first_line_only: bool  # prediction cut to its first line before scoring
    stop_at_newline: bool  # generation also stops at a newline (samsum)
    prompt: str  # the reference template, verbatim, with {context} and {input} fields

    @property
    def has_e(self) -> bool:
        return self.e_samples is not None

    def file_name(self, e: bool = False) -> str:
        """The released data file of this task: ``<task>.jsonl`` or ``<task>_e.jsonl``."""
        return f"{self.name}_e.jsonl" if e else f"{self.name}.jsonl"


@cache
def _registry() -> dict[str, Task]:
    prompts = data_json("prompts.json")
    return {row["name"]: Task(**row, prompt=prompts[row["name"]]) for row in data_json("tasks.json")["tasks"]}


def all_tasks(e: bool = False) -> list[Task]:
    """All tasks in the paper's order; with ``e`` only the 13 that have a LongBench-E variant."""
    return [task for task in _registry().values() if task.has_e or not e]


def get_task(name: str, e: bool = False) -> Task:
    """The task called ``name``; raises :class:`UnknownTaskError` listing the valid names."""
    task = _registry().get(name)
    if task is None or (e and not task.has_e):
        valid = ", ".join(t.name for t in all_tasks(e))
        kind = "LongBench-E task" if e else "LongBench task"
        raise UnknownTaskError(f"unknown {kind} {name!r}; valid names: {valid}")
    return task


def select_tasks(
    names: Iterable[str] | None = None, category: str | None = None, e: bool = False
) -> list[Task]:
    """Tasks by name and/or category (case-insensitive; the short name or the table's, e.g. "Few-shot" or
    "Few-shot Learning"), in the paper's order."""
    chosen = all_tasks(e)
    if names is not None:
        wanted = {get_task(name, e).name for name in names}
        chosen = [task for task in chosen if task.name in wanted]
    if category is not None:
        names = {c.lower(): c for c in CATEGORIES} | {t.lower(): c for c, t in CATEGORY_TITLES.items()}
        match = names.get(" ".join(category.split()).lower())
        if match is None:
            raise UnknownTaskError(f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}")
        chosen = [task for task in chosen if task.category == match]
    return chosen


def table_layout(language: str) -> dict[str, list[str]]:
    """The published result table for ``language`` ("en" or "zh"): category -> its tasks.

    Each table holds the tasks of that language plus the two code tasks, grouped by category.
    """
    layout: dict[str, list[str]] = {}
    for category in CATEGORIES:
        names = [t.name for t in all_tasks() if t.category == category and t.language in (language, "code")]
        if names:
            layout[category] = names
    return layout
