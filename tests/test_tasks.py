"""The task registry is the benchmark's definition: checked against the reference configuration and SPEC.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from longbench.errors import UnknownTaskError
from longbench.spec_data import data_json
from longbench.tasks import all_tasks, get_task, select_tasks, table_layout

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE_CONFIG = SHARED / "spec" / "reference-config" / "v1"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is absent")


def test_counts_match_the_release() -> None:
    tasks = all_tasks()
    assert len(tasks) == 21 and sum(t.samples for t in tasks) == 4750
    e_tasks = all_tasks(e=True)
    assert len(e_tasks) == 13 and sum(t.e_samples or 0 for t in e_tasks) == 3668
    assert {t.language for t in tasks} == {"en", "zh", "code"}
    assert [t.name for t in tasks if not t.chat] == [
        "trec",
        "triviaqa",
        "samsum",
        "lsht",
        "lcc",
        "repobench-p",
    ]
    assert [t.name for t in tasks if t.first_line_only] == ["trec", "triviaqa", "samsum", "lsht"]
    assert [t.name for t in tasks if t.stop_at_newline] == ["samsum"]


@needs_shared
def test_generation_lengths_prompts_and_windows_equal_the_reference_config() -> None:
    max_new = json.loads((REFERENCE_CONFIG / "dataset2maxlen.json").read_text())
    prompts = json.loads((REFERENCE_CONFIG / "dataset2prompt.json").read_text())
    assert {t.name: t.max_new_tokens for t in all_tasks()} == max_new
    assert {t.name: t.prompt for t in all_tasks()} == prompts
    assert data_json("model2maxlen.json") == json.loads((REFERENCE_CONFIG / "model2maxlen.json").read_text())


@needs_shared
def test_shipped_checksums_equal_the_manifest() -> None:
    manifest = json.loads((SHARED / "longbench-data" / "MANIFEST_v1_checksums.json").read_text())
    want = {f["file"]: (f["sha256"], f["size_bytes"], f["expected_lines"]) for f in manifest["files"]}
    got = {
        f["file"]: (f["sha256"], f["size_bytes"], f["expected_lines"])
        for f in data_json("checksums.json")["files"]
    }
    assert got == want and len(got) == 34
    assert {name for name in got} == {t.file_name() for t in all_tasks()} | {
        t.file_name(e=True) for t in all_tasks(e=True)
    }


def test_published_table_layout() -> None:
    """SPEC.md "Result tables as published"."""
    assert table_layout("en") == {
        "Single-Doc QA": ["narrativeqa", "qasper", "multifieldqa_en"],
        "Multi-Doc QA": ["hotpotqa", "2wikimqa", "musique"],
        "Summarization": ["gov_report", "qmsum", "multi_news"],
        "Few-shot": ["trec", "triviaqa", "samsum"],
        "Synthetic": ["passage_count", "passage_retrieval_en"],
        "Code": ["lcc", "repobench-p"],
    }
    assert table_layout("zh") == {
        "Single-Doc QA": ["multifieldqa_zh"],
        "Multi-Doc QA": ["dureader"],
        "Summarization": ["vcsum"],
        "Few-shot": ["lsht"],
        "Synthetic": ["passage_retrieval_zh"],
        "Code": ["lcc", "repobench-p"],
    }


def test_selection_and_unknown_names() -> None:
    assert [t.name for t in select_tasks(category="few-shot")] == ["trec", "triviaqa", "samsum", "lsht"]
    assert [t.name for t in select_tasks(["lcc", "trec"])] == ["trec", "lcc"]  # paper order
    assert [t.name for t in select_tasks(category="Code", e=True)] == ["lcc", "repobench-p"]
    with pytest.raises(UnknownTaskError, match="valid names"):
        get_task("hotpot_qa")
    with pytest.raises(UnknownTaskError, match="LongBench-E"):
        get_task("narrativeqa", e=True)
    with pytest.raises(UnknownTaskError, match="unknown category"):
        select_tasks(category="Math")


def test_a_category_by_the_name_its_table_gives_it() -> None:
    """The tables print "Few-shot Learning", "Code Completion", "Synthetic Tasks": --category takes those too."""
    for title, short in (
        ("Few-shot Learning", "Few-shot"),
        ("code completion", "Code"),
        ("Synthetic Tasks", "Synthetic"),
    ):
        assert select_tasks(category=title) == select_tasks(category=short) != []


def test_cli_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "longbench", "tasks"], capture_output=True, text=True, check=True
    )
    rows = [line.split() for line in proc.stdout.splitlines()[3:]]
    assert [row[0] for row in rows] == [t.name for t in all_tasks()]
    vcsum = next(row for row in rows if row[0] == "vcsum")
    assert vcsum[-6:] == ["rouge_zh", "512", "200", "-", "yes", "no"]
    proc = subprocess.run(
        [sys.executable, "-m", "longbench", "tasks", "--e"], capture_output=True, text=True, check=True
    )
    assert len(proc.stdout.splitlines()) == 3 + 13
