"""Exact, fast longest-common-subsequence backtrack of the ``rouge`` package (bit-parallel rows).

The ``rouge`` package (1.0.1) fills a dict-based dynamic-programming table for every sentence pair
and rebuilds one LCS with a recursive backtrack: from ``(len(x), len(y))`` it moves diagonally when
``x[i-1] == y[j-1]``, else up when ``table[i-1][j] > table[i][j-1]`` strictly, else left, until an
index reaches 0. Here ``x`` is the reference sentence and ``y`` the hypothesis sentence.

This module computes the same table with bit vectors (Hyyrö's bit-parallel LCS over Python ints):
row ``i`` is stored as the int ``Z[i]`` whose bit ``j - 1`` is set when ``table[i][j]`` exceeds
``table[i][j-1]``, so ``table[i][j] == (Z[i] & ((1 << j) - 1)).bit_count()``. The backtrack follows the
identical path (runs of left moves are taken in one jump) and so returns the same LCS token set,
together with the number of nested calls the recursive version makes.
"""

from __future__ import annotations


def match_masks(words: list[str]) -> dict[str, int]:
    """For each distinct word, the int whose bit ``j`` is set where ``words[j]`` is that word."""
    masks: dict[str, int] = {}
    for position, word in enumerate(words):
        masks[word] = masks.get(word, 0) | (1 << position)
    return masks


def lcs_rows(x: list[str], masks_y: dict[str, int], m: int) -> list[int]:
    """The rows ``Z[0..len(x)]`` of the LCS table of ``x`` against the ``m``-word sequence ``y``.

    ``masks_y`` is :func:`match_masks` of ``y``. ``Z[i]`` has bit ``j - 1`` set iff
    ``table[i][j] - table[i][j-1] == 1``; ``Z[i].bit_count()`` is the LCS length of ``x[:i]`` and ``y``.
    """
    full = (1 << m) - 1
    v = full  # complement of Z: Hyyrö's row vector
    rows = [0]
    append = rows.append
    get = masks_y.get
    for word in x:
        mask = get(word)
        if mask:
            u = v & mask
            v = ((v + u) | (v - u)) & full
        append(full ^ v)
    return rows


def lcs_backtrack(x: list[str], masks_y: dict[str, int], m: int, rows: list[int]) -> tuple[set[str], int]:
    """The ``rouge`` package's LCS token set of ``x`` and ``y``, and its number of nested calls.

    ``y`` has ``m`` words and ``rows`` is :func:`lcs_rows` of ``x`` and ``y``. The call count includes
    the first call at ``(len(x), m)`` and the last one, where an index reaches 0.

    At ``(i, j)`` without a match the package moves up iff ``table[i-1][j] > table[i][j-1]``. As
    ``table[i][j] == max(table[i-1][j], table[i][j-1])`` there, that holds exactly when row ``i``
    increases at column ``j`` (bit ``j - 1`` of ``rows[i]``); otherwise it moves left. So the walk
    jumps left to the nearest column with a match or an increase, then goes diagonally or up.
    """
    i, j = len(x), m
    tokens: set[str] = set()
    calls = 1
    while i > 0 and j > 0:
        word = x[i - 1]
        match = masks_y.get(word, 0)
        stops = (rows[i] | match) & ((1 << j) - 1)
        target = stops.bit_length()  # nearest column <= j with a match or an increase
        calls += j - target  # the left moves skipped over
        j = target
        if j == 0:
            break
        calls += 1
        if (match >> (j - 1)) & 1:  # diagonal
            tokens.add(word)
            j -= 1
        i -= 1  # diagonal or up
    return tokens, calls
