"""What `eval` and `compare` score and how complete it is: `--tasks`, LongBench-E's intervals, refused
published rows and radar, completeness measured against the benchmark (a real `predict --data sample
--limit`, unverified data), output health counted from the lines, and runs of one model with several seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_eval_cli import qa_rows, run_cli, write_jsonl

from longbench.tasks import all_tasks


def model(root: Path, tasks: dict[str, tuple[int, int]]) -> Path:
    """``root`` holding, per task, n QA-style rows of which ``correct`` are right."""
    for task, (n, correct) in tasks.items():
        write_jsonl(root / f"{task}.jsonl", qa_rows(n, correct))
    return root


def test_eval_tasks_scores_only_those_tasks(tmp_path: Path) -> None:
    folder = model(
        tmp_path / "pred" / "toy", {"hotpotqa": (200, 50), "musique": (200, 100), "qasper": (200, 20)}
    )
    proc = run_cli("eval", folder, "--tasks", "hotpotqa,qasper", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "o" / "result.json").read_text()) == {"qasper": 10.0, "hotpotqa": 25.0}
    unknown = run_cli("eval", folder, "--tasks", "hotpotqa,nope", "--out", tmp_path / "o2")
    assert unknown.returncode != 0 and len(unknown.stderr.strip().splitlines()) == 1
    assert "nope" in unknown.stderr and not (tmp_path / "o2").exists()


def test_compare_tasks_pairs_a_qa_only_run_with_a_full_run(tmp_path: Path) -> None:
    """The paper's compression experiment: a compressed run holds the QA tasks only."""
    plain = model(
        tmp_path / "plain" / "llm", {"hotpotqa": (200, 50), "musique": (200, 100), "qasper": (200, 1)}
    )
    compressed = model(tmp_path / "bm25" / "llm-bm25", {"hotpotqa": (200, 80), "musique": (200, 90)})
    refused = run_cli("compare", compressed, plain, "--out", tmp_path / "c0")
    assert refused.returncode != 0 and "qasper: present in only one" in refused.stderr
    proc = run_cli("compare", compressed, plain, "--tasks", "hotpotqa,musique", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert set(data["tasks"]) == {"hotpotqa", "musique"}
    assert data["tasks"]["hotpotqa"]["diff"] == 15.0 and data["tasks"]["musique"]["diff"] == -5.0


def e_model(root: Path) -> Path:
    """LongBench-E predictions of two tasks, lengths spread over the three buckets."""
    for task, correct in (("hotpotqa", 120), ("multifieldqa_en", 60)):
        rows = qa_rows(300, correct)
        rows = rows[::3] + rows[1::3] + rows[2::3]  # right answers in every length bucket
        write_jsonl(root / f"{task}.jsonl", rows)
    return root


def test_longbench_e_shows_intervals(tmp_path: Path) -> None:
    folder = e_model(tmp_path / "pred_e" / "toy")
    proc = run_cli("eval", folder, "--e", "--ci", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    for task in ("hotpotqa", "multifieldqa_en"):
        lo, hi = summary["ci95"]["tasks"][task]
        assert lo < hi
        for bucket, (blo, bhi) in summary["ci95"]["buckets"][task].items():
            assert blo <= result[task][bucket] <= bhi
            assert f"{result[task][bucket]:.2f} [{blo:.1f}, {bhi:.1f}]" in proc.stdout  # the tables show them
    assert "[lo, hi]: 95% bootstrap interval" in proc.stdout


def test_longbench_e_published_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = e_model(tmp_path / "pred_e" / "toy")
    proc = run_cli("eval", folder, "--e", "--published", "--out", tmp_path / "o")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "LongBench-E has no published table" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_longbench_e_plots_include_the_radar(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from test_plots import _full_model

    from longbench.evaluation import evaluate
    from longbench.plots import e_radar

    folder = _full_model(tmp_path / "pred_e", "gamma", 2)
    (result,) = evaluate([folder], e=True, workers=1)
    (ax,) = e_radar([result]).axes
    labels = [label.get_text() for label in ax.get_xticklabels()]
    english = {t.category for t in all_tasks(e=True) if t.language == "en"}
    assert len(labels) == len(english)
    (line,) = ax.get_lines()
    qa = [
        result.task_score(t.name)
        for t in all_tasks(e=True)
        if t.category == "Single-Doc QA" and t.language == "en"
    ]
    assert line.get_ydata()[labels.index("Single-Doc QA")] == pytest.approx(np.mean(qa))
    proc = run_cli("eval", folder, "--e", "--plots", "--workers", "1", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (tmp_path / "o" / "plots").iterdir()} >= {"radar.png", "radar.svg", "length.png"}


def test_a_limited_sample_set_run_is_partial_against_the_benchmark(tmp_path: Path, tiny_model: Path) -> None:
    """A real `predict --data sample --limit 2`: run.json says 2 samples were planned, so nothing is
    missing for the run, but the benchmark's trec has 200: partial in summary.json, titles, CSV, signature."""
    env = {
        **os.environ,
        "LONGBENCH_CACHE": str(tiny_model.parent),
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    command = [sys.executable, "-m", "longbench", "predict", "--model", "builtin:tiny", "--data", "sample"]
    command += ["--tasks", "trec", "--limit", "2", "--max-length", "300", "--out", str(tmp_path / "pred")]
    made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "pred" / "tiny"
    proc = run_cli("eval", folder, "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["missing"] == {} and summary["partial"] == {"trec": {"samples": 2, "expected": 200}}
    assert "|partial:2/200" in summary["signature"]
    tables = (tmp_path / "o" / "tables.md").read_text()
    assert "### Scores per task: Few-shot Learning (PARTIAL: trec" in tables
    csv = (tmp_path / "o" / "table_tasks_few-shot_learning.csv").read_text().splitlines()
    assert csv[0].endswith(",partial") and csv[1].endswith(",trec 2/200")
    assert "tiny/trec: partial, 2 of the benchmark's 200 samples scored" in proc.stdout
    assert "tiny: scored on the bundled sample set" in proc.stdout
    assert f"open {tmp_path / 'o' / 'report.html'}" in proc.stdout


def test_unverified_data_is_marked_and_signed_apart(tmp_path: Path) -> None:
    full = model(tmp_path / "a" / "toy", {"hotpotqa": (200, 50)})
    (full / "run.json").write_text(json.dumps({"verify": True}))
    edited = model(tmp_path / "b" / "toy", {"hotpotqa": (200, 50)})
    (edited / "run.json").write_text(json.dumps({"verify": False}))
    signatures = {}
    for name, folder in (("a", full), ("b", edited)):
        proc = run_cli("eval", folder, "--out", tmp_path / f"o-{name}")
        assert proc.returncode == 0, proc.stderr
        signatures[name] = json.loads((tmp_path / f"o-{name}" / "summary.json").read_text())
        if name == "b":
            assert "warning: toy: data used without checking its sha256" in proc.stderr
    assert signatures["a"]["data_verified"] and not signatures["b"]["data_verified"]
    assert signatures["b"]["signature"] == signatures["a"]["signature"] + "|verify:no"
    csv = (tmp_path / "o-b" / "table_scores_per_task.csv").read_text()
    assert "UNVERIFIED DATA" in (tmp_path / "o-b" / "tables.md").read_text()
    assert "UNVERIFIED DATA" in (tmp_path / "o-b" / "report.html").read_text()
    assert "partial" not in (tmp_path / "o-a" / "table_scores_per_task.csv").read_text() and "toy" in csv


def test_output_health_per_task_and_in_total(tmp_path: Path) -> None:
    rows = qa_rows(200, 100)
    for row in rows[:4]:  # thinking cut by the budget: no answer
        row.update(pred="", thinking="so the answer", finish_reason="length")
    for row in rows[4:7]:  # an answer cut at the limit
        row.update(thinking=None, finish_reason="length", completion_tokens=32)
    rows[7].update(pred="", thinking=None, finish_reason="stop")  # empty, nothing else
    write_jsonl(tmp_path / "toy" / "hotpotqa.jsonl", rows)
    write_jsonl(tmp_path / "toy" / "musique.jsonl", qa_rows(200, 100))  # old lines: no such fields
    proc = run_cli("eval", tmp_path / "toy", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    health = json.loads((tmp_path / "o" / "summary.json").read_text())["output_health"]
    want = {"thinking_unfinished": 4, "answer_truncated": 3, "empty": 5}
    assert health["total"] == want and health["tasks"]["hotpotqa"] == want
    assert set(health["tasks"]["musique"].values()) == {0}
    assert "toy: output health: thinking_unfinished 4, answer_truncated 3, empty 5" in proc.stdout
    assert "output health" in (tmp_path / "o" / "report.html").read_text()


def test_seeded_runs_of_one_model_give_mean_and_spread(tmp_path: Path) -> None:
    scores = {1: 25.0, 2: 40.0, 3: 30.0}
    folders = []
    for seed, score in scores.items():
        folder = model(tmp_path / f"run{seed}" / "toy", {"hotpotqa": (200, int(2 * score))})
        (folder / "run.json").write_text(json.dumps({"seed": seed}))
        folders.append(folder)
    shard = model(tmp_path / "run1b" / "toy", {"hotpotqa": (200, 50)})  # a second shard folder of seed 1
    (shard / "run.json").write_text(json.dumps({"seed": 1}))
    proc = run_cli("eval", *folders, shard, "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    spread = json.loads((tmp_path / "o" / "seeds.json").read_text())["toy"]["hotpotqa"]
    values = list(scores.values())
    assert spread == {
        "mean": round(float(np.mean(values)), 2),
        "std": round(float(np.std(values, ddof=1)), 2),
        "min": 25.0,
        "max": 40.0,
        "runs": 3,
    }
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir()) == [
        f"toy@seed{s}" for s in scores
    ]
    assert "toy across seeds" in proc.stdout


def seeded(root: Path, name: str, correct: dict[int, int]) -> list[Path]:
    """``root/run<S>/<name>`` per seed S, hotpotqa with ``correct[S]`` of 200 right, run.json recording S."""
    folders = []
    for seed, n in correct.items():
        folder = model(root / f"run{seed}" / name, {"hotpotqa": (200, n)})
        (folder / "run.json").write_text(json.dumps({"seed": seed}))
        folders.append(folder)
    return folders


def test_compare_pairs_seeded_runs_seed_by_seed(tmp_path: Path) -> None:
    a = seeded(tmp_path, "a", {1: 60, 2: 70, 3: 90})
    b = seeded(tmp_path, "b", {1: 80, 2: 80, 3: 80})
    proc = run_cli("compare", *a, *b, "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    spread = json.loads((tmp_path / "c" / "comparison_seeds.json").read_text())
    diffs = []
    for seed in (1, 2, 3):
        one = json.loads((tmp_path / "c" / f"seed{seed}" / "comparison.json").read_text())["tasks"][
            "hotpotqa"
        ]
        assert (one["a"], one["b"]) == ({1: 30.0, 2: 35.0, 3: 45.0}[seed], 40.0)
        diffs.append(one["diff"])
    row = spread["spread"]["HotpotQA"]
    assert spread["seeds"] == ["1", "2", "3"] and row["seeds"] == 3
    assert row["mean_diff"] == round(float(np.mean(diffs)), 2) and row["std"] == round(
        float(np.std(diffs, ddof=1)), 2
    )
    assert (row["min"], row["max"]) == (min(diffs), max(diffs))
    assert "a vs b across seeds 1, 2, 3" in proc.stdout
    other = seeded(tmp_path / "x", "b", {1: 80, 4: 80})
    refused = run_cli("compare", *a, *other, "--out", tmp_path / "c2")
    assert refused.returncode != 0 and "pair runs of the same seeds" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "c2").exists()


def test_compare_merges_the_shard_folders_of_each_model(tmp_path: Path) -> None:
    rows_a, rows_b = qa_rows(200, 50), qa_rows(200, 120)
    folders = []
    for name, rows in (("a", rows_a), ("b", rows_b)):
        for shard in range(2):
            write_jsonl(tmp_path / f"s{shard}" / name / "hotpotqa.jsonl", rows[shard::2])
            folders.append(tmp_path / f"s{shard}" / name)
    proc = run_cli("compare", *folders, "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    row = json.loads((tmp_path / "c" / "comparison.json").read_text())["tasks"]["hotpotqa"]
    assert (row["a"], row["b"], row["diff"]) == (25.0, 60.0, -35.0)
