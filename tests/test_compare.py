"""`longbench compare`: paired differences equal the result files', p-values agree with a permutation
test written here, and folders with different samples are refused with one line naming the task."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
V1 = SHARED / "longbench-preds" / "v1"
needs_shared = pytest.mark.skipif(
    not (V1 / "llama3-8b-instruct").is_dir(), reason="shared predictions absent"
)


def sign_flip_p(a: list[float], b: list[float], permutations: int, seed: int) -> float:
    """Paired permutation test of mean(a) = mean(b): flip the sign of each pair's difference at random."""
    diffs = np.array(a) - np.array(b)
    observed = abs(diffs.mean())
    rng = np.random.default_rng(seed)
    count = 0
    for _ in range(permutations):
        signs = rng.choice([-1.0, 1.0], size=len(diffs))
        if abs((signs * diffs).mean()) >= observed - 1e-12:
            count += 1
    return (count + 1) / (permutations + 1)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (V1 / "llama3-8b-instruct").is_dir():
        pytest.skip("shared predictions absent")
    out = tmp_path_factory.mktemp("compare")
    proc = run_cli("compare", V1 / "llama2-7b-chat-4k", V1 / "llama3-8b-instruct", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "multiple comparisons" in proc.stdout
    return out


@needs_shared
def test_differences_equal_the_result_files(comparison: Path) -> None:
    a = json.loads((V1 / "llama2-7b-chat-4k" / "result.json").read_text())
    b = json.loads((V1 / "llama3-8b-instruct" / "result.json").read_text())
    data = json.loads((comparison / "comparison.json").read_text())
    assert set(data["tasks"]) == set(a)
    for task, row in data["tasks"].items():
        assert (row["a"], row["b"]) == (a[task], b[task])
        assert row["diff"] == round(a[task] - b[task], 2)
        lo, hi = row["ci95"]
        assert lo <= row["diff"] + 0.01 and row["diff"] - 0.01 <= hi
    english = {c: v["diff"] for c, v in data["categories"]["en"].items()}
    assert english["Single-Doc QA"] == pytest.approx(
        round(sum(a[t] - b[t] for t in ("narrativeqa", "qasper", "multifieldqa_en")) / 3, 2), abs=0.006
    )


@needs_shared
def test_p_values_agree_with_a_permutation_test(comparison: Path) -> None:
    data = json.loads((comparison / "comparison.json").read_text())
    paired: dict[str, tuple[list[float], list[float]]] = {}
    for line in (comparison / "paired_samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        a, b = paired.setdefault(row["dataset"], ([], []))
        a.append(row["a"])
        b.append(row["b"])
    for task, (a, b) in paired.items():
        p_boot = data["tasks"][task]["p"]
        p_perm = sign_flip_p(a, b, permutations=1000, seed=11)
        assert abs(p_boot - p_perm) < 0.04 + 0.3 * p_perm, (task, p_boot, p_perm)
        assert (p_boot < 0.05) == (p_perm < 0.05) or abs(p_perm - 0.05) < 0.02, (task, p_boot, p_perm)


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rows(n: int, correct: int, ids: bool, shift: int = 0) -> list[dict]:
    rows = []
    for i in range(n):
        row = {"pred": f"x{i}" if i < correct else "no", "answers": [f"x{i + shift}"], "all_classes": None}
        if ids:
            row["_id"] = f"id{i + shift}"
        rows.append(row)
    return rows


@pytest.mark.parametrize("ids", [True, False])
def test_different_samples_are_refused_naming_the_task(tmp_path: Path, ids: bool) -> None:
    _write(tmp_path / "a" / "hotpotqa.jsonl", _rows(20, 10, ids))
    _write(tmp_path / "a" / "trec.jsonl", [{**r, "all_classes": ["x"]} for r in _rows(20, 10, ids)])
    _write(tmp_path / "b" / "hotpotqa.jsonl", _rows(20, 12, ids))
    _write(tmp_path / "b" / "trec.jsonl", [{**r, "all_classes": ["x"]} for r in _rows(20, 10, ids, shift=1)])
    proc = run_cli("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "out")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "trec" in lines[0] and "different samples" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_samples_are_paired_by_id_whatever_the_order(tmp_path: Path) -> None:
    rows = _rows(30, 15, ids=True)
    _write(tmp_path / "a" / "hotpotqa.jsonl", rows)
    _write(tmp_path / "b" / "hotpotqa.jsonl", list(reversed(rows)))
    proc = run_cli("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    row = json.loads((tmp_path / "out" / "comparison.json").read_text())["tasks"]["hotpotqa"]
    assert row["diff"] == 0.0 and row["ci95"] == [0.0, 0.0] and row["p"] == 1.0


@needs_shared
def test_the_printed_table_shows_the_p_floor_as_a_bound_and_names_its_columns(comparison: Path) -> None:
    data = json.loads((comparison / "comparison.json").read_text())
    floor = round(1 / 1001, 4)
    at_floor = [task for task, row in data["tasks"].items() if row["p"] <= floor]
    assert at_floor  # these two models differ clearly on several tasks
    with open(comparison / "comparison.csv", newline="") as file:
        header, *rows = list(csv.reader(file))
    assert header[-2:] == ["p", "sig"]
    printed = {row[0]: row[5] for row in rows}
    from longbench.published import display_name

    assert {printed[display_name(task)] for task in at_floor} == {"<= 0.001"}
    assert all(cell == "<= 0.001" or float(cell) > floor for cell in printed.values())
