"""What killed runs leave behind is cleaned by the next one, and written files follow the user's umask.

A download killed mid-way leaves ``<blob>.incomplete`` in the Hugging Face cache; an extraction killed
mid-way leaves a hidden temporary folder beside the extracted release. The next run removes those that no
live process holds (a real child process holds a download lock here: its partial blob is kept).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from hubserver import HubServer

from longbench.archive import REPO_ID, fetch_release
from longbench.run_files import write_atomic


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _zip(records: list[dict]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("data/trec.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return buffer.getvalue()


def _hold_flock(path: Path) -> subprocess.Popen:
    """A real process holding an flock on ``path`` (as huggingface_hub holds a download's lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_the_next_run_removes_orphaned_partial_downloads_and_extractions(tmp_path: Path) -> None:
    record = {"input": "q", "context": "c", "answers": ["a"], "length": 1, "dataset": "trec",
              "language": "en", "all_classes": ["a"], "_id": "t0"}  # fmt: skip
    with HubServer() as hub:
        hub.add_file(REPO_ID, "data.zip", _zip([record]))
        release = fetch_release(cache_dir=tmp_path, endpoint=hub.url, progress=False)
        repo = release.archive.parents[2]
        orphan = repo / "blobs" / "0123abcd.incomplete"  # a download killed long ago: no one holds its lock
        orphan.write_bytes(b"partial")
        live = repo / "blobs" / "4567cdef.incomplete"  # a download in progress in another process
        live.write_bytes(b"partial")
        holder = _hold_flock(tmp_path / ".locks" / repo.name / "4567cdef.lock")
        extracted = release.directory.parent
        stale = extracted / f".{release.directory.name}.killed"  # an extraction killed mid-way
        (stale / "sub").mkdir(parents=True)
        (stale / "sub" / "trec.jsonl").write_bytes(b"half")
        hour_ago = time.time() - 3600
        os.utime(stale, (hour_ago, hour_ago))
        fresh = extracted / f".{release.directory.name}.starting"  # just made by another process
        fresh.mkdir()
        try:
            again = fetch_release(cache_dir=tmp_path, endpoint=hub.url, progress=False)
        finally:
            holder.kill()
            holder.wait()
    assert again.directory == release.directory and (again.directory / "trec.jsonl").is_file()
    assert not orphan.exists() and not stale.exists()
    assert live.exists() and fresh.exists()


def test_atomically_written_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.json", "{}\n")
        os.umask(0o077)
        write_atomic(tmp_path / "b.json", "{}\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
