"""Prediction files survive crashes: torn tails are cut, ids are never written twice, bad files are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from longbench.errors import InputError
from longbench.run_files import ErrorLog, PredictionWriter, write_atomic


def _record(sample_id: str, pred: str = "p") -> dict:
    return {"pred": pred, "answers": ["a"], "all_classes": None, "length": 3, "_id": sample_id}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_appends_one_flushed_line_per_record_in_the_reference_format(tmp_path: Path) -> None:
    path = tmp_path / "model" / "qasper.jsonl"
    writer = PredictionWriter(path)
    assert writer.write(_record("x1", "héllo 中文"))
    # visible to another reader before close: the line was flushed to the OS
    assert (
        path.read_bytes()
        == (
            '{"pred": "héllo 中文", "answers": ["a"], "all_classes": null, "length": 3, "_id": "x1"}\n'
        ).encode()
    )
    writer.close()


def test_reopening_loads_done_ids_and_never_writes_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with PredictionWriter(path) as writer:
        writer.write(_record("a"))
        writer.write(_record("b"))
    with PredictionWriter(path) as writer:
        assert writer.done_ids == {"a", "b"}
        assert not writer.write(_record("a", "other"))
        assert writer.write(_record("c"))
        assert not writer.write(_record("c"))
    assert [r["_id"] for r in _lines(path)] == ["a", "b", "c"]
    assert _lines(path)[0]["pred"] == "p"


@pytest.mark.parametrize("tail", [b'{"pred": "half', b"{", b'{"pred": "x", "_id": "z"'])
def test_a_torn_last_line_is_cut_off(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "t.jsonl"
    good = json.dumps(_record("a")).encode() + b"\n"
    path.write_bytes(good + tail)  # no newline at the end: the writer died mid-line
    with PredictionWriter(path) as writer:
        assert writer.done_ids == {"a"}
        assert path.read_bytes() == good
        writer.write(_record("z"))
    assert [r["_id"] for r in _lines(path)] == ["a", "z"]


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    """The rule eval applies too: a last line that is a whole JSON object counts; only its newline is added."""
    path = tmp_path / "t.jsonl"
    good = json.dumps(_record("a")).encode() + b"\n" + json.dumps(_record("z")).encode()
    path.write_bytes(good)
    with PredictionWriter(path) as writer:
        assert writer.done_ids == {"a", "z"}
        assert path.read_bytes() == good + b"\n"
        writer.write(_record("b"))
    assert [r["_id"] for r in _lines(path)] == ["a", "z", "b"]


def test_a_file_that_is_only_a_torn_line_becomes_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"pred": "p", "ans' * 10000)  # longer than one 64 KiB scan step
    with PredictionWriter(path) as writer:
        assert writer.done_ids == set()
    assert path.read_bytes() == b""


def test_a_torn_tail_after_a_long_last_line_is_found(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    long_line = json.dumps(_record("a", "x" * 200_000)).encode() + b"\n"
    path.write_bytes(long_line + b'{"pred": "y' * 20_000)
    with PredictionWriter(path) as writer:
        assert writer.done_ids == {"a"}
    assert path.read_bytes() == long_line


def test_a_corrupt_complete_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        json.dumps(_record("a")).encode() + b"\nnot json\n" + json.dumps(_record("b")).encode() + b"\n"
    )
    with pytest.raises(InputError) as caught:
        PredictionWriter(path)
    assert str(caught.value).startswith(f"{path}:2: ")
    assert path.read_bytes().count(b"\n") == 3  # left untouched


def test_a_file_without_ids_cannot_be_resumed(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"pred": "p", "answers": ["a"], "all_classes": null, "length": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r":1: line has no '_id'"):
        PredictionWriter(path)


def test_error_log_appends_and_forgets_retried_tasks_only(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    log = ErrorLog(path)
    log.record("trec", "t1", "out of memory")
    log.record("lcc", "l1", "timeout")
    assert log.count == 2
    log.close()
    assert _lines(path) == [
        {"dataset": "trec", "_id": "t1", "error": "out of memory"},
        {"dataset": "lcc", "_id": "l1", "error": "timeout"},
    ]
    ErrorLog(path, retrying=["trec"]).close()  # a run of trec retries its failures: they leave the log
    assert _lines(path) == [{"dataset": "lcc", "_id": "l1", "error": "timeout"}]


def test_error_log_is_not_created_without_errors(tmp_path: Path) -> None:
    ErrorLog(tmp_path / "errors.jsonl", retrying=["trec"]).close()
    assert not (tmp_path / "errors.jsonl").exists()


def test_write_atomic_replaces_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.json"
    write_atomic(path, "first\n")
    write_atomic(path, "second\n")
    assert path.read_text(encoding="utf-8") == "second\n"
    assert os.listdir(path.parent) == ["run.json"]
