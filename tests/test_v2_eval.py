"""`eval --v2` through the one eval path: shards merged into one row, intervals, the leaderboard's rows in
the run's mode, figures and report.html, `compare --v2` (checked as v1's compare is), completeness against
the benchmark's 503 records, and output health counted from the lines."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from test_compare import sign_flip_p
from test_eval_cli import run_cli, write_jsonl

from longbench.v2.scoring import DOMAINS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LEADERBOARD = SHARED / "spec" / "published-v2.md"
COLUMNS = ["Overall", "Easy", "Hard", "Short", "Medium", "Long"]


def records(n: int = 503, seed: int = 0, right: float = 0.4) -> list[dict]:
    """``n`` v2 result records in the benchmark's bucket proportions, each judged right with chance ``right``."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        answer = "ABCD"[i % 4]
        pred = answer if rng.random() < right else "ABCD"[(i + 1) % 4]
        rows.append(
            {
                "_id": f"id{i:04d}",
                "domain": DOMAINS[i % 6],
                "difficulty": "easy" if i % 503 < 192 else "hard",
                "length": "short" if i % 503 < 180 else "medium" if i % 503 < 395 else "long",
                "answer": answer,
                "response": f"The correct answer is ({pred})",
                "pred": pred,
                "judge": pred == answer,
            }
        )
    return rows


def test_two_shards_give_the_unsharded_row(tmp_path: Path) -> None:
    rows = records()
    write_jsonl(tmp_path / "whole" / "tiny.jsonl", rows)
    for i in range(2):
        write_jsonl(tmp_path / "sharded" / f"tiny.shard-{i}-of-2.jsonl", rows[i::2])
    for folder in ("whole", "sharded"):
        proc = run_cli("eval", "--v2", tmp_path / folder, "--ci", "--out", tmp_path / f"o-{folder}")
        assert proc.returncode == 0, proc.stderr
    whole, sharded = tmp_path / "o-whole", tmp_path / "o-sharded"
    assert (whole / "result.txt").read_text() == (sharded / "result.txt").read_text()
    assert (whole / "result.txt").read_text().count("\n") == 1  # one row, named tiny
    assert json.loads((sharded / "result.json").read_text()).keys() == {"tiny"}
    a, b = (json.loads((o / "summary.json").read_text()) for o in (whole, sharded))
    assert a["ci95"] == b["ci95"] and a["samples"] == b["samples"] == 503 and a["partial"] == {}
    by_id = {json.loads(line)["_id"]: line for line in (whole / "samples.jsonl").read_text().splitlines()}
    for line in (sharded / "samples.jsonl").read_text().splitlines():  # sample by sample the same
        assert by_id[json.loads(line)["_id"]] == line


def test_shards_with_a_disagreeing_duplicate_are_refused_naming_file_and_line(tmp_path: Path) -> None:
    rows = records(20)
    write_jsonl(tmp_path / "r" / "m.shard-0-of-2.jsonl", rows[:12])
    flipped = {**rows[3], "judge": not rows[3]["judge"]}
    write_jsonl(tmp_path / "r" / "m.shard-1-of-2.jsonl", [*rows[12:], rows[5], flipped])
    proc = run_cli("eval", "--v2", tmp_path / "r", "--out", tmp_path / "o")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert (
        "m.shard-1-of-2.jsonl:10: _id id0003 appears twice" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert not (tmp_path / "o").exists()


def test_intervals_bracket_the_values_and_match_the_normal_approximation(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r" / "m.jsonl", records())
    proc = run_cli("eval", "--v2", tmp_path / "r", "--ci", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    values = json.loads((tmp_path / "o" / "result.json").read_text())["m"]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    counts = {"Overall": 503, "Easy": 192, "Hard": 311, "Short": 180, "Medium": 215, "Long": 108}
    for column in COLUMNS:
        lo, hi = summary["ci95"]["columns"][column]
        p, n = values[column.lower()] / 100, counts[column]
        half = 100 * 1.96 * math.sqrt(p * (1 - p) / n)
        assert lo < 100 * p < hi
        assert abs((hi - lo) / 2 - half) < 0.2 * half, column
        assert f"{100 * p:.1f} [{lo:.1f}, {hi:.1f}]" in proc.stdout
    assert set(summary["ci95"]["domains"]) == set(DOMAINS)


def leaderboard() -> list[dict[str, str]]:
    """The rows of ../shared/spec/published-v2.md, parsed here independently of the package."""
    lines = [line for line in LEADERBOARD.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[1:]
    ]


@pytest.mark.skipif(not LEADERBOARD.is_file(), reason="../shared/spec/published-v2.md absent")
@pytest.mark.parametrize(
    ("files", "run", "cot"),
    [
        (["m.jsonl"], None, False),  # plain by the reference's file name
        (["m_cot.jsonl"], None, True),  # chain of thought by the reference's file name
        (["m.jsonl"], {"model_name": "x", "v2_mode": {"cot": True, "no_context": False, "rag": 0}}, False),
        (["x_cot.jsonl"], {"model_name": "x", "v2_mode": {"cot": True, "no_context": False, "rag": 0}}, True),
    ],
    ids=["plain-name", "cot-name", "run-json-other-row", "run-json-cot"],
)
def test_published_rows_equal_the_leaderboard_in_the_runs_mode(
    tmp_path: Path, files: list[str], run: dict | None, cot: bool
) -> None:
    for name in files:
        write_jsonl(tmp_path / "r" / name, records())
    if run is not None:
        (tmp_path / "r" / "run.json").write_text(json.dumps(run))
    proc = run_cli("eval", "--v2", tmp_path / "r", "--published", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    table = [line.split(",") for line in (tmp_path / "o" / "table_v2.csv").read_text().splitlines()]
    published = [row for row in table if "(published)" in row[0]]
    expected = leaderboard()
    assert len(published) == len(expected) == 38
    names = [row["model"] for row in expected]
    for row, want in zip(published, expected, strict=True):
        label = want["model"] + (f" ({want['date']})" if names.count(want["model"]) > 1 else "")
        label += "†" if want["reasoning"] == "yes" else ""
        assert row[0] == label + " (published)"
        assert row[1:7] == [want[c + (" CoT" if cot else "")] for c in COLUMNS]
    assert "LongBench v2: Towards Deeper Understanding" in proc.stdout and "†: reasoning model" in proc.stdout


def test_no_context_runs_get_no_published_rows(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r" / "m_no_context.jsonl", records(40))
    proc = run_cli("eval", "--v2", tmp_path / "r", "--published", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "(published" not in (tmp_path / "o" / "table_v2.csv").read_text()
    assert "publishes no no-context or RAG results" in proc.stdout


def test_compare_v2_differences_intervals_and_p_values(tmp_path: Path) -> None:
    a, b = records(seed=1, right=0.45), records(seed=2, right=0.35)
    write_jsonl(tmp_path / "a" / "ma.jsonl", a)
    write_jsonl(tmp_path / "b" / "mb.jsonl", list(reversed(b)))  # paired by _id, whatever the order
    for side in ("a", "b"):
        assert run_cli("eval", "--v2", tmp_path / side, "--out", tmp_path / f"e{side}").returncode == 0
    proc = run_cli("compare", "--v2", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "c" / "comparison.json").read_text())
    ra = json.loads((tmp_path / "ea" / "result.json").read_text())["ma"]
    rb = json.loads((tmp_path / "eb" / "result.json").read_text())["mb"]
    for column in COLUMNS:
        row = data["columns"][column]
        assert (row["a"], row["b"]) == (ra[column.lower()], rb[column.lower()])
        assert row["diff"] == round(row["a"] - row["b"], 1)
        lo, hi = row["ci95"]
        assert lo <= row["diff"] + 0.05 and row["diff"] - 0.05 <= hi
    assert set(data["domains"]) == set(DOMAINS)
    paired = [json.loads(line) for line in (tmp_path / "c" / "paired_samples.jsonl").read_text().splitlines()]
    assert len(paired) == 503
    p_perm = sign_flip_p([r["a"] for r in paired], [r["b"] for r in paired], permutations=1000, seed=11)
    p_boot = data["columns"]["Overall"]["p"]
    assert abs(p_boot - p_perm) < 0.04 + 0.3 * p_perm and (p_boot < 0.05) == (p_perm < 0.05)
    same = run_cli("compare", "--v2", tmp_path / "a", tmp_path / "a", "--out", tmp_path / "same")
    overall = json.loads((tmp_path / "same" / "comparison.json").read_text())["columns"]["Overall"]
    assert same.returncode == 0 and overall["diff"] == 0.0 and overall["p"] == 1.0


def test_compare_v2_refuses_different_records_in_one_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a" / "m.jsonl", records(30))
    write_jsonl(tmp_path / "b" / "m.jsonl", records(31))
    proc = run_cli("compare", "--v2", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "c")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "different records" in proc.stderr and "id0030" in proc.stderr and not (tmp_path / "c").exists()


def test_partial_and_unverified_rows_are_marked_everywhere(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "full" / "m.jsonl", records())
    write_jsonl(tmp_path / "part" / "m.jsonl", records()[:100])
    (tmp_path / "part" / "run.json").write_text(json.dumps({"verify": False, "limit": 100}))
    outputs = {}
    for folder in ("full", "part"):
        proc = run_cli("eval", "--v2", tmp_path / folder, "--out", tmp_path / f"o-{folder}")
        assert proc.returncode == 0, proc.stderr
        outputs[folder] = (proc, json.loads((tmp_path / f"o-{folder}" / "summary.json").read_text()))
    full, part = outputs["full"][1], outputs["part"][1]
    assert full["partial"] == {} and full["data_verified"] is True
    assert part["partial"]["Overall"] == {"samples": 100, "expected": 503} and part["data_verified"] is False
    assert part["signature"] != full["signature"] and "|partial:100/503|verify:no" in part["signature"]
    csv = (tmp_path / "o-part" / "table_v2.csv").read_text().splitlines()
    assert csv[0].endswith(",partial") and "Overall 100/503" in csv[1] and "unverified data" in csv[1]
    assert "partial" not in (tmp_path / "o-full" / "table_v2.csv").read_text()
    titles = [
        line
        for line in (tmp_path / "o-part" / "tables.md").read_text().splitlines()
        if line.startswith("###")
    ]
    assert len(titles) == 2 and all("PARTIAL: m" in t and "UNVERIFIED DATA" in t for t in titles)
    assert "warning: m: data used without checking its sha256" in outputs["part"][0].stderr
    html = (tmp_path / "o-part" / "report.html").read_text()
    assert "PARTIAL: m" in html and "partial:100/503" in html


def test_output_health_is_counted_from_the_lines(tmp_path: Path) -> None:
    rows = records(40)
    for row in rows[:3]:  # thinking that never closed: no answer
        row.update(response="", pred=None, judge=False, thinking="Let me think", finish_reason="length")
    for row in rows[3:5]:  # an answer cut at the limit, no letter in it
        row.update(response="The correct", pred=None, judge=False, thinking=None, finish_reason="length")
    write_jsonl(tmp_path / "r" / "m.jsonl", rows)
    write_jsonl(tmp_path / "old" / "m.jsonl", records(40))  # no health fields at all: still scores
    proc = run_cli("eval", "--v2", tmp_path / "r", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    health = json.loads((tmp_path / "o" / "summary.json").read_text())["output_health"]["total"]
    assert health == {"thinking_unfinished": 3, "answer_truncated": 2, "empty": 3, "no_answer_extracted": 5}
    assert "m: output health: thinking_unfinished 3, answer_truncated 2, empty 3, no_answer_extracted 5" in (
        proc.stdout
    )
    old = run_cli("eval", "--v2", tmp_path / "old", "--out", tmp_path / "o-old")
    assert old.returncode == 0 and "output health" not in old.stdout
    counts = json.loads((tmp_path / "o-old" / "summary.json").read_text())["output_health"]["total"]
    assert set(counts.values()) == {0}


def test_runs_with_different_seeds_give_mean_and_spread(tmp_path: Path) -> None:
    overall = []
    for seed in (1, 2, 3):
        rows = records(seed=seed)
        overall.append(round(100 * sum(r["judge"] for r in rows) / len(rows), 1))
        write_jsonl(tmp_path / f"run{seed}" / "tiny" / "tiny.jsonl", rows)
        (tmp_path / f"run{seed}" / "tiny" / "run.json").write_text(json.dumps({"seed": seed}))
    folders = [tmp_path / f"run{seed}" / "tiny" for seed in (1, 2, 3)]
    proc = run_cli("eval", "--v2", *folders, "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "o" / "result.txt").read_text().splitlines()[1:]
    assert [row.split("\t")[0] for row in rows] == ["tiny@seed1", "tiny@seed2", "tiny@seed3"]
    spread = json.loads((tmp_path / "o" / "seeds.json").read_text())["tiny"]["Overall"]
    assert spread["runs"] == 3 and spread["min"] == min(overall) and spread["max"] == max(overall)
    assert spread["mean"] == pytest.approx(np.mean(overall), abs=0.006)
    assert spread["std"] == pytest.approx(np.std(overall, ddof=1), abs=0.006)
    assert "tiny across seeds" in proc.stdout


def test_plots_and_report_html_for_v2(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    write_jsonl(tmp_path / "r" / "m.jsonl", records())
    proc = run_cli("eval", "--v2", tmp_path / "r", "--plots", "--ci", "--published", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    for name in ("v2", "v2_domains"):
        assert (tmp_path / "o" / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert (tmp_path / "o" / "plots" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    html = (tmp_path / "o" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<h1>LongBench v2 results: m</h1>" in html
    assert html.count('class="published"') == 38 and "LongBench v2 by domain" in html
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    lo, hi = summary["ci95"]["columns"]["Overall"]
    assert f"[{lo:.1f}, {hi:.1f}]" in html and f"signature: {summary['signature']}" in html


def test_compare_v2_of_seeded_runs_gives_the_spread(tmp_path: Path) -> None:
    folders = {}
    for name, right in (("x", 0.3), ("y", 0.5)):
        for seed in (1, 2):
            folder = tmp_path / f"run{seed}" / name
            write_jsonl(folder / f"{name}.jsonl", records(seed=10 * seed + len(name), right=right))
            (folder / "run.json").write_text(json.dumps({"seed": seed}))
            folders.setdefault(name, []).append(folder)
    proc = run_cli("compare", "--v2", *folders["x"], *folders["y"], "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    overall = [
        json.loads((tmp_path / "c" / f"seed{s}" / "comparison.json").read_text())["columns"]["Overall"][
            "diff"
        ]
        for s in (1, 2)
    ]
    spread = json.loads((tmp_path / "c" / "comparison_seeds.json").read_text())["spread"]["Overall"]
    assert spread["mean_diff"] == round(float(np.mean(overall)), 2) and (spread["min"], spread["max"]) == (
        min(overall),
        max(overall),
    )
    assert set(json.loads((tmp_path / "c" / "comparison_seeds.json").read_text())["spread"]) >= set(COLUMNS)


V2_DATA = SHARED / "longbench-data" / "v2" / "data_reconstructed.jsonl.gz"


@pytest.mark.skipif(not V2_DATA.is_file(), reason="../shared/longbench-data/v2 absent")
def test_a_run_predicted_in_two_shards_scores_as_the_unsharded_run(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real `predict --v2` runs against the loopback server: two shards into one folder, and one whole run."""
    import gzip
    import itertools

    from openai_server import FakeOpenAIServer
    from test_v2_predict import openai_command, run

    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    data = tmp_path / "v2.jsonl"
    with gzip.open(V2_DATA, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in itertools.islice(handle, 12)]
    rows = [{**row, "context": row["context"][:2000]} for row in rows if row["context"] is not None][:8]
    data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    with FakeOpenAIServer() as server:
        for shard in ("0/2", "1/2"):
            made = run(openai_command(server, data, tmp_path / "sharded", "--shard", shard), capsys)
            assert made.returncode == 0, made.stderr
        made = run(openai_command(server, data, tmp_path / "whole", "--temperature", "0.1"), capsys)
        assert made.returncode == 0, made.stderr
    folder = tmp_path / "sharded" / "fake-model"
    assert sorted(p.name for p in folder.glob("*.jsonl")) == [
        "fake-model.shard-0-of-2.jsonl",
        "fake-model.shard-1-of-2.jsonl",
    ]
    outs = {}
    for name in ("sharded", "whole"):
        outs[name] = tmp_path / f"o-{name}"
        proc = run_cli("eval", "--v2", tmp_path / name / "fake-model", "--out", outs[name])
        assert proc.returncode == 0, proc.stderr
    assert (outs["sharded"] / "result.txt").read_text() == (outs["whole"] / "result.txt").read_text()
    samples = {name: sorted((out / "samples.jsonl").read_text().splitlines()) for name, out in outs.items()}
    assert samples["sharded"] == samples["whole"] and len(samples["whole"]) == len(rows)
