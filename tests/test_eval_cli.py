"""`longbench eval`: reference-shaped outputs, tables, shard merging, and bad input that never corrupts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, write_jsonl  # noqa: E402

from longbench.published import paper_layout
from longbench.tasks import all_tasks, get_task

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PREDS = SHARED / "longbench-preds"


def qa_rows(n: int, correct: int, with_ids: bool = True) -> list[dict]:
    """n hotpotqa-style rows, the first `correct` of them answered exactly."""
    rows = []
    for i in range(n):
        row = {
            "pred": f"answer {i}" if i < correct else "wrong",
            "answers": [f"answer {i}"],
            "all_classes": None,
            "length": 1000 * (i % 10),
        }
        if with_ids:
            row["_id"] = f"id{i:04d}"
        rows.append(row)
    return rows


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_scores_tables_and_files(tmp_path: Path) -> None:
    model = tmp_path / "pred" / "toy"
    write_jsonl(model / "hotpotqa.jsonl", qa_rows(200, 50))
    write_jsonl(model / "musique.jsonl", qa_rows(200, 100))
    out = tmp_path / "out"
    proc = run_cli("eval", model, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "result.json").read_text()) == {"hotpotqa": 25.0, "musique": 50.0}
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 400
    assert samples[0] == {"dataset": "hotpotqa", "index": 0, "score": 1.0, "_id": "id0000"}
    assert samples[399]["score"] == 0.0 and samples[399]["index"] == 199
    assert "Scores per task" in proc.stdout and "25.00" in proc.stdout
    csv_text = (out / "table_scores_per_task.csv").read_text()
    assert csv_text.splitlines() == ["Task,toy", "hotpotqa,25.00", "musique,50.00"]
    # categories with missing tasks show "-", never a partial mean
    assert "| toy | - | - | - | - | - | - | - |" in (out / "tables.md").read_text()


def test_recursion_zeroed_samples_are_counted_and_corrected_on_request(tmp_path: Path) -> None:
    """A 1,000-word sentence makes the reference rouge's backtrack overflow the stack: scored 0, and said so."""
    model = tmp_path / "pred" / "toy"
    long_prediction = " ".join(f"w{i}" for i in range(1000))
    rows = [
        {"pred": long_prediction, "answers": ["w1 w2 w3"], "all_classes": None, "length": 10},
        {"pred": "w1 w2", "answers": ["w1 w2 w3"], "all_classes": None, "length": 10},
    ]
    write_jsonl(model / "gov_report.jsonl", rows)
    proc = run_cli("eval", model, "--out", tmp_path / "ref")
    assert proc.returncode == 0, proc.stderr
    assert "toy: 1 sample(s) overflow the reference rouge's recursion limit, scored 0" in proc.stdout
    ref_samples = [json.loads(line) for line in (tmp_path / "ref" / "samples.jsonl").read_text().splitlines()]
    assert ref_samples[0]["score"] == 0.0 and ref_samples[0]["recursion_zeroed"] is True
    assert "recursion_zeroed" not in ref_samples[1]
    assert json.loads((tmp_path / "ref" / "summary.json").read_text())["recursion_zeroed"] == {
        "gov_report": 1
    }

    proc = run_cli("eval", model, "--corrected", cwd=tmp_path)  # default folder: metrics_corrected/<model>
    assert proc.returncode == 0, proc.stderr
    corrected = tmp_path / "metrics_corrected" / "toy"
    samples = [json.loads(line) for line in (corrected / "samples.jsonl").read_text().splitlines()]
    p, r = 3 / 1000, 1.0  # the LCS is the three answer words
    assert samples[0]["score"] == pytest.approx(2 * p * r / (p + r + 1e-8))
    assert samples[1]["score"] == ref_samples[1]["score"]
    assert "mode:corrected" in (corrected / "summary.json").read_text()


def test_longbench_e_buckets(tmp_path: Path) -> None:
    model = tmp_path / "toy"
    rows = qa_rows(300, 300)
    for i, row in enumerate(rows):
        row["length"] = [100, 5000, 9000][i % 3]
        if i % 3 == 2:
            row["pred"] = "no"
    write_jsonl(model / "hotpotqa.jsonl", rows)
    proc = run_cli("eval", model, "--e", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result == {"hotpotqa": {"0-4k": 100.0, "4-8k": 100.0, "8k+": 0.0}}
    assert "LongBench-E toy" in proc.stdout


def test_category_table_matches_task_means(tmp_path: Path) -> None:
    """A full synthetic model: category = mean of its task scores, Avg = mean of the six categories."""
    model = tmp_path / "full"
    expected: dict[str, float] = {}
    rouge_match = 2.0 * ((1.0 * 1.0) / (1.0 + 1.0 + 1e-8))  # rouge's F for a one-word exact match
    for k, task in enumerate(all_tasks()):
        n, rows, total = task.samples, [], 0.0
        for i in range(n):
            hit = i % (k + 2) == 0
            answer = f"a{i}z"  # no class name is a substring of another
            if task.metric == "classification":
                row = {
                    "pred": answer if hit else "x",
                    "answers": [answer],
                    "all_classes": [f"a{j}z" for j in range(n)],
                }
            elif task.metric.startswith("retrieval"):
                gold = "段落3" if task.language == "zh" else "Paragraph 3"
                row = {"pred": "3" if hit else "4", "answers": [gold], "all_classes": None}
            elif task.metric == "count":
                row = {"pred": "7" if hit else "8", "answers": ["7"], "all_classes": None}
            else:
                row = {"pred": answer if hit else "", "answers": [answer], "all_classes": None}
            row["length"] = 100
            rows.append(row)
            total += (rouge_match if task.metric.startswith("rouge") else 1.0) if hit else 0.0
        write_jsonl(model / f"{task.name}.jsonl", rows)
        expected[task.name] = round(100 * total / n, 2)
    out = tmp_path / "out"
    proc = run_cli("eval", model, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "result.json").read_text()) == expected
    for language, csv_name in (("en", "table_english.csv"), ("zh", "table_chinese.csv")):
        categories = [
            sum(expected[t] for t in tasks) / len(tasks) for tasks in paper_layout(language).values()
        ]
        # the paper's order: Avg first
        want = [f"{sum(categories) / 6:.1f}"] + [f"{v:.1f}" for v in categories]
        row = (out / csv_name).read_text().splitlines()[1].split(",")
        assert row == ["full", *want]


def test_several_models_give_one_comparison(tmp_path: Path) -> None:
    for name, correct in (("a", 10), ("b", 20)):
        write_jsonl(tmp_path / "pred" / name / "hotpotqa.jsonl", qa_rows(200, correct))
    out = tmp_path / "out"
    proc = run_cli("eval", tmp_path / "pred" / "a", tmp_path / "pred" / "b", "--out", out)
    assert proc.returncode == 0, proc.stderr
    rows = (out / "table_scores_per_task.csv").read_text().splitlines()
    assert rows == ["Task,a,b", "hotpotqa,5.00,10.00"]
    assert json.loads((out / "b" / "result.json").read_text()) == {"hotpotqa": 10.0}


def test_shards_merge_by_id(tmp_path: Path) -> None:
    rows = qa_rows(200, 77)
    whole = tmp_path / "whole" / "toy"
    write_jsonl(whole / "hotpotqa.jsonl", rows)
    shards = [tmp_path / f"shard{i}" / "toy" for i in range(3)]
    for i, shard in enumerate(shards):
        write_jsonl(shard / "hotpotqa.jsonl", rows[i::3][::-1])  # any order within a shard
    assert run_cli("eval", whole, "--out", tmp_path / "o1").returncode == 0
    proc = run_cli("eval", *shards, "--out", tmp_path / "o2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o1" / "result.json").read_text() == (tmp_path / "o2" / "result.json").read_text()
    # identical duplicates across shards are fine; a disagreeing duplicate is refused
    write_jsonl(shards[0] / "hotpotqa.jsonl", rows[0::3] + [dict(rows[1], pred="changed")])
    proc = run_cli("eval", *shards, "--out", tmp_path / "o3")
    assert proc.returncode != 0
    assert "disagrees" in proc.stderr and "Traceback" not in proc.stderr
    assert files_under(tmp_path / "o3") == []


def test_missing_samples_reported(tmp_path: Path) -> None:
    rows = qa_rows(200, 200)
    shards = [tmp_path / f"s{i}" / "toy" for i in range(2)]
    write_jsonl(shards[0] / "hotpotqa.jsonl", rows[:50])
    write_jsonl(shards[1] / "hotpotqa.jsonl", rows[60:100])
    proc = run_cli("eval", *shards, "--out", tmp_path / "o")
    assert proc.returncode == 0
    assert "hotpotqa: 110 of 200 samples missing" in proc.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["missing"] == {"hotpotqa": 110}
    assert "100.00*" in proc.stdout


def test_run_json_declares_expected_counts(tmp_path: Path) -> None:
    model = tmp_path / "toy"
    write_jsonl(model / "hotpotqa.jsonl", qa_rows(3, 3))
    (model / "run.json").write_text(json.dumps({"task_samples": {"hotpotqa": 3}}))
    (model / "errors.jsonl").write_text("")
    proc = run_cli("eval", model, "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "missing" not in proc.stderr and "warning" not in proc.stderr


BAD_LINES = [
    (
        b'{"pred": "a", "answers": ["a"], "all_classes": null}\n{"pred": "a", "answers": ["a"]\n',
        2,
        "invalid JSON",
    ),
    (
        b'{"pred": "a", "answers": ["a"], "all_classes": null}\n{"answers": ["a"], "all_classes": null}\n',
        2,
        "missing field 'pred'",
    ),
    (b'{"pred": 3, "answers": ["a"], "all_classes": null}\n', 1, "field 'pred' must be a string"),
    (b'{"pred": "a", "answers": "a", "all_classes": null}\n', 1, "field 'answers'"),
    (
        b'{"pred": "a", "answers": ["a"], "all_classes": null}\n\n{"pred": "\xff\xfe", "answers": ["a"]}\n',
        3,
        "not valid UTF-8",
    ),
    (b"[1, 2]\n", 1, "expected a JSON object"),
]


@pytest.mark.parametrize(("content", "line", "message"), BAD_LINES)
def test_bad_prediction_line(tmp_path: Path, content: bytes, line: int, message: str) -> None:
    model = tmp_path / "toy"
    write_jsonl(model / "hotpotqa.jsonl", qa_rows(5, 5))
    (model / "musique.jsonl").write_bytes(content)
    out = tmp_path / "out"
    proc = run_cli("eval", model, "--out", out)
    assert proc.returncode != 0
    error_lines = proc.stderr.strip().splitlines()
    assert len(error_lines) == 1, proc.stderr
    assert f"musique.jsonl:{line}: " in error_lines[0] and message in error_lines[0]
    assert files_under(out) == []


def test_gold_data_a_metric_cannot_read(tmp_path: Path) -> None:
    """The reference crashes on these; we stop with the file and line instead."""
    cases = {
        "passage_retrieval_en": {"pred": "1", "answers": ["the first one"], "all_classes": None},
        "trec": {"pred": "Date", "answers": ["Date"], "all_classes": None},
    }
    for task, bad in cases.items():
        model = tmp_path / task / "toy"
        good = dict(bad, answers=["Paragraph 1"], all_classes=None if task != "trec" else ["Date"])
        write_jsonl(model / f"{task}.jsonl", [good, bad])
        proc = run_cli("eval", model, "--out", tmp_path / "o")
        assert proc.returncode != 0
        assert f"{task}.jsonl:2: " in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert files_under(tmp_path / "o") == []


def test_e_needs_length(tmp_path: Path) -> None:
    model = tmp_path / "toy"
    rows = qa_rows(3, 3)
    del rows[1]["length"]
    write_jsonl(model / "hotpotqa.jsonl", rows)
    proc = run_cli("eval", model, "--e", "--out", tmp_path / "o")
    assert proc.returncode != 0 and "hotpotqa.jsonl:2: missing field 'length'" in proc.stderr
    assert files_under(tmp_path / "o") == []


def test_empty_and_missing_directories(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli("eval", tmp_path / "empty", "--out", tmp_path / "o")
    assert proc.returncode != 0 and "no prediction files" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("eval", tmp_path / "nope", "--out", tmp_path / "o")
    assert proc.returncode != 0 and "not a directory" in proc.stderr
    assert files_under(tmp_path / "o") == []


def test_unknown_file_name_is_left_out_with_a_warning(tmp_path: Path) -> None:
    model = tmp_path / "toy"
    write_jsonl(model / "hotpotqa.jsonl", qa_rows(200, 20))
    write_jsonl(model / "hotpot_qa.jsonl", qa_rows(2, 0))
    proc = run_cli("eval", model, "--out", tmp_path / "o")
    assert proc.returncode == 0
    assert "hotpot_qa.jsonl: not a LongBench task file name; left out" in proc.stderr
    assert json.loads((tmp_path / "o" / "result.json").read_text()) == {"hotpotqa": 10.0}
    # narrativeqa has no LongBench-E variant: with --e it is an unknown name
    write_jsonl(model / "hotpotqa.jsonl", qa_rows(300, 20))  # LongBench-E's size (200 would be v1's)
    write_jsonl(model / "narrativeqa.jsonl", qa_rows(2, 0))
    proc = run_cli("eval", model, "--e", "--out", tmp_path / "o2")
    assert "narrativeqa.jsonl: not a LongBench-E task file name; left out" in proc.stderr


def test_duplicate_lines_of_a_rerun_are_flagged(tmp_path: Path) -> None:
    """The reference appends duplicates when re-run; files without ids can't be de-duplicated, so say so."""
    model = tmp_path / "toy"
    write_jsonl(model / "hotpotqa.jsonl", qa_rows(200, 20, with_ids=False) * 2)
    proc = run_cli("eval", model, "--out", tmp_path / "o")
    assert proc.returncode == 0
    assert "400 records for 200 samples" in proc.stderr
    with_ids = tmp_path / "ids"
    write_jsonl(with_ids / "hotpotqa.jsonl", qa_rows(200, 20) * 2)
    proc = run_cli("eval", with_ids, "--out", tmp_path / "o2")
    assert "200 duplicate record(s)" in proc.stderr
    assert json.loads((tmp_path / "o2" / "result.json").read_text()) == {"hotpotqa": 10.0}


@pytest.mark.skipif(not PREDS.is_dir(), reason="../shared/longbench-preds is absent")
@pytest.mark.parametrize(
    ("subset", "model"),
    [("v1", "llama2-7b-chat-4k"), ("v1", "llama3-8b-instruct"), ("e", "llama2-7b-chat-4k")],
)
def test_cli_reproduces_published_result_json(tmp_path: Path, subset: str, model: str) -> None:
    pred_dir = PREDS / subset / model
    args = ["eval", pred_dir, "--out", tmp_path / "o"] + (["--e"] if subset == "e" else [])
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    ours = json.loads((tmp_path / "o" / "result.json").read_text())
    assert ours == json.loads((pred_dir / "result.json").read_text())
    if subset == "v1":
        summary = json.loads((tmp_path / "o" / "summary.json").read_text())
        assert summary["missing"] == {}
        assert set(summary["samples"]) == {t.name for t in all_tasks()}
        assert sum(summary["samples"].values()) == 4750


@pytest.mark.skipif(not PREDS.is_dir(), reason="../shared/longbench-preds is absent")
def test_comparison_of_two_real_models(tmp_path: Path) -> None:
    dirs = [PREDS / "v1" / "llama2-7b-chat-4k", PREDS / "v1" / "llama3-8b-instruct"]
    proc = run_cli("eval", *dirs, "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    for language, name in (("en", "table_english.csv"), ("zh", "table_chinese.csv")):
        rows = (tmp_path / "o" / name).read_text().splitlines()
        assert [r.split(",")[0] for r in rows[1:]] == ["llama2-7b-chat-4k", "llama3-8b-instruct"]
        for row, pred_dir in zip(rows[1:], dirs, strict=True):
            published = json.loads((pred_dir / "result.json").read_text())
            categories = [sum(published[t] for t in ts) / len(ts) for ts in paper_layout(language).values()]
            assert row.split(",")[1:] == [f"{sum(categories) / 6:.1f}"] + [f"{c:.1f}" for c in categories]
    assert get_task("vcsum").metric == "rouge_zh"
