"""Eval never deletes what it did not write and never replaces another run's results: files at any depth,
names that look like patterns, lock files, default folders per comparison. The real CLI on real files."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_eval_outputs import predictions, run_cli, snapshot, write_jsonl  # noqa: E402


def test_a_users_file_deep_in_an_output_set_is_never_deleted(tmp_path: Path) -> None:
    a, b = predictions(tmp_path / "a", 20, 5).parent, predictions(tmp_path / "b", 20, 9).parent
    (a / "toy").rename(a / "m1")
    (b / "toy").rename(b / "m2")
    out = tmp_path / "out"
    first = run_cli("eval", a / "m1", b / "m2", "--out", out)
    assert first.returncode == 0, first.stderr
    assert (out / "m1" / "result.json").is_file()  # a per-model folder inside the set
    (out / "m1" / "notes.txt").write_text("the user's own")  # beside files eval wrote, one level down
    before = snapshot(out)
    again = run_cli("eval", a / "m1", b / "m2", "--out", out)
    assert again.returncode == 2 and "did not write" in again.stderr, again.stderr
    assert snapshot(out) == before


def test_an_output_name_is_not_a_pattern(tmp_path: Path) -> None:
    pred = predictions(tmp_path / "pred", 20, 5)
    metrics = tmp_path / "metrics"
    in_progress = metrics / ".a.tmp-k3x9"  # another eval's set, being written into metrics/a
    in_progress.mkdir(parents=True)
    (in_progress / "result.json").write_text("{}")
    done = run_cli("eval", pred, "--out", metrics / "[ab]")
    assert done.returncode == 0, done.stderr
    assert (metrics / "[ab]" / "result.json").is_file()
    assert (in_progress / "result.json").read_text() == "{}"


def test_no_lock_file_is_left_beside_the_output(tmp_path: Path) -> None:
    pred = predictions(tmp_path / "pred", 20, 5)
    for _ in range(2):  # a first set, then its replacement
        assert run_cli("eval", pred, "--out", tmp_path / "metrics" / "toy").returncode == 0
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["toy"]


def test_default_folders_are_named_after_what_is_scored(tmp_path: Path) -> None:
    for name, correct in (("a", 3), ("b", 6), ("c", 9)):
        predictions(tmp_path / "pred" / name, 20, correct).rename(tmp_path / "pred" / name / name)
    readme = (Path(__file__).resolve().parents[1] / "metrics" / "README.md").read_text()
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "README.md").write_text(
        readme
    )  # as in the repository (docs/compression.md step 3)
    for pair in (("a", "b"), ("a", "c")):
        done = run_cli("eval", *(f"pred/{n}/{n}" for n in pair), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "metrics").iterdir())
    assert names == ["README.md", "a+b", "a+c"]  # both comparisons kept
    assert (tmp_path / "metrics" / "README.md").read_text() == readme
    one = {"_id": "1", "difficulty": "easy", "length": "short", "answer": "A", "pred": "A", "judge": True}
    for model in ("m1", "m2"):
        write_jsonl(tmp_path / "v2" / f"{model}.jsonl", [one])
        assert run_cli("eval", "--v2", f"v2/{model}.jsonl", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "metrics_v2").iterdir()) == ["m1", "m2"]


def test_model_names_are_escaped_in_csv_and_markdown(tmp_path: Path) -> None:
    import csv

    names = ("=HYPERLINK(A1)", "a|b")
    for name, correct in zip(names, (4, 8), strict=True):
        predictions(tmp_path / "pred" / str(correct), 20, correct).rename(
            tmp_path / "pred" / str(correct) / name
        )
    done = run_cli("eval", *(tmp_path / "pred" / c / n for c, n in (("4", names[0]), ("8", names[1]))),
                   "--out", tmp_path / "out")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out" / "table_scores_per_task.csv", newline="") as file:
        header, row = list(csv.reader(file))
    # 20 of hotpotqa's 200 samples: partial, so the CSV also has its "partial" column
    assert header == ["Task", "'=HYPERLINK(A1)", "a|b", "partial"]
    assert row[:3] == ["hotpotqa", "20.00*", "40.00*"] and row[3]
    table = (tmp_path / "out" / "tables.md").read_text()
    header_line = next(line for line in table.splitlines() if line.startswith("| Task |"))
    assert header_line.count("|") - header_line.count("\\|") == 4 and "a\\|b" in header_line


def test_the_signature_is_printed_once_per_output_without_absolute_paths(tmp_path: Path) -> None:
    import json

    from longbench.signature import signature

    for name, correct in (("a", 3), ("b", 6)):
        predictions(tmp_path / "pred" / name, 20, correct).rename(tmp_path / "pred" / name / name)
    done = run_cli(
        "eval", tmp_path / "pred" / "a" / "a", tmp_path / "pred" / "b" / "b", "--out", tmp_path / "o"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("signature:") == 1, done.stdout
    assert (tmp_path / "o" / "tables.md").read_text().count("signature:") == 1
    derived = tmp_path / "somewhere" / "private" / "bm25-c500"
    run = {"compression": {"method": "bm25", "derived_data": str(derived), "source": str(tmp_path / "data")}}
    (tmp_path / "pred" / "a" / "a" / "run.json").write_text(json.dumps({**run, "task_samples": {}}))
    signed = signature([tmp_path / "pred" / "a" / "a"], e=False, corrected=False)
    assert "derived_data=bm25-c500" in signed and str(tmp_path) not in signed
