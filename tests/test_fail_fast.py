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
