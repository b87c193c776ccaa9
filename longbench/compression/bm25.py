"""BM25 ranking of a record's chunks against its question: the reference's, and a word-level one.

The reference passes the chunk strings themselves to ``rank_bm25.BM25Okapi`` and the question string to
``get_top_n``, so its terms are single characters. :func:`rank_reference` does exactly that, through
``rank_bm25`` itself, so scores and tie order are the reference's. :func:`rank_words` is the same Okapi
formula (k1 1.5, b 0.75, negative idf floored at 0.25 of the mean idf) over words: lower-cased ``\\w+`` runs
for English, jieba's words for Chinese; it is vectorised with numpy, and equal scores keep document order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

K1, B, EPSILON = 1.5, 0.75, 0.25
TOKEN_CHOICES: tuple[str, ...] = ("characters", "words")  # characters: the reference's behaviour
_WORD = re.compile(r"\w+")


def order_reference(query: str, chunks: Sequence[str]) -> list[int]:
    """Positions of all ``chunks``, best first, exactly as the reference ranks them (character-level, its tie
    order): ``get_top_n`` given the positions as its documents returns them in the order it returns chunks."""
    from rank_bm25 import BM25Okapi

    if not chunks:
        return []
    positions = list(range(len(chunks)))  # chunks are never empty strings, so the vocabulary is never empty
    return BM25Okapi(list(chunks)).get_top_n(query=query, documents=positions, n=len(positions))


def rank_reference(query: str, chunks: Sequence[str]) -> list[str]:
    """All ``chunks``, best first, as the reference ranks them."""
    return [chunks[i] for i in order_reference(query, chunks)]


def tokenize(text: str, language: str) -> list[str]:
    """Words of ``text``: jieba's (word characters only) for Chinese, lower-cased ``\\w+`` runs otherwise."""
    if language == "zh":
        import jieba

        return [word for word in jieba.lcut(text.lower()) if _WORD.search(word)]
    return _WORD.findall(text.lower())


def okapi_scores(query: Sequence[str], documents: Sequence[Sequence[str]]) -> np.ndarray:
    """BM25Okapi score of each tokenized document for ``query`` (the formula of ``rank_bm25.BM25Okapi``)."""
    count = len(documents)
    lengths = np.fromiter((len(doc) for doc in documents), dtype=np.float64, count=count)
    vocabulary: dict[str, int] = {}
    term_ids = np.fromiter(
        (vocabulary.setdefault(term, len(vocabulary)) for doc in documents for term in doc),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    doc_ids = np.repeat(np.arange(count), lengths.astype(np.int64))
    pairs = np.unique(term_ids * count + doc_ids)  # each (term, document) once
    frequency = np.bincount(pairs // count, minlength=len(vocabulary))  # documents holding each term
    idf = np.log(count - frequency + 0.5) - np.log(frequency + 0.5)
    if len(idf):
        idf[idf < 0] = EPSILON * idf.mean()
    norm = K1 * (1 - B + B * lengths / max(lengths.mean(), 1e-300))
    found = [vocabulary[term] for term in query if term in vocabulary]  # repeated terms count again
    if not found:
        return np.zeros(count)
    query_ids, repeats = np.unique(np.array(found, dtype=np.int64), return_counts=True)
    slot = np.full(len(vocabulary), -1, dtype=np.int64)
    slot[query_ids] = np.arange(len(query_ids))
    hit = slot[term_ids]
    keep = hit >= 0
    tf = np.bincount(hit[keep] * count + doc_ids[keep], minlength=len(query_ids) * count)
    tf = tf.reshape(len(query_ids), count).astype(np.float64)
    weights = (repeats * idf[query_ids])[:, None]
    return (weights * (tf * (K1 + 1) / (tf + norm))).sum(axis=0)


def order_words(query: str, chunks: Sequence[str], language: str) -> list[int]:
    """Positions of all ``chunks``, best first, by word-level BM25; equal scores keep document order."""
    if not chunks:
        return []
    scores = okapi_scores(tokenize(query, language), [tokenize(chunk, language) for chunk in chunks])
    return np.argsort(-np.round(scores, 9), kind="stable").tolist()  # rounded: ties ignore summation order


def rank_words(query: str, chunks: Sequence[str], language: str) -> list[str]:
    """All ``chunks``, best first, by word-level BM25."""
    return [chunks[i] for i in order_words(query, chunks, language)]
