"""The runner's contract, on the scripted backend (no model) and the bundled sample sets (v1 and v2): every
call's budget and seed, multi-call ordering, the journal that keeps first answers across a crash, resume,
errors and shards, whatever the benchmark the runner holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scripted_backend import ScriptedBackend  # noqa: E402

from longbench.benchmarks import get_benchmark  # noqa: E402
from longbench.benchmarks.base import call_seed  # noqa: E402
from longbench.benchmarks.v2_run import V2Run, V2Subset  # noqa: E402
from longbench.errors import LongBenchError  # noqa: E402
from longbench.runner import predict  # noqa: E402
from longbench.sources import open_source  # noqa: E402
from longbench.tasks import get_task  # noqa: E402
from longbench.v2.prompts import V2Mode  # noqa: E402

COT = V2Run(mode=V2Mode(cot=True), temperature=0.1)
SAMPLE = open_source("sample")
SAMPLE_V2 = [r["_id"] for r in COT.records(COT.tasks("m", SAMPLE, None, None)[0], SAMPLE, True)]


def answer_of(request) -> str:
    """A scripted answer naming the sample and the call, so a line shows which answers it was built from."""
    return f"The correct answer is (A) for {request.id} call {request.call}"


def v2_cot(out: Path, backend: ScriptedBackend, **options) -> object:
    return predict(
        backend, None, "sample", out, benchmark=COT, max_length=None, model_name="m", notify=print, **options
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_second_call_follows_its_first_answer_at_once(tmp_path: Path) -> None:
    backend = ScriptedBackend(answer_of)
    summary = v2_cot(tmp_path, backend)
    assert summary.written == len(SAMPLE_V2) == 8
    order = [(r.id, r.call) for r in backend.requests]
    assert order == [
        (i, call) for i in SAMPLE_V2 for call in (0, 1)
    ]  # not a pass of first calls, then another
    assert [(r.max_new_tokens, r.temperature) for r in backend.requests[:2]] == [(1024, 0.1), (128, 0.1)]
    written = lines(tmp_path / "m" / "m_cot.jsonl")
    assert [line["_id"] for line in written] == SAMPLE_V2
    for line in written:
        assert line["response_cot"] == f"The correct answer is (A) for {line['_id']} call 0"
        assert (
            line["response"] == f"The correct answer is (A) for {line['_id']} call 1" and line["pred"] == "A"
        )
        assert (line["finish_reason"], line["completion_tokens"], line["thinking"]) == ("stop", 1, None)
    assert not list((tmp_path / "m").glob(".*calls*"))  # the journal is gone once every sample is written


def test_crash_keeps_first_answers_and_the_rerun_repeats_none(tmp_path: Path) -> None:
    crashed = ScriptedBackend(answer_of, crash_after=5)  # calls 0,1 of two samples and call 0 of a third
    with pytest.raises(RuntimeError, match="scripted crash"):
        v2_cot(tmp_path, crashed)
    journal = tmp_path / "m" / ".m_cot.calls.jsonl"
    assert [json.loads(line)["_id"] for line in journal.read_text().splitlines()] == SAMPLE_V2[:3]
    again = ScriptedBackend(answer_of)
    v2_cot(tmp_path, again)
    made = [(r.id, r.call) for r in again.requests]
    assert (SAMPLE_V2[2], 0) not in made and made[0] == (SAMPLE_V2[2], 1)  # its first answer was kept
    assert made[1:] == [(i, call) for i in SAMPLE_V2[3:] for call in (0, 1)]
    written = lines(tmp_path / "m" / "m_cot.jsonl")
    assert sorted(line["_id"] for line in written) == sorted(SAMPLE_V2)  # every sample once
    third = next(line for line in written if line["_id"] == SAMPLE_V2[2])
    assert third["response_cot"].endswith("call 0") and third["response"].endswith("call 1")
    assert not journal.exists()


def test_failed_second_call_is_retried_alone(tmp_path: Path) -> None:
    flaky = ScriptedBackend(answer_of, fail=[(SAMPLE_V2[1], 1)])  # the first call answers, the second fails
    summary = v2_cot(tmp_path, flaky)
    assert summary.failed == 1 and summary.written == 7
    errors = lines(tmp_path / "m" / "errors.jsonl")
    assert [e["_id"] for e in errors] == [SAMPLE_V2[1]]
    again = ScriptedBackend(answer_of)
    assert v2_cot(tmp_path, again).written == 1
    assert [(r.id, r.call) for r in again.requests] == [(SAMPLE_V2[1], 1)]  # its first answer was journaled
    assert not (tmp_path / "m" / "errors.jsonl").read_text()


def test_seeds_depend_on_sample_and_call_only(tmp_path: Path) -> None:
    whole = ScriptedBackend(answer_of)
    v2_cot(tmp_path / "whole", whole, seed=7)
    seeds = {(r.id, r.call): r.seed for r in whole.requests}
    assert seeds == {(i, c): call_seed(7, i, c) for i in SAMPLE_V2 for c in (0, 1)}
    assert len(set(seeds.values())) == len(seeds) and all(0 <= s < 2**31 for s in seeds.values())
    # another order: two shards, the second run resuming a crashed first one
    parts: dict[tuple[str, int], int | None] = {}
    crashed = ScriptedBackend(answer_of, crash_after=3)
    with pytest.raises(RuntimeError):
        v2_cot(tmp_path / "parts", crashed, seed=7, shard=(1, 2))
    for shard in ((1, 2), (0, 2)):
        backend = ScriptedBackend(answer_of)
        v2_cot(tmp_path / "parts", backend, seed=7, shard=shard)
        parts.update({(r.id, r.call): r.seed for r in [*crashed.requests, *backend.requests]})
    assert parts == seeds
    other = ScriptedBackend(answer_of)
    v2_cot(tmp_path / "other", other, seed=8)
    assert not {(r.id, r.call, r.seed) for r in other.requests} & {(*k, v) for k, v in seeds.items()}
    unseeded = ScriptedBackend(answer_of)
    v2_cot(tmp_path / "none", unseeded)
    assert {r.seed for r in unseeded.requests} == {None}


def test_resume_refuses_another_seed_budget_or_subset(tmp_path: Path) -> None:
    v2_cot(tmp_path, ScriptedBackend(answer_of), seed=1, thinking_budget=10, limit=2)
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    assert (run["seed"], run["thinking_budget"], run["benchmark_name"]) == (1, 10, "v2")
    with pytest.raises(LongBenchError, match=r"different seed \(1, now 2\)"):
        v2_cot(tmp_path, ScriptedBackend(answer_of), seed=2, thinking_budget=10)
    with pytest.raises(LongBenchError, match=r"different thinking_budget \(10, now 0\)"):
        v2_cot(tmp_path, ScriptedBackend(answer_of), seed=1)
    hard = V2Run(mode=V2Mode(cot=True), subset=V2Subset(difficulty="hard"))
    with pytest.raises(LongBenchError, match="different subset"):
        predict(
            ScriptedBackend(),
            None,
            "sample",
            tmp_path,
            benchmark=hard,
            max_length=None,
            model_name="m",
            seed=1,
            thinking_budget=10,
        )
    assert v2_cot(tmp_path, ScriptedBackend(answer_of), seed=1, thinking_budget=10).written == 6


@pytest.mark.parametrize("budget", [0, 300])
def test_thinking_budget_adds_to_every_call(tmp_path: Path, budget: int) -> None:
    cot = ScriptedBackend(answer_of)
    v2_cot(tmp_path / "v2", cot, thinking_budget=budget, limit=2)
    assert [r.max_new_tokens for r in cot.requests] == [1024 + budget, 128 + budget] * 2
    v1 = ScriptedBackend()
    tasks = [get_task("trec"), get_task("samsum")]
    predict(
        v1, tasks, "sample", tmp_path / "v1", max_length=None, limit=1, thinking_budget=budget, notify=print
    )
    assert [(r.task, r.max_new_tokens) for r in v1.requests] == [
        ("trec", 64 + budget),
        ("samsum", 128 + budget),
    ]
    run = json.loads((tmp_path / "v1" / "scripted-model" / "run.json").read_text())
    assert run["max_new_tokens"] == {"trec": 64, "samsum": 128} and run["thinking_budget"] == budget


def test_v2_shards_equal_the_whole_run_sample_by_sample(tmp_path: Path) -> None:
    v2_cot(tmp_path / "whole", ScriptedBackend(answer_of), seed=3)
    for index in (0, 1):
        v2_cot(tmp_path / "parts", ScriptedBackend(answer_of), seed=3, shard=(index, 2))
    whole = {line["_id"]: line for line in lines(tmp_path / "whole" / "m" / "m_cot.jsonl")}
    shards = [lines(tmp_path / "parts" / "m" / f"m_cot.shard-{i}-of-2.jsonl") for i in (0, 1)]
    assert [line["_id"] for line in shards[0]] == SAMPLE_V2[0::2]
    assert {line["_id"]: line for part in shards for line in part} == whole


def test_v1_and_e_through_the_same_runner(tmp_path: Path) -> None:
    for name, e in (("v1", False), ("e", True)):
        backend = ScriptedBackend()
        tasks = [get_task("trec", e)]
        summary = predict(
            backend,
            tasks,
            "sample",
            tmp_path / name,
            benchmark=get_benchmark(name),
            max_length=None,
            notify=print,
        )
        assert summary.written == len(backend.requests) > 0
        assert {r.call for r in backend.requests} == {0}
        run = json.loads((tmp_path / name / "scripted-model" / "run.json").read_text())
        assert (run["benchmark_name"], run["e"]) == (name, e)
    assert get_benchmark("e").runs.e and not get_benchmark("v1").runs.e
    by_object = ScriptedBackend()  # the definition itself, as well as its name
    predict(
        by_object,
        None,
        "sample",
        tmp_path / "object",
        benchmark=get_benchmark("v2"),
        max_length=None,
        limit=1,
    )
    assert [(r.task, r.max_new_tokens, r.temperature) for r in by_object.requests] == [
        ("scripted-model", 128, 0.1)
    ]


def test_a_torn_journal_line_is_cut_and_a_bad_one_named(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        v2_cot(tmp_path, ScriptedBackend(answer_of, crash_after=1))  # one first answer journaled
    journal = tmp_path / "m" / ".m_cot.calls.jsonl"
    whole = journal.read_bytes()
    journal.write_bytes(
        whole + b'{"_id": "' + SAMPLE_V2[1].encode() + b'", "call": 0, "ans'
    )  # killed mid-write
    again = ScriptedBackend(answer_of)
    v2_cot(tmp_path, again)
    assert [(r.id, r.call) for r in again.requests][:3] == [
        (SAMPLE_V2[0], 1),
        (SAMPLE_V2[1], 0),
        (SAMPLE_V2[1], 1),
    ]
    with pytest.raises(RuntimeError):
        v2_cot(tmp_path / "bad", ScriptedBackend(answer_of, crash_after=1))
    bad = tmp_path / "bad" / "m" / ".m_cot.calls.jsonl"
    bad.write_bytes(bad.read_bytes() + b"not json\n")
    with pytest.raises(LongBenchError, match=r"\.m_cot\.calls\.jsonl:2: not a journal line"):
        v2_cot(tmp_path / "bad", ScriptedBackend(answer_of))
