"""jieba start-up: the fast cache read gives jieba's own dictionary, and a bad cache falls back.

Each check runs in a fresh interpreter (jieba's state is process-wide), with ``TMPDIR`` pointing at a
private directory so the user's ``/tmp/jieba.cache`` is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLE = "我们今天去北京大学看看。南京市长江大桥，2024年的会议讨论了预算和人工智能。"

FINGERPRINT = (
    "import hashlib, jieba\n"
    "d = jieba.dt\n"
    "h = hashlib.sha256(repr(sorted(d.FREQ.items())).encode()).hexdigest()\n"
    "print(d.initialized, d.total, len(d.FREQ), h)\n"
)


def run_python(code: str, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
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
    (tmp_path / "jieba.cache").write_bytes(b"not a marshal file")
    ours = run_python(
        f"from longbench.metrics import chinese\nprint('|'.join(chinese.cut({SAMPLE!r})))\n" + FINGERPRINT,
        tmp_path,
    )
    tokens, fingerprint = ours.stdout.splitlines()
    assert tokens.split("|")[:3] == ["我们", "今天", "去"]
    assert fingerprint.startswith("True ")
    assert (tmp_path / "jieba.cache").read_bytes() != b"not a marshal file"  # jieba rewrote it
