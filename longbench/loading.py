"""Reading one task's records from any data source: the hub release, the bundled sample set, or local files.

A source is ``"hub"`` (the cached ``data.zip`` of THUDM/LongBench, downloaded on first use), ``"sample"`` (the
small sample set shipped in ``longbench.data``), or a path: a ``data.zip``, a folder of ``<task>.jsonl`` /
``<task>_e.jsonl`` files (or one holding them under ``data/``), or a single ``.jsonl`` file. Released file names
from the hub, a zip or a folder are checked against the released sha256 before use; every line is validated
against the record schema, and bad input raises :class:`~longbench.errors.InputError` naming file and line.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING

from longbench.checksums import FileChecksum, check_digest, released_checksums, stream_digest, verify_file
from longbench.errors import InputError, LongBenchError
from longbench.jsonl import parse_json_line
from longbench.schema import Record, validate_record
from longbench.tasks import get_task

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import datasets

Source = str | os.PathLike[str]
_LOCAL_REMEDY = (
    "replace it with the file from THUDM/LongBench data.zip (`longbench download`), "
    "or pass --no-verify (verify=False in Python) to use it as it is"
)


@dataclass(frozen=True)
class _DataFile:
    """One located task file: how to name it, open it, and (when it is a released file) check it."""

    label: str
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
    expected: FileChecksum | None = None  # checked before reading when set
    path: Path | None = None  # a plain file on disk (hub files keep a verification marker)
    remember: bool = False
    remedy: str = _LOCAL_REMEDY
    datasets: frozenset[str] = frozenset()  # when set, each record's `dataset` must be one of these


def features() -> datasets.Features:
    """The eight schema columns with the types of the original loading script."""
    import datasets

    strings = [datasets.Value("string")]
    return datasets.Features(
        {
            "input": datasets.Value("string"),
            "context": datasets.Value("string"),
            "answers": strings,
            "length": datasets.Value("int32"),
            "dataset": datasets.Value("string"),
            "language": datasets.Value("string"),
            "all_classes": strings,
            "_id": datasets.Value("string"),
        }
    )


def load_task(
    task: str,
    source: Source = "hub",
    e: bool = False,
    *,
    verify: bool = True,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    checksums: Mapping[str, FileChecksum] | None = None,
) -> datasets.Dataset:
    """The records of ``task`` (its LongBench-E file with ``e``) as a ``datasets.Dataset`` (split ``test``).

    ``revision``, ``cache_dir`` and ``endpoint`` apply to the hub source; ``checksums`` replaces the released
    checksum table. See :func:`iter_records` for the sources and the errors.
    """
    import datasets

    records = list(
        iter_records(
            task,
            source,
            e,
            verify=verify,
            revision=revision,
            cache_dir=cache_dir,
            endpoint=endpoint,
            checksums=checksums,
        )
    )
    return datasets.Dataset.from_list(records, features=features(), split=datasets.Split.TEST)


def iter_records(
    task: str,
    source: Source = "hub",
    e: bool = False,
    *,
    verify: bool = True,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    checksums: Mapping[str, FileChecksum] | None = None,
) -> Iterator[Record]:
    """The records of ``task`` from ``source``, validated, in file order.

    The file is located (and, for a released file name with ``verify``, checked against its sha256) before this
    returns; lines are parsed lazily. Raises :class:`LongBenchError` for an unknown task, a missing file or an
    unreachable hub, :class:`~longbench.checksums.ChecksumError` for a file that is not the released one, and
    :class:`InputError` (file and 1-based line) for malformed lines.
    """
    name = get_task(task, e).name
    table = released_checksums() if checksums is None else checksums
    data_file = _locate(name, source, e, table, revision=revision, cache_dir=cache_dir, endpoint=endpoint)
    if verify and data_file.expected is not None:
        _verify(data_file)
    return _records(data_file)


def data_file_sha256(
    task: str,
    source: Source = "hub",
    e: bool = False,
    *,
    verify: bool = True,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    checksums: Mapping[str, FileChecksum] | None = None,
) -> str:
    """The sha256 of the file :func:`iter_records` reads for ``task``: for a released file name with ``verify``,
    the released checksum once the file is checked against it, else computed from the file's bytes."""
    name = get_task(task, e).name
    table = released_checksums() if checksums is None else checksums
    data_file = _locate(name, source, e, table, revision=revision, cache_dir=cache_dir, endpoint=endpoint)
    if verify and data_file.expected is not None:
        _verify(data_file)  # raises ChecksumError for a file that is not the released one
        return data_file.expected.sha256
    with data_file.open() as stream:
        return stream_digest(stream)[0]


def task_of_file(path: str | os.PathLike[str]) -> tuple[str, bool] | None:
    """``(task, e)`` when ``path`` is named like a released file (``qasper.jsonl``, ``qasper_e.jsonl``)."""
    stem = Path(path).name.removesuffix(".jsonl")
    for name, e in ((stem, False), (stem.removesuffix("_e"), True)):
        if e and not stem.endswith("_e"):
            continue
        try:
            return get_task(name, e).name, e
        except LongBenchError:
            continue
    return None


def _locate(
    task: str,
    source: Source,
    e: bool,
    table: Mapping[str, FileChecksum],
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    endpoint: str | None,
) -> _DataFile:
    file_name = get_task(task, e).file_name(e)
    if isinstance(source, str) and source == "hub":
        return _hub_file(task, file_name, table, revision=revision, cache_dir=cache_dir, endpoint=endpoint)
    if isinstance(source, str) and source == "sample":
        return _sample_file(task, e)
    path = Path(source).expanduser()
    if path.is_dir():
        return _folder_file(task, path, file_name, table)
    if path.is_file() and zipfile.is_zipfile(path):
        return _zip_file(task, path, file_name, table)
    if path.is_file():
        return _single_file(task, path)
    raise LongBenchError(
        f"data source {str(source)!r} is neither 'hub', 'sample' nor an existing file or folder"
    )


def _hub_file(
    task: str,
    file_name: str,
    table: Mapping[str, FileChecksum],
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    endpoint: str | None,
) -> _DataFile:
    from longbench.archive import REPO_ID, fetch_release, hub_remedy

    release = fetch_release(revision, cache_dir=cache_dir, endpoint=endpoint)
    path = release.directory / file_name
    if not path.is_file():
        raise LongBenchError(
            f"no data for task {task!r}: {REPO_ID} data.zip (revision {release.revision}) has no {file_name}"
        )
    return _plain_file(path, table.get(file_name), remember=True, remedy=hub_remedy(revision))


def _sample_file(task: str, e: bool) -> _DataFile:
    folder = resources.files("longbench.data").joinpath("sample")
    names = [f"{task}_e.jsonl", f"{task}.jsonl"] if e else [f"{task}.jsonl"]
    for name in names:
        entry = folder.joinpath(name)
        if entry.is_file():
            return _DataFile(label=f"sample/{name}", open=_opener(entry))
    raise LongBenchError(f"no data for task {task!r}: the bundled sample set has no {' or '.join(names)}")


def _folder_file(task: str, folder: Path, file_name: str, table: Mapping[str, FileChecksum]) -> _DataFile:
    for path in (folder / file_name, folder / "data" / file_name):
        if path.is_file():
            return _plain_file(path, table.get(file_name))
    raise LongBenchError(
        f"no data for task {task!r}: folder {folder} has no {file_name} (nor data/{file_name})"
    )


def _zip_file(task: str, archive: Path, file_name: str, table: Mapping[str, FileChecksum]) -> _DataFile:
    from longbench.archive import archive_members

    try:
        with zipfile.ZipFile(archive) as bundle:
            info = archive_members(bundle).get(file_name)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(archive, f"not a readable zip archive ({error})") from None
    if info is None:
        raise LongBenchError(
            f"no data for task {task!r}: {archive} has no {file_name} (nor data/{file_name})"
        )

    @contextlib.contextmanager
    def open_member() -> Iterator[IO[bytes]]:
        try:
            with zipfile.ZipFile(archive) as bundle, bundle.open(info) as stream:
                yield stream
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # damaged compressed data or CRC
            raise InputError(archive, f"damaged zip member {info.filename} ({error})") from None

    return _DataFile(label=f"{archive}/{info.filename}", open=open_member, expected=table.get(file_name))


def _single_file(task: str, path: Path) -> _DataFile:
    named = task_of_file(path)
    if named is not None and named[0] != task:
        raise LongBenchError(f"{path} is named for task {named[0]!r}, not {task!r}")
    accepted = frozenset() if named is not None else frozenset({task, f"{task}_e"})
    return _DataFile(label=str(path), open=_opener(path), path=path, datasets=accepted)


def _plain_file(
    path: Path, expected: FileChecksum | None, *, remember: bool = False, remedy: str = _LOCAL_REMEDY
) -> _DataFile:
    return _DataFile(
        label=str(path), open=_opener(path), expected=expected, path=path, remember=remember, remedy=remedy
    )


def _opener(entry: Path | Traversable) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
    return lambda: entry.open("rb")


def _verify(data_file: _DataFile) -> None:
    """Check a released file's sha256 and size (the hub copy remembers a pass in its folder's marker)."""
    assert data_file.expected is not None
    if data_file.path is not None:
        verify_file(data_file.path, data_file.expected, data_file.remedy, remember=data_file.remember)
        return
    with data_file.open() as stream:
        sha256, size = stream_digest(stream)
    check_digest(data_file.label, data_file.expected, sha256, size, data_file.remedy)


def _records(data_file: _DataFile) -> Iterator[Record]:
    """Parse and validate each line; blank lines may only trail; an empty file is an error."""
    label = data_file.label
    count = 0
    blank: int | None = None
    with data_file.open() as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                blank = blank or number
                continue
            if blank is not None:
                raise InputError(label, "blank line before the end of the file", blank)
            record = _parse_line(raw, label, number, first=number == 1)
            if data_file.datasets and record["dataset"] not in data_file.datasets:
                wanted = " or ".join(repr(name) for name in sorted(data_file.datasets))
                raise InputError(label, f"record of dataset {record['dataset']!r}, expected {wanted}", number)
            count += 1
            yield record
    if count == 0:
        raise InputError(label, "no records")


def _parse_line(raw: bytes, label: str, number: int, *, first: bool) -> Record:
    return validate_record(parse_json_line(raw, label, number, first=first), label, number)
