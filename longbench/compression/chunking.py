"""The reference's chunking (``LongBench/retrieval``): its sentence splitter, its word count, its packing.

The context is split with the capturing expression ``([。？！；\\n.!?;]\\s*)`` (separators are pieces too) and
the pieces are packed in order: a piece joins the current chunk (an empty piece adds one space) while the
chunk's words plus the piece's stay within ``chunk_size``; otherwise the chunk is closed and a new one starts
with the piece. A word is a run of word characters of the lower-cased text, except that every CJK character
(U+4E00-U+9FA5) is a word by itself.
"""

from __future__ import annotations

import re

SPLITTER = re.compile(r"([。？！；\n.!?;]\s*)")
_WORD = re.compile(r"[\u4e00-\u9fa5]|[^\W\u4e00-\u9fa5]+")
CONTEXT_WORDS = 1500  # the reference's retrieved `context` grows while it has fewer words than this


def word_count(text: str) -> int:
    """The reference's ``get_word_len``: words of the lower-cased text, each CJK character one word."""
    return len(_WORD.findall(text.lower()))


def split_chunks(text: str, chunk_size: int) -> list[str]:
    """``text`` packed into chunks of at most ``chunk_size`` words (longer single pieces stay whole).

    Word counts add up across pieces (every piece boundary is a non-word character), so each piece is
    counted once instead of recounting the growing chunk as the reference does; the result is the same.
    """
    chunks: list[str] = []
    current, current_words = "", 0
    for piece in SPLITTER.split(text):
        words = word_count(piece)
        if current_words + words <= chunk_size:
            current += " " if piece == "" else piece
            current_words += words
            continue
        if current:
            chunks.append(current)
        current, current_words = piece, words
    if current:
        chunks.append(current)
    return chunks


def leading_context(ranked: list[str], max_words: int = CONTEXT_WORDS) -> str:
    """The reference's retrieved ``context``: ranked chunks appended while the text has fewer than
    ``max_words`` words."""
    context = ""
    for chunk in ranked:
        if word_count(context) >= max_words:  # the running text, counted whole: chunks may join words
            break
        context += chunk
    return context
