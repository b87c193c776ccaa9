"""LongBench v2 data: the pinned hub file through huggingface_hub (local hub stand-in), local files streamed
and validated with file and record number."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hubserver import HubServer
from hypothesis import given, settings
from hypothesis import strategies as st

from longbench.errors import InputError
from longbench.v2 import data as v2data
from longbench.v2.data import FIELDS, REPO_ID, REVISION, DataSource, iter_records

REPO_ROOT = Path(__file__).resolve().parents[1]


def record(i: int, **changes: object) -> dict:
    base = {key: f"{key} {i} \u2019é" for key in FIELDS}
    return {**base, "answer": "ABCD"[i % 4], "_id": f"id{i}", **changes}


def read(path: Path) -> tuple[list[dict], DataSource]:
    source = DataSource(path)
    return list(iter_records(source)), source


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 64), st.sampled_from(["", " ", "\n", "\ufeff", "\n  \t"]))
def test_array_streamed_across_any_chunk_size(n: int, chunk: int, space: str) -> None:
    import tempfile

    records = [record(i, context="x" * (i * 37) + "\u4e2d\U0001f600") for i in range(n)]
    text = (
        space
        + json.dumps(records, ensure_ascii=False, indent=1 if chunk % 2 else None)
        + space.strip("\ufeff")
    )
    old = v2data._CHUNK
    v2data._CHUNK = chunk
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "data.json"
            path.write_bytes(text.encode("utf-8"))
            got, source = read(path)
    finally:
        v2data._CHUNK = old
    assert got == records
    assert source.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest() and source.records == n


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: json.dumps([record(0), record(1, answer="E")]), "data.json:2: record 2: 'answer' is 'E'"),
        (lambda: json.dumps([record(0), {"_id": "x"}]), "data.json:2: record 2: missing field 'domain'"),
        (lambda: json.dumps([record(0), record(1, question=3)]), "record 2: 'question' is int"),
        (lambda: json.dumps([record(0), record(1)])[:-30], "data.json:2: record 2: invalid JSON"),
        (lambda: json.dumps([record(0)]) + "x", None),
        (lambda: json.dumps([record(0), 5]), "data.json:2: record 2: expected a JSON object"),
    ],
)
def test_bad_array_records_are_named(tmp_path: Path, content, message: str | None) -> None:
    path = tmp_path / "data.json"
    path.write_text(content())
    if message is None:  # trailing text after the array: still fine for the records, hashed in full
        got, source = read(path)
        assert len(got) == 1 and source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        return
    with pytest.raises(InputError) as error:
        read(path)
    assert message in str(error.value)


def test_jsonl_and_null_context(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    lines = [json.dumps(record(0)), "", json.dumps(record(1, context=None)), json.dumps(record(2, length=5))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"mine.jsonl:4: record 4: 'length' is int"):
        read(path)
    path.write_text("\n".join(lines[:3]) + "\n")
    got, source = read(path)
    assert [r["_id"] for r in got] == ["id0", "id1"] and got[1]["context"] is None
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_v2_fetches_the_pinned_revision(tmp_path: Path) -> None:
    pinned = json.dumps([record(i) for i in range(3)], ensure_ascii=False).encode()
    with HubServer() as hub:
        hub.add_file(REPO_ID, "data.json", pinned, revision=REVISION)
        hub.add_file(REPO_ID, "data.json", b"[]", revision="main")  # a newer main is not what we read
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path), HF_HUB_DISABLE_PROGRESS_BARS="1")
        command = [sys.executable, "-m", "longbench", "download", "--v2"]
        result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith(str(tmp_path)) and Path(lines[1]).read_bytes() == pinned
    assert lines[2] == f"3 records validated; sha256 {hashlib.sha256(pinned).hexdigest()}"
    assert "WARNING" in result.stderr and "15d61c22" in result.stderr  # the third-party hash differs: loud
