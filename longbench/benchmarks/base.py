"""The benchmark definition: what LongBench v1, LongBench-E and LongBench v2 each provide to the pipeline.

A :class:`Benchmark` names its folders and carries two halves that the rest of the pipeline uses without
knowing which benchmark it holds:

- ``runs`` (a :class:`RunSpec`): how a source's records become model calls and prediction lines (its tasks
  or groups, its records from a source, the calls of a sample, the prediction line, the settings that must
  match on resume). The runner uses only this half.
- ``scores`` (a :class:`ScoreSpec`): how prediction lines are read and scored, how scores aggregate into
  the benchmark's tables, its published rows and its signature fields. Evaluation, comparison and reports
  use only this half.

Adding a benchmark means one new definition registered in :mod:`longbench.benchmarks`, not a fork.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from longbench.backends.base import Backend, GenerationRequest, GenerationResult
    from longbench.schema import Record
    from longbench.sources import Source
    from longbench.tasks import Task


@dataclass(frozen=True)
class Answer:
    """What one call of a sample returned, as kept between its calls (and journaled to disk between them)."""

    text: str
    thinking: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    thinking_tokens: int | None = None

    @classmethod
    def of(cls, result: GenerationResult) -> Answer:
        """The answer of a successful result."""
        return cls(
            text=result.text or "",
            thinking=result.thinking,
            finish_reason=result.finish_reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.generated_tokens,
            thinking_tokens=result.thinking_tokens,
        )

    @classmethod
    def from_journal(cls, entry: dict[str, Any]) -> Answer:
        """An answer read back from a journal line (unknown keys ignored; the text is all a follow-up needs)."""
        known = {key: entry.get(key) for key in cls.__dataclass_fields__ if key != "text"}
        return cls(text=str(entry.get("text") or ""), **known)

    def facts(self) -> dict[str, Any]:
        """The prediction line's account of the call: ``thinking`` (null when none), ``finish_reason``,
        ``prompt_tokens``, ``completion_tokens`` and, when known, ``thinking_tokens``."""
        facts: dict[str, Any] = {
            "thinking": self.thinking,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }
        if self.thinking_tokens is not None:
            facts["thinking_tokens"] = self.thinking_tokens
        return facts


def call_seed(seed: int, sample_id: str, call: int) -> int:
    """The sampling seed of one call: the first 8 bytes of sha256("<seed>:<_id>:<call>") below 2**31, so a
    sample's draw depends on neither the order, the batching nor a resume."""
    digest = hashlib.sha256(f"{seed}:{sample_id}:{call}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


class RunSpec(Protocol):
    """The prediction half of a benchmark: everything the runner asks, without knowing which one it holds.

    A *task* is one prediction file (a v1 task, or v2's one result file). A sample takes ``calls`` calls
    (v2's chain of thought: two); call ``n``'s request is built from the answers of calls ``0..n-1``, and
    the line written for the sample from all its answers.
    """

    name: str  # registry key: "v1", "e", "v2"
    e: bool  # reads the LongBench-E variant of each task's file
    calls: int  # calls per sample

    def tasks(
        self, model_name: str, source: Source, names: Sequence[str] | None, category: str | None
    ) -> list[Task]:
        """The tasks (prediction files) for a selection; ``None`` selects what the source holds, else all."""
        ...

    def records(self, task: Task, source: Source, verify: bool) -> Iterator[Record]:
        """The task's records from ``source``, validated (and selected: v2's subsets), read lazily."""
        ...

    def data_sha256(self, task: Task, source: Source) -> str | None:
        """The sha256 recorded for the task's data in run.json (its file checked once, when verified)."""
        ...

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
        """The prompt budget in tokens for ``task`` and a notice when it was derived from the window; the window
        must also hold each call's new tokens, the run's ``thinking_budget`` and the chat template's own
        tokens (``template_tokens()`` counts them, None when not known) where the benchmark derives the budget from it."""
        ...

    def request(
        self, task: Task, record: Record, answers: Sequence[Answer], backend: Backend, budget: int | None
    ) -> GenerationRequest:
        """The request of the sample's next call (call ``len(answers)``)."""
        ...

    def line(self, record: Record, answers: Sequence[Answer]) -> dict[str, Any]:
        """The prediction line of a sample from all its answers (the reference's format plus ``_id``)."""
        ...

    def settings(self) -> dict[str, Any]:
        """Recorded in run.json after the data pass (settings named in ``must_match`` checked on resume)."""
        ...

    @property
    def must_match(self) -> tuple[str, ...]:
        """Keys of :meth:`settings` that must equal an earlier run's before its folder is resumed."""
        ...


@dataclass(frozen=True)
class ScoreSettings:
    """What a user chooses about scoring (every benchmark takes all; one that cannot honour a setting
    refuses it in :meth:`ScoreSpec.check`)."""

    corrected: bool = False  # v1/E: score what the reference zeroes (rouge's recursion limit) properly
    compensated: bool = False  # v2: a record with no extracted answer scores 0.25 (result.py's flag)
    tasks: tuple[str, ...] | None = None  # only these tasks (None: every task with predictions)
    workers: int | None = None  # scoring processes


class ScoreSpec(Protocol):
    """The scoring half of a benchmark: how prediction lines are read, validated and scored, how scores
    aggregate into its tables, its published rows, its signature, its bootstrap levels and compared
    quantities. Results are opaque to the callers: they hand them back to the spec that made them.

    A result has a ``name`` and ``signature()``; :meth:`quantities` gives its headline numbers.
    """

    def check(self, settings: ScoreSettings, published: bool) -> None:
        """Refuse, in one line, a setting this benchmark cannot honour (raises LongBenchError)."""

    def default_out(self, names: Sequence[str], settings: ScoreSettings) -> Path:
        """The default output folder of an eval of models ``names``."""

    def evaluate(self, pred_dirs: Sequence[Path], settings: ScoreSettings) -> list[Any]:
        """Read and validate every prediction folder (shards merged by ``_id``) and score every model."""

    def tables(self, results: Sequence[Any], options: Any) -> list[Any]:
        """The benchmark's tables (``longbench.reports.Table``) for ``results`` with ``TableOptions``."""

    def notes(self, results: Sequence[Any], options: Any) -> list[str]:
        """Lines under the tables (``warning:`` lines go to stderr)."""

    def output_files(self, results: Sequence[Any], out_dir: Path, options: Any) -> dict[Path, str]:
        """Every result file of an eval (result, samples, summary with ``ci95``, tables): path -> text."""

    def figures(self, results: Sequence[Any], options: Any) -> dict[str, Any]:
        """The benchmark's figures (name -> matplotlib Figure)."""

    def quantities(self, result: Any) -> Mapping[str, float | None]:
        """The headline numbers of one result (what seed spreads and comparisons are taken over)."""

    def group_runs(self, pred_dirs: Sequence[Path]) -> dict[str, list[Path]]:
        """Run name -> its folders (shards of one run together; runs with different seeds apart, named
        ``<model>@seed<S>``), in first-seen order."""

    def compare(self, a: Sequence[Path], b: Sequence[Path], settings: ScoreSettings) -> Any:
        """The paired comparison of two runs, each one folder or the shard folders of one run (``table()``,
        ``notes()``, ``files(out_dir)``, ``quantities()`` -> label -> row with ``a``, ``b``, ``diff``, ``ci95``,
        ``p``); LongBenchError naming what differs when they do not hold the same samples."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name in the registry, its title in tables, its default folders and its two halves."""

    name: str  # registry key: "v1", "e", "v2"
    title: str  # "LongBench", "LongBench-E", "LongBench v2"
    pred_root: str  # default prediction folder root: pred, pred_e, pred_v2
    metrics_root: str  # default eval output root: metrics, metrics_e, metrics_v2
    runs: Any  # a RunSpec
    scores: Any  # a ScoreSpec
