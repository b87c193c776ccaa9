"""``longbench predict`` and ``longbench run`` on the real tiny model and the bundled sample set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from longbench.cli import main


@pytest.fixture(autouse=True)
def environment(tiny_model: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))  # builtin:tiny -> the session's tiny model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small shared CPU: one thread avoids OpenMP contention
    yield
    torch.set_num_threads(threads)


BASE = ["--model", "builtin:tiny", "--data", "sample", "--max-length", "800"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predict_writes_each_task_file_and_resumes(tmp_path: Path, capsys) -> None:
    argv = ["predict", *BASE, "--tasks", "trec,hotpotqa", "--limit", "2", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'tiny'}: 4 new predictions" in out
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == [
        "hotpotqa.jsonl",
        "run.json",
        "trec.jsonl",
    ]
    assert len(_lines(tmp_path / "tiny" / "trec.jsonl")) == 2
    before = (tmp_path / "tiny" / "trec.jsonl").read_bytes()
    assert main([*argv, "--batch-size", "2"]) == 0  # a re-run resumes: nothing left to do
    again = capsys.readouterr().out
    assert ": 0 new predictions" in again and "4 already there" in again
    assert (tmp_path / "tiny" / "trec.jsonl").read_bytes() == before


def test_model_name_and_shard_options(tmp_path: Path, capsys) -> None:
    argv = [
        "predict",
        *BASE,
        "--tasks",
        "trec",
        "--out",
        str(tmp_path),
        "--model-name",
        "mine",
        "--shard",
        "1/2",
    ]
    assert main(argv) == 0
    run = json.loads((tmp_path / "mine" / "run.shard-1-of-2.json").read_text(encoding="utf-8"))
    assert run["shard"] == [1, 2] and run["task_samples"] == {"trec": 5}
    assert len(_lines(tmp_path / "mine" / "trec.shard-1-of-2.jsonl")) == 2  # samples 1 and 3 of 0..4


def test_dump_prompts_writes_lines_and_no_predictions(tmp_path: Path, capsys) -> None:
    dump = tmp_path / "prompts.jsonl"
    argv = [
        "predict",
        *BASE,
        "--category",
        "Code",
        "--out",
        str(tmp_path / "pred"),
        "--dump-prompts",
        str(dump),
    ]
    assert main(argv) == 0
    assert "wrote 8 prompts (nothing generated)" in capsys.readouterr().out
    lines = _lines(dump)
    assert [line["dataset"] for line in lines] == ["lcc"] * 5 + ["repobench-p"] * 3
    assert all(set(line) == {"dataset", "_id", "prompt"} and line["prompt"] for line in lines)
    assert not (tmp_path / "pred").exists()


def test_chat_template_none_sends_raw_prompts(tmp_path: Path) -> None:
    raw, wrapped = tmp_path / "raw.jsonl", tmp_path / "wrapped.jsonl"
    base = ["predict", *BASE, "--tasks", "hotpotqa", "--limit", "1"]
    assert main([*base, "--chat-template", "none", "--dump-prompts", str(raw)]) == 0
    assert main([*base, "--dump-prompts", str(wrapped)]) == 0
    raw_prompt, wrapped_prompt = _lines(raw)[0]["prompt"], _lines(wrapped)[0]["prompt"]
    assert raw_prompt != wrapped_prompt and raw_prompt in wrapped_prompt


def test_a_single_jsonl_file_names_its_task(tmp_path: Path, capsys) -> None:
    source = Path(__file__).resolve().parents[1] / "data" / "sample" / "passage_count.jsonl"
    data = tmp_path / "passage_count.jsonl"
    data.write_bytes(source.read_bytes())
    argv = [
        "predict",
        "--model",
        "builtin:tiny",
        "--data",
        str(data),
        "--max-length",
        "600",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    assert [p.name for p in (tmp_path / "tiny").glob("*.jsonl")] == ["passage_count.jsonl"]


def test_run_predicts_then_scores(tmp_path: Path, capsys) -> None:
    metrics = tmp_path / "metrics"
    argv = ["run", *BASE, "--tasks", "trec,lcc", "--limit", "2", "--out", str(tmp_path / "pred")]
    assert main([*argv, "--metrics-out", str(metrics)]) == 0
    out = capsys.readouterr().out
    assert "Scores per task" in out and "lcc" in out
    result = json.loads((metrics / "result.json").read_text(encoding="utf-8"))
    assert set(result) >= {"trec", "lcc"}
    # the README's first run: where the report is, that these are no benchmark scores, and a picture in it
    assert f"open {metrics / 'report.html'}" in out
    assert "come from the bundled sample set" in out
    assert "<img" in (metrics / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--shard", "2/2"], "--shard '2/2'"),
        (["--shard", "x"], "expected I/N"),
        (["--tasks", "nosuch"], "unknown LongBench task 'nosuch'"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--data", "/no/such/data"], "/no/such/data"),
        (["--chat-template", "/no/such/template.jinja"], "cannot read chat template"),
        (["--e", "--tasks", "musique"], "unknown LongBench-E task"),
        (["--data", "/somewhere/custom.jsonl"], "name the file's task with --tasks"),
    ],
)
def test_bad_options_are_one_line_errors(options, message, tmp_path: Path, capsys) -> None:
    argv = ["predict", "--model", "builtin:tiny", "--data", "sample", "--out", str(tmp_path), *options]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("longbench: error: ") and message in err


def test_a_missing_model_directory_is_a_one_line_error_in_a_real_process(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "longbench",
        "predict",
        "--model",
        str(tmp_path / "absent"),
        "--data",
        "sample",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"longbench: error: model directory '{tmp_path / 'absent'}' does not exist"
    ]


def test_a_tiny_run_past_the_nominal_window_does_not_warn(tmp_path: Path) -> None:
    """qasper's prompt is cut to the window less its 128 new tokens; the chat format's tokens come on top, so
    generation passes 4,096 positions: transformers' reminder about that is noise for the tiny model."""
    command = [sys.executable, "-m", "longbench", "predict", "--model", "builtin:tiny", "--data", "sample",
               "--tasks", "qasper", "--limit", "1", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr
    assert "predefined maximum length" not in done.stderr, done.stderr
    assert "\r" not in done.stderr  # no library's progress drawing ("Loading weights") in a log either
