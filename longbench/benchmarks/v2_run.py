"""LongBench v2 in the runner: its records (and subsets), windows, the calls of a sample and its result line.

The run has one task, named as the reference names the result file (``<model>``, ``<model>_cot``,
``<model>_no_context``, ``<model>_rag_<N>``). A sample is one call, or two with chain of thought: the
second asks for the answer, quoting the first call's output. A :class:`V2Subset` keeps only the records
matching every filter given (difficulty, length, domains, a list of ids).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, TokenizerLike
from longbench.benchmarks.base import Answer
from longbench.errors import LongBenchError
from longbench.metrics.v2_answer import extract_answer
from longbench.schema import Record
from longbench.sources import Source
from longbench.tasks import Task
from longbench.v2.data import FIELDS, DataSource, checksum_warning, data_source, iter_records
from longbench.v2.prompts import (
    COT_ANSWER_TEMPLATE,
    V2Mode,
    fill,
    first_prompt,
    record_context,
    resolve_window,
    second_prompt,
    template_text,
    uses_tiktoken,
)

logger = logging.getLogger(__name__)
ANSWER_MAX_TOKENS = 128
DEFAULT_TEMPERATURE = 0.1
DIFFICULTIES: tuple[str, ...] = ("easy", "hard")
LENGTHS: tuple[str, ...] = ("short", "medium", "long")
DOMAINS: tuple[str, ...] = (
    "Single-Document QA",
    "Multi-Document QA",
    "Long In-context Learning",
    "Long-dialogue History Understanding",
    "Code Repository Understanding",
    "Long Structured Data Understanding",
)


@dataclass(frozen=True)
class V2Subset:
    """The records to run: those matching every filter given (None: no filter on that field)."""

    difficulty: str | None = None
    length: str | None = None
    domains: tuple[str, ...] | None = None
    ids: frozenset[str] | None = None
    ids_sha256: str | None = None  # of the ids file's bytes

    def __post_init__(self) -> None:
        _check_choice("difficulty", self.difficulty, DIFFICULTIES)
        _check_choice("length", self.length, LENGTHS)
        for domain in self.domains or ():
            _check_choice("domain", domain, DOMAINS)
        if self.domains is not None and not self.domains:
            raise LongBenchError("domain: name at least one domain")

    @property
    def empty(self) -> bool:
        return self == V2Subset()

    def matches(self, record: Record) -> bool:
        return (
            (self.difficulty is None or record["difficulty"] == self.difficulty)
            and (self.length is None or record["length"] == self.length)
            and (self.domains is None or record["domain"] in self.domains)
            and (self.ids is None or record["_id"] in self.ids)
        )

    def recorded(self) -> dict[str, Any] | None:
        """What run.json's ``subset`` holds (None for the whole benchmark)."""
        if self.empty:
            return None
        return {
            "difficulty": self.difficulty,
            "length": self.length,
            "domain": list(self.domains) if self.domains is not None else None,
            "ids_sha256": self.ids_sha256,
            "ids": len(self.ids) if self.ids is not None else None,
        }


def _check_choice(setting: str, value: str | None, choices: Iterable[str]) -> None:
    if value is not None and value not in choices:
        raise LongBenchError(f"{setting} {value!r}: expected one of {', '.join(choices)}")


def read_ids(path: Path) -> tuple[frozenset[str], str]:
    """The ids listed in ``path`` (one ``_id`` a line, blank lines ignored) and the sha256 of its bytes."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as error:
        raise LongBenchError(f"ids file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise LongBenchError(f"ids file {path}: not UTF-8 text") from None
    ids = frozenset(line.strip() for line in text.splitlines() if line.strip())
    if not ids:
        raise LongBenchError(f"ids file {path}: no ids (one _id a line)")
    return ids, hashlib.sha256(data).hexdigest()


def v2_task(model_name: str, mode: V2Mode) -> Task:
    """The pseudo-task the runner writes one result file for."""
    return Task(
        name=mode.output_stem(model_name),
        category="LongBench v2",
        language="en",
        metric="v2",
        max_new_tokens=mode.first_max_tokens,
        samples=503,
        e_samples=None,
        chat=True,
        first_line_only=False,
        stop_at_newline=False,
        prompt=template_text(mode.template),
    )


@dataclass(frozen=True)
class V2Run:
    """The run half of LongBench v2 in ``mode``, sampling at ``temperature`` (0: greedy), over ``subset``."""

    mode: V2Mode = V2Mode()
    temperature: float = DEFAULT_TEMPERATURE
    subset: V2Subset = V2Subset()
    name: str = "v2"
    e: bool = False
    # what the data pass found, and the tiktoken tokenizer once loaded: each instance's own
    _read: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    _tokenizers: dict[str, TokenizerLike] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise LongBenchError(f"temperature must be at least 0, got {self.temperature}")
        if self.mode.rag < 0:
            raise LongBenchError(f"rag must be at least 0, got {self.mode.rag}")

    @property
    def calls(self) -> int:
        return 2 if self.mode.cot else 1

    @property
    def must_match(self) -> tuple[str, ...]:
        return ("temperature", "subset", "v2_mode")

    def tasks(
        self, model_name: str, source: Source, names: Sequence[str] | None, category: str | None
    ) -> list[Task]:
        if names is not None or category is not None or source.kind == "derived":
            raise LongBenchError("LongBench v2 takes no task or category selection, nor derived v1 data")
        return [v2_task(model_name, self.mode)]

    def records(self, task: Task, source: Source, verify: bool) -> Iterator[Record]:
        """The records matching the subset, each validated as it is read."""
        records = iter_records(_data(source))
        return records if self.subset.empty else (r for r in records if self.subset.matches(r))

    def data_sha256(self, task: Task, source: Source) -> str | None:
        """The whole file read once (every record checked, its bytes hashed); a hub copy that differs from
        the third-party checksum is warned about."""
        data = _data(source)
        for _ in iter_records(data):
            pass
        warning = checksum_warning(data) if source.spec == "hub" else None
        self._read.update(data_file=str(data.path), data_checksum_warning=warning)
        if warning:
            logger.warning(warning)
            print(warning, flush=True)
        return data.sha256

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
        listed = _listed()
        name = next((n for n in names if n.rstrip("/").rsplit("/", 1)[-1] in listed), names[-1])
        # the largest call's new tokens: CoT's first call, else the answer
        new_tokens = self.mode.first_max_tokens + thinking_budget
        counted = template_tokens() if template_tokens is not None else None
        return resolve_window(name, override, window, new_tokens=new_tokens, template_tokens=counted)

    def request(
        self, task: Task, record: Record, answers: Sequence[Answer], backend: Backend, budget: int | None
    ) -> GenerationRequest:
        """The first call's request, or (chain of thought) the answer call quoting the first answer."""
        tokenizer = self._tokenizer(task, backend)
        first = not answers
        if tokenizer is not None and budget is not None:
            prompt = (
                first_prompt(record, self.mode, tokenizer, budget)
                if first
                else second_prompt(record, self.mode, answers[0].text, tokenizer, budget)
            )
        else:  # no tokenizer: sent untruncated, as for v1
            prompt = self._untruncated(record, None if first else answers[0].text)
        return GenerationRequest(
            id=record["_id"],
            task=task.name,
            prompt=prompt,
            chat=True,
            max_new_tokens=self.mode.first_max_tokens if first else ANSWER_MAX_TOKENS,
            stop_at_newline=False,
            temperature=self.temperature,
            call=len(answers),
        )

    def line(self, record: Record, answers: Sequence[Answer]) -> dict[str, Any]:
        """The reference's result record: the 12 fields (context cut to 1,000 characters), the answers, pred,
        judge; then the answer call's facts."""
        line = {key: record[key] for key in FIELDS}
        line["context"] = record_context(record, self.mode)[:1000]
        if self.mode.cot:
            line["response_cot"] = answers[0].text.strip()
        response = answers[-1].text.strip()
        line["response"] = response
        line["pred"] = extract_answer(response)
        line["judge"] = line["pred"] == record["answer"]
        return {**line, **answers[-1].facts()}

    def settings(self) -> dict[str, Any]:
        return {
            "benchmark": "LongBench v2",
            "v2_mode": {"cot": self.mode.cot, "no_context": self.mode.no_context, "rag": self.mode.rag},
            "temperature": self.temperature,
            "prompt_table_sha256": _templates_sha256(self.mode),
            "subset": self.subset.recorded(),
            **self._read,
        }

    def _untruncated(self, record: Record, first_answer: str | None) -> str:
        if first_answer is None:
            return fill(template_text(self.mode.template), record, record_context(record, self.mode))
        context = record_context(record, self.mode)
        return fill(template_text(COT_ANSWER_TEMPLATE), record, context, first_answer.strip())

    def _tokenizer(self, task: Task, backend: Backend) -> TokenizerLike | None:
        """o200k_base for the models the reference counts with tiktoken, else the backend's tokenizer."""
        suffix = self.mode.output_stem("")
        model = task.name[: len(task.name) - len(suffix)] if suffix else task.name
        if not uses_tiktoken(model):
            return backend.tokenizer
        if "o200k_base" not in self._tokenizers:
            self._tokenizers["o200k_base"] = _tiktoken_o200k()
        return self._tokenizers["o200k_base"]


def _data(source: Source) -> DataSource:
    """The v2 data file of ``source``: the hub's pinned data.json, the bundled sample, or a local file."""
    if source.spec == "sample":
        from importlib import resources

        return DataSource(Path(str(resources.files("longbench.data").joinpath("v2", "sample.jsonl"))))
    return data_source(source.spec)


def _tiktoken_o200k() -> TokenizerLike:
    from longbench.backends.openai_api import TiktokenTokenizer

    try:
        return TiktokenTokenizer("o200k_base")
    except LongBenchError:
        raise
    except Exception as error:  # tiktoken fetches its BPE file over the network on first use
        raise LongBenchError(
            f"cannot load tiktoken o200k_base ({type(error).__name__}); put o200k_base.tiktoken in the folder "
            "named by TIKTOKEN_CACHE_DIR (see docs/v2.md), or pass --tokenizer"
        ) from None


def _templates_sha256(mode: V2Mode) -> str:
    text = template_text(mode.template) + "\0" + (template_text(COT_ANSWER_TEMPLATE) if mode.cot else "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _listed() -> set[str]:
    from longbench.spec_data import data_json

    return set(data_json("v2/model2maxlen.json"))


V2 = V2Run()
