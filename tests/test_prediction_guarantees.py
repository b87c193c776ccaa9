"""What faults can and cannot do to prediction files, with real processes, real files and real OS limits.

A second writer (a real child process holding the folder), a file-size limit (``RLIMIT_FSIZE`` in a child:
Python ignores SIGXFSZ, so writes come back short, then fail with EFBIG), a full disk (a small tmpfs, when
this machine lets us mount one), other weights or other data under the same ``--model-name``, and how far
ahead of the backend prompts are built. Each test fails when the guarantee it checks is taken out.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from scripted_backend import CountingTokenizer, ScriptedBackend

from longbench.backends.base import GenerationRequest
from longbench.errors import LongBenchError
from longbench.loading import iter_records
from longbench.runner import predict
from longbench.tasks import get_task

TESTS = Path(__file__).resolve().parent
TREC_IDS = [record["_id"] for record in iter_records("trec", "sample")]  # 5 samples


@pytest.fixture
def secret_env(monkeypatch, tiny_model: Path) -> None:
    """No hub and no real key for the OpenAI backend (it only ever reaches the loopback server)."""
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def cli_env(tiny_model: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LONGBENCH_CACHE": str(tiny_model.parent),
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(TESTS),
    }


def _predict_cli(out: Path, env: dict[str, str], *extra: str, limit_bytes: int | None = None):
    command = [sys.executable, "-m", "longbench", "predict", "--data", "sample", "--tasks", "trec"]
    command += ["--max-length", "200", "--out", str(out), *extra]
    if "--model" not in extra:
        command += ["--model", "builtin:tiny"]

    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(command, env=env, capture_output=True, text=True, preexec_fn=limit, timeout=300)


def _ids(path: Path) -> list[str]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "a torn last line"
    return [json.loads(line)["_id"] for line in raw.splitlines()]


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("longbench:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# -- a second writer -----------------------------------------------------------------------------------------


def _held_run(out: Path, tmp: Path, shard: str) -> tuple[subprocess.Popen, Path]:
    gate, ready = tmp / f"gate-{shard.replace('/', '-')}", tmp / f"ready-{shard.replace('/', '-')}"
    child = subprocess.Popen(
        [sys.executable, str(TESTS / "scripted_backend.py"), str(out), str(gate), str(ready), shard],
        env={**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(TESTS)},
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert child.poll() is None and time.monotonic() < deadline, "the held run did not start"
        time.sleep(0.02)
    return child, gate


def _predict_trec(out: Path, shard: tuple[int, int]) -> None:
    predict(
        ScriptedBackend(),
        [get_task("trec")],
        "sample",
        out,
        max_length=None,
        shard=shard,
        model_name="m",
        notify=lambda _: None,
    )


def test_a_second_writer_is_refused_while_other_shards_share_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    child, gate = _held_run(out, tmp_path, "0/2")  # a real process, mid-run, holding shard 0 of 2
    try:
        with pytest.raises(LongBenchError) as refused:
            _predict_trec(out, (0, 2))
        message = str(refused.value)
        assert "\n" not in message and f"pid {child.pid}:" in message and "scripted_backend.py" in message
        assert not (out / "m" / "trec.shard-0-of-2.jsonl").read_bytes()  # the refused run wrote nothing
        _predict_trec(out, (1, 2))  # the other shard of the same model writes beside it
        assert _ids(out / "m" / "trec.shard-1-of-2.jsonl") == TREC_IDS[1::2]
    finally:
        child.send_signal(signal.SIGKILL)  # the kernel releases its lock
        child.wait()
    _predict_trec(out, (0, 2))
    assert _ids(out / "m" / "trec.shard-0-of-2.jsonl") == TREC_IDS[0::2]  # each id once
    assert sorted(path.name for path in (out / "m").iterdir()) == [
        "run.shard-0-of-2.json",
        "run.shard-1-of-2.json",
        "trec.shard-0-of-2.jsonl",
        "trec.shard-1-of-2.jsonl",
    ]  # no lock file left behind


def test_the_held_run_finishes_when_released(tmp_path: Path) -> None:
    child, gate = _held_run(tmp_path / "out", tmp_path, "0/1")
    gate.touch()
    assert child.wait(timeout=60) == 0
    assert _ids(tmp_path / "out" / "m" / "trec.shard-0-of-1.jsonl") == TREC_IDS


# -- every record whole or not at all ------------------------------------------------------------------------


def _check_cut_back_then_finish(out: Path, result: subprocess.CompletedProcess, env, what: str) -> None:
    predictions = out / "tiny" / "trec.jsonl"
    assert result.returncode == 2
    line = _error_line(result.stderr)
    kept = _ids(predictions)  # only whole lines: the fragment of the failed write was cut off
    assert 0 < len(kept) < len(TREC_IDS)
    assert f"{what}: {len(kept)} predictions kept in {predictions}" in line
    run = json.loads((out / "tiny" / "run.json").read_text())
    assert run["complete"] is False
    again = _predict_cli(out, env)
    assert again.returncode == 0, again.stderr
    assert sorted(_ids(predictions)) == sorted(TREC_IDS)  # each id once
    assert json.loads((out / "tiny" / "run.json").read_text())["complete"] is True


def test_a_file_size_limit_cuts_back_to_whole_lines_and_a_rerun_finishes(tmp_path: Path, cli_env) -> None:
    # run.json (~1.5 kB) fits; trec lines are ~1 kB each, so the third write comes back short, then EFBIG
    result = _predict_cli(tmp_path, cli_env, limit_bytes=3000)
    _check_cut_back_then_finish(tmp_path, result, cli_env, "file size limit reached")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_cuts_back_to_whole_lines_and_a_rerun_finishes(
    small_tmpfs: Path, tmp_path: Path, cli_env
) -> None:
    # 10 records of ~4.5 kB lines on a 32 kB (8-page) tmpfs: the lock, run.json and its replacement take
    # three pages, so the prediction file fills the rest after a few lines and a write meets ENOSPC
    records = list(iter_records("trec", "sample"))
    big = [{**records[n % 5], "_id": f"big{n}", "answers": [f"answer {n} " + "x" * 4000]} for n in range(10)]
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in big), encoding="utf-8")
    out = small_tmpfs / "pred"
    predictions = out / "tiny" / "trec.jsonl"
    result = _predict_cli(out, cli_env, "--data", str(data))
    assert result.returncode == 2
    kept = _ids(predictions)  # whole lines only
    assert 0 < len(kept) < 10
    assert f"disk full: {len(kept)} predictions kept in {predictions}" in _error_line(result.stderr)
    assert json.loads((out / "tiny" / "run.json").read_text())["complete"] is False
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_tmpfs)], check=True)  # space freed
    again = _predict_cli(out, cli_env, "--data", str(data))
    assert again.returncode == 0, again.stderr
    assert sorted(_ids(predictions)) == sorted(r["_id"] for r in big)  # each id once
    assert json.loads((out / "tiny" / "run.json").read_text())["complete"] is True


# -- what made the predictions -------------------------------------------------------------------------------


def test_other_weights_under_the_same_model_name_are_refused(tmp_path: Path, tiny_model: Path) -> None:
    from longbench.backends.hf import TransformersBackend  # weights load on first generation: not needed here

    other = tmp_path / "other-weights"
    shutil.copytree(tiny_model, other)
    weights = next(other.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(8)  # the last weights' values change; names, sizes and config stay
    weights.write_bytes(bytes(data))
    tasks, out = [get_task("trec")], tmp_path / "out"
    first = ScriptedBackend(tokenizer=None)
    first.describe = TransformersBackend(str(tiny_model)).describe  # type: ignore[method-assign]
    predict(first, tasks, "sample", out, max_length=None, limit=2, model_name="tiny", notify=lambda _: None)
    before = (out / "tiny" / "trec.jsonl").read_bytes()
    second = ScriptedBackend(tokenizer=None)
    second.describe = TransformersBackend(str(other)).describe  # type: ignore[method-assign]
    with pytest.raises(LongBenchError) as refused:
        predict(second, tasks, "sample", out, max_length=None, model_name="tiny", notify=lambda _: None)
    message = str(refused.value)
    old = json.loads((out / "tiny" / "run.json").read_text())["model_fingerprint"]
    assert "different model_fingerprint" in message and old in message and "--model-name" in message
    assert (out / "tiny" / "trec.jsonl").read_bytes() == before


def _own_trec_folder(tmp_path: Path, name: str, answer: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    records = list(iter_records("trec", "sample"))
    records[-1]["answers"] = [answer]
    (folder / "trec.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


def _predict_scripted(data: str, out: Path, verify: bool = True) -> None:
    predict(
        ScriptedBackend(),
        [get_task("trec")],
        data,
        out,
        max_length=None,
        model_name="m",
        notify=lambda _: None,
        verify=verify,
    )


def test_other_data_files_are_refused(tmp_path: Path) -> None:
    own = _own_trec_folder(tmp_path, "own", "changed")
    _predict_scripted("sample", tmp_path / "out")
    with pytest.raises(LongBenchError, match="different data_sha256 for trec"):
        _predict_scripted(str(own), tmp_path / "out", verify=False)
    # the same data source string, other bytes: the files' digests differ
    _predict_scripted(str(own), tmp_path / "own-out", verify=False)
    sha = json.loads((tmp_path / "own-out" / "m" / "run.json").read_text())["data_sha256"]["trec"]
    shutil.rmtree(own)
    _own_trec_folder(tmp_path, "own", "changed again")
    with pytest.raises(
        LongBenchError, match=f"different data_sha256 for trec \\({sha}, now [0-9a-f]{{64}}\\)"
    ):
        _predict_scripted(str(own), tmp_path / "own-out", verify=False)


def test_own_files_named_like_released_ones_need_no_verify(tmp_path: Path, cli_env) -> None:
    own = _own_trec_folder(tmp_path, "own", "changed")
    refused = _predict_cli(tmp_path / "out", cli_env, "--limit", "2", "--data", str(own))
    assert refused.returncode == 2 and "pass --no-verify" in _error_line(refused.stderr)
    accepted = _predict_cli(tmp_path / "out", cli_env, "--limit", "2", "--data", str(own), "--no-verify")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads((tmp_path / "out" / "tiny" / "run.json").read_text())["verify"] is False
    assert len(_ids(tmp_path / "out" / "tiny" / "trec.jsonl")) == 2


# -- bounded memory, early first prediction ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


def test_prompts_are_built_as_the_backend_asks_and_resume_builds_none_of_the_done(
    tmp_path: Path, tiny_tokenizer
) -> None:
    tokenizer = CountingTokenizer(tiny_tokenizer)
    backend = ScriptedBackend(tokenizer=tokenizer, fail=TREC_IDS[3:])
    tasks = [get_task("trec")]
    predict(backend, tasks, "sample", tmp_path, max_length=300, model_name="m", notify=lambda _: None)
    per_prompt = tokenizer.calls / len(TREC_IDS)
    assert per_prompt >= 1
    # when the first result came, exactly one prompt had been built (not all five up front)
    assert backend.seen[0] == (1, per_prompt)
    assert [calls for _, calls in backend.seen] == [per_prompt * n for n in range(1, 6)]
    tokenizer.calls = 0
    again = ScriptedBackend(tokenizer=tokenizer)
    summary = predict(again, tasks, "sample", tmp_path, max_length=300, model_name="m", notify=lambda _: None)
    assert summary.skipped == 3 and summary.written == 2
    assert tokenizer.calls == 2 * per_prompt  # the three done samples were never tokenized


def test_the_transformers_backend_reads_a_bounded_window_ahead(tiny_model: Path, one_torch_thread) -> None:
    from longbench.backends.hf import TransformersBackend

    backend = TransformersBackend(str(tiny_model), batch_size=2)
    pulled: list[int] = []

    def endless() -> Iterator[GenerationRequest]:
        for number in count():
            pulled.append(number)
            if number > 100:
                raise AssertionError("the backend reads the whole input before generating")
            yield GenerationRequest(f"id{number}", "trec", f"Question {number}:", False, 4, False)

    results = backend.generate(endless())
    first = next(results)
    assert first.ok and first.request.id.startswith("id")
    assert len(pulled) <= 2 * 8  # a few batches ahead, not the whole input
    results.close()


def test_the_openai_backend_takes_requests_as_slots_free(secret_env) -> None:
    """Against the loopback OpenAI test server: with 4 requests in flight at most, the backend has taken only
    a few requests from an endless input when the first result arrives."""
    from openai_server import FakeOpenAIServer

    from longbench.backends.openai_api import OpenAIBackend

    pulled: list[int] = []

    def endless() -> Iterator[GenerationRequest]:
        for number in count():
            pulled.append(number)
            if number > 100:
                raise AssertionError("the backend reads the whole input before sending")
            yield GenerationRequest(f"id{number}", "qasper", f"prompt {number}", True, 8, False)

    with FakeOpenAIServer() as server:
        backend = OpenAIBackend(
            model="fake-model",
            base_urls=[server.url],
            api_key_env=None,
            concurrency=4,
            request_timeout=5.0,
            tokenizer="builtin:tiny",
        )
        try:
            results = backend.generate(endless())
            first = next(results)
            assert first.ok, first.error
            assert len(pulled) <= 4 + 4  # the slots in flight and the ones just freed, not the whole input
            results.close()
        finally:
            backend.close()
