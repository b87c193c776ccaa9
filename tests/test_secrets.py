"""No secret in any file or message: a base URL's password and key-like query parameters, and a key pasted
where a variable name belongs, checked against the real CLI, a real loopback server and a second process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer  # noqa: E402

from longbench.redaction import redact_text, redact_url, redacted_command  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "pa55-" + "w0rd"
QUERY_KEY = "k3y-" + "in-query"
PASTED_KEY = "sk-" + "live-4f9a2c71d0"


def _env(tiny_model: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "LONGBENCH_CACHE": str(tiny_model.parent),
            "LONGBENCH_RETRY_BASE_DELAY": "0.01", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}  # fmt: skip


def _predict(url: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "longbench", "predict", "--backend", "openai", "--model", "fake-model",
            "--tokenizer", "builtin:tiny", "--base-url", url, "--data", "sample", "--out", str(out),
            "--max-length", "1000", "--tasks", "qasper,trec", "--concurrency", "1", "--max-retries", "1",
            *extra]  # fmt: skip


def _secrets_in(text: str) -> list[str]:
    return [secret for secret in (PASSWORD, QUERY_KEY, PASTED_KEY) if secret in text]


def test_url_secrets_reach_no_file_and_no_message(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    lock = out / "fake-model" / ".predict.lock"
    hold = threading.Event()  # answers wait until the second run was refused
    with FakeOpenAIServer(hold=hold, always_fail="determine the type") as server:  # trec fails
        url = f"http://user:{PASSWORD}@127.0.0.1:{server.port}/v1"
        with_query = f"{url}?api-key={QUERY_KEY}"  # the openai client cannot use it: the server answers 404
        env = _env(tiny_model, tmp_path)
        first = subprocess.Popen(_predict(url, out), env=env, cwd=REPO, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        held = lock.read_text()
        second = subprocess.run(_predict(with_query, out), env=env, cwd=REPO, text=True, capture_output=True,
                                timeout=120)  # fmt: skip
        hold.set()
        stdout, stderr = first.communicate(timeout=180)
        errors = (out / "fake-model" / "errors.jsonl").read_text()  # the next run retries and clears them
        third = subprocess.run(_predict(with_query, out), env=env, cwd=REPO, text=True, capture_output=True,
                               timeout=120)  # fmt: skip
    assert held.startswith(f"{first.pid}: ") and "--base-url" in held, held
    assert second.returncode == 2 and "another run is writing here" in second.stderr, second.stderr
    assert first.returncode == 1, stderr  # trec's samples failed: errors.jsonl has lines with the URL in them
    assert "127.0.0.1" in errors and _secrets_in(errors) == []
    assert third.returncode == 2 and "HTTP 404" in third.stderr and "api-key=***" in third.stderr, (
        third.stderr
    )
    assert "api-key=***" in (out / "fake-model" / "run.json").read_text()
    for text in (held, second.stderr, second.stdout, stdout, stderr, third.stderr, third.stdout):
        assert _secrets_in(text) == [], text
    for path in out.rglob("*"):
        if path.is_file():
            assert _secrets_in(path.read_text(encoding="utf-8", errors="replace")) == [], path


def test_a_key_given_as_the_variable_name_is_never_echoed(tiny_model: Path, tmp_path: Path) -> None:
    command = _predict("http://127.0.0.1:9/v1", tmp_path / "pred", "--api-key-env", PASTED_KEY)
    done = subprocess.run(command, env=_env(tiny_model, tmp_path), cwd=REPO, text=True, capture_output=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "name of an environment variable" in done.stderr.lower() and PASTED_KEY not in done.stderr


def test_redaction_rules() -> None:
    assert redact_url(f"https://u:{PASSWORD}@h:8000/v1?api_key={QUERY_KEY}&model=x") == (
        "https://h:8000/v1?api_key=***&model=x"
    )
    assert redact_url("http://localhost:8000/v1") == "http://localhost:8000/v1"
    assert _secrets_in(redact_text(f"failed: http://h/v1?sig={QUERY_KEY} (after 2 attempts)")) == []
    line = redacted_command(
        ["longbench", "--api-key-env", PASTED_KEY, f"--base-url=http://a:{PASSWORD}@h/v1"]
    )
    assert _secrets_in(line) == [] and "--api-key-env '***'" in line
    assert redacted_command(["longbench", "--api-key-env", "MY_KEY"]).endswith("--api-key-env MY_KEY")
