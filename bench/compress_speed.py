"""BM25 compression speed: chunks per second, longbench beside straightforward per-record code, one run.

Four rankers over the same records (the real ``../shared/longbench-data/v1/multifieldqa_zh.jsonl`` when
present, else the bundled samples of the eight QA tasks), per chunk size:

* ``reference, straightforward``: the reference's code written plainly: its splitter recounting the growing
  chunk's words for every piece, ``rank_bm25.BM25Okapi`` fed raw strings (character-level);
* ``reference, longbench``: ``longbench.compression`` reference-exact path (running word count, rank_bm25);
* ``words, straightforward``: word-level BM25 through ``rank_bm25`` on token lists, record by record (on
  longbench's chunks, so that only the ranking differs);
* ``words, longbench``: ``longbench.compression.bm25.rank_words`` (numpy-vectorised Okapi).

It prints a table (records, chunks, seconds, chunks/s, speed-up) and checks that each longbench ranker's
output equals its straightforward counterpart. Usage: ``python bench/compress_speed.py [--limit N]
[--chunk-sizes 200,500]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared/longbench-data/v1/multifieldqa_zh.jsonl"


def plain_word_len(text: str) -> int:
    words: list[str] = []
    for part in re.split(r"\W", text.lower()):
        words.extend(re.split(r"([\u4e00-\u9fa5])", part))
    return len([word for word in words if word.strip()])


def plain_split(text: str, chunk_size: int) -> list[str]:
    chunks, current = [], ""
    for piece in re.split(r"([。？！；\n.!?;]\s*)", text):
        if plain_word_len(current) + plain_word_len(piece) <= chunk_size:
            current += " " if piece == "" else piece
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def plain_reference(record: dict, chunk_size: int) -> list[str]:
    from rank_bm25 import BM25Okapi

    chunks = plain_split(record["context"], chunk_size)
    return BM25Okapi(chunks).get_top_n(record["input"], chunks, n=len(chunks)) if chunks else []


def plain_words(record: dict, chunk_size: int) -> list[str]:
    from rank_bm25 import BM25Okapi

    from longbench.compression.bm25 import tokenize
    from longbench.compression.chunking import split_chunks

    chunks = split_chunks(record["context"], chunk_size)  # the same chunks: only the ranking is compared
    if not chunks:
        return []
    language = record["language"]
    scores = BM25Okapi([tokenize(c, language) for c in chunks]).get_scores(
        tokenize(record["input"], language)
    )
    keys = np.round(scores, 9)
    return [chunks[i] for i in sorted(range(len(chunks)), key=lambda i: -keys[i])]


def longbench_reference(record: dict, chunk_size: int) -> list[str]:
    from longbench.compression.bm25 import rank_reference
    from longbench.compression.chunking import split_chunks

    return rank_reference(record["input"], split_chunks(record["context"], chunk_size))


def longbench_words(record: dict, chunk_size: int) -> list[str]:
    from longbench.compression.bm25 import rank_words
    from longbench.compression.chunking import split_chunks

    return rank_words(record["input"], split_chunks(record["context"], chunk_size), record["language"])


def load(limit: int | None) -> tuple[str, list[dict]]:
    if SHARED.is_file():
        rows = [json.loads(line) for line in SHARED.read_text(encoding="utf-8").splitlines() if line.strip()]
        return "multifieldqa_zh (real)", rows[:limit]
    from longbench.compression import DEFAULT_TASKS
    from longbench.loading import iter_records

    rows = [dict(r) for task in DEFAULT_TASKS for r in iter_records(task, "sample")]
    return "samples of the eight QA tasks", rows[:limit]


def timed(rank: Callable[[dict, int], list[str]], records: list[dict], size: int) -> tuple[float, list]:
    started = time.perf_counter()
    out = [rank(record, size) for record in records]
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N records")
    parser.add_argument("--chunk-sizes", default="200,500")
    args = parser.parse_args()
    import jieba

    jieba.initialize()  # its one-off dictionary load is not ranking time
    name, records = load(args.limit)
    print(
        f"{name}: {len(records)} records; {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print("| chunk size | ranker | records | chunks | seconds | chunks/s | speed-up | same output |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for size in (int(s) for s in args.chunk_sizes.split(",")):
        pairs = (("reference", plain_reference, longbench_reference), ("words", plain_words, longbench_words))
        for label, plain, fast in pairs:
            slow_s, expected = timed(plain, records, size)
            fast_s, got = timed(fast, records, size)
            chunks = sum(len(ranked) for ranked in expected)
            same = sum(a == b for a, b in zip(expected, got, strict=True))
            for who, seconds in (("straightforward", slow_s), ("longbench", fast_s)):
                ratio = f"{slow_s / seconds:.1f}x"
                print(
                    f"| {size} | {label}, {who} | {len(records)} | {chunks} | {seconds:.2f} | "
                    f"{chunks / seconds:,.0f} | {ratio} | {same}/{len(records)} |"
                )


if __name__ == "__main__":
    main()
