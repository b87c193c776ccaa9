"""BM25 compression against the reference's functions, rebuilt here from SPEC.md ("Context compression").

The oracle is written independently of ``longbench.compression``: the reference's splitter recounts the
growing chunk's words on every piece, its word count splits on ``\\W`` and then around each CJK character,
and its ranking is ``rank_bm25.BM25Okapi`` fed raw strings. Parity is checked record for record on the real
multifieldqa_zh file (when ../shared is present) and on the bundled samples of the eight QA tasks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from longbench.compression import DEFAULT_TASKS
from longbench.compression.bm25 import okapi_scores, rank_words, tokenize
from longbench.compression.chunking import leading_context, split_chunks, word_count
from longbench.compression.pipeline import CompressSettings, bm25_ranker, compress
from longbench.loading import iter_records

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_ZH = SHARED / "longbench-data" / "v1" / "multifieldqa_zh.jsonl"


# --- the reference, rebuilt from SPEC.md -------------------------------------------------------------------


def ref_word_list(text: str) -> list[str]:
    words: list[str] = []
    for part in re.split(r"\W", text.lower()):
        words.extend(re.split(r"([\u4e00-\u9fa5])", part))
    return [word for word in words if len(word.strip()) > 0]


def ref_word_len(text: str) -> int:
    return len(ref_word_list(text))


def ref_split(text: str, chunk_size: int, recount: bool = True) -> list[str]:
    """The reference's packing; it recounts the growing chunk for every piece (``recount``). That is
    quadratic, so the real-file test keeps a running count instead, which the hypothesis test below shows
    gives the same chunks (every piece boundary is a non-word character)."""
    chunks: list[str] = []
    current, running = "", 0
    for piece in re.split(r"([。？！；\n.!?;]\s*)", text):
        words = ref_word_len(piece)
        if (ref_word_len(current) if recount else running) + words <= chunk_size:
            current += " " if piece == "" else piece
            running += words
        else:
            if current:
                chunks.append(current)
            current, running = piece, words
    if current:
        chunks.append(current)
    return chunks


def ref_compress(record: dict, chunk_size: int, recount: bool = True) -> dict:
    chunks = ref_split(record["context"], chunk_size, recount)
    ranked = (
        BM25Okapi(chunks).get_top_n(query=record["input"], documents=chunks, n=len(chunks)) if chunks else []
    )
    return {**record, "context": ref_leading_context(ranked), "retrieved": ranked}


def ref_leading_context(ranked: list[str]) -> str:
    context = ""
    for chunk in ranked:
        if ref_word_len(context) >= 1500:
            break
        context += chunk
    return context


# --- parity -------------------------------------------------------------------------------------------------


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("chunk_size", [200, 500])
def test_samples_of_the_eight_tasks_match_the_reference(tmp_path, chunk_size):
    settings_ = CompressSettings(chunk_size=chunk_size)
    compress("sample", tmp_path, list(DEFAULT_TASKS), settings_, ranker=bm25_ranker("characters"))
    compared = 0
    for task in DEFAULT_TASKS:
        written = read_lines(tmp_path / f"{task}.jsonl")
        expected = [ref_compress(dict(record), chunk_size) for record in iter_records(task, "sample")]
        assert written == expected, task
        compared += sum(len(record["retrieved"]) > 1 for record in written)
    assert compared >= 8  # the samples are long enough to be cut into several chunks


@pytest.mark.skipif(not REAL_ZH.is_file(), reason="../shared reference data not present")
@pytest.mark.parametrize("chunk_size", [200, 500])
def test_real_multifieldqa_zh_matches_the_reference(tmp_path, chunk_size):
    compress(
        str(REAL_ZH.parent),
        tmp_path,
        ["multifieldqa_zh"],
        CompressSettings(chunk_size=chunk_size),
        ranker=bm25_ranker("characters"),
    )
    written = read_lines(tmp_path / "multifieldqa_zh.jsonl")
    source = read_lines(REAL_ZH)
    assert len(written) == len(source) == 200
    for got, record in zip(written, source, strict=True):
        assert got == ref_compress(record, chunk_size, recount=False), record["_id"]


# --- the pieces, on adversarial strings ---------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.sampled_from(
        list("ab Z9_\n\t.!?;。？！；中文字éİß-,") + [" ", "\u3000", "\u9fa5", "\u4e00", "\u9fa6"]
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_word_count_is_the_references(text):
    assert word_count(text) == ref_word_len(text)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(min_value=0, max_value=12))
def test_chunking_is_the_references(text, chunk_size):
    expected = ref_split(text, chunk_size)
    assert split_chunks(text, chunk_size) == expected
    assert ref_split(text, chunk_size, recount=False) == expected


@pytest.mark.parametrize(
    "ranked",
    [
        ["a " * 1000, "b " * 500, "c."],  # exactly 1,500 words: the next chunk stays out
        ["a " * 1000, "b " * 499, "c.", "d."],  # 1,499: one more goes in
        ["x" * 10 + "。" * 3, "ab", "cd" * 2000],  # chunks that join into one word when appended
        ["中" * 1499, "a b", "c"],
    ],
)
def test_leading_context_is_the_references(ranked):
    assert leading_context(ranked) == ref_leading_context(ranked)


# --- word-level BM25 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["qasper", "dureader", "multifieldqa_zh", "hotpotqa"])
def test_word_level_scores_are_rank_bm25s_on_word_lists(task):
    for record in iter_records(task, "sample"):
        chunks = split_chunks(record["context"], 200)
        documents = [tokenize(chunk, record["language"]) for chunk in chunks]
        query = tokenize(record["input"], record["language"])
        oracle = BM25Okapi(documents).get_scores(query)
        assert np.allclose(okapi_scores(query, documents), oracle, rtol=1e-12, atol=1e-12)
        keys = np.round(oracle, 9)
        expected = [chunks[i] for i in sorted(range(len(chunks)), key=lambda i: -keys[i])]
        assert rank_words(record["input"], chunks, record["language"]) == expected


def test_word_level_ranks_by_words_not_characters():
    chunks = ["the cattle graze here.", "a cat sleeps.", "tac tac tac act."]
    assert rank_words("cat", chunks, "en")[0] == "a cat sleeps."
    assert tokenize("Hello, World!  x_y", "en") == ["hello", "world", "x_y"]
    assert tokenize("我们在北京。", "zh") == ["我们", "在", "北京"]
