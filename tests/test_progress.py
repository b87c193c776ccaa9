"""Progress: per-task bars count every sample of the task this run predicts, and progress written to a file
(a Slurm or nohup log) is a plain line now and then, not a terminal drawing. The real CLI, the loopback server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer  # noqa: E402

from longbench.runner import _Progress  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_a_task_bar_counts_every_sample_of_the_task(monkeypatch) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    progress = _Progress({"trec": (3, 1), "qasper": (2, 0)}, settled=1 + 4)  # 4 skipped, 1 written at start
    progress._per_task = True  # bars as on a terminal
    for task in ("trec", "qasper", "trec", "qasper"):
        progress.advance(task, 5)
    bars = {task: (bar.n, bar.total) for task, bar in progress._bars.items()}
    overall = (progress.overall.n, progress.overall.total)
    progress.close()
    assert bars == {"trec": (3, 3), "qasper": (2, 2)}
    assert overall == (9, 9)


def test_progress_into_a_log_file_is_plain_lines(tmp_path: Path, tiny_model: Path) -> None:
    log = tmp_path / "stderr.log"
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env.update(HF_HUB_OFFLINE="1", LONGBENCH_CACHE=str(tiny_model.parent), LONGBENCH_PROGRESS_INTERVAL="0.3")
    with FakeOpenAIServer(latency=0.05) as server, open(log, "w") as stderr:
        command = [sys.executable, "-m", "longbench", "predict", "--backend", "openai", "--model", "fake-model",
                   "--tokenizer", "builtin:tiny", "--base-url", server.url, "--data", "sample", "--max-length",
                   "1000", "--concurrency", "1", "--out", str(tmp_path / "pred")]  # fmt: skip
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300)
    assert done.returncode == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b[" not in text, repr(text[:300])
    lines = [line for line in text.splitlines() if line.startswith("all tasks: ")]
    assert lines, text
    pattern = r"all tasks: \d+/67 samples \(\d+%\), [\d.]+ samples/s, [\d.]+ tok/s(, ETA \d+:\d\d:\d\d)?"
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    assert len(text) < 200 * len(lines) + 2000  # a line now and then, not a redraw ten times a second
