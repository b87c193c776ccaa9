"""The paper's presentation: column order, display names, and the published scores of its eight models.

The published scores are the LongBench README's zero-shot results (``data/published_v1.json``, MIT,
credit: Bai et al., ACL 2024), kept as the printed strings so that every cell shows the digits the
README shows (most one decimal, a few two).
"""

from __future__ import annotations

from dataclasses import dataclass

from longbench.spec_data import data_json
from longbench.tasks import all_tasks, table_layout

# Category key (longbench.tasks.CATEGORIES) -> the paper's column name, in the paper's column order.
PAPER_CATEGORIES: dict[str, str] = {
    "Single-Doc QA": "Single-Doc QA",
    "Multi-Doc QA": "Multi-Doc QA",
    "Summarization": "Summarization",
    "Few-shot": "Few-shot Learning",
    "Code": "Code Completion",
    "Synthetic": "Synthetic Tasks",
}

DISPLAY_NAMES: dict[str, str] = {
    "narrativeqa": "NarrativeQA",
    "qasper": "Qasper",
    "multifieldqa_en": "MultiFieldQA-en",
    "multifieldqa_zh": "MultiFieldQA-zh",
    "hotpotqa": "HotpotQA",
    "2wikimqa": "2WikiMQA",
    "musique": "Musique",
    "dureader": "DuReader (zh)",
    "gov_report": "GovReport",
    "qmsum": "QMSum",
    "multi_news": "MultiNews",
    "vcsum": "VCSUM (zh)",
    "trec": "TREC",
    "triviaqa": "TriviaQA",
    "samsum": "SAMSum",
    "lsht": "LSHT (zh)",
    "passage_count": "Passage Count",
    "passage_retrieval_en": "PassageRetrieval-en",
    "passage_retrieval_zh": "PassageRetrieval-zh",
    "lcc": "LCC",
    "repobench-p": "RepoBench-P",
}

PUBLISHED_MARK = " (published)"


def display_name(task: str) -> str:
    """The paper's name of a task (the task id for names the paper does not use)."""
    return DISPLAY_NAMES.get(task, task)


def paper_layout(language: str) -> dict[str, list[str]]:
    """The published table of ``language`` in the paper's column order: category key -> tasks."""
    layout = table_layout(language)
    return {category: layout[category] for category in PAPER_CATEGORIES if category in layout}


def paper_task_order() -> list[str]:
    """All tasks in the order of the paper's per-task tables (grouped by category in its column order)."""
    return [t.name for category in PAPER_CATEGORIES for t in all_tasks() if t.category == category]


@dataclass(frozen=True)
class PublishedModel:
    """One of the paper's models: its printed category cells per language and task cells."""

    name: str
    categories: dict[str, dict[str, str]]  # language -> category key or "Avg" -> printed cell
    tasks: dict[str, str]  # task -> printed cell


def published_models() -> list[PublishedModel]:
    """The eight models of the README's tables, in its row order."""
    data = data_json("published_v1.json")
    return [
        PublishedModel(
            name=name,
            categories={language: dict(data["categories"][language][name]) for language in ("en", "zh")},
            tasks=dict(data["tasks"][name]),
        )
        for name in data["models"]
    ]


def published_credit() -> str:
    """Where the published rows come from, for table notes."""
    data = data_json("published_v1.json")
    return f"published rows: {data['source']}; {data['credit']}"


V2_REASONING_MARK = "†"  # the leaderboard's brain symbol: a reasoning model


@dataclass(frozen=True)
class PublishedV2Model:
    """One row of the LongBench v2 leaderboard: printed cells without and with chain of thought."""

    name: str
    date: str
    reasoning: bool
    plain: dict[str, str]  # column (Overall, Easy, Hard, Short, Medium, Long) -> printed cell, "-" if none
    cot: dict[str, str]

    def cells(self, cot: bool) -> dict[str, str]:
        """The printed cells of the run's mode (w/ CoT for a chain-of-thought run, else w/o CoT)."""
        return self.cot if cot else self.plain


def published_v2_models() -> list[PublishedV2Model]:
    """The 38 rows of the LongBench v2 leaderboard (``data/published_v2.json``), in the page's order."""
    return [
        PublishedV2Model(m["model"], m["date"], bool(m["reasoning"]), dict(m["plain"]), dict(m["cot"]))
        for m in data_json("published_v2.json")["models"]
    ]


def published_v2_label(model: PublishedV2Model, models: list[PublishedV2Model]) -> str:
    """A leaderboard row's name in tables: the date added where two rows share a name (GPT-4o), the
    reasoning mark, then the published mark."""
    twins = sum(1 for other in models if other.name == model.name) > 1
    name = f"{model.name} ({model.date})" if twins else model.name
    return name + (V2_REASONING_MARK if model.reasoning else "") + PUBLISHED_MARK


def published_v2_credit() -> str:
    """Where the leaderboard rows come from, for table notes."""
    data = data_json("published_v2.json")
    return f"published rows: {data['source']}; {data['credit']}; {V2_REASONING_MARK}: reasoning model"
