"""`longbench compress` and `predict --data DERIVED --top-k K` end to end, in real subprocesses on real files.

Dense retrieval runs a tiny random-weight BERT encoder with a WordPiece tokenizer built here; summary
compression runs the built-in tiny model and the loopback OpenAI-compatible server (tests/openai_server.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer, reply_text  # noqa: E402

from longbench.backends import create_backend  # noqa: E402
from longbench.compression.chunking import split_chunks  # noqa: E402
from longbench.compression.summary import SEGMENT_PROMPT, SUMMARY_TOKENS  # noqa: E402
from longbench.errors import LongBenchError  # noqa: E402
from longbench.loading import iter_records  # noqa: E402
from longbench.runner import load_records, predict  # noqa: E402
from longbench.tasks import get_task  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def longbench(*args: str, cwd: Path, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if cache is not None:
        env["LONGBENCH_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "longbench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_compress_then_predict_top_k_then_eval_beside_the_plain_run(tmp_path, tiny_model, one_torch_thread):
    cache = tiny_model.parent
    done = longbench(
        "compress",
        "--data",
        "sample",
        "--tasks",
        "qasper,dureader",
        "--chunk-size",
        "200",
        "--out",
        "derived",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "reference-exact" in done.stderr
    run = json.loads((tmp_path / "derived" / "compression.json").read_text())
    assert run["source"] == "sample" and run["settings"]["chunk_size"] == 200
    assert run["settings"]["bm25_tokens"] == "characters" and run["tasks"] == ["dureader", "qasper"]

    # the top-k context is "".join(retrieved[:k]); the record's other fields are the source's
    derived = lines(tmp_path / "derived" / "qasper.jsonl")
    records = load_records(get_task("qasper"), str(tmp_path / "derived"), False, None, top_k=2)
    source = list(iter_records("qasper", "sample"))
    assert [r["context"] for r in records] == ["".join(d["retrieved"][:2]) for d in derived]
    assert [{**r, "context": None} for r in records] == [{**s, "context": None} for s in source]
    assert any(r["context"] != s["context"] for r, s in zip(records, source, strict=True))

    common = ("--model", "builtin:tiny", "--max-length", "200", "--limit", "1")
    backend = create_backend("transformers", model=str(tiny_model), device="cpu")
    tasks = [get_task("qasper"), get_task("dureader")]
    try:  # the plain run, in this process
        predict(backend, tasks, "sample", tmp_path / "pred", max_length=200, limit=1, model_name="tiny")
        with pytest.raises(LongBenchError, match="different compression"):  # never mixed into a plain folder
            predict(
                backend,
                tasks,
                str(tmp_path / "derived"),
                tmp_path / "pred",
                max_length=200,
                limit=1,
                model_name="tiny",
                top_k=2,
            )
    finally:
        backend.close()
    topk = longbench("predict", *common, "--data", "derived", "--top-k", "2", cwd=tmp_path, cache=cache)
    assert topk.returncode == 0, topk.stderr  # released file names, yet no checksum complaint: it is derived
    folder = tmp_path / "pred" / "tiny-bm25-c200-top2"
    entry = json.loads((folder / "run.json").read_text())["compression"]
    assert entry["top_k"] == 2 and entry["method"] == "bm25" and entry["chunk_size"] == 200
    assert entry["source"] == "sample" and entry["bm25_tokens"] == "characters"
    assert json.loads((tmp_path / "pred" / "tiny" / "run.json").read_text())["compression"] is None
    assert sorted(p.name for p in folder.glob("*.jsonl")) == ["dureader.jsonl", "qasper.jsonl"]

    table = longbench("eval", "pred/tiny", "pred/tiny-bm25-c200-top2", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if line.startswith("Task"))
    assert header.split() == ["Task", "tiny", "tiny-bm25-c200-top2"]


def test_top_k_needs_a_derived_folder(tmp_path):
    done = longbench("predict", "--model", "builtin:tiny", "--data", "sample", "--top-k", "3", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "longbench: error: --top-k needs --data to be a folder written by `longbench compress`, not 'sample'"
    ]


def test_resume_skips_done_records_cuts_a_torn_line_and_refuses_other_settings(tmp_path):
    def compress(out: str, *more: str) -> subprocess.CompletedProcess[str]:
        return longbench(
            "compress", "--data", "sample", "--tasks", "hotpotqa", "--out", out, *more, cwd=tmp_path
        )

    first = compress("d", "--chunk-size", "200", "--limit", "1")
    assert first.returncode == 0, first.stderr
    path = tmp_path / "d" / "hotpotqa.jsonl"
    with open(path, "ab") as file:
        file.write(b'{"input": "torn')  # a run killed mid-line
    again = compress("d", "--chunk-size", "200")
    assert again.returncode == 0, again.stderr
    assert "2 records compressed, 1 already there" in again.stdout
    assert compress("ref", "--chunk-size", "200").returncode == 0
    assert path.read_bytes() == (tmp_path / "ref" / "hotpotqa.jsonl").read_bytes()
    other = compress("d", "--chunk-size", "500")
    assert other.returncode == 2 and "different settings" in other.stderr and "Traceback" not in other.stderr


def test_a_file_that_is_not_the_released_one_is_compressed_with_a_warning(tmp_path):
    subset = tmp_path / "subset"
    subset.mkdir()
    sample = next(iter_records("multifieldqa_zh", "sample"))
    (subset / "multifieldqa_zh.jsonl").write_text(
        json.dumps(sample, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    done = longbench("compress", "--data", "subset", "--tasks", "multifieldqa_zh", "--out", "d", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "not the released file" in done.stderr
    assert [r["_id"] for r in lines(tmp_path / "d" / "multifieldqa_zh.jsonl")] == [sample["_id"]]


# --- dense retrieval -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A random-weight one-layer BERT with a WordPiece vocabulary of the sample's characters, built locally."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("encoder")
    letters = sorted(
        {c.lower() for c in "".join(r["context"] for r in iter_records("qasper", "sample")) if c.strip()}
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def test_dense_ranking_is_the_inner_product_of_mean_pooled_embeddings(tiny_encoder, one_torch_thread):
    """Batched, padded embedding must equal embedding each text alone (no padding to mask)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from longbench.compression.dense import DenseRanker

    record = next(iter_records("qasper", "sample"))
    chunks = split_chunks(record["context"], 40)
    assert len(chunks) >= 4
    ranker = DenseRanker(str(tiny_encoder), device="cpu", batch_size=3)
    tokenizer, model = (
        AutoTokenizer.from_pretrained(tiny_encoder),
        AutoModel.from_pretrained(tiny_encoder).eval(),
    )

    def alone(text: str) -> torch.Tensor:
        with torch.inference_mode():
            ids = tokenizer(text, truncation=True, max_length=512, return_tensors="pt")
            return model(**ids).last_hidden_state[0].mean(dim=0)

    query = alone(record["input"])
    scores = [float(alone(chunk) @ query) for chunk in chunks]
    expected = [chunks[i] for i in sorted(range(len(chunks)), key=lambda i: -scores[i])]
    assert ranker(record["input"], chunks, "en") == expected
    assert expected != chunks  # the ranking is not just the document order


def test_dense_compress_writes_every_chunk_ranked(tmp_path, tiny_encoder, one_torch_thread):
    from longbench.compression.dense import DenseRanker
    from longbench.compression.pipeline import CompressSettings, compress

    settings = CompressSettings(method="dense", chunk_size=200, embedder=str(tiny_encoder))
    ranker = DenseRanker(str(tiny_encoder), device="cpu")
    compress("sample", tmp_path, ["qasper"], settings, ranker=ranker.order, limit=1)
    (derived,) = lines(tmp_path / "qasper.jsonl")
    source = next(iter_records("qasper", "sample"))
    chunks = split_chunks(source["context"], 200)
    assert derived["retrieved"] == ranker(source["input"], chunks, "en")
    assert sorted(derived["retrieved"]) == sorted(chunks)
    run = json.loads((tmp_path / "compression.json").read_text())
    assert run["settings"]["method"] == "dense" and run["settings"]["embedder"] == str(tiny_encoder)


def test_dense_and_summary_need_their_model(tmp_path):
    dense = longbench("compress", "--method", "dense", "--data", "sample", cwd=tmp_path)
    assert dense.returncode == 2 and "--method dense needs --embedder" in dense.stderr
    summary = longbench("compress", "--method", "summary", "--data", "sample", cwd=tmp_path)
    assert summary.returncode == 2 and "--method summary needs --model" in summary.stderr
    assert not (tmp_path / "compressed").exists()


# --- summary compression -------------------------------------------------------------------------------------


def test_summary_compression_through_the_openai_backend(tmp_path, tiny_model):
    with FakeOpenAIServer() as server:
        done = longbench(
            "compress",
            "--method",
            "summary",
            "--backend",
            "openai",
            "--model",
            "fake-model",
            "--base-url",
            server.url,
            "--tokenizer",
            "builtin:tiny",
            "--data",
            "sample",
            "--tasks",
            "gov_report",
            "--limit",
            "1",
            "--chunk-size",
            "200",
            "--out",
            "s",
            cwd=tmp_path,
            cache=tiny_model.parent,
        )
    assert done.returncode == 0, done.stderr
    (derived,) = lines(tmp_path / "s" / "gov_report.jsonl")
    source = next(iter_records("gov_report", "sample"))
    segments = split_chunks(source["context"], 200)
    assert len(segments) >= 2
    expected = [reply_text(SEGMENT_PROMPT.format(segment=s), SUMMARY_TOKENS).strip() for s in segments]
    assert derived["context"] == "\n".join(expected)
    assert {k: v for k, v in derived.items() if k != "context"} == {
        k: v for k, v in source.items() if k != "context"
    }


def test_summary_compression_with_the_tiny_model(tiny_model, one_torch_thread):
    from longbench.compression.summary import SegmentSummarizer

    record = next(iter_records("qmsum", "sample"))
    backend = create_backend("transformers", model=str(tiny_model), device="cpu")
    try:
        summarizer = SegmentSummarizer(backend, chunk_size=150, max_new_tokens=8)
        requests = summarizer.requests(record)
        assert len(requests) >= 2 and all(r.chat for r in requests)
        alone = {r.request.id: r.text.strip() for r in backend.generate(requests)}
        assert summarizer(record) == "\n".join(alone[r.id] for r in requests)
    finally:
        backend.close()


# --- LongBench v2 --------------------------------------------------------------------------------------------


def test_v2_records_get_retrieved_context_ranked_by_the_reference_bm25(tmp_path):
    import gzip

    from rank_bm25 import BM25Okapi

    v2 = []
    for number, record in enumerate(iter_records("hotpotqa", "sample")):
        v2.append(
            {
                "_id": f"v2-{number}",
                "domain": "Single-Document QA",
                "question": record["input"],
                "choice_A": "a",
                "choice_B": "b",
                "choice_C": "c",
                "choice_D": "d",
                "answer": "A",
                "length": "short",
                "context": record["context"],
            }
        )
    source = tmp_path / "v2.jsonl.gz"
    source.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in v2).encode()))
    done = longbench("compress", "--v2", "--data", str(source), "--chunk-size", "200", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = lines(tmp_path / "compressed" / "v2-bm25-c200" / "longbench_v2.jsonl")
    assert [r["_id"] for r in written] == [r["_id"] for r in v2]
    for got, record in zip(written, v2, strict=True):
        chunks = split_chunks(record["context"], 200)
        ranked = got.pop("retrieved_context")
        assert got == record
        assert sorted(entry["c_idx"] for entry in ranked) == list(range(len(chunks)))
        assert all(chunks[entry["c_idx"]] == entry["content"] for entry in ranked)
        oracle = BM25Okapi(chunks).get_top_n(record["question"], chunks, n=len(chunks))
        assert [entry["content"] for entry in ranked] == oracle

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(v2[0]) + "\n" + json.dumps({"_id": "x", "question": 3, "context": ""}) + "\n")
    failed = longbench("compress", "--v2", "--data", str(bad), "--out", "b", cwd=tmp_path)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert f"{bad}:2" in failed.stderr and "'question'" in failed.stderr
    assert not (tmp_path / "b").exists()


def test_a_bad_source_line_stops_compress_before_any_output(tmp_path):
    good = next(iter_records("qasper", "sample"))
    source = tmp_path / "mine.jsonl"
    source.write_text(json.dumps(good) + "\n" + '{"input": "no other fields"}\n', encoding="utf-8")
    done = longbench("compress", "--data", str(source), "--tasks", "qasper", "--out", "d", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{source}:2" in done.stderr
    assert not (tmp_path / "d").exists()


def test_two_compress_runs_into_one_folder_do_not_mix(tmp_path, tiny_model):
    """The first run is held by a slow server; a second `compress` into the same folder is refused at once and
    the first one's output holds each id once."""
    args = ["compress", "--method", "summary", "--backend", "openai", "--model", "fake-model", "--tokenizer",
            "builtin:tiny", "--data", "sample", "--tasks", "gov_report", "--limit", "2", "--chunk-size", "200",
            "--concurrency", "1", "--out", "s"]  # fmt: skip
    with FakeOpenAIServer(hold=threading.Event()) as server:  # answers wait until the second run was refused
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LONGBENCH_CACHE": str(tiny_model.parent)}
        first = subprocess.Popen([sys.executable, "-m", "longbench", *args, "--base-url", server.url], cwd=tmp_path,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        lock = tmp_path / "s" / ".predict.lock"
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = longbench(*args, "--base-url", server.url, cwd=tmp_path, cache=tiny_model.parent)
        server.config.hold.set()
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == 2 and "another run is writing here" in second.stderr, second.stderr
    assert f"pid {first.pid}" in second.stderr
    ids = [record["_id"] for record in lines(tmp_path / "s" / "gov_report.jsonl")]
    assert len(ids) == len(set(ids)) == 2
