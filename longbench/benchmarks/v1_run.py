"""LongBench v1 and LongBench-E in the runner: tasks, records, budgets, the one call of a sample, its line.

A sample is one call: the task's template filled with the record, middle-truncated to the model's budget
(:mod:`longbench.prompts`), answered within the task's ``max_new_tokens``. The line is the reference's
``{"pred", "answers", "all_classes", "length"}`` plus ``_id`` and the call's facts (thinking, finish
reason, token counts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from longbench.backends.base import Backend, GenerationRequest
from longbench.benchmarks.base import Answer
from longbench.errors import LongBenchError, SettingError
from longbench.schema import Record
from longbench.sources import Source
from longbench.tasks import Task, all_tasks, select_tasks


@dataclass(frozen=True)
class V1Run:
    """The run half of LongBench v1 (``e=False``) or LongBench-E (``e=True``)."""

    e: bool = False
    calls: int = 1

    @property
    def name(self) -> str:
        return "e" if self.e else "v1"

    @property
    def must_match(self) -> tuple[str, ...]:
        return ()

    def tasks(
        self, model_name: str, source: Source, names: Sequence[str] | None, category: str | None
    ) -> list[Task]:
        """The named tasks, or those of a category; with neither, those a derived folder holds, the one task a
        single file is named for, or all."""
        if names is None and category is None:
            names = source.tasks() or _single_file_task(source)
        return select_tasks(names, category, e=self.e)

    def records(self, task: Task, source: Source, verify: bool) -> Iterator[Record]:
        return source.records(task.name, self.e, verify=verify)

    def data_sha256(self, task: Task, source: Source) -> str | None:
        return source.sha256(task.name, self.e)

    def budget(
        self,
        task: Task,
        names: Sequence[str],
        override: int | None,
        window: int | None,
        *,
        thinking_budget: int = 0,
        template_tokens: Callable[[], int | None] | None = None,
    ) -> tuple[int, str | None]:
        """The override, else the reference's value for any of ``names``, else the last name's window (less the
        task's new tokens, as before; v1's budgets do not depend on the thinking budget or the template)."""
        from longbench.prompts import resolve_max_length

        for name in names[:-1]:
            try:
                return resolve_max_length(name, task, override=override, context_window=None)
            except LongBenchError:
                continue
        return resolve_max_length(names[-1], task, override=override, context_window=window)

    def request(
        self, task: Task, record: Record, answers: Sequence[Answer], backend: Backend, budget: int | None
    ) -> GenerationRequest:
        return build_request(task, record, backend, budget)

    def line(self, record: Record, answers: Sequence[Answer]) -> dict[str, Any]:
        return {**prediction_line(record, answers[-1].text), **answers[-1].facts()}

    def settings(self) -> dict[str, Any]:
        return {"prompt_table_sha256": prompt_table_sha256()}


def _single_file_task(source: Source) -> list[str] | None:
    from longbench.loading import task_of_file

    if source.kind not in ("file", "missing") or not source.spec.endswith(".jsonl"):
        return None
    named = task_of_file(source.spec)
    if named is None:
        raise SettingError("{data} {spec}: name the file's task with {tasks}", spec=source.spec)
    return [named[0]]


def prompt_table_sha256() -> str:
    """sha256 of the prompt templates of all 21 tasks (canonical JSON, sorted by task name)."""
    table = {task.name: task.prompt for task in all_tasks()}
    text = json.dumps(table, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_request(task: Task, record: Record, backend: Backend, max_length: int | None) -> GenerationRequest:
    """The request for one sample: the filled prompt, middle-truncated when the backend has a tokenizer."""
    from longbench.prompts import fill_prompt, truncate_middle

    prompt = fill_prompt(task, record)
    if backend.tokenizer is not None and max_length is not None:
        prompt = truncate_middle(
            prompt, backend.tokenizer, max_length, add_special_tokens=backend.truncation_special_tokens
        )
    return GenerationRequest(
        id=record["_id"],
        task=task.name,
        prompt=prompt,
        chat=task.chat,
        max_new_tokens=task.max_new_tokens,
        stop_at_newline=task.stop_at_newline,
    )


def prediction_line(record: Record, text: str) -> dict[str, Any]:
    """The reference's prediction record, plus the sample id."""
    return {
        "pred": text,
        "answers": record["answers"],
        "all_classes": record["all_classes"],
        "length": record["length"],
        "_id": record["_id"],
    }


V1 = V1Run(e=False)
E = V1Run(e=True)
