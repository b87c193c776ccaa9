"""The released ``data.zip`` of THUDM/LongBench: fetched into the Hugging Face cache, extracted once, verified.

``datasets`` >= 4 refuses the repository's loading script, so the archive itself is downloaded with
``huggingface_hub`` (cache first: a cached copy is used without any network call) and unpacked, flat, into
``<HF cache>/datasets--THUDM--LongBench/longbench-extracted/<blob>/`` next to the cached blob.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from longbench.checksums import FileChecksum, released_checksums, verify_folder
from longbench.errors import InputError, LongBenchError, SettingError
from longbench.permissions import follow_umask

REPO_ID = "THUDM/LongBench"
ARCHIVE_NAME = "data.zip"
DEFAULT_REVISION = "main"
EXTRACTED_FOLDER = "longbench-extracted"
_YOUNG_SECONDS = 60  # a temporary folder this new may be one another process has just made, not locked yet
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Release:
    """A cached ``data.zip`` and the folder holding its extracted ``<task>.jsonl`` files."""

    archive: Path
    directory: Path
    revision: str
    commit: str


@dataclass(frozen=True)
class DownloadReport:
    """What ``longbench download`` did: where the files are, which released files passed, which are absent."""

    release: Release
    verified: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def hub_remedy(revision: str | None) -> str:
    """What to tell the user when a file from the hub download fails its checksum."""
    option = f" --revision {revision}" if revision not in (None, DEFAULT_REVISION) else ""
    return (
        f"the cached download is damaged or the release changed: run `longbench download --force{option}`, "
        "or pass --no-verify (verify=False in Python) to use the file as it is"
    )


def archive_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The ``.jsonl`` members of a data.zip by file name, under ``data/`` (the release) or at the root.

    When both places hold a file of the same name, the one under ``data/`` wins.
    """
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        parts = info.filename.split("/")
        if info.is_dir() or not (len(parts) == 1 or (len(parts) == 2 and parts[0] == "data")):
            continue
        name = parts[-1]
        if name.endswith(".jsonl") and not name.startswith(".") and (name not in found or len(parts) == 2):
            found[name] = info
    return found


def fetch_release(
    revision: str | None = None,
    *,
    force: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    progress: bool = True,
) -> Release:
    """Return the extracted release, downloading ``data.zip`` only when the cache does not have it.

    ``force`` downloads and extracts again. ``cache_dir`` and ``endpoint`` default to the ``huggingface_hub``
    settings (``HF_HUB_CACHE``/``HF_HOME``, ``HF_ENDPOINT``). Raises :class:`LongBenchError` with a one-line
    explanation when the file is neither cached nor downloadable.
    """
    revision = revision or DEFAULT_REVISION
    archive = Path(_download(revision, force, cache_dir, endpoint))
    directory = _extracted_dir(archive)
    remove_leftovers(archive, directory.parent)
    _extract(archive, directory, replace=force, progress=progress)
    return Release(archive=archive, directory=directory, revision=revision, commit=archive.parent.name)


def download(
    revision: str | None = None,
    *,
    force: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    checksums: Mapping[str, FileChecksum] | None = None,
    progress: bool = True,
) -> DownloadReport:
    """Fetch and extract the release, then verify every released file in it (raises :class:`ChecksumError`)."""
    release = fetch_release(revision, force=force, cache_dir=cache_dir, endpoint=endpoint, progress=progress)
    table = released_checksums() if checksums is None else checksums
    verified, absent = verify_folder(release.directory, table, hub_remedy(revision), progress=progress)
    return DownloadReport(release=release, verified=verified, absent=absent)


def _not_cached(revision: str, offline: bool, endpoint: str) -> str:
    reason = "HF_HUB_OFFLINE is set" if offline else f"the hub ({endpoint}) could not be reached"
    return (
        f"LongBench data ({REPO_ID} {ARCHIVE_NAME}, revision {revision}) is not in the local Hugging Face cache "
        f"and {reason}: point at local files instead (--data /path/to/data.zip or a folder of <task>.jsonl "
        "files; source=... in Python), or run `longbench download` on a machine with network access"
    )


def _download(
    revision: str, force: bool, cache_dir: str | os.PathLike[str] | None, endpoint: str | None
) -> str:
    """The local path of the cached data.zip (a snapshot entry of the HF cache)."""
    from huggingface_hub import constants, hf_hub_download

    where = dict(
        repo_id=REPO_ID, filename=ARCHIVE_NAME, repo_type="dataset", revision=revision, cache_dir=cache_dir
    )
    offline = constants.is_offline_mode()
    if offline and force:
        raise SettingError("cannot download again while HF_HUB_OFFLINE is set; unset it or drop {force}")
    if not force:
        cached = _cached(where)
        if cached is not None:
            return cached
        if offline:
            raise LongBenchError(_not_cached(revision, True, endpoint or constants.ENDPOINT))
    _probe(revision, endpoint, force)
    try:
        return hf_hub_download(**where, endpoint=endpoint, force_download=force)
    except Exception as error:  # network and library failures of any kind: one line for the user
        raise LongBenchError(
            f"could not download {ARCHIVE_NAME} from {REPO_ID}: {_one_line(error)}"
        ) from None


def _cached(where: dict[str, object]) -> str | None:
    """The cached data.zip for this revision, found without any network call, or None."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return hf_hub_download(**where, local_files_only=True)  # type: ignore[arg-type]
    except LocalEntryNotFoundError:
        return None


def _probe(revision: str, endpoint: str | None, force: bool) -> None:
    """Ask the hub about data.zip once, without retries, so an unreachable hub fails in seconds, not minutes."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = hf_hub_url(REPO_ID, ARCHIVE_NAME, repo_type="dataset", revision=revision, endpoint=endpoint)
    try:
        get_hf_file_metadata(url)
    except RevisionNotFoundError:
        raise LongBenchError(f"revision {revision!r} does not exist in the dataset repo {REPO_ID}") from None
    except RemoteEntryNotFoundError:
        raise LongBenchError(
            f"the dataset repo {REPO_ID} has no {ARCHIVE_NAME} at revision {revision!r}"
        ) from None
    except RepositoryNotFoundError:
        raise LongBenchError(
            f"the dataset repo {REPO_ID} was not found at {endpoint or constants.ENDPOINT}"
        ) from None
    except HfHubHTTPError as error:
        raise LongBenchError(
            f"could not download {ARCHIVE_NAME} from {REPO_ID}: {_one_line(error)}"
        ) from None
    except Exception as error:  # connection refused, DNS failure, timeout, proxy: the hub cannot be reached
        where = endpoint or constants.ENDPOINT
        if force:
            raise LongBenchError(
                f"cannot download again: the hub ({where}) could not be reached ({_one_line(error)})"
            ) from None
        raise LongBenchError(_not_cached(revision, False, where)) from None


def _one_line(error: BaseException) -> str:
    """The first non-empty line of an error (its cause's, when it only says that something else failed)."""
    cause = error.__cause__ if isinstance(error, ValueError) and error.__cause__ is not None else error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def _extracted_dir(archive: Path) -> Path:
    """Where the archive's files go: keyed by the cached blob (by the commit where the cache holds copies)."""
    blob = archive.resolve()
    if blob.parent.name == "blobs":
        return blob.parents[1] / EXTRACTED_FOLDER / blob.name
    return archive.parents[2] / EXTRACTED_FOLDER / archive.parent.name


def remove_leftovers(archive: Path, extracted: Path) -> None:
    """Remove what killed runs left: ``.incomplete`` blobs of this dataset in the Hugging Face cache whose
    download lock nobody holds, and extraction temporary folders in ``extracted`` that no process is using."""
    repo = archive.parents[2]  # <cache>/datasets--THUDM--LongBench/snapshots/<commit>/data.zip
    locks = repo.parent / ".locks" / repo.name
    if (repo / "blobs").is_dir():
        for blob in (repo / "blobs").glob("*.incomplete"):
            lock = locks / f"{blob.name.split('.', 1)[0]}.lock"
            with _unused(lock) as unused:
                if unused:
                    blob.unlink(missing_ok=True)
    if extracted.is_dir():
        for folder in extracted.glob(".*"):
            if folder.is_dir() and time.time() - folder.stat().st_mtime > _YOUNG_SECONDS:
                with _unused(folder) as unused:
                    if unused:
                        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _unused(path: Path) -> Iterator[bool]:
    """True (while held) when no process holds an flock on ``path`` (a missing lock file is unused too)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield True
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _held(folder: Path) -> Iterator[None]:
    """An flock on ``folder`` while it is being filled, so that :func:`remove_leftovers` leaves it alone."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _extract(archive: Path, target: Path, *, replace: bool, progress: bool) -> None:
    """Unpack ``archive`` into ``target`` atomically (temporary folder, then rename), unless already there."""
    if target.is_dir() and not replace:
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            follow_umask(temp)  # mkdtemp makes 0700: a shared cache follows the umask
            with _held(temp):
                _unpack(archive, temp, progress)
            if replace and target.exists():
                stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
                os.replace(target, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.rename(temp, target)
            except OSError:
                if not target.is_dir():  # not a concurrent extraction that finished first
                    raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    except OSError as error:  # read-only cache, disk full, ...
        raise LongBenchError(f"cannot extract {archive} into {target.parent}: {error}") from None


def _unpack(archive: Path, destination: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    remedy = "run `longbench download --force` to fetch it again"
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = archive_members(bundle)
            if not members:
                raise InputError(archive, f"holds no <task>.jsonl files under data/ or at its root; {remedy}")
            total = sum(info.file_size for info in members.values())
            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc="extracting data.zip",
                disable=None if progress else True,
            )
            with bar:
                for name, info in members.items():
                    with bundle.open(info) as source, open(destination / name, "wb") as sink:
                        while chunk := source.read(_CHUNK):
                            sink.write(chunk)
                            bar.update(len(chunk))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as error:
        raise InputError(archive, f"not a readable zip archive ({error}); {remedy}") from None
