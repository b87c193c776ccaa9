"""LongBench v2 chain of thought against the loopback OpenAI server (tests/openai_server.py), in a real
process killed with SIGKILL: each second call is sent as soon as its first answer is in, and a re-run makes
again only the first calls that were in flight (the others were journaled). And each call's seed, whatever
the number of requests in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer, prompt_of  # noqa: E402

from longbench.backends.base import Backend, GenerationRequest, GenerationResult  # noqa: E402
from longbench.backends.openai_api import OpenAIBackend  # noqa: E402
from longbench.benchmarks.base import call_seed  # noqa: E402
from longbench.benchmarks.v2_run import V2Run  # noqa: E402
from longbench.runner import predict  # noqa: E402
from longbench.v2.prompts import V2Mode  # noqa: E402

CONCURRENCY = 4
COPIES = 4  # the bundled sample's 8 questions, 4 times over: 32 samples


def write_data(path: Path) -> dict[str, str]:
    """32 samples from the bundled v2 sample (each copy with its own _id and question); question -> _id."""
    sample = resources.files("longbench.data").joinpath("v2", "sample.jsonl").read_text(encoding="utf-8")
    rows, questions = [], {}
    for copy in range(COPIES):
        for record in map(json.loads, sample.splitlines()):
            record["_id"] = f"{record['_id'][:20]}{copy:04d}"
            record["question"] = f"{record['question']} [copy {copy}]"
            questions[record["question"]] = record["_id"]
            rows.append(json.dumps(record) + "\n")
    path.write_text("".join(rows), encoding="utf-8")
    return questions


def calls(server: FakeOpenAIServer, questions: dict[str, str]) -> list[tuple[str, int]]:
    """(sample id, call) of every chat request the server received, in arrival order."""
    seen = []
    for request in server.requests:
        if request.body is None or not request.path.endswith("/chat/completions"):
            continue
        prompt = prompt_of(request.path, request.body)
        sample = next(i for question, i in questions.items() if question in prompt)
        seen.append((sample, 0 if request.body["max_tokens"] == 1024 else 1))
    return seen


def test_second_calls_follow_their_first_and_a_kill_loses_only_calls_in_flight(
    tiny_model: Path, tmp_path: Path
) -> None:
    questions = write_data(tmp_path / "v2.jsonl")
    env = {**os.environ, "LONGBENCH_CACHE": str(tiny_model.parent)}
    result = tmp_path / "out" / "fake-model" / "fake-model_cot.jsonl"
    with FakeOpenAIServer(latency=0.15) as server:
        command = [sys.executable, "-m", "longbench", "predict", "--v2", "--cot", "--backend", "openai"]
        command += ["--model", "fake-model", "--tokenizer", "builtin:tiny", "--base-url", server.url]
        command += ["--data", str(tmp_path / "v2.jsonl"), "--out", str(tmp_path / "out")]
        command += ["--max-length", "5000", "--concurrency", str(CONCURRENCY)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (result.exists() and result.read_text().count("\n") >= 8):
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        first_run = calls(server, questions)
        written = result.read_text().count("\n")
        assert 8 <= written < len(questions)
        again = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
        second_run = calls(server, questions)[len(first_run) :]
    assert again.returncode == 0, again.stderr
    # every second call went out within a few requests of its first (two passes would put 32 - 4 or more
    # between them: every other first call)
    position = {call: n for n, call in enumerate(first_run)}
    gaps = [position[(i, 1)] - position[(i, 0)] for i, call in first_run if call == 1]
    print(f"second calls: {len(gaps)}, largest gap {max(gaps)} requests")
    assert len(gaps) >= 8 and max(gaps) <= 3 * CONCURRENCY
    # the re-run repeats only the first calls that were in flight when the process was killed
    repeated = {i for i, call in second_run if call == 0} & {i for i, call in first_run if call == 0}
    print(f"first calls repeated after the kill: {len(repeated)}")
    assert len(repeated) <= CONCURRENCY
    ids = [json.loads(line)["_id"] for line in result.read_text().splitlines()]
    assert sorted(ids) == sorted(questions.values())  # every sample written once
    assert f"{written} already there" in again.stdout
    assert not list(result.parent.glob(".*calls*"))


class Tap(Backend):
    """The real OpenAI backend, with every request the runner hands it kept (in the order it was pulled)."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.tokenizer = inner, inner.name, inner.tokenizer
        self.pulled: list[GenerationRequest] = []

    def describe(self) -> dict:
        return self.inner.describe()

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        def tapped() -> Iterator[GenerationRequest]:
            for request in requests:
                self.pulled.append(request)
                yield request

        return self.inner.generate(tapped())


def test_seeds_do_not_depend_on_concurrency(tiny_model: Path, tmp_path: Path) -> None:
    cot = V2Run(mode=V2Mode(cot=True))
    seen = {}
    with FakeOpenAIServer(latency=0.05) as server:
        for concurrency in (1, 4):
            backend = OpenAIBackend(
                model="fake-model",
                base_urls=[server.url],
                api_key_env=None,
                concurrency=concurrency,
                request_timeout=5.0,
                tokenizer=str(tiny_model),
            )
            tap = Tap(backend)
            try:
                predict(
                    tap, None, "sample", tmp_path / str(concurrency), benchmark=cot, max_length=5000, seed=11
                )
            finally:
                backend.close()
            seen[concurrency] = [(r.id, r.call, r.seed) for r in tap.pulled]
    assert seen[1] != seen[4]  # four in flight: the requests went out in another order
    assert sorted(seen[1]) == sorted(seen[4]) == sorted((i, c, call_seed(11, i, c)) for i, c, _ in seen[1])
    assert len(seen[1]) == 16
