"""``longbench predict`` killed with SIGKILL at random moments, then re-run until done, equals an uninterrupted run.

Real subprocesses, the real tiny model, real files. Kill moments are seeded: one during start-up, the others
after a random number of predictions has reached the disk, plus a random delay, so that kills land while
samples are being generated and written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

TASKS = "hotpotqa,passage_count,trec,lcc,multifieldqa_zh,samsum"
SAMPLES = 3 + 3 + 5 + 5 + 3 + 3
KILLS = 4


def _command(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "longbench",
        "predict",
        "--model",
        "builtin:tiny",
        "--data",
        "sample",
        "--tasks",
        TASKS,
        "--max-length",
        "800",
        "--out",
        str(out),
    ]


def _environment(tiny_model: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LONGBENCH_CACHE=str(tiny_model.parent),
        HF_HUB_OFFLINE="1",
        TQDM_DISABLE="1",
        OMP_NUM_THREADS="1",  # a small shared CPU: one thread avoids OpenMP contention
    )
    return env


def _line_count(folder: Path) -> int:
    return sum(
        path.read_bytes().count(b"\n") for path in folder.glob("*.jsonl") if path.name != "errors.jsonl"
    )


def _read(folder: Path) -> dict[str, list[dict]]:
    files = {}
    for path in sorted(folder.glob("*.jsonl")):
        raw = path.read_bytes()
        assert raw.endswith(b"\n"), f"{path} ends in a torn line"
        files[path.name] = [json.loads(line) for line in raw.decode("utf-8").splitlines()]  # every line valid
    return files


def _kill_after(process: subprocess.Popen, folder: Path, target: int, jitter: float) -> None:
    """SIGKILL ``process`` once ``target`` predictions are on disk (or at once if it already exited)."""
    while process.poll() is None and _line_count(folder) < target:
        time.sleep(0.02)
    time.sleep(jitter)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(
    tiny_model, tmp_path: Path
) -> None:
    env = _environment(tiny_model)
    clean = subprocess.run(_command(tmp_path / "clean"), env=env, capture_output=True, text=True, timeout=240)
    assert clean.returncode == 0, clean.stderr
    expected = _read(tmp_path / "clean" / "tiny")
    assert sum(len(lines) for lines in expected.values()) == SAMPLES

    out = tmp_path / "killed"
    folder = out / "tiny"
    rng = random.Random(20240811)
    progress = []
    for attempt in range(KILLS):
        process = subprocess.Popen(
            _command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if attempt == 0:  # during start-up, before anything is written
            time.sleep(rng.uniform(0.2, 1.5))
            process.send_signal(signal.SIGKILL)
            process.wait()
        else:
            done = _line_count(folder) if folder.exists() else 0
            target = rng.randint(done + 1, max(done + 1, SAMPLES - 2))
            _kill_after(process, folder, target, rng.uniform(0.0, 0.15))
        assert process.returncode == -signal.SIGKILL, f"attempt {attempt} finished before it was killed"
        progress.append(_line_count(folder) if folder.exists() else 0)
    assert any(0 < n < SAMPLES for n in progress), progress  # the kills really interrupted generation

    runs = 0
    while True:  # re-run until complete, as a user would
        runs += 1
        finished = subprocess.run(_command(out), env=env, capture_output=True, text=True, timeout=240)
        assert finished.returncode == 0, finished.stderr
        if _line_count(folder) == SAMPLES or runs == 3:
            break
    assert runs == 1  # a single re-run completes the work

    got = _read(folder)
    assert set(got) == set(expected)
    for name, lines in got.items():
        ids = [line["_id"] for line in lines]
        assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
        assert {line["_id"]: line for line in lines} == {line["_id"]: line for line in expected[name]}
    assert not (folder / "errors.jsonl").exists()
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert run["complete"] is True and sum(run["task_samples"].values()) == SAMPLES
