"""LongBench v2 in the runner: its records, windows, requests (both chain-of-thought calls) and result lines.

:func:`v2_benchmark` returns a :class:`longbench.runner.Benchmark`; the runner does the rest (resume, errors
file, shards, progress) as for v1. A sample is one pseudo-task named as the reference names the result file
(``<model>``, ``<model>_cot``, ``<model>_no_context``, ``<model>_rag_<N>``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, TokenizerLike
from longbench.errors import LongBenchError
from longbench.runner import Benchmark
from longbench.tasks import Task
from longbench.v2.data import FIELDS, checksum_warning, data_source, iter_records
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
from longbench.v2.scoring import extract_answer

logger = logging.getLogger(__name__)
ANSWER_MAX_TOKENS = 128
DEFAULT_TEMPERATURE = 0.1


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


def _result_line(record: dict[str, Any], mode: V2Mode, answers: Sequence[str]) -> dict[str, Any]:
    """The reference's result record: the 12 fields (context cut to 1,000 characters), the answers, pred, judge."""
    line = {key: record[key] for key in FIELDS}
    line["context"] = record_context(record, mode)[:1000]
    if mode.cot:
        line["response_cot"] = answers[0].strip()
    response = answers[-1].strip()
    line["response"] = response
    line["pred"] = extract_answer(response)
    line["judge"] = line["pred"] == record["answer"]
    return line


def _templates_sha256(mode: V2Mode) -> str:
    text = template_text(mode.template) + "\0" + (template_text(COT_ANSWER_TEMPLATE) if mode.cot else "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def v2_benchmark(mode: V2Mode, model_name: str, temperature: float = DEFAULT_TEMPERATURE) -> Benchmark:
    """The runner's hooks for LongBench v2 in ``mode``, sampling at ``temperature`` (0: greedy)."""
    settings: dict[str, Any] = {
        "benchmark": "LongBench v2",
        "v2_mode": {"cot": mode.cot, "no_context": mode.no_context, "rag": mode.rag},
        "temperature": temperature,
        "prompt_table_sha256": _templates_sha256(mode),
    }
    tokenizers: dict[str, TokenizerLike | None] = {}

    def load(
        task: Task,
        data: str,
        e: bool,
        limit: int | None,
        shard: tuple[int, int] | None,
        verify: bool,
        top_k: int | None,
    ) -> Iterator[dict[str, Any]]:
        records = islice(iter_records(data_source(data)), limit)  # validated one by one as they are read
        return islice(records, shard[0], None, shard[1]) if shard else records

    def data_sha256(task: Task, data: str, e: bool, verify: bool) -> str | None:
        source = data_source(data)
        for _ in iter_records(source):  # the whole file read once: every record checked, the bytes hashed
            pass
        settings["data_file"] = str(source.path)
        warning = checksum_warning(source) if data == "hub" else None
        settings["data_checksum_warning"] = warning
        if warning:
            logger.warning(warning)
            print(warning, flush=True)
        return source.sha256

    def max_length(
        task: Task, names: Sequence[str], override: int | None, window: int | None
    ) -> tuple[int, str | None]:
        listed = _listed()
        name = next((n for n in names if n.rstrip("/").rsplit("/", 1)[-1] in listed), names[-1])
        return resolve_window(name, override, window)

    def tokenizer(backend: Backend) -> TokenizerLike | None:
        if "t" not in tokenizers:
            tokenizers["t"] = _tiktoken_o200k() if uses_tiktoken(model_name) else backend.tokenizer
        return tokenizers["t"]

    def request(
        task: Task, record: dict[str, Any], backend: Backend, window: int | None
    ) -> GenerationRequest:
        chosen = tokenizer(backend)
        if chosen is not None and window is not None:
            prompt = first_prompt(record, mode, chosen, window)
        else:  # no tokenizer: sent untruncated, as for v1
            prompt = fill(template_text(mode.template), record, record_context(record, mode))
        return GenerationRequest(
            id=record["_id"],
            task=task.name,
            prompt=prompt,
            chat=True,
            max_new_tokens=mode.first_max_tokens,
            stop_at_newline=False,
            temperature=temperature,
        )

    def follow_up(
        task: Task, record: dict[str, Any], answers: Sequence[str], backend: Backend, window: int | None
    ) -> GenerationRequest:
        chosen = tokenizer(backend)
        if chosen is not None and window is not None:
            prompt = second_prompt(record, mode, answers[0], chosen, window)
        else:
            prompt = fill(
                template_text(COT_ANSWER_TEMPLATE), record, record_context(record, mode), answers[0].strip()
            )
        return GenerationRequest(
            id=record["_id"],
            task=task.name,
            prompt=prompt,
            chat=True,
            max_new_tokens=ANSWER_MAX_TOKENS,
            stop_at_newline=False,
            temperature=temperature,
        )

    def line(record: dict[str, Any], answers: Sequence[str]) -> dict[str, Any]:
        return _result_line(record, mode, answers)

    return Benchmark(
        load=load,
        max_length=max_length,
        request=request,
        line=line,
        data_sha256=data_sha256,
        calls=2 if mode.cot else 1,
        follow_up=follow_up,
        settings=settings,
    )


def _listed() -> set[str]:
    from longbench.resources import data_json

    return set(data_json("v2/model2maxlen.json"))
