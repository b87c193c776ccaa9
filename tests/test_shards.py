"""`--shard I/N` end to end: three sharded `longbench predict` runs, merged by `longbench eval`, score exactly
like one unsharded run (real tiny model, real subprocesses, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TASKS = "lcc,repobench-p,trec,samsum,multifieldqa_zh,passage_retrieval_zh,hotpotqa"


@pytest.fixture(scope="module")
def env(tiny_model: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LONGBENCH_CACHE": str(tiny_model.parent),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def longbench(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "longbench", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def scores_by_id(samples_jsonl: Path) -> dict[tuple[str, str], float]:
    rows = [json.loads(line) for line in samples_jsonl.read_text().splitlines()]
    return {(row["dataset"], row["_id"]): row["score"] for row in rows}


def test_three_shards_merged_score_like_one_run(env: dict[str, str], tmp_path: Path) -> None:
    predict = ["predict", "--model", "builtin:tiny", "--data", "sample", "--tasks", TASKS]
    longbench(env, *predict, "--out", tmp_path / "whole")
    for i in range(3):
        longbench(env, *predict, "--out", tmp_path / f"shard{i}", "--shard", f"{i}/3")

    shard_files = [sorted((tmp_path / f"shard{i}" / "tiny").glob("lcc.shard-*.jsonl")) for i in range(3)]
    assert all(shard_files), "every shard wrote its slice of lcc"
    whole_ids = {json.loads(line)["_id"] for line in (tmp_path / "whole" / "tiny" / "lcc.jsonl").open()}
    shard_ids = [{json.loads(line)["_id"] for line in files[0].open()} for files in shard_files]
    assert set().union(*shard_ids) == whole_ids and sum(map(len, shard_ids)) == len(whole_ids)

    longbench(env, "eval", tmp_path / "whole" / "tiny", "--out", tmp_path / "m_whole")
    proc = longbench(
        env, "eval", *(tmp_path / f"shard{i}" / "tiny" for i in range(3)), "--out", tmp_path / "m_shards"
    )
    assert "missing" not in proc.stderr

    whole = json.loads((tmp_path / "m_whole" / "result.json").read_text())
    merged = json.loads((tmp_path / "m_shards" / "result.json").read_text())
    assert merged == whole and len(whole) == len(TASKS.split(","))
    assert any(score > 0 for score in whole.values()), (
        "some task scores above zero, so equality means something"
    )
    assert scores_by_id(tmp_path / "m_shards" / "samples.jsonl") == scores_by_id(
        tmp_path / "m_whole" / "samples.jsonl"
    )
