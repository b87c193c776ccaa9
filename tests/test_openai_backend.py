"""The OpenAI-compatible backend against a real fault-injecting HTTP server on 127.0.0.1.

Nothing is mocked: requests go through the official ``openai`` client over loopback to tests/openai_server.py.
The first half drives the backend directly; the second runs ``longbench predict --backend openai`` in a
subprocess over the bundled sample set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer, prompt_of, reply_text  # noqa: E402

from longbench.backends.base import GenerationRequest  # noqa: E402
from longbench.backends.openai_api import (  # noqa: E402
    OpenAIBackend,
    backoff_delay,
    load_tokenizer,
    parse_retry_after,
    redact_url,
)
from longbench.errors import LongBenchError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "LONGBENCH_TEST_API_KEY"


@pytest.fixture(scope="module", autouse=True)
def _hermetic_env(tiny_model):
    """No hub, the session's tiny-model cache, and a very short retry backoff (the policy is unchanged).

    Set in this process's environment, so the CLI subprocesses inherit it too.
    """
    saved = dict(os.environ)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
    os.environ["LONGBENCH_CACHE"] = str(tiny_model.parent)
    os.environ["LONGBENCH_RETRY_BASE_DELAY"] = "0.01"
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def secret(monkeypatch):
    value = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv(KEY_ENV, value)
    return value


def make_backend(urls, **options) -> OpenAIBackend:
    settings = dict(
        model="fake-model",
        base_urls=urls,
        api_key_env=KEY_ENV,
        concurrency=8,
        request_timeout=5.0,
        tokenizer="builtin:tiny",
    )
    settings.update(options)
    return OpenAIBackend(**settings)


def request(i: int, *, task="qasper", chat=True, max_new_tokens=32, stop=False) -> GenerationRequest:
    return GenerationRequest(
        id=f"id-{i}",
        task=task,
        prompt=f"prompt number {i} for {task}",
        chat=chat,
        max_new_tokens=max_new_tokens,
        stop_at_newline=stop,
    )


def run(backend: OpenAIBackend, requests):
    try:
        return list(backend.generate(requests))
    finally:
        backend.close()


def ok_per_request(server: FakeOpenAIServer) -> Counter:
    return Counter(
        (r.path, prompt_of(r.path, r.body))
        for r in server.requests
        if r.outcome == "ok" and r.body is not None
    )


# -- what is sent ----------------------------------------------------------------------------------------


def test_endpoints_body_and_key(secret):
    requests = [
        request(0, task="qasper", chat=True, max_new_tokens=128),
        request(1, task="trec", chat=False, max_new_tokens=64),
        request(2, task="samsum", chat=False, max_new_tokens=128, stop=True),
    ]
    with FakeOpenAIServer() as server:
        results = run(make_backend([server.url]), requests)
        seen = {
            r.body.get("messages", [{}])[0].get("content") or r.body.get("prompt"): r for r in server.requests
        }
    assert sorted(r.request.id for r in results) == ["id-0", "id-1", "id-2"]
    chat, trec, samsum = (seen[q.prompt] for q in requests)
    assert chat.path == "/v1/chat/completions"
    assert chat.body["messages"] == [{"role": "user", "content": requests[0].prompt}]
    assert "stop" not in chat.body
    assert trec.path == "/v1/completions" and trec.body["prompt"] == requests[1].prompt
    assert samsum.path == "/v1/completions" and samsum.body["stop"] == ["\n"]
    for recorded, sent in zip((chat, trec, samsum), requests, strict=True):
        assert recorded.body["temperature"] == 0
        assert recorded.body["max_tokens"] == sent.max_new_tokens
        assert recorded.body["model"] == "fake-model"
        assert recorded.authorization == f"Bearer {secret}"
    by_id = {r.request.id: r for r in results}
    assert by_id["id-2"].text == reply_text(requests[2].prompt, 128, ["\n"])
    assert "\n" not in by_id["id-2"].text and "\n" in by_id["id-1"].text


def test_completion_as_chat_sends_everything_to_chat(secret):
    with FakeOpenAIServer() as server:
        run(make_backend([server.url], completion_tasks_as_chat=True), [request(1, chat=False)])
        paths = {r.path for r in server.requests}
    assert paths == {"/v1/chat/completions"}


def test_render_and_describe_hold_no_secret(secret):
    backend = make_backend(["http://user:pw@127.0.0.1:1/v1"])
    rendered = json.loads(backend.render(request(3, task="samsum", chat=False, stop=True)))
    assert rendered["endpoint"] == "/v1/completions"
    assert rendered["prompt"] == "prompt number 3 for samsum" and rendered["stop"] == ["\n"]
    described = json.dumps(backend.describe())
    assert secret not in described and "pw" not in described
    assert backend.describe()["api_key_env"] == KEY_ENV
    assert redact_url("https://u:p@host:8000/v1") == "https://host:8000/v1"


@pytest.mark.skipif(importlib.util.find_spec("tiktoken") is not None, reason="tiktoken is installed")
def test_tiktoken_without_the_package_is_a_clear_error():
    with pytest.raises(LongBenchError, match="pip install tiktoken"):
        load_tokenizer("tiktoken:cl100k_base")


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LONGBENCH_UNSET_KEY", raising=False)
    with pytest.raises(LongBenchError, match="LONGBENCH_UNSET_KEY"):
        make_backend(["http://127.0.0.1:1/v1"], api_key_env="LONGBENCH_UNSET_KEY")


# -- the retry policy ------------------------------------------------------------------------------------


def test_faults_are_retried_and_every_request_completes_once(secret):
    requests = [request(i, chat=i % 3 != 0, stop=i % 7 == 0) for i in range(150)]
    with FakeOpenAIServer(fault_rate=0.3, seed=13, slow_seconds=1.5, retry_after="0") as server:
        backend = make_backend([server.url], concurrency=16, request_timeout=0.5)
        results = run(backend, requests)
        counters = server.counters
        served = ok_per_request(server)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert sorted(r.request.id for r in results) == sorted(q.id for q in requests)
    for result in results:
        q = result.request
        assert result.text == reply_text(q.prompt, q.max_new_tokens, ["\n"] if q.stop_at_newline else None)
    assert len(served) == len(requests) and set(served.values()) == {1}
    for kind in ("500", "429", "slow", "drop", "malformed"):
        assert counters[kind] > 0, counters  # every kind of fault was injected and survived
    assert backend.stats["retries"] == sum(counters[k] for k in ("500", "429", "slow", "drop", "malformed"))


def test_retry_after_is_honoured(secret):
    arrivals: list[float] = []
    with FakeOpenAIServer(fault_rate=1.0, faults=("429",), retry_after="0.4") as server:
        backend = make_backend([server.url], max_retries=1, retry_base_delay=0.001)
        original = server._server.record

        def record(recorded):
            arrivals.append(time.monotonic())
            original(recorded)

        server._server.record = record
        results = run(backend, [request(0)])
    assert not results[0].ok and "HTTP 429" in results[0].error and "2 attempts" in results[0].error
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.4


def test_slow_answers_time_out(secret):
    with FakeOpenAIServer(fault_rate=1.0, faults=("slow",), slow_seconds=3.0) as server:
        start = time.monotonic()
        results = run(make_backend([server.url], max_retries=0, request_timeout=0.3), [request(0)])
        elapsed = time.monotonic() - start
    assert not results[0].ok and results[0].error.startswith("timeout")
    assert elapsed < 2.0


def test_a_sample_that_always_fails_is_reported_not_raised(secret):
    requests = [request(i) for i in range(6)]
    with FakeOpenAIServer(always_fail="prompt number 4 ") as server:
        results = run(make_backend([server.url], max_retries=2), requests)
        attempts = Counter(prompt_of(r.path, r.body) for r in server.requests)
    failed = [r for r in results if not r.ok]
    assert [r.request.id for r in failed] == ["id-4"]
    assert failed[0].text is None and "HTTP 500" in failed[0].error and "3 attempts" in failed[0].error
    assert attempts[requests[4].prompt] == 3 and attempts[requests[0].prompt] == 1


def test_bad_key_stops_the_run_without_leaking_it(secret):
    with FakeOpenAIServer(required_key="the-right-key") as server:
        backend = make_backend([server.url])
        with pytest.raises(LongBenchError) as caught:
            run(backend, [request(i) for i in range(20)])
        unauthorized = server.counters["unauthorized"]
    assert "401" in str(caught.value) and secret not in str(caught.value)
    assert unauthorized < 20  # stopped early rather than trying every sample


def test_backoff_is_full_jitter_capped_and_respects_retry_after():
    rng = random.Random(5)
    for attempt in range(12):
        delays = [backoff_delay(attempt, 0.5, None, rng) for _ in range(200)]
        bound = min(60.0, 0.5 * 2**attempt)
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8 and min(delays) < bound * 0.2  # spread over the whole range
    assert all(backoff_delay(0, 0.01, 2.0, rng) >= 2.0 for _ in range(50))
    assert backoff_delay(0, 0.01, 10_000.0, rng) == 300.0
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None


# -- several servers, early stop, model info ---------------------------------------------------------------


def test_requests_are_spread_over_base_urls_and_survive_a_dead_one(secret):
    requests = [request(i) for i in range(60)]
    with FakeOpenAIServer(latency=0.02) as first, FakeOpenAIServer(latency=0.02) as second:
        results = run(make_backend([first.url, second.url], concurrency=8), requests)
        counts = (first.counters["ok"], second.counters["ok"])
    assert all(r.ok for r in results) and sum(counts) == 60
    assert min(counts) >= 20, counts
    with FakeOpenAIServer(fault_rate=1.0, faults=("drop",)) as dead, FakeOpenAIServer() as alive:
        results = run(make_backend([dead.url, alive.url], concurrency=4), requests[:20])
        assert dead.counters["drop"] > 0
    assert all(r.ok for r in results)


def test_stopping_early_cancels_the_rest(secret):
    with FakeOpenAIServer(latency=0.2) as server:
        backend = make_backend([server.url], concurrency=2)
        start = time.monotonic()
        iterator = backend.generate([request(i) for i in range(40)])
        first = next(iterator)
        iterator.close()
        backend.close()
        elapsed = time.monotonic() - start
        time.sleep(0.3)
        total = server.counters["ok"]
    assert first.ok and elapsed < 2.0 and total <= 6


def test_context_window_from_models_endpoint(secret):
    with FakeOpenAIServer(max_model_len=32768) as server:
        backend = make_backend([server.url])
        try:
            assert backend.context_window() == 32768
        finally:
            backend.close()
    with FakeOpenAIServer() as server:
        backend = make_backend([server.url])
        try:
            assert backend.context_window() is None
        finally:
            backend.close()
    unreachable = make_backend(["http://127.0.0.1:1/v1"], request_timeout=1.0)
    try:  # nothing listens there: the first request already says so (tests/test_fail_fast.py)
        with pytest.raises(LongBenchError, match="check --base-url"):
            unreachable.context_window()
    finally:
        unreachable.close()
    with FakeOpenAIServer(max_model_len=8192) as server:  # a dead first URL: the next one is asked
        backend = make_backend(["http://127.0.0.1:1/v1", server.url])
        try:
            assert backend.context_window() == 8192
        finally:
            backend.close()


# -- the real CLI over the bundled sample set ------------------------------------------------------------


def sample_counts() -> dict[str, int]:
    """Samples per task in the bundled sample set (read from the files, not assumed)."""
    from longbench.tasks import all_tasks

    folder = REPO / "data" / "sample"
    return {
        t.name: len((folder / f"{t.name}.jsonl").read_text(encoding="utf-8").splitlines())
        for t in all_tasks()
    }


def start_predict(server: FakeOpenAIServer, out: Path, *extra: str) -> subprocess.Popen:
    """``longbench predict --backend openai`` over the sample set against ``server``, started in a subprocess."""
    command = [sys.executable, "-m", "longbench", "predict", "--backend", "openai", "--model", "fake-model"]
    command += ["--tokenizer", "builtin:tiny", "--base-url", server.url, "--api-key-env", KEY_ENV]
    command += ["--data", "sample", "--out", str(out), "--concurrency", "8"]
    command += ["--request-timeout", "0.5", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=240)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def predict_cli(server: FakeOpenAIServer, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return finish(start_predict(server, out, *extra))


def read_predictions(folder: Path) -> dict[str, list[dict]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
        if path.name != "errors.jsonl"
    }


def test_cli_sample_set_survives_20_percent_faults(secret, tmp_path):
    from longbench.tasks import all_tasks

    counts = sample_counts()
    faulty_server = FakeOpenAIServer(
        fault_rate=0.2, seed=7, slow_seconds=1.5, retry_after="0.05", max_model_len=1500
    )
    with FakeOpenAIServer(max_model_len=1500) as clean, faulty_server as server:
        runs = [start_predict(clean, tmp_path / "clean"), start_predict(server, tmp_path / "faulty")]
        plain, faulty = (finish(process) for process in runs)  # the two runs overlap in time
        recorded = [r for r in server.requests if r.body is not None]
        counters = server.counters
    assert plain.returncode == 0, plain.stderr
    assert faulty.returncode == 0, faulty.stderr

    run = json.loads((tmp_path / "faulty" / "fake-model" / "run.json").read_text())
    windows = {t.name: 1500 - t.max_new_tokens for t in all_tasks()}  # from /v1/models' max_model_len
    assert run["max_length"] == windows and run["backend_settings"]["api_key_env"] == KEY_ENV

    clean_preds = read_predictions(tmp_path / "clean" / "fake-model")
    faulty_preds = read_predictions(tmp_path / "faulty" / "fake-model")
    assert set(faulty_preds) == set(counts)
    for task, lines in faulty_preds.items():
        ids = [line["_id"] for line in lines]
        assert len(ids) == len(set(ids)) == counts[task], task  # every sample exactly once
        by_id = {line["_id"]: line for line in clean_preds[task]}
        assert {line["_id"]: line for line in lines} == by_id  # identical to the fault-free run
    assert (
        not (tmp_path / "faulty" / "fake-model" / "errors.jsonl").exists()
        or not (tmp_path / "faulty" / "fake-model" / "errors.jsonl").read_text().strip()
    )

    injected = sum(counters[kind] for kind in ("500", "429", "slow", "drop", "malformed"))
    total = sum(counts.values())
    assert injected >= 0.1 * total, counters
    served = ok_per_request(server)
    assert len(served) == total and set(served.values()) == {1}  # the server completed each sample once

    chat_tasks = {t.name for t in all_tasks() if t.chat}
    ok = [r for r in recorded if r.outcome == "ok"]
    chat = [r for r in ok if r.path == "/v1/chat/completions"]
    completion = [r for r in ok if r.path == "/v1/completions"]
    assert len(chat) == sum(n for task, n in counts.items() if task in chat_tasks)
    assert len(completion) == sum(n for task, n in counts.items() if task not in chat_tasks)
    assert sorted(r.body["max_tokens"] for r in ok) == sorted(
        t.max_new_tokens for t in all_tasks() for _ in range(counts[t.name])
    )
    stopped = [r for r in ok if "stop" in r.body]
    assert len(stopped) == counts["samsum"] and all(r.body["stop"] == ["\n"] for r in stopped)
    assert all(r.path == "/v1/completions" and r.body["max_tokens"] == 128 for r in stopped)
    assert all(r.body["temperature"] == 0 for r in ok)

    assert {r.authorization for r in recorded} == {f"Bearer {secret}"}  # the key was sent ...
    for run in (plain, faulty):  # ... and appears nowhere else
        assert secret not in run.stdout and secret not in run.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8", errors="replace"), path


def test_cli_failed_sample_is_logged_then_filled_by_a_rerun(secret, tmp_path):
    trec = [json.loads(line) for line in (REPO / "data" / "sample" / "trec.jsonl").read_text().splitlines()]
    doomed = trec[1]
    marker = doomed["input"]
    assert sum(marker in r["input"] + r["context"] for r in trec) == 1  # only this sample's prompt has it
    out = tmp_path / "pred"
    with FakeOpenAIServer(always_fail=marker) as server:
        first = predict_cli(
            server, out, "--tasks", "trec,hotpotqa", "--max-length", "1000", "--max-retries", "2"
        )
        failing_attempts = server.counters["500"]
        assert first.returncode == 1, first.stderr
        folder = out / "fake-model"
        errors = [json.loads(line) for line in (folder / "errors.jsonl").read_text().splitlines()]
        assert [(e["dataset"], e["_id"]) for e in errors] == [("trec", doomed["_id"])]
        assert "HTTP 500" in errors[0]["error"] and secret not in errors[0]["error"]
        after_first = read_predictions(folder)
        assert doomed["_id"] not in {line["_id"] for line in after_first["trec"]}
        assert (
            len(after_first["trec"]) == len(trec) - 1
            and len(after_first["hotpotqa"]) == sample_counts()["hotpotqa"]
        )

        server.config.always_fail = None  # the outage is over
        before = len(server.requests)
        second = predict_cli(
            server, out, "--tasks", "trec,hotpotqa", "--max-length", "1000", "--max-retries", "2"
        )
        new_requests = [r for r in server.requests[before:] if r.body is not None]  # not GET /v1/models
    assert failing_attempts == 3  # one try and two retries
    assert second.returncode == 0, second.stderr
    assert len(new_requests) == 1 and marker in prompt_of(new_requests[0].path, new_requests[0].body)
    after_second = read_predictions(folder)
    ids = [line["_id"] for line in after_second["trec"]]
    assert sorted(ids) == sorted(r["_id"] for r in trec)  # filled in, exactly once
    assert after_second["hotpotqa"] == after_first["hotpotqa"]
    assert secret not in first.stderr + first.stdout + second.stderr + second.stdout
