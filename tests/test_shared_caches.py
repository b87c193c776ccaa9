"""Shared caches follow the umask: the extracted data and the tiny model are as readable to the user's group
as any folder the user creates (``mkdtemp`` alone would make them 0700). Real folders, a real zip, real umask."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _mode_after(code: str) -> int:
    """Run ``code`` (which prints a path) under umask 022 in a fresh interpreter; that path's mode bits."""
    done = subprocess.run([sys.executable, "-c", "import os; os.umask(0o022)\n" + code], capture_output=True,
                          text=True, check=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    return os.stat(done.stdout.strip()).st_mode & 0o777


def test_extracted_data_follows_the_umask(tmp_path: Path) -> None:
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(REPO / "data" / "sample" / "trec.jsonl", "data/trec.jsonl")
    target = tmp_path / "cache" / "extracted"
    code = (
        "from pathlib import Path\nfrom longbench.archive import _extract\n"
        f"_extract(Path({str(archive)!r}), Path({str(target)!r}), replace=False, progress=False)\n"
        f"print({str(target)!r})"
    )
    assert _mode_after(code) == 0o755
    assert (target / "trec.jsonl").stat().st_mode & 0o777 == 0o644


def test_the_tiny_model_cache_follows_the_umask(tmp_path: Path) -> None:
    code = f"from pathlib import Path\nfrom longbench.tinymodel import tiny_model_path\nprint(tiny_model_path(Path({str(tmp_path)!r})))"
    assert _mode_after(code) == 0o755
