"""`longbench eval --v2`: result.py's row exactly, with and without stored pred/judge, and where it crashes.

The oracle ``result_py`` below is result.py rewritten from SPEC-v2 section 7 (whole-document parse first, then
JSON lines; ``int(judge)``; buckets; ``round(100*sum/n, 1)``; ``str(float)``; ``\\n``-joined TSV).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, write_jsonl  # noqa: E402
from hypothesis import given, settings
from hypothesis import strategies as st

from longbench.v2.scoring import extract_answer, result_txt, score_rows

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PARTIAL = SHARED / "longbench-preds" / "v2_partial"
needs_shared = pytest.mark.skipif(not PARTIAL.is_dir(), reason="../shared/longbench-preds/v2_partial absent")
HEADER = "Model\tOverall\tEasy\tHard\tShort\tMedium\tLong"


def rule(response: str) -> str | None:
    """SPEC-v2 section 6, written out independently."""
    response = response.replace("*", "")
    match = re.search(r"The correct answer is \(([A-D])\)", response)
    if match:
        return match.group(1)
    match = re.search(r"The correct answer is ([A-D])", response)
    return match.group(1) if match else None


def result_py(files: dict[str, list[dict]], compensated: bool = False) -> str:
    """The reference result.py's output for in-memory files (name -> records)."""
    lines = [HEADER]
    for name, records in files.items():
        buckets: dict[str, list[float]] = {k: [] for k in ("all", "easy", "hard", "short", "medium", "long")}
        for r in records:
            acc = 0.25 if compensated and r["pred"] is None else int(r["judge"])
            buckets["all"].append(acc)
            buckets["easy" if r["difficulty"] == "easy" else "hard"].append(acc)
            buckets[r["length"] if r["length"] in ("short", "medium") else "long"].append(acc)
        values = [str(round(100 * sum(v) / len(v), 1)) for v in buckets.values()]
        lines.append("\t".join([name, *values]))
    return "\n".join(lines)


def partial_records() -> list[dict]:
    text = (PARTIAL / "Llama-3.1-8B-Instruct.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@needs_shared
@pytest.mark.parametrize("stored", [True, False], ids=["stored-judge", "from-response"])
@pytest.mark.parametrize("compensated", [False, True])
def test_reference_row_on_v2_partial(tmp_path: Path, stored: bool, compensated: bool) -> None:
    folder = tmp_path / "results"
    records = partial_records()
    if not stored:
        records = [{k: v for k, v in r.items() if k not in ("pred", "judge")} for r in records]
    write_jsonl(folder / "Llama-3.1-8B-Instruct.jsonl", records)
    out = tmp_path / "metrics"
    flags = ["--compensated"] if compensated else []
    proc = run_cli("eval", "--v2", folder, "--out", out, *flags)
    assert proc.returncode == 0, proc.stderr
    published = "33.1\t36.8\t31.1\t37.5\t26.4\t0.0" if compensated else "31.6\t35.0\t29.8\t35.4\t25.9\t0.0"
    expected = f"{HEADER}\nLlama-3.1-8B-Instruct\t{published}"
    assert (out / "result.txt").read_bytes() == expected.encode()
    assert (out / "result.txt").read_text() == result_py(
        {"Llama-3.1-8B-Instruct": partial_records()}, compensated
    )
    assert published.replace("\t", "  ").split("  ")[0] in proc.stdout
    values = json.loads((out / "result.json").read_text())["Llama-3.1-8B-Instruct"]
    assert list(values.values()) == [float(v) for v in published.split("\t")]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 288 and sum(s["judge"] for s in samples) == 91
    assert "0 stored pred/judge disagree" in proc.stdout
    assert "Single-Document QA" in (out / "table_v2_domains.csv").read_text()
    signatures = [line for line in proc.stdout.splitlines() if line.startswith("signature: ")]
    mode = "compensated" if compensated else "reference"
    assert (
        len(signatures) == 1 and f"benchmark:LongBench-v2|mode:{mode}|" in signatures[0]
    )  # once, not per table
    assert f"mode:{mode}" in (out / "tables.md").read_text()


@needs_shared
def test_stored_judges_agree_with_the_rule_and_a_flipped_one_is_counted(tmp_path: Path) -> None:
    records = partial_records()
    assert all(rule(r["response"]) == r["pred"] for r in records)
    assert sum(extract_answer(r["response"]) is None for r in records) == 17
    records[0]["judge"] = not records[0]["judge"]
    write_jsonl(tmp_path / "m.jsonl", records)
    row = score_rows([tmp_path])[0]
    assert row.disagreements == 1
    assert result_txt([row]) == result_py({"m": records})  # the stored judge is still what is scored


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("The correct answer is (B)", "B"),
        ("the correct answer is (B)", None),
        ("The correct answer is: (B)", None),
        ("The correct answer is  (B)", None),
        ("The correct answer is\u00a0(B)", None),
        ("The correct answer is ( B )", None),
        ("The correct answer is (b)", None),
        ("The correct answer is (E)", None),
        ("The correct answer is Definitely (A)", "D"),
        ("The correct answer is Both A and C", "B"),
        ("The correct answer is All of the above", "A"),
        ("**The correct answer is (C)**", "C"),
        ("The correct answer is **C**", "C"),
        ("The correct answer i*s (C)", "C"),
        ("The correct answer is (E). The correct answer is B", "B"),
        ("The correct answer is B. The correct answer is (A)", "A"),
        ("The correct answer is （B）", None),
    ],
)
def test_extraction_rule(response: str, letter: str | None) -> None:
    assert extract_answer(response) == letter == rule(response)


record_strategy = st.fixed_dictionaries(
    {
        "_id": st.text(min_size=1, max_size=4),
        "difficulty": st.sampled_from(["easy", "hard", "other"]),
        "length": st.sampled_from(["short", "medium", "long", "x"]),
        "answer": st.sampled_from("ABCD"),
        "response": st.sampled_from(["The correct answer is (A)", "The correct answer is B", "none", "*"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(record_strategy, min_size=1, max_size=40, unique_by=lambda r: r["_id"]), st.booleans())
def test_rows_equal_result_py_on_random_files(records: list[dict], compensated: bool) -> None:
    for r in records:
        r["pred"] = rule(r["response"])
        r["judge"] = r["pred"] == r["answer"]
    buckets = {r["difficulty"] == "easy" for r in records}, {r["length"] for r in records}
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        write_jsonl(Path(folder) / "a.b.jsonl", records)
        rows = score_rows([Path(folder)], compensated)
    complete = len(buckets[0]) == 2 and {"short", "medium"} <= buckets[1] and buckets[1] - {"short", "medium"}
    if complete:
        assert result_txt(rows) == result_py({"a.b": records}, compensated)
    else:  # the reference divides by zero here; an empty bucket is written as "-"
        assert "-" in result_txt(rows).splitlines()[1].split("\t")


def test_where_the_reference_crashes_a_result_is_given(tmp_path: Path) -> None:
    """A one-line file, a blank line and a JSON array all score; the reference crashes on the first two."""
    one = {"_id": "1", "difficulty": "easy", "length": "short", "answer": "A", "pred": "A", "judge": True}
    two = {**one, "_id": "2", "difficulty": "hard", "length": "long", "judge": False}
    write_jsonl(tmp_path / "r" / "one.jsonl", [one])
    write_jsonl(tmp_path / "r" / "blank.jsonl", [one, two], end="\n\n\n")
    (tmp_path / "r" / "array.json").write_text(json.dumps([one, two]), encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("eval", "--v2", tmp_path / "r", "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = (out / "result.txt").read_text().split("\n")
    assert lines[1:] == [
        "array\t50.0\t100.0\t0.0\t100.0\t-\t0.0",
        "blank\t50.0\t100.0\t0.0\t100.0\t-\t0.0",
        "one\t100.0\t100.0\t-\t100.0\t-\t-",
    ]
    assert json.loads((out / "result.json").read_text())["one"]["hard"] is None
    assert "no records in Hard, Medium, Long" in proc.stderr


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        (
            '{"difficulty": "easy", "length": "short", "judge": true}\n{"difficulty": "ea\n',
            ":2:",
            "invalid JSON",
        ),
        ('{"difficulty": "easy", "length": "short"}\n', ":1:", "neither 'judge' nor"),
        ('{"difficulty": "easy", "judge": true}\n\n{"length": "short"}\n', ":1:", "no 'length'"),
        ('{"difficulty": "easy", "length": "short", "judge": 1}\n{}\n', ":1:", "'judge' is int"),
        ("[1, 2]", ":1:", "expected a JSON object"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, content: str, where: str, reason: str
) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "good.jsonl").write_text(
        '{"difficulty": "easy", "length": "short", "judge": true}\n{"difficulty": "x", "length": "y", "judge": true}\n'
    )
    (tmp_path / "r" / "m.jsonl").write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("eval", "--v2", tmp_path / "r", "--out", out)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert f"m.jsonl{where}" in proc.stderr and reason in proc.stderr
    assert not out.exists()


def test_duplicate_ids_identical_dropped_disagreeing_refused(tmp_path: Path) -> None:
    one = {"_id": "1", "difficulty": "easy", "length": "short", "pred": "A", "judge": True}
    write_jsonl(tmp_path / "a" / "m.jsonl", [one, one, {**one, "_id": "2", "judge": False}])
    assert score_rows([tmp_path / "a"])[0].values()["Overall"] == 50.0
    write_jsonl(tmp_path / "b" / "m.jsonl", [one, {**one, "judge": False}])
    proc = run_cli("eval", "--v2", tmp_path / "b", "--out", tmp_path / "out")
    assert proc.returncode != 0 and "m.jsonl:2: _id 1 appears twice" in proc.stderr


def test_default_folders_and_the_one_set_writer(tmp_path: Path) -> None:
    """eval --v2 writes metrics_v2/<name>/ (metrics_v2_compensated/... with --compensated) as one set, replaces its own
    earlier set, and refuses a folder holding files it did not write, before scoring, leaving it as it was."""
    one = {"_id": "1", "difficulty": "easy", "length": "short", "answer": "A", "pred": "A", "judge": True}
    write_jsonl(tmp_path / "r" / "m.jsonl", [one, {**one, "_id": "2", "pred": None, "judge": False}])

    def run_here(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "longbench", "eval", "--v2", "r", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    for flags, folder, overall in (
        ([], "metrics_v2/r", 50.0),
        (["--compensated"], "metrics_v2_compensated/r", 62.5),
    ):
        assert run_here(*flags).returncode == 0
        assert json.loads((tmp_path / folder / "result.json").read_text())["m"]["overall"] == overall
    again = run_here()  # its own earlier set is replaced
    assert again.returncode == 0, again.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    refused = run_here("--out", "mine")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "did not write" in refused.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_a_torn_last_line_is_left_out_with_a_warning(tmp_path: Path) -> None:
    """A result file cut by a crash mid-write is scored as far as it goes (the rule of predict and v1's eval)."""
    whole = '{"difficulty": "easy", "length": "short", "judge": true}\n'
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "m.jsonl").write_text(whole + '{"difficulty": "hard", "length": "lo')
    proc = run_cli("eval", "--v2", tmp_path / "r", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "m.jsonl:2: a torn last line" in proc.stderr
    assert (tmp_path / "o" / "result.txt").read_text().split("\n")[1].startswith("m\t100.0\t100.0\t-")
