"""Chinese metrics (qa_f1_zh, rouge_zh) and jieba word segmentation, loaded lazily and once.

jieba 0.42.1 in precise mode (``cut_all=False``, HMM on) with its default dictionary, as LongBench.
jieba is imported on the first Chinese metric call, never at module import. Its prefix dictionary is
cached in longbench's own cache directory (``$LONGBENCH_CACHE/jieba/``, default ``~/.cache/longbench``),
never in the shared temporary directory where another user could plant a file that changes the scores;
a cache file owned by another user is not read. It is read with one read and ``marshal.loads``, which is
~3x faster than jieba's ``marshal.load`` on the open file and yields the same dictionary; without a usable
cache, jieba's own initialisation builds it (and writes the cache there).
"""

from __future__ import annotations

import logging
import marshal
import os
import string
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from longbench.metrics.rouge import CALL_LIMIT_ZH, rouge_l_f
from longbench.metrics.text import token_f1

# The reference's Chinese punctuation set, verbatim (note: it has "》" but not "《", "." but not "．").
_CN_PUNCTUATION = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
_ALL_PUNCTUATION = {ord(ch): None for ch in string.punctuation + _CN_PUNCTUATION}

_load_lock = threading.Lock()
_jieba: Any = None


def _load_jieba() -> Any:
    """The initialised ``jieba`` module (imported and initialised on first use only)."""
    global _jieba
    if _jieba is not None:
        return _jieba
    with _load_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # its start-up chatter goes to stderr otherwise
            tokenizer = jieba.dt
            if tokenizer.tmp_dir is None:  # not set by the caller: our own directory, not <tmp>
                _use_own_cache(tokenizer)
            if not tokenizer.initialized and tokenizer.dictionary == jieba.DEFAULT_DICT:
                _load_default_cache(tokenizer)
            tokenizer.check_initialized()  # no-op when loaded; else jieba's own initialisation
            _jieba = jieba
    return _jieba


def _use_own_cache(tokenizer: Any) -> None:
    """Point jieba's cache at ``<cache root>/jieba/``; a file there owned by another user is not used (jieba
    then builds and writes a cache of this user's own name)."""
    from longbench.cache import cache_root

    folder = cache_root() / "jieba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable cache directory: a private one for this process (jieba builds the cache)
        folder = Path(tempfile.mkdtemp(prefix="longbench-jieba-"))
    tokenizer.tmp_dir = str(folder)
    cache = folder / (tokenizer.cache_file or "jieba.cache")
    if cache.exists() and cache.stat().st_uid != os.getuid():
        tokenizer.cache_file = f"jieba.uid{os.getuid()}.cache"


def _load_default_cache(tokenizer: Any) -> None:
    """Fill ``tokenizer`` from jieba's cache of the default dictionary, if that file is usable."""
    name = tokenizer.cache_file or "jieba.cache"
    path = os.path.join(tokenizer.tmp_dir or tempfile.gettempdir(), name)
    try:
        with open(path, "rb") as handle:
            freq, total = marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return  # missing or unreadable: jieba rebuilds it
    if isinstance(freq, dict) and isinstance(total, int):
        with tokenizer.lock:
            tokenizer.FREQ, tokenizer.total = freq, total
            tokenizer.initialized = True


def warm_up() -> None:
    """Load jieba now (e.g. in a worker process before its Chinese work)."""
    _load_jieba()


@lru_cache(maxsize=256)
def cut(text: str) -> tuple[str, ...]:
    """jieba's precise-mode segmentation of ``text``.

    jieba splits the text on its ``re_han_default`` pattern and segments each block on its own, so
    segmenting block by block, with a cache of blocks (model outputs repeat themselves a lot), gives
    exactly ``tuple(jieba.cut(text, cut_all=False))``.
    """
    tokens: list[str] = []
    for block in _load_jieba().re_han_default.split(text):
        if block:
            tokens.extend(_cut_block(block))
    return tuple(tokens)


@lru_cache(maxsize=65536)
def _cut_block(block: str) -> tuple[str, ...]:
    return tuple(_load_jieba().cut(block, cut_all=False))


def normalize_zh_answer(text: str) -> str:
    """Lower-case, drop ASCII and Chinese punctuation, then drop all whitespace."""
    return "".join(text.lower().translate(_ALL_PUNCTUATION).split())


def _tokens(text: str) -> list[str]:
    normalized = (normalize_zh_answer(token) for token in cut(text))
    return [token for token in normalized if len(token) > 0]


def qa_f1_zh(prediction: str, answer: str, all_classes: list[str] | None = None) -> float:
    """Multiset F1 of the normalised jieba tokens (empty tokens dropped)."""
    return token_f1(_tokens(prediction), _tokens(answer))


def rouge_zh(prediction: str, answer: str, call_limit: int | None = CALL_LIMIT_ZH) -> float:
    """ROUGE-L F of the space-joined jieba segmentations (see :func:`rouge_l_f` for failures)."""
    return rouge_l_f(" ".join(cut(prediction)), " ".join(cut(answer)), call_limit)
