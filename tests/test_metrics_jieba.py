"""jieba start-up: the fast cache read gives jieba's own dictionary, and a bad cache falls back.

Each check runs in a fresh interpreter (jieba's state is process-wide), with ``TMPDIR`` and
``LONGBENCH_CACHE`` pointing at private directories so the user's caches are never touched. longbench keeps
jieba's cache in its own cache directory: a file planted in the shared temporary directory, or one owned by
another user, changes nothing.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = "我们今天去北京大学看看。南京市长江大桥，2024年的会议讨论了预算和人工智能。"

FINGERPRINT = (
    "import hashlib, jieba\n"
    "d = jieba.dt\n"
    "h = hashlib.sha256(repr(sorted(d.FREQ.items())).encode()).hexdigest()\n"
    "print(d.initialized, d.total, len(d.FREQ), h)\n"
)


def run_python(code: str, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "LONGBENCH_CACHE": str(tmpdir / "cache")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)


def test_fast_cache_load_equals_jiebas_own_initialisation(tmp_path):
    own = run_python(
        "import jieba; jieba.setLogLevel(60); jieba.initialize()\n"  # builds and writes the cache
        + FINGERPRINT
        + f"print('|'.join(jieba.cut({SAMPLE!r}, cut_all=False)))",
        tmp_path,
    )
    assert (tmp_path / "jieba.cache").is_file()
    ours = run_python(
        "from longbench.metrics import chinese\n"
        f"tokens = chinese.cut({SAMPLE!r})\n" + FINGERPRINT + "print('|'.join(tokens))",
        tmp_path,
    )
    assert ours.stdout == own.stdout
    assert own.stdout.startswith("True ")
    assert ours.stderr == ""  # no "Building prefix dict" chatter


def test_unreadable_cache_falls_back_to_jieba(tmp_path):
    cache = tmp_path / "cache" / "jieba" / "jieba.cache"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a marshal file")
    ours = run_python(
        f"from longbench.metrics import chinese\nprint('|'.join(chinese.cut({SAMPLE!r})))\n" + FINGERPRINT,
        tmp_path,
    )
    tokens, fingerprint = ours.stdout.splitlines()
    assert tokens.split("|")[:3] == ["我们", "今天", "去"]
    assert fingerprint.startswith("True ")
    assert cache.read_bytes() != b"not a marshal file"  # jieba rewrote it


def _planted_cache() -> bytes:
    """A jieba cache whose dictionary makes "北京大学看看" one word: it would change the segmentation."""
    import jieba

    tokenizer = jieba.Tokenizer()
    freq, total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
    for end in range(1, len("北京大学看看") + 1):
        freq.setdefault("北京大学看看"[:end], 0)
    freq["北京大学看看"] = 10**9
    return marshal.dumps((freq, total + 10**9))


SEGMENT = f"from longbench.metrics import chinese\nprint('|'.join(chinese.cut({SAMPLE!r})))\n"


def test_a_cache_planted_in_the_shared_temp_dir_is_not_read(tmp_path):
    honest = run_python(SEGMENT, tmp_path / "clean")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "jieba.cache").write_bytes(_planted_cache())
    planted = run_python(SEGMENT, tmp_path / "shared")
    assert "北京大学看看" not in planted.stdout and planted.stdout == honest.stdout
    assert (tmp_path / "shared" / "cache" / "jieba" / "jieba.cache").is_file()  # our own cache, written


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_cache_owned_by_another_user_is_not_read(tmp_path):
    honest = run_python(SEGMENT, tmp_path / "clean")
    cache = tmp_path / "shared" / "cache" / "jieba" / "jieba.cache"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(_planted_cache())
    os.chown(cache, 54321, -1)
    planted = run_python(SEGMENT, tmp_path / "shared")
    assert planted.stdout == honest.stdout
