"""Loading task records from local sources: folders, data.zip files, single jsonl files, the sample set.

Synthetic files use a checksum table computed here with hashlib from the bytes the test wrote; the three real
released files in ../shared (skipped when absent) are checked against the shipped table.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from longbench.checksums import (
    MARKER_NAME,
    ChecksumError,
    FileChecksum,
    released_checksums,
    verify_file,
    verify_folder,
)
from longbench.errors import InputError, LongBenchError
from longbench.loading import iter_records, load_task, task_of_file

SHARED_V1 = Path(__file__).resolve().parents[1].parent / "shared" / "longbench-data" / "v1"
REAL_TASKS = ("multi_news", "multifieldqa_zh", "passage_retrieval_zh")


def record(i: int, dataset: str = "qasper", all_classes: list[str] | None = None) -> dict:
    return {
        "input": f"question {i}",
        "context": f"context {i} \u4e2d\u6587 \u00e9",
        "answers": [f"answer {i}", "other"],
        "length": 1000 + i,
        "dataset": dataset,
        "language": "en",
        "all_classes": all_classes,
        "_id": f"id-{i}",
    }


def jsonl_bytes(records: list[dict], crlf: bool = True) -> bytes:
    ending = "\r\n" if crlf else "\n"
    return "".join(json.dumps(r, ensure_ascii=False) + ending for r in records).encode("utf-8")


def table_for(name: str, content: bytes) -> dict[str, FileChecksum]:
    lines = content.count(b"\n")
    digest = hashlib.sha256(content).hexdigest()
    return {name: FileChecksum(name, "LongBench", digest, len(content), lines)}


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return path


RECORDS = [record(i) for i in range(5)]
CONTENT = jsonl_bytes(RECORDS)
TABLE = table_for("qasper.jsonl", CONTENT)


def test_folder_source_returns_every_line_in_order(tmp_path):
    (tmp_path / "qasper.jsonl").write_bytes(CONTENT)
    assert list(iter_records("qasper", tmp_path, checksums=TABLE)) == RECORDS


def test_folder_source_with_data_subfolder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "qasper.jsonl").write_bytes(CONTENT)
    assert list(iter_records("qasper", tmp_path, checksums=TABLE)) == RECORDS


@pytest.mark.parametrize("member", ["data/qasper.jsonl", "qasper.jsonl"])
def test_zip_source_with_and_without_data_folder(tmp_path, member):
    archive = make_zip(tmp_path / "data.zip", {member: CONTENT, "data/trec.jsonl": b"not read"})
    assert list(iter_records("qasper", archive, checksums=TABLE)) == RECORDS


def test_zip_prefers_data_folder_when_both_layouts_hold_the_file(tmp_path):
    other = jsonl_bytes([record(9)])
    archive = make_zip(tmp_path / "data.zip", {"qasper.jsonl": other, "data/qasper.jsonl": CONTENT})
    assert [r["_id"] for r in iter_records("qasper", archive, checksums=TABLE)] == [r["_id"] for r in RECORDS]


def test_e_variant_file_is_chosen_with_e(tmp_path):
    e_records = [record(i, dataset="qasper_e") for i in range(3)]
    (tmp_path / "qasper.jsonl").write_bytes(CONTENT)
    (tmp_path / "qasper_e.jsonl").write_bytes(jsonl_bytes(e_records))
    assert list(iter_records("qasper", tmp_path, e=True, verify=False)) == e_records
    assert list(iter_records("qasper", tmp_path, e=False, verify=False)) == RECORDS


def test_tampered_zip_member_names_file_and_both_hashes(tmp_path):
    tampered = CONTENT.replace(b"answer 3", b"answer 4")
    archive = make_zip(tmp_path / "data.zip", {"data/qasper.jsonl": tampered})
    with pytest.raises(ChecksumError) as caught:
        iter_records("qasper", archive, checksums=TABLE)
    message = str(caught.value)
    assert "data/qasper.jsonl" in message
    assert TABLE["qasper.jsonl"].sha256 in message
    assert hashlib.sha256(tampered).hexdigest() in message
    assert "verify=False" in message
    assert "\n" not in message
    # verify=False reads the file as it is
    assert [r["answers"][0] for r in iter_records("qasper", archive, verify=False)][3] == "answer 4"


def test_released_name_is_checked_against_the_shipped_table(tmp_path):
    (tmp_path / "qasper.jsonl").write_bytes(CONTENT)
    with pytest.raises(ChecksumError) as caught:
        iter_records("qasper", tmp_path)
    assert released_checksums()["qasper.jsonl"].sha256 in str(caught.value)
    assert caught.value.path == str(tmp_path / "qasper.jsonl")


def test_single_user_file_is_not_verified(tmp_path):
    path = tmp_path / "qasper.jsonl"
    path.write_bytes(CONTENT)
    assert list(iter_records("qasper", path)) == RECORDS


def test_single_file_with_own_name_must_match_dataset_field(tmp_path):
    path = tmp_path / "my_trec_subset.jsonl"
    trec = [record(i, dataset="trec", all_classes=["A", "B"]) for i in range(3)]
    path.write_bytes(jsonl_bytes(trec, crlf=False))
    assert list(iter_records("trec", path)) == trec
    with pytest.raises(InputError) as caught:
        list(iter_records("qasper", path))
    assert caught.value.line == 1 and "'trec'" in str(caught.value)


def test_single_file_named_for_another_task_is_refused(tmp_path):
    path = tmp_path / "trec.jsonl"
    path.write_bytes(CONTENT)
    with pytest.raises(LongBenchError, match="named for task 'trec', not 'qasper'"):
        iter_records("qasper", path)


def test_task_of_file():
    assert task_of_file("x/qasper.jsonl") == ("qasper", False)
    assert task_of_file("qasper_e.jsonl") == ("qasper", True)
    assert task_of_file("repobench-p_e.jsonl") == ("repobench-p", True)
    assert task_of_file("narrativeqa_e.jsonl") is None  # narrativeqa has no LongBench-E file
    assert task_of_file("mine.jsonl") is None


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (b'{"input": "q", "context": \r\n', "invalid JSON"),
        (b"\xff\xfe not utf-8\r\n", "not valid UTF-8"),
        (json.dumps({**record(2), "answers": []}).encode() + b"\r\n", "'answers'"),
        (
            json.dumps({k: v for k, v in record(2).items() if k != "_id"}).encode() + b"\r\n",
            "missing field '_id'",
        ),
        (json.dumps({**record(2), "length": "12"}).encode() + b"\r\n", "'length'"),
        (b"[1, 2]\r\n", "JSON object"),
    ],
)
def test_malformed_line_raises_input_error_with_its_line_number(tmp_path, bad_line, expected):
    lines = CONTENT.splitlines(keepends=True)
    lines[2] = bad_line
    path = tmp_path / "qasper.jsonl"
    path.write_bytes(b"".join(lines))
    records = iter_records("qasper", tmp_path, verify=False)
    assert next(records) == RECORDS[0]  # lines before the bad one are fine
    with pytest.raises(InputError) as caught:
        list(records)
    assert caught.value.line == 3
    assert caught.value.path == str(path)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"{path}:3: ")


def test_trailing_blank_lines_are_fine_but_inner_ones_are_not(tmp_path):
    path = tmp_path / "qasper.jsonl"
    path.write_bytes(CONTENT + b"\r\n  \r\n")
    assert list(iter_records("qasper", path)) == RECORDS
    lines = CONTENT.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"\r\n"] + lines[2:]))
    with pytest.raises(InputError) as caught:
        list(iter_records("qasper", path))
    assert caught.value.line == 3


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "qasper.jsonl"
    path.write_bytes(b"\r\n")
    with pytest.raises(InputError, match="no records"):
        list(iter_records("qasper", path))


def test_utf8_bom_on_first_line_is_accepted(tmp_path):
    path = tmp_path / "qasper.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + CONTENT)
    assert list(iter_records("qasper", path)) == RECORDS


def test_missing_task_file_names_task_and_source(tmp_path):
    (tmp_path / "qasper.jsonl").write_bytes(CONTENT)
    with pytest.raises(LongBenchError) as caught:
        iter_records("trec", tmp_path)
    assert "'trec'" in str(caught.value) and str(tmp_path) in str(caught.value)
    archive = make_zip(tmp_path / "data.zip", {"data/qasper.jsonl": CONTENT})
    with pytest.raises(LongBenchError) as caught:
        iter_records("qasper", archive, e=True)
    assert "qasper_e.jsonl" in str(caught.value) and str(archive) in str(caught.value)


def test_unknown_source_and_unknown_task(tmp_path):
    with pytest.raises(LongBenchError, match="neither"):
        iter_records("qasper", tmp_path / "nowhere")
    with pytest.raises(LongBenchError, match="unknown"):
        iter_records("no_such_task", tmp_path)
    with pytest.raises(LongBenchError, match="unknown"):
        iter_records("narrativeqa", tmp_path, e=True)  # no LongBench-E variant


def test_corrupt_zip_is_an_input_error(tmp_path):
    archive = make_zip(tmp_path / "data.zip", {"data/qasper.jsonl": CONTENT})
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 3 : len(raw) // 3 + 40] = b"\0" * 40  # damage the compressed member
    archive.write_bytes(bytes(raw))
    with pytest.raises(InputError) as caught:
        list(iter_records("qasper", archive, checksums=TABLE))
    assert str(archive) in str(caught.value)


def test_load_task_builds_a_dataset_with_stable_column_types(tmp_path):
    import datasets

    mixed = [record(0, dataset="trec", all_classes=["x", "y"]), record(1, dataset="trec")]
    (tmp_path / "trec.jsonl").write_bytes(jsonl_bytes(mixed))
    (tmp_path / "qasper.jsonl").write_bytes(CONTENT)
    only_null = load_task("qasper", tmp_path, verify=False)  # every all_classes is null
    table = load_task("trec", tmp_path, verify=False)
    for ds in (only_null, table):
        assert ds.column_names == [
            "input",
            "context",
            "answers",
            "length",
            "dataset",
            "language",
            "all_classes",
            "_id",
        ]
        assert ds.features["answers"] == datasets.List(datasets.Value("string"))
        assert ds.features["all_classes"] == datasets.List(datasets.Value("string"))
        assert ds.features["length"] == datasets.Value("int32")
        assert ds.split == "test"
    assert only_null.to_list() == RECORDS
    assert table.to_list() == mixed


def test_verification_marker_skips_hashing_until_the_file_changes(tmp_path):
    path = tmp_path / "qasper.jsonl"
    path.write_bytes(CONTENT)
    expected = TABLE["qasper.jsonl"]
    verify_file(path, expected, "fix it", remember=True)
    marker = json.loads((tmp_path / MARKER_NAME).read_text())
    assert marker["files"]["qasper.jsonl"]["sha256"] == expected.sha256
    # Same size and modification time: the marker vouches for it, so a same-size edit goes unhashed.
    stat = path.stat()
    path.write_bytes(CONTENT.replace(b"answer 1", b"answer 7"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    verify_file(path, expected, "fix it", remember=True)
    # A new modification time makes it hash again and catch the edit.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ChecksumError, match="fix it"):
        verify_file(path, expected, "fix it", remember=True)


def test_verify_folder_reports_every_bad_file_in_one_line(tmp_path):
    good = jsonl_bytes([record(1)])
    table = {**table_for("a.jsonl", good), **table_for("b.jsonl", good), **table_for("c.jsonl", good)}
    table["z.jsonl"] = FileChecksum("z.jsonl", "LongBench", "0" * 64, 1, 1)
    (tmp_path / "a.jsonl").write_bytes(good)
    (tmp_path / "b.jsonl").write_bytes(good + b"x")
    (tmp_path / "c.jsonl").write_bytes(b"y" + good)
    with pytest.raises(ChecksumError) as caught:
        verify_folder(tmp_path, table, "do this", progress=False)
    message = str(caught.value)
    assert "b.jsonl" in message and "c.jsonl" in message and "\n" not in message
    (tmp_path / "b.jsonl").write_bytes(good)
    (tmp_path / "c.jsonl").write_bytes(good)
    assert verify_folder(tmp_path, table, "do this", progress=False) == (
        ["a.jsonl", "b.jsonl", "c.jsonl"],
        ["z.jsonl"],
    )


def test_sample_source_reads_the_bundled_folder():
    from importlib import resources

    folder = resources.files("longbench.data").joinpath("sample")
    files = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
    plain = [name for name in files if name.endswith(".jsonl") and not name.endswith("_e.jsonl")]
    if not plain:
        pytest.skip("the bundled sample set is not there yet")
    task = plain[0].removesuffix(".jsonl")
    expected = [
        json.loads(line) for line in folder.joinpath(plain[0]).read_bytes().splitlines() if line.strip()
    ]
    assert list(iter_records(task, "sample")) == expected
    if f"{task}_e.jsonl" not in files and task_of_file(f"{task}_e.jsonl") is not None:
        assert list(iter_records(task, "sample", e=True)) == expected  # falls back to <task>.jsonl


@pytest.fixture(scope="module")
def real_folder():
    if not SHARED_V1.is_dir():
        pytest.skip("../shared/longbench-data/v1 is absent")
    return SHARED_V1


@pytest.mark.parametrize("task", REAL_TASKS)
def test_real_released_files_verify_and_load(real_folder, task):
    path = real_folder / f"{task}.jsonl"
    expected = [json.loads(line) for line in path.read_bytes().split(b"\r\n") if line]
    assert len(expected) == 200
    assert list(iter_records(task, real_folder)) == expected


def test_real_files_in_a_root_layout_zip(real_folder, tmp_path):
    files = {f"{task}.jsonl": (real_folder / f"{task}.jsonl").read_bytes() for task in REAL_TASKS}
    archive = make_zip(tmp_path / "data.zip", files)
    ds = load_task("passage_retrieval_zh", archive)
    assert ds.num_rows == 200
    assert ds[0] == json.loads(files["passage_retrieval_zh.jsonl"].split(b"\r\n")[0])
