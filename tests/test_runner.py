"""The prediction runner with the real tiny model and real files: output format, resume, errors, run.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from longbench.backends.base import GenerationRequest
from longbench.backends.hf import TransformersBackend
from longbench.errors import InputError, LongBenchError
from longbench.loading import iter_records
from longbench.prompts import build_prompt
from longbench.runner import model_name_from, predict, select_shard
from longbench.spec_data import data_text
from longbench.tasks import get_task

WINDOW = 4096
TASKS = ["hotpotqa", "trec"]  # a chat task and a completion task with short answers: fast


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> TransformersBackend:
    return TransformersBackend(str(tiny_model))


def _run(backend, out: Path, tasks=TASKS, **options):
    options.setdefault("limit", 2)
    options.setdefault("max_length", 1500)  # short prompts keep the CPU work small
    notes: list[str] = []
    summary = predict(backend, [get_task(t) for t in tasks], "sample", out, notify=notes.append, **options)
    return summary, notes


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _records(task: str, limit: int) -> list[dict]:
    return list(iter_records(task, "sample"))[:limit]


def test_predictions_are_reference_lines_with_ids_and_the_backends_output(backend, tmp_path: Path) -> None:
    summary, _ = _run(backend, tmp_path)
    assert summary.out_dir == tmp_path / "tiny-model-v1"  # the basename of the model path
    assert summary.written == 4 and summary.failed == 0
    for task_name in TASKS:
        lines = _lines(summary.out_dir / f"{task_name}.jsonl")
        records = _records(task_name, 2)
        # the reference's line and the id, then what the call reported (issue 16: thinking, finish, tokens)
        assert [list(line)[:5] for line in lines] == [["pred", "answers", "all_classes", "length", "_id"]] * 2
        facts = ["thinking", "finish_reason", "prompt_tokens", "completion_tokens"]
        assert [list(line)[5:] for line in lines] == [facts] * 2
        assert sorted(line["_id"] for line in lines) == sorted(r["_id"] for r in records)
        task = get_task(task_name)
        by_id = {r["_id"]: r for r in records}
        for line in lines:
            record = by_id[line["_id"]]
            assert (line["answers"], line["all_classes"], line["length"]) == (
                record["answers"],
                record["all_classes"],
                record["length"],
            )
            request = GenerationRequest(
                record["_id"],
                task.name,
                build_prompt(task, record, backend.tokenizer, 1500),
                task.chat,
                task.max_new_tokens,
                task.stop_at_newline,
            )
            result = next(iter(backend.generate([request])))
            assert line["pred"] == result.text
            assert (line["prompt_tokens"], line["completion_tokens"]) == (
                result.prompt_tokens,
                result.generated_tokens,
            )


def test_run_json_records_what_decides_the_numbers(backend, tmp_path: Path) -> None:
    summary, _ = _run(backend, tmp_path, model_name="tiny", max_length=None)
    run = json.loads((summary.out_dir / "run.json").read_text(encoding="utf-8"))
    assert summary.out_dir == tmp_path / "tiny"
    assert run["model_name"] == "tiny" and run["backend"] == "transformers"
    assert run["task_samples"] == {"hotpotqa": 2, "trec": 2}
    assert run["max_length"] == {"hotpotqa": WINDOW - 32, "trec": WINDOW - 64}  # window less new tokens
    assert run["max_new_tokens"] == {"hotpotqa": 32, "trec": 64}
    assert run["shard"] is None and run["limit"] == 2 and run["data"] == "sample" and run["e"] is False
    assert run["dtype"] == "float32" and run["complete"] is True
    template = backend.tokenizer.chat_template
    assert run["chat_template_sha256"] == hashlib.sha256(template.encode()).hexdigest()
    table = json.loads(data_text("prompts.json"))
    canonical = json.dumps({name: table[name] for name in table}, ensure_ascii=False, sort_keys=True)
    assert run["prompt_table_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert run["decoding"]["do_sample"] is False
    assert {"python", "longbench", "torch", "transformers"} <= set(run["versions"])
    assert run["backend_settings"]["placement"] == "cpu"


def test_a_derived_max_length_is_announced_once(backend, tmp_path: Path) -> None:
    _, notes = _run(backend, tmp_path, max_length=None, limit=1)
    assert len(notes) == 1 and "context window 4096" in notes[0]
    _, notes = _run(backend, tmp_path / "other", limit=1)
    assert notes == []


def test_a_rerun_of_a_complete_run_writes_nothing(backend, tmp_path: Path) -> None:
    first, _ = _run(backend, tmp_path)
    before = {p.name: p.read_bytes() for p in first.out_dir.glob("*.jsonl")}
    again, _ = _run(backend, tmp_path)
    assert again.written == 0 and again.generated_tokens == 0
    assert {t: o.skipped for t, o in again.tasks.items()} == {"hotpotqa": 2, "trec": 2}
    assert {p.name: p.read_bytes() for p in again.out_dir.glob("*.jsonl")} == before


def test_a_resumed_run_completes_a_torn_file_without_duplicates(backend, tmp_path: Path) -> None:
    full, _ = _run(backend, tmp_path / "full", limit=3)
    partial, _ = _run(backend, tmp_path / "partial", limit=3)
    path = partial.out_dir / "trec.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1][:25])  # as if killed while writing the second line
    resumed, _ = _run(backend, tmp_path / "partial", limit=3)
    assert resumed.tasks["trec"].written == 2 and resumed.tasks["hotpotqa"].written == 0
    assert path.read_bytes() == (full.out_dir / "trec.jsonl").read_bytes()


def test_failed_samples_go_to_errors_jsonl_and_the_next_run_fills_exactly_them(
    backend, tmp_path: Path
) -> None:
    # A real GPU out-of-memory cannot happen on this CPU machine: it is injected for prompts over 2500 tokens.
    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[-1] > 2500:
            raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")

    lengths = {
        r["_id"]: len(backend.tokenizer(build_prompt(get_task("trec"), r, backend.tokenizer, 3000)).input_ids)
        for r in _records("trec", 3)
    }
    too_long = {sample_id for sample_id, n in lengths.items() if n > 2500}
    assert 0 < len(too_long) < 3
    handle = backend.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        summary, _ = _run(backend, tmp_path, tasks=["trec"], limit=3, max_length=3000)
    finally:
        handle.remove()
    folder = summary.out_dir
    assert summary.failed == len(too_long)
    errors = _lines(folder / "errors.jsonl")
    assert {e["_id"] for e in errors} == too_long
    assert all(e["dataset"] == "trec" and "out of memory" in e["error"] for e in errors)
    assert {line["_id"] for line in _lines(folder / "trec.jsonl")} == set(lengths) - too_long
    assert json.loads((folder / "run.json").read_text())["complete"] is False

    retry, _ = _run(backend, tmp_path, tasks=["trec"], limit=3, max_length=3000)
    assert retry.tasks["trec"].written == len(too_long) and retry.failed == 0
    ids = [line["_id"] for line in _lines(folder / "trec.jsonl")]
    assert sorted(ids) == sorted(lengths)  # every sample exactly once
    assert _lines(folder / "errors.jsonl") == []  # the retried failures left the log
    assert json.loads((folder / "run.json").read_text())["complete"] is True


def test_shards_split_each_task_disjointly_and_record_the_whole(backend, tmp_path: Path) -> None:
    first, _ = _run(backend, tmp_path / "s0", tasks=["trec"], limit=5, shard=(0, 2))
    second, _ = _run(backend, tmp_path / "s1", tasks=["trec"], limit=5, shard=(1, 2))
    ids = [
        [line["_id"] for line in _lines(s.out_dir / f"trec.shard-{i}-of-2.jsonl")]
        for i, s in enumerate((first, second))
    ]
    records = _records("trec", 5)
    assert sorted(ids[0]) == sorted(r["_id"] for r in records[0::2])
    assert sorted(ids[1]) == sorted(r["_id"] for r in records[1::2])
    run = json.loads((second.out_dir / "run.shard-1-of-2.json").read_text())
    assert run["shard"] == [1, 2] and run["task_samples"] == {"trec": 5}
    # shards may also share one folder: each keeps its own files
    shared, _ = _run(backend, tmp_path / "s1", tasks=["trec"], limit=5, shard=(0, 2))
    assert sorted(p.name for p in shared.out_dir.iterdir()) == [
        "run.shard-0-of-2.json",
        "run.shard-1-of-2.json",
        "trec.shard-0-of-2.jsonl",
        "trec.shard-1-of-2.jsonl",
    ]
    assert [line["_id"] for line in _lines(shared.out_dir / "trec.shard-0-of-2.jsonl")] == ids[0]


def test_appending_with_different_settings_is_refused(backend, tmp_path: Path) -> None:
    _run(backend, tmp_path, tasks=["trec"], limit=1)
    with pytest.raises(LongBenchError, match="different max_length for trec"):
        _run(backend, tmp_path, tasks=["trec"], limit=1, max_length=1400)
    _run(backend, tmp_path, tasks=["hotpotqa"], limit=1, max_length=1400)  # another task may differ
    run = json.loads((tmp_path / "tiny-model-v1" / "run.json").read_text())
    assert run["max_length"] == {"trec": 1500, "hotpotqa": 1400}
    assert run["task_samples"] == {"trec": 1, "hotpotqa": 1}


def test_dump_prompts_writes_the_exact_model_inputs_and_generates_nothing(backend, tmp_path: Path) -> None:
    dump = tmp_path / "prompts.jsonl"
    summary, _ = _run(backend, tmp_path / "out", dump_prompts=dump)
    assert summary.dumped == 4 and not (tmp_path / "out").exists()
    lines = _lines(dump)
    assert [list(line) for line in lines] == [["dataset", "_id", "prompt"]] * 4
    expected = []
    for task_name in TASKS:
        task = get_task(task_name)
        for record in _records(task_name, 2):
            prompt = build_prompt(task, record, backend.tokenizer, 1500)
            if task.chat:  # the tokenizer's own template, one user turn, ready for the answer
                prompt = backend.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
                )
            expected.append({"dataset": task_name, "_id": record["_id"], "prompt": prompt})
    assert lines == expected


def test_duplicate_ids_in_the_data_are_an_input_error(backend, tmp_path: Path) -> None:
    record = _records("trec", 1)[0]
    data = tmp_path / "trec.jsonl"
    data.write_text((json.dumps(record) + "\n") * 2, encoding="utf-8")
    with pytest.raises(InputError, match="duplicate _id"):
        predict(backend, [get_task("trec")], str(data), tmp_path / "out", max_length=100)


def test_select_shard_is_positional_and_complete() -> None:
    items = list(range(10))
    shards = [select_shard(items, i, 3) for i in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert select_shard(items, 0, 1) == items
    for bad in [(3, 3), (-1, 2), (0, 0)]:
        with pytest.raises(LongBenchError):
            select_shard(items, *bad)


def test_model_name_from() -> None:
    assert model_name_from("meta-llama/Llama-2-7b-chat-hf") == "Llama-2-7b-chat-hf"
    assert model_name_from("/models/llama2-7b-chat-4k/") == "llama2-7b-chat-4k"
    assert model_name_from("builtin:tiny") == "tiny"
    assert model_name_from("gpt-4o") == "gpt-4o"
