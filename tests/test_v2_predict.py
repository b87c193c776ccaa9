"""`longbench predict --v2` end to end: the tiny model (transformers) and the loopback OpenAI server with faults.

Data: real records of ../shared/longbench-data/v2 with contexts trimmed to 3,000 characters and a
``retrieved_context`` list cut from each context (what ``longbench compress`` writes), so every mode runs;
without ../shared, the eight questions of the bundled v2 sample (short contexts, with such a list).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer, prompt_of, reply_text  # noqa: E402

from longbench.cli import main  # noqa: E402
from longbench.v2.data import FIELDS  # noqa: E402
from longbench.v2.prompts import V2Mode, first_prompt  # noqa: E402
from longbench.v2.scoring import extract_answer  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "longbench-data" / "v2" / "data_reconstructed.jsonl.gz"
FACTS = ["thinking", "finish_reason", "prompt_tokens", "completion_tokens"]
MODES = {
    "0-shot": ([], "tiny.jsonl", V2Mode()),
    "cot": (["--cot"], "tiny_cot.jsonl", V2Mode(cot=True)),
    "no-context": (["--no-context"], "tiny_no_context.jsonl", V2Mode(no_context=True)),
    "rag": (["--rag", "2"], "tiny_rag_2.jsonl", V2Mode(rag=2)),
    "rag-cot": (["--rag", "3", "--cot"], "tiny_rag_3.jsonl", V2Mode(rag=3, cot=True)),
}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("v2data") / "v2.jsonl"
    if not DATA.is_file():
        bundled = resources.files("longbench.data").joinpath("v2", "sample.jsonl").read_text(encoding="utf-8")
        path.write_text("".join(line + "\n" for line in bundled.splitlines()), encoding="utf-8")
        return path
    rows = []
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        for line in itertools.islice(handle, 12):
            record = json.loads(line)
            if record["context"] is None:
                continue
            record["context"] = record["context"][:3000]
            record["retrieved_context"] = [
                {"c_idx": i, "content": record["context"][i * 200 : (i + 1) * 200]} for i in (5, 1, 3, 0)
            ]
            rows.append(json.dumps(record, ensure_ascii=False) + "\n")
    path.write_text("".join(rows[:6]), encoding="utf-8")
    return path


def records(path: Path) -> dict[str, dict]:
    return {r["_id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def check_result_file(path: Path, data: dict[str, dict], mode: V2Mode, count: int) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [line["_id"] for line in lines]
    assert len(ids) == len(set(ids)) == count  # every sample exactly once
    tail = (["response_cot"] if mode.cot else []) + ["response", "pred", "judge"]
    for line in lines:
        record = data[line["_id"]]
        # the reference's fields, then what the answer call reported (issue 16: thinking, finish, tokens)
        assert list(line)[: len(FIELDS) + len(tail)] == [*FIELDS, *tail]
        assert list(line)[len(FIELDS) + len(tail) :] == FACTS
        expected_context = record["context"]
        if mode.rag:
            chunks = sorted(record["retrieved_context"][: mode.rag], key=lambda c: c["c_idx"])
            expected_context = "\n\n".join(
                f"Retrieved chunk {k}: {c['content']}" for k, c in enumerate(chunks, 1)
            )
        assert line["context"] == expected_context[:1000]
        assert line["pred"] == extract_answer(line["response"])
        assert line["judge"] == (line["pred"] == record["answer"])
    return lines


@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_tiny_model_every_mode(
    mode: str, data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch, one_torch_thread, capsys
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    flags, file_name, v2_mode = MODES[mode]
    command = ["predict", "--v2", "--model", "builtin:tiny", "--data", str(data_file), "--limit", "2"]
    command += ["--max-length", "200", "--temperature", "0", "--out", str(tmp_path), *flags]
    assert main(command) == 0
    folder = tmp_path / "tiny"
    first = check_result_file(folder / file_name, records(data_file), v2_mode, 2)
    run = json.loads((folder / "run.json").read_text())
    assert run["temperature"] == 0 and run["v2_mode"]["cot"] == v2_mode.cot
    assert run["decoding"]["do_sample"] is False  # greedy at temperature 0
    assert run["max_new_tokens"] == {file_name[:-6]: 1024 if v2_mode.cot else 128}
    whole_file = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert run["data_sha256"] == {file_name[:-6]: whole_file}  # the whole file, --limit or not
    assert main(command) == 0  # resume: nothing left to do, nothing appended
    assert "0 new predictions" in capsys.readouterr().out
    assert (folder / file_name).read_text().count("\n") == 2
    if mode == "0-shot":  # greedy at temperature 0: a fresh run gives the same file
        assert main([*command[: -2 - len(flags)], "--out", str(tmp_path / "again")]) == 0
        assert (tmp_path / "again" / "tiny" / file_name).read_text() == (folder / file_name).read_text()
        assert [line["_id"] for line in first] == list(records(data_file))[:2]


def test_dump_prompts_is_the_chat_wrapped_first_call(
    data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch
):
    from transformers import AutoTokenizer

    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    dump = tmp_path / "prompts.jsonl"
    command = [
        "predict",
        "--v2",
        "--cot",
        "--model",
        "builtin:tiny",
        "--data",
        str(data_file),
        "--limit",
        "3",
    ]
    assert main([*command, "--max-length", "301", "--dump-prompts", str(dump), "--out", str(tmp_path)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    data = list(records(data_file).values())[:3]
    for line, record in zip(lines, data, strict=True):
        prompt = first_prompt(record, V2Mode(cot=True), tokenizer, 301)
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        assert line["_id"] == record["_id"] and line["prompt"] == chat
    assert not (tmp_path / "tiny").exists()


def test_reference_v1_model_gets_its_tokenizer_template_under_v2(
    data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch
):
    """A folder named as one of v1's reference models gets, under --v2, the tokenizer's chat template on one
    user message (SPEC-v2), not the v1 reference format that ``--chat-template auto`` selects for v1."""
    import shutil

    from transformers import AutoTokenizer

    from longbench.backends.base import GenerationRequest
    from longbench.backends.hf import TransformersBackend

    model = tmp_path / "llama2-7b-chat-4k"
    shutil.copytree(tiny_model, model)
    dump = tmp_path / "prompts.jsonl"
    command = ["predict", "--v2", "--model", str(model), "--data", str(data_file), "--limit", "2"]
    assert main([*command, "--max-length", "301", "--dump-prompts", str(dump)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(model)
    v1_format = TransformersBackend(str(model))
    for line, record in zip(
        map(json.loads, dump.read_text().splitlines()), list(records(data_file).values())[:2], strict=True
    ):
        prompt = first_prompt(record, V2Mode(), tokenizer, 301)
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        assert line["prompt"] == chat
        assert v1_format.render(GenerationRequest("x", "t", prompt, True, 8, False)) != chat


def openai_command(server: FakeOpenAIServer, data: Path, out: Path, *extra: str) -> list[str]:
    """``longbench predict --v2`` arguments against ``server`` (without the program name)."""
    command = [
        "predict",
        "--v2",
        "--backend",
        "openai",
        "--model",
        "fake-model",
    ]
    command += [
        "--tokenizer",
        "builtin:tiny",
        "--base-url",
        server.url,
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    return [*command, "--max-length", "400", "--request-timeout", "0.5", "--concurrency", "4", *extra]


def run(command: list[str], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """``main(command)`` in this process, with its exit status and output."""
    status = main(command)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(command, status, out, err)


@pytest.mark.parametrize("mode", ["cot", "rag", "no-context"])
def test_openai_server_with_faults(
    mode: str, data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Faults that outlast the retries are never written as answers; the next run retries only those."""
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    monkeypatch.setenv("LONGBENCH_RETRY_BASE_DELAY", "0.01")
    flags, file_name, v2_mode = MODES[mode]
    file_name = file_name.replace("tiny", "fake-model")
    data = records(data_file)
    faults = ("500", "malformed", "429")
    with FakeOpenAIServer(fault_rate=0.5, seed=4, faults=faults, retry_after="0") as server:
        first = run(openai_command(server, data_file, tmp_path, "--max-retries", "0", *flags), capsys)
        bodies = [
            r.body for r in server.requests if r.outcome == "ok" and r.path.endswith("/chat/completions")
        ]
    folder = tmp_path / "fake-model"
    assert first.returncode == 1, first.stderr
    errors = [json.loads(line) for line in (folder / "errors.jsonl").read_text().splitlines()]
    written = records(folder / file_name) if (folder / file_name).exists() else {}
    assert errors and not {e["_id"] for e in errors} & set(written)
    assert {b["temperature"] for b in bodies} == {0.1}
    if v2_mode.cot:  # the second call quotes the first call's answer
        assert {b["max_tokens"] for b in bodies} <= {1024, 128}
        answers = [b for b in bodies if b["max_tokens"] == 128]
        firsts = {
            reply_text(prompt_of("/v1/chat/completions", b), 1024) for b in bodies if b["max_tokens"] == 1024
        }
        assert answers and all(
            any(f.strip() in prompt_of("/v1/chat/completions", b) for f in firsts) for b in answers
        )
    with FakeOpenAIServer() as server:
        second = run(openai_command(server, data_file, tmp_path, *flags), capsys)
        asked = {b["messages"][0]["content"] for b in (r.body for r in server.requests) if b}
    assert second.returncode == 0, second.stderr
    assert (
        len(asked) >= 1 and len(server.requests) <= (2 if v2_mode.cot else 1) * (len(data) - len(written)) + 1
    )
    lines = check_result_file(folder / file_name, data, v2_mode, len(data))
    if v2_mode.cot:
        assert all(line["response_cot"].startswith("answer ") for line in lines)


def test_kill_and_resume(data_file: Path, tiny_model: Path, tmp_path: Path) -> None:
    env = {**os.environ, "LONGBENCH_CACHE": str(tiny_model.parent)}
    data = records(data_file)
    with FakeOpenAIServer(latency=0.4) as server:
        command = [sys.executable, "-m", "longbench", *openai_command(server, data_file, tmp_path, "--cot")]
        command[command.index("--concurrency") + 1] = "1"
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        result = tmp_path / "fake-model" / "fake-model_cot.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (result.exists() and result.read_text().count("\n") >= 1):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = result.read_text().count("\n")
        assert 1 <= done < len(data)
        again = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert again.returncode == 0, again.stderr
    check_result_file(result, data, V2Mode(cot=True), len(data))
    assert f"{done} already there" in again.stdout


def test_data_sha256_recorded_and_bad_record_named(
    data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    array = tmp_path / "data.json"
    array.write_text(json.dumps(list(records(data_file).values())[:2], ensure_ascii=False, indent=1))
    bad = list(records(data_file).values())[:3]
    bad[2]["answer"] = "E"
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    with FakeOpenAIServer() as server:
        assert main(openai_command(server, array, tmp_path / "out")) == 0
        capsys.readouterr()
        assert main(openai_command(server, bad_file, tmp_path / "bad")) == 2
    err = capsys.readouterr().err
    assert err == f"longbench: error: {bad_file}:3: record 3: 'answer' is 'E', expected A, B, C or D\n"
    assert not [
        p for p in (tmp_path / "bad").rglob("*") if p.is_file()
    ]  # nothing written (the data pass failed)
    run_file = json.loads((tmp_path / "out" / "fake-model" / "run.json").read_text())
    assert run_file["temperature"] == 0.1 and run_file["decoding"]["do_sample"] is True  # sampled
    assert run_file["data_sha256"] == {"fake-model": hashlib.sha256(array.read_bytes()).hexdigest()}


def test_compress_v2_output_feeds_rag(data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch, capsys):
    """``compress --v2`` writes the ``retrieved_context`` that ``predict --v2 --rag N`` reads: the prompts
    and result lines carry the compressed file's first N chunks (BM25 order), not the source's list."""
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    assert (
        main(
            [
                "compress",
                "--v2",
                "--data",
                str(data_file),
                "--chunk-size",
                "200",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    derived = tmp_path / "c" / "longbench_v2.jsonl"
    compressed = records(derived)
    assert compressed.keys() == records(data_file).keys()
    assert all(
        r["retrieved_context"] != records(data_file)[i]["retrieved_context"] for i, r in compressed.items()
    )
    capsys.readouterr()
    with FakeOpenAIServer() as server:
        assert main(openai_command(server, derived, tmp_path / "out", "--rag", "2", "--limit", "3")) == 0
        prompts = [prompt_of("/v1/chat/completions", r.body) for r in server.requests if r.body]
    lines = check_result_file(
        tmp_path / "out" / "fake-model" / "fake-model_rag_2.jsonl", compressed, V2Mode(rag=2), 3
    )
    for line in lines:
        top = sorted(compressed[line["_id"]]["retrieved_context"][:2], key=lambda c: c["c_idx"])
        start = f"Retrieved chunk 1: {top[0]['content'][:60]}"  # --max-length 400 cuts the middle
        assert sum(start in prompt for prompt in prompts) == 1


def test_cot_on_ray_replicas_equals_a_plain_run(
    ray_cluster: object, data_file: Path, tiny_model: Path, tmp_path: Path, monkeypatch, one_torch_thread
) -> None:
    """Chain of thought through two Ray replicas (a local cluster of 2 CPUs): both calls of every sample go
    through the replicas, and the result file is the plain run's, line for line once sorted."""
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    command = [
        "predict",
        "--v2",
        "--cot",
        "--model",
        "builtin:tiny",
        "--data",
        str(data_file),
        "--limit",
        "3",
    ]
    command += ["--max-length", "200", "--temperature", "0"]
    assert main([*command, "--out", str(tmp_path / "plain")]) == 0
    assert main([*command, "--out", str(tmp_path / "ray"), "--ray", "local", "--replicas", "2"]) == 0
    plain, ray = (
        sorted((tmp_path / run / "tiny" / "tiny_cot.jsonl").read_text().splitlines())
        for run in ("plain", "ray")
    )
    assert ray == plain and len(ray) == 3
    check_result_file(tmp_path / "ray" / "tiny" / "tiny_cot.jsonl", records(data_file), V2Mode(cot=True), 3)
    run = json.loads((tmp_path / "ray" / "tiny" / "run.json").read_text())
    assert run["backend_settings"]["execution"]["replicas"] == 2
