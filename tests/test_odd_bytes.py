"""Odd bytes never stop a run or traceback: lone surrogates in a server's reply or in the data, torn and
unterminated last lines read by one rule in predict and eval. Real CLI processes, real files, the loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer  # noqa: E402

from longbench.loading import iter_records  # noqa: E402
from longbench.run_files import PredictionWriter  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _longbench(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LONGBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "longbench", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _predict(url: str, data: str, cwd: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _longbench("predict", "--backend", "openai", "--model", "fake-model", "--tokenizer", "builtin:tiny",
                      "--base-url", url, "--data", data, "--max-length", "1000", "--tasks", "trec",
                      "--max-retries", "1", *extra, cwd=cwd, cache=cache)  # fmt: skip


def _prediction_lines(count: int) -> list[bytes]:
    records = list(iter_records("trec", "sample"))[:count]
    return [
        (
            json.dumps(
                {
                    "pred": r["answers"][0],
                    "answers": r["answers"],
                    "all_classes": r["all_classes"],
                    "length": r["length"],
                    "_id": r["_id"],
                }
            )
            + "\n"
        ).encode()  # fmt: skip
        for r in records
    ]


def test_a_reply_with_a_lone_surrogate_is_written_and_the_run_ends(tmp_path: Path, tiny_model: Path) -> None:
    with FakeOpenAIServer(reply_suffix="\ud800") as server:
        done = _predict(server.url, "sample", tmp_path, tiny_model.parent)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "pred" / "fake-model" / "trec.jsonl").read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 5 and all(json.loads(line)["pred"].endswith("\ufffd") for line in lines)


def test_data_with_a_lone_surrogate_is_predicted_and_scored(tmp_path: Path, tiny_model: Path) -> None:
    lines = (REPO / "data" / "sample" / "trec.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    odd = json.dumps({**first, "input": first["input"] + "\ud800", "_id": first["_id"] + "\udfff"})
    assert "\\ud800" in odd  # the file spells the surrogate as JSON does
    data = tmp_path / "trec.jsonl"
    data.write_text("\n".join([odd, *lines[1:]]) + "\n", encoding="utf-8")
    with FakeOpenAIServer() as server:
        done = _predict(server.url, str(data), tmp_path, tiny_model.parent, "--no-verify")
    assert done.returncode == 0, done.stderr
    scored = _longbench("eval", "pred/fake-model", cwd=tmp_path, cache=tiny_model.parent)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr
    ids = [json.loads(line)["_id"] for line in (tmp_path / "pred" / "fake-model" / "trec.jsonl").open()]
    assert first["_id"] + "\ufffd" in ids


def test_eval_of_a_hand_made_file_with_a_surrogate_id_does_not_traceback(
    tmp_path: Path, tiny_model: Path
) -> None:
    folder = tmp_path / "pred" / "m"
    folder.mkdir(parents=True)
    good = _prediction_lines(2)
    odd = json.loads(good[0])
    odd["_id"] = "x\ud800"
    (folder / "trec.jsonl").write_bytes(good[1] + (json.dumps(odd) + "\n").encode())
    done = _longbench("eval", "pred/m", "--out", "scores", cwd=tmp_path, cache=tiny_model.parent)
    assert done.returncode == 0, done.stderr
    samples = (tmp_path / "scores").rglob("*.jsonl")
    assert any("x\ufffd" in path.read_text(encoding="utf-8") for path in samples)


def test_eval_scores_a_torn_file_as_far_as_it_goes(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "pred" / "m"
    folder.mkdir(parents=True)
    lines = _prediction_lines(5)
    (folder / "trec.jsonl").write_bytes(b"".join(lines[:4]) + lines[4][:25])  # killed mid-write
    done = _longbench("eval", "pred/m", "--out", "scores", cwd=tmp_path, cache=tiny_model.parent)
    assert done.returncode == 0, done.stderr
    assert "torn last line" in done.stderr and "trec.jsonl:5" in done.stderr
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    assert summary["missing"] == {"trec": 200 - 4}  # the four whole lines scored (no run.json: all 200 due)


def test_one_rule_for_a_last_line_without_its_newline(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "pred" / "m"
    folder.mkdir(parents=True)
    lines = _prediction_lines(5)
    path = folder / "trec.jsonl"
    path.write_bytes(b"".join(lines)[:-1])  # whole, but the newline never made it
    done = _longbench("eval", "pred/m", "--out", "scores", cwd=tmp_path, cache=tiny_model.parent)
    assert done.returncode == 0 and "torn" not in done.stderr, done.stderr  # eval counts it ...
    assert json.loads((tmp_path / "scores" / "summary.json").read_text())["missing"] == {"trec": 200 - 5}
    with PredictionWriter(path) as writer:  # ... and so does predict: kept, not regenerated
        assert len(writer.done_ids) == 5
    assert path.read_bytes() == b"".join(lines)


def test_v2_data_with_a_lone_surrogate_reads_as_the_replacement_character(tmp_path: Path) -> None:
    from longbench.v2.data import FIELDS, data_source, iter_records

    record = {**{field: "x" for field in FIELDS}, "answer": "A", "question": "which\ud800?"}
    for name, text in (("data.json", json.dumps([record])), ("data.jsonl", json.dumps(record) + "\n")):
        (tmp_path / name).write_text(text)  # the surrogate spelled as JSON spells it: \ud800
        (read,) = iter_records(data_source(str(tmp_path / name)))
        assert read["question"] == "which\ufffd?"
