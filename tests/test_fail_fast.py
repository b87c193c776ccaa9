"""Servers and the offline case fail fast, with one line: a real loopback OpenAI-compatible server, a closed
loopback port standing in for an unreachable hub, and the CLI in real subprocesses."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer  # noqa: E402

from longbench.backends.base import GenerationRequest  # noqa: E402
from longbench.backends.openai_api import REFUSALS_TO_STOP, FatalAPIError, OpenAIBackend  # noqa: E402
from longbench.errors import LongBenchError  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


def _requests(count: int) -> list[GenerationRequest]:
    return [GenerationRequest(f"id-{i}", "qasper", f"question {i}?", True, 8, False) for i in range(count)]


def _backend(url: str | None, **options) -> OpenAIBackend:
    return OpenAIBackend(
        model="fake-model",
        base_urls=[url] if url else [],
        api_key_env=None,
        concurrency=2,
        request_timeout=5.0,
        tokenizer="builtin:tiny",
        **options,
    )


def test_no_base_url_and_no_key_is_refused(monkeypatch, tiny_model: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LongBenchError, match="--base-url"):
        _backend(None)


def test_identical_refusals_stop_the_run(monkeypatch, tiny_model: Path) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    with FakeOpenAIServer(unsupported=("max_tokens",)) as server:
        backend = _backend(server.url)
        results = []
        with pytest.raises(FatalAPIError, match="max_completion_tokens") as stopped:
            results.extend(backend.generate(_requests(40)))
        assert "\n" not in str(stopped.value)
        assert len(server.requests) < 40 and len(results) >= REFUSALS_TO_STOP - 2  # stopped early
        backend.close()
        fixed = _backend(server.url, token_limit_parameter="max_completion_tokens", send_temperature=False)
        answers = list(fixed.generate(_requests(3)))
        assert all(result.ok for result in answers)
        sent = server.requests[-1].body
        assert sent["max_completion_tokens"] == 8 and "max_tokens" not in sent and "temperature" not in sent
        fixed.close()


def test_unreachable_hub_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "",
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "longbench", "predict", "--model", "some-org/some-model", "--data",
               "sample", "--tasks", "trec", "--dump-prompts", str(tmp_path / "p.jsonl")]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot be reached" in done.stderr, done.stderr
    assert elapsed < 30  # generous for a loaded machine; measured well under 10 s (docs/prediction.md)


# -- OpenAI-compatible servers that are not there, drip, or go away mid-run -----------------------------------

SERVER_SCRIPT = Path(__file__).resolve().parent / "openai_server.py"
REPO = Path(__file__).resolve().parents[1]


def _hermetic(tiny_model: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI subprocess: no hub, the session's tiny-model cache, a short retry backoff."""
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "LONGBENCH_CACHE": str(tiny_model.parent),
            "LONGBENCH_RETRY_BASE_DELAY": "0.01", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}  # fmt: skip


def _server_process(port: int = 0, latency: float = 0.0) -> tuple[subprocess.Popen, str]:
    """tests/openai_server.py in a process of its own (so that it can be killed like a real server)."""
    command = [sys.executable, str(SERVER_SCRIPT), "--port", str(port), "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _predict_command(url: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "longbench", "predict", "--backend", "openai", "--model", "fake-model",
            "--tokenizer", "builtin:tiny", "--base-url", url, "--data", "sample", "--out", str(out),
            "--max-length", "1000",
            *extra]  # fmt: skip


def _lines(folder: Path) -> int:
    return sum(
        len(path.read_bytes().splitlines()) for path in folder.glob("*.jsonl") if path.stem != "errors"
    )


def test_a_closed_port_stops_the_run_at_once(tiny_model: Path, tmp_path: Path) -> None:
    url = f"http://user:pa55word@127.0.0.1:{_closed_port()}/v1"
    started = time.perf_counter()
    done = subprocess.run(_predict_command(url, tmp_path / "pred"), env=_hermetic(tiny_model, tmp_path),
                          capture_output=True, text=True, timeout=90, cwd=REPO)  # fmt: skip
    elapsed = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "check --base-url" in done.stderr, done.stderr
    assert "pa55word" not in done.stderr
    assert elapsed < 30  # tokenizer load and start-up included; the requests end in well under a second
    errors = tmp_path / "pred" / "fake-model" / "errors.jsonl"
    assert not errors.exists() or errors.read_text() == ""


def test_an_unknown_host_stops_at_once(tiny_model: Path) -> None:
    backend = _backend("http://no-such-host.invalid/v1", max_retries=6)
    started = time.perf_counter()
    with pytest.raises(FatalAPIError, match="check --base-url"):
        list(backend.generate(_requests(10)))
    backend.close()
    assert time.perf_counter() - started < 10


def test_a_dripping_server_times_out_within_the_request_timeout(tiny_model: Path) -> None:
    with FakeOpenAIServer(drip_seconds=0.2) as server:  # a body of ~300 bytes: a minute to arrive
        backend = _backend(server.url, max_retries=0)
        backend.request_timeout = 1.0
        started = time.perf_counter()
        results = list(backend.generate(_requests(1)))
        elapsed = time.perf_counter() - started
        backend.close()
    assert not results[0].ok and results[0].error.startswith("timeout"), results[0].error
    assert elapsed < 5


def test_a_server_back_within_the_window_is_used_again(tiny_model: Path) -> None:
    server, url = _server_process(latency=0.05)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    backend = _backend(url, max_retries=3, retry_base_delay=0.05, unreachable_timeout=30.0)
    results = []
    try:
        for result in backend.generate(_requests(24)):
            results.append(result)
            if len(results) == 6:
                server.kill()
                server.wait()
                time.sleep(1.5)  # the remaining requests meet refused connections meanwhile
                server, _ = _server_process(port=port)
    finally:
        backend.close()
        server.kill()
        server.wait()
    assert len(results) == 24 and all(result.ok for result in results), [r.error for r in results if not r.ok]


def test_a_server_killed_mid_run_stops_the_run_keeping_what_was_written(
    tiny_model: Path, tmp_path: Path
) -> None:
    server, url = _server_process(latency=0.1)
    out = tmp_path / "pred"
    command = _predict_command(url, out, "--concurrency", "2", "--unreachable-timeout", "2")
    run = subprocess.Popen(command, env=_hermetic(tiny_model, tmp_path), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _lines(out / "fake-model") < 10 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        server.kill()
        server.wait()
        kept = _lines(out / "fake-model")
        killed = time.monotonic()
        _, stderr = run.communicate(timeout=60)
        stopped_after = time.monotonic() - killed
    finally:
        server.kill()
        run.kill()
    assert run.returncode == 2, stderr
    message = stderr.strip().splitlines()[-1]
    assert "no request has reached" in message and "kept" in message, stderr
    assert stopped_after < 20  # the 2 s window, plus the predictions in flight
    assert 10 <= kept <= _lines(out / "fake-model") < 67  # nothing written was lost, and it did stop
    for path in (out / "fake-model").glob("*.jsonl"):
        assert all(line.endswith(b"}") for line in path.read_bytes().splitlines())


def test_an_api_model_name_that_is_no_tokenizer_points_to_tiktoken(monkeypatch, tiny_model: Path) -> None:
    monkeypatch.delenv(
        "HF_HUB_OFFLINE", raising=False
    )  # gpt-4o-mini is no Hugging Face tokenizer, online or not:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")  # here the hub is not reachable
    with pytest.raises(LongBenchError, match="--tokenizer tiktoken:o200k_base") as caught:
        OpenAIBackend("gpt-4o-mini", ["http://127.0.0.1:9/v1"], None, 1, 5.0, tokenizer=None)
    assert "\n" not in str(caught.value)
