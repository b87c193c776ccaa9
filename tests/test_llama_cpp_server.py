"""Against a real llama.cpp server, greedy predictions equal the transformers backend's, with no extra flag.

llama-cpp-python's server (the dev extra installs it) serves the built-in tiny model, converted to GGUF by
tests/tiny_gguf.py. Left to itself that server decodes with ``repeat_penalty`` 1.1, ``top_k`` 40 and
``min_p`` 0.05; the openai backend's neutral decoding fields (and its switch to llama.cpp's ``top_k`` 0 after
the server refuses -1) make its predictions on the sample set equal to the in-process transformers backend's,
sample for sample. Both runs are the CLI in real subprocesses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("gguf")
pytest.importorskip("llama_cpp.server", exc_type=ImportError)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_gguf import write_tiny_gguf  # noqa: E402

TASKS = "trec,qasper,multifieldqa_en,hotpotqa,passage_count,lcc"  # completion and chat tasks
MAX_LENGTH = "600"
READY_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail("llama.cpp server did not start within the time allowed")


@pytest.fixture(scope="module")
def env(tiny_model: Path) -> dict[str, str]:
    return {**os.environ, "LONGBENCH_CACHE": str(tiny_model.parent), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def llama_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, env) -> Iterator[str]:
    model = write_tiny_gguf(tiny_model, tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
               "--n_ctx", "4096", "--n_threads", "1", "--host", "127.0.0.1", "--port", str(port),
               "--verbose", "False"]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _predict(env: dict[str, str], out: Path, *backend: str) -> dict[tuple[str, str], str]:
    command = [sys.executable, "-m", "longbench", "predict", *backend, "--model-name", "tiny", "--data", "sample",
               "--tasks", TASKS, "--max-length", MAX_LENGTH, "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    predictions = {}
    for path in sorted((out / "tiny").glob("*.jsonl")):
        if path.stem in TASKS.split(","):
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                predictions[(path.stem, row["_id"])] = row["pred"]
    return predictions


def test_llama_cpp_predictions_equal_the_transformers_backends(
    llama_server: str, env, tmp_path: Path
) -> None:
    served = _predict(env, tmp_path / "served", "--backend", "openai", "--base-url", llama_server,
                      "--model", "tiny", "--tokenizer", "builtin:tiny", "--concurrency", "2")  # fmt: skip
    local = _predict(env, tmp_path / "local", "--backend", "transformers", "--model", "builtin:tiny")
    assert len(local) >= 15 and sum(bool(pred) for pred in local.values()) >= 10  # real, non-empty answers
    assert served.keys() == local.keys()
    differing = [key for key in local if served[key] != local[key]]
    assert not differing, [(key, served[key], local[key]) for key in differing[:3]]
    run = json.loads((tmp_path / "served" / "tiny" / "run.json").read_text())
    decoding = run["backend_settings"]["decoding"]
    assert run["backend_settings"]["decoding_neutral"] is True
    assert decoding["neutral_fields_sent"]["top_k"] == 0  # llama.cpp's "off", after it refused -1
    assert decoding["neutral_fields_sent"]["repeat_penalty"] == 1.0
