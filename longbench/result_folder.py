"""Installing a folder of result files as one set: the old complete set or the new one, never a mix.

``longbench eval`` builds every file it writes in memory first, then :func:`install_output_set` writes them
into a temporary folder beside the target (``.<name>.tmp-XXXX``), moves the old folder aside
(``.<name>.old-XXXX``), renames the new one into place and removes the old. A kill or a full disk at any
moment leaves the target holding a complete set; leftovers of a killed earlier install are cleaned up (or the
old set put back) by the next one. Where the kernel can exchange two folders in one step (Linux
``renameat2``), the old and new folders are swapped instead, so the target is never absent. An exclusive
``flock`` on the parent folder itself makes a second process wait its turn (no lock file is left behind).
Each set carries a manifest (:data:`MANIFEST`) naming every file it wrote, at any depth, so a folder is only
ever replaced when it is missing, empty or an earlier set: never a folder holding a file eval did not write,
however deep. Names given by the user are never used as patterns (``metrics/[ab]`` is a plain name).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from longbench.errors import LongBenchError
from longbench.permissions import current_umask

MANIFEST = ".longbench-eval.json"  # {"files": [...]}: marks a folder as an output set of `longbench eval`
# What `longbench eval` wrote before sets had a manifest: such a folder may still be replaced.
_LEGACY_NAMES = {"result.json", "samples.jsonl", "summary.json", "tables.md"}
_PAUSE_ENV = "LONGBENCH_TEST_PAUSE_SWAP"  # tests: the step to pause at (a minute, reported on stderr)


def _fail(target: Path, error: OSError) -> LongBenchError:
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "disk full"
    elif error.errno == errno.EFBIG:
        reason = "file size limit exceeded"
    return LongBenchError(f"{target}: cannot write results ({reason}); the folder was left as it was")


def _step(name: str) -> None:
    """A named point in the install, where tests can pause to kill the process."""
    if os.environ.get(_PAUSE_ENV) == name:
        print(f"swap-step: {name}", file=sys.stderr, flush=True)
        time.sleep(60)


def _contents(target: Path) -> set[str] | None:
    """Every file under ``target`` as a relative POSIX path; None when it holds anything but plain files and
    folders (a symbolic link, a FIFO, ...), which eval never writes."""
    found: set[str] = set()
    for folder, subfolders, files in os.walk(target):
        here = Path(folder)
        for name in [*subfolders, *files]:
            if (here / name).is_symlink():
                return None
        for name in files:
            if not (here / name).is_file():
                return None
            found.add((here / name).relative_to(target).as_posix())
    return found


def _listed(target: Path) -> set[str] | None:
    """The files an earlier set's manifest names; None when it has none or it cannot be read."""
    try:
        listed = json.loads((target / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        return None
    return {Path(name).as_posix() for name in listed}


def _is_replaceable(target: Path) -> bool:
    """Missing, empty, an earlier output set holding only files its manifest names (at any depth), or a
    folder of top-level files only eval ever wrote (before sets had a manifest)."""
    if not target.exists():
        return True
    if not target.is_dir() or target.is_symlink():
        return False
    contents = _contents(target)
    if contents is None:
        return False
    if (target / MANIFEST).is_file():
        listed = _listed(target)
        return listed is not None and contents <= listed | {MANIFEST}
    return all("/" not in name and (name in _LEGACY_NAMES or name.startswith("table_")) for name in contents)


def _refuse_foreign(target: Path) -> None:
    if not _is_replaceable(target):
        raise LongBenchError(
            f"{target}: holds files that `longbench eval` did not write; choose another --out (or move them)"
        )


def _leftovers(target: Path, kind: str) -> list[Path]:
    """This target's own temporary folders (compared as plain names: a user's name is never a pattern)."""
    prefix = f".{target.name}.{kind}-"
    return sorted(entry for entry in target.parent.iterdir() if entry.name.startswith(prefix))


def _recover(target: Path) -> None:
    """Undo what a killed earlier install left: temp folders removed, the old set put back or removed."""
    for temporary in _leftovers(target, "tmp"):
        shutil.rmtree(temporary, ignore_errors=True)
    for old in _leftovers(target, "old"):
        if not target.exists() and (old / "set").is_dir():
            os.rename(old / "set", target)  # killed between moving the old set aside and the new one in
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``target``'s parent folder (released by the kernel if the process dies; no
    lock file is created, so none is ever left behind)."""
    descriptor = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def check_output_location(target: Path) -> None:
    """Refuse now, before any scoring, when ``target`` cannot receive an output set."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            _recover(target)
            _refuse_foreign(target)
            tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.tmp-").cleanup()
    except OSError as error:
        raise _fail(target, error) from None


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:  # mode follows the umask, like any file the user creates
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _manifest(files: Mapping[str, bytes]) -> bytes:
    return (json.dumps({"files": sorted(files)}, indent=1) + "\n").encode("utf-8")


def _exchange(first: Path, second: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _swap(target: Path, temporary: Path) -> None:
    """New set in, old set removed; the target holds a complete set at every moment (where the kernel can
    exchange two folders; elsewhere there is a moment without one, which the next install repairs)."""
    if target.exists() and _exchange(temporary, target):
        _fsync_dir(target.parent)
        _step("sets exchanged")
        shutil.rmtree(temporary)  # now the old set
        return
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.rename(target, old / "set")  # a rename within the parent: atomic
        _step("old set moved aside")
    os.rename(temporary, target)
    _fsync_dir(target.parent)
    _step("new set in place")
    if old is not None:
        shutil.rmtree(old)


def install_output_set(target: Path, files: Mapping[str, bytes]) -> None:
    """Make ``target`` hold exactly ``files`` (relative name -> content), replacing an earlier set in one step.

    Raises :class:`LongBenchError` (one line) on any OS error; ``target`` then holds what it held before.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            _recover(target)
            _refuse_foreign(target)
            temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
            try:
                os.chmod(temporary, 0o777 & ~current_umask())
                for name, data in {**files, MANIFEST: _manifest(files)}.items():
                    _write_file(temporary / name, data)
                _fsync_dir(temporary)
                _step("new set written")
                _swap(target, temporary)
            finally:
                shutil.rmtree(temporary, ignore_errors=True)
    except OSError as error:
        raise _fail(target, error) from None


MAX_FOLDER_NAME = 120  # characters of a default results folder's name (file systems allow 255 bytes)


def results_folder_name(names: Sequence[str]) -> str:
    """A folder name for the results of ``names`` (models, result files): ``a+b+c``, characters a path cannot
    hold replaced; when too long, the first names and a hash of all of them."""
    safe = [re.sub(r"[^\w.+=-]+", "_", name).strip("._") or "_" for name in names]
    joined = "+".join(safe)
    if len(joined) <= MAX_FOLDER_NAME:
        return joined
    digest = hashlib.sha256("\0".join(names).encode("utf-8", "replace")).hexdigest()[:12]
    head = "+".join(safe[:2])[: MAX_FOLDER_NAME - 40]
    return f"{head}+{len(names) - 2}-more-{digest}"
