"""The hub source and ``longbench download`` against a real local HTTP server standing in for the hub.

huggingface_hub is not mocked: it talks HTTP to ``tests/hubserver.py`` on 127.0.0.1, with a temporary cache.
The served data.zip is built here, from the three real released files in ../shared (tests skip when absent)
or from synthetic files checked against a table computed here with hashlib.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hubserver import HubServer

from longbench.archive import REPO_ID, download, fetch_release
from longbench.checksums import ChecksumError, FileChecksum, released_checksums
from longbench.errors import LongBenchError
from longbench.loading import iter_records, load_task

SHARED_V1 = Path(__file__).resolve().parents[1].parent / "shared" / "longbench-data" / "v1"
REAL_TASKS = ("multi_news", "multifieldqa_zh", "passage_retrieval_zh")
REPO_ROOT = Path(__file__).resolve().parents[1]


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def synthetic(task: str, n: int = 4, tag: str = "") -> bytes:
    rows = [
        {
            "input": f"q{i}{tag}",
            "context": f"c{i}",
            "answers": [f"a{i}"],
            "length": i,
            "dataset": task,
            "language": "en",
            "all_classes": None,
            "_id": f"{task}-{i}",
        }
        for i in range(n)
    ]
    return "".join(json.dumps(row) + "\r\n" for row in rows).encode()


def table_for(files: dict[str, bytes]) -> dict[str, FileChecksum]:
    return {
        name: FileChecksum(name, "LongBench", hashlib.sha256(data).hexdigest(), len(data), data.count(b"\n"))
        for name, data in files.items()
    }


def lines_of(content: bytes) -> list[dict]:
    return [json.loads(line) for line in content.split(b"\r\n") if line]


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    """The local server is the only host these tests reach; a globally set HF_HUB_OFFLINE must not block it."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def real_files() -> dict[str, bytes]:
    if not SHARED_V1.is_dir():
        pytest.skip("../shared/longbench-data/v1 is absent")
    return {f"{task}.jsonl": (SHARED_V1 / f"{task}.jsonl").read_bytes() for task in REAL_TASKS}


def test_download_verify_load_round_trip_then_cache(hub, tmp_path, real_files):
    hub.add_file(REPO_ID, "data.zip", zip_bytes({f"data/{name}": data for name, data in real_files.items()}))
    options = dict(cache_dir=tmp_path, endpoint=hub.url)

    records = list(iter_records("multi_news", **options))
    assert records == lines_of(real_files["multi_news.jsonl"])
    assert hub.count("GET", "data.zip") == 1
    seen = hub.count()

    ds = load_task("passage_retrieval_zh", **options)
    assert ds.to_list() == lines_of(real_files["passage_retrieval_zh.jsonl"])
    assert list(iter_records("multi_news", **options)) == records
    assert hub.count() == seen  # later loads use the cache: not even a HEAD request

    release = fetch_release(**options)
    marker = json.loads((release.directory / ".longbench-verified.json").read_text())
    assert set(marker["files"]) == {"multi_news.jsonl", "passage_retrieval_zh.jsonl"}


def test_download_reports_verified_and_absent_files(hub, tmp_path, real_files):
    hub.add_file(REPO_ID, "data.zip", zip_bytes(real_files))  # files at the zip root this time
    report = download(cache_dir=tmp_path, endpoint=hub.url, progress=False)
    assert report.verified == sorted(real_files)
    assert len(report.absent) == len(released_checksums()) - 3
    for name, data in real_files.items():
        assert (report.release.directory / name).read_bytes() == data
    assert report.release.commit == hub.commit(REPO_ID)
    assert report.release.directory.is_relative_to(tmp_path)


@pytest.mark.parametrize("layout", ["data/", ""])
def test_synthetic_zip_both_layouts_with_custom_table(hub, tmp_path, layout):
    files = {"qasper.jsonl": synthetic("qasper"), "qasper_e.jsonl": synthetic("qasper_e", 3)}
    hub.add_file(REPO_ID, "data.zip", zip_bytes({layout + name: data for name, data in files.items()}))
    options = dict(cache_dir=tmp_path, endpoint=hub.url, checksums=table_for(files))
    assert list(iter_records("qasper", **options)) == lines_of(files["qasper.jsonl"])
    assert list(iter_records("qasper", e=True, **options)) == lines_of(files["qasper_e.jsonl"])
    with pytest.raises(LongBenchError, match="no data for task 'trec'.*has no trec.jsonl"):
        iter_records("trec", **options)


def test_tampered_download_names_the_file_and_hashes(hub, tmp_path):
    fake = synthetic("multi_news")
    hub.add_file(REPO_ID, "data.zip", zip_bytes({"data/multi_news.jsonl": fake}))
    options = dict(cache_dir=tmp_path, endpoint=hub.url)
    with pytest.raises(ChecksumError) as caught:
        iter_records("multi_news", **options)
    message = str(caught.value)
    assert "multi_news.jsonl" in message
    assert released_checksums()["multi_news.jsonl"].sha256 in message
    assert hashlib.sha256(fake).hexdigest() in message
    assert "longbench download --force" in message
    with pytest.raises(ChecksumError):
        download(progress=False, **options)
    assert list(iter_records("multi_news", verify=False, **options)) == lines_of(fake)


def test_file_changed_after_verification_is_caught(hub, tmp_path):
    files = {"trec.jsonl": synthetic("trec")}
    table = table_for(files)
    hub.add_file(REPO_ID, "data.zip", zip_bytes({"data/trec.jsonl": files["trec.jsonl"]}))
    options = dict(cache_dir=tmp_path, endpoint=hub.url, checksums=table)
    assert len(list(iter_records("trec", **options))) == 4
    extracted = fetch_release(cache_dir=tmp_path, endpoint=hub.url).directory / "trec.jsonl"
    extracted.write_bytes(files["trec.jsonl"].replace(b"q1", b"q9"))
    os.utime(extracted, ns=(0, extracted.stat().st_mtime_ns + 10**9))
    with pytest.raises(ChecksumError, match="trec.jsonl"):
        iter_records("trec", **options)


def test_force_downloads_and_extracts_again(hub, tmp_path):
    files = {"trec.jsonl": synthetic("trec")}
    hub.add_file(REPO_ID, "data.zip", zip_bytes({"data/trec.jsonl": files["trec.jsonl"]}))
    first = fetch_release(cache_dir=tmp_path, endpoint=hub.url, progress=False)
    (first.directory / "trec.jsonl").write_bytes(b"broken")
    again = fetch_release(cache_dir=tmp_path, endpoint=hub.url, force=True, progress=False)
    assert again.directory == first.directory
    assert (again.directory / "trec.jsonl").read_bytes() == files["trec.jsonl"]
    assert hub.count("GET", "data.zip") == 2


def test_revisions_are_separate(hub, tmp_path):
    main, tagged = synthetic("trec", 2), synthetic("trec", 3, tag="-v2")
    hub.add_file(REPO_ID, "data.zip", zip_bytes({"data/trec.jsonl": main}))
    hub.add_file(REPO_ID, "data.zip", zip_bytes({"data/trec.jsonl": tagged}), revision="v2")
    options = dict(cache_dir=tmp_path, endpoint=hub.url, verify=False)
    assert list(iter_records("trec", **options)) == lines_of(main)
    assert list(iter_records("trec", revision="v2", **options)) == lines_of(tagged)
    commit = hub.commit(REPO_ID, revision="v2")
    assert list(iter_records("trec", revision=commit, **options)) == lines_of(tagged)
    with pytest.raises(LongBenchError, match="revision 'nope' does not exist"):
        iter_records("trec", revision="nope", **options)


def test_unreachable_hub_without_cache_fails_fast_with_advice(tmp_path):
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    start = time.monotonic()
    with pytest.raises(LongBenchError) as caught:
        iter_records("qasper", cache_dir=tmp_path, endpoint=f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 10  # no retry loop with back-off
    message = str(caught.value)
    assert "not in the local Hugging Face cache" in message
    assert "--data /path/to/data.zip" in message and "longbench download" in message


def test_cached_data_loads_when_the_hub_is_gone(tmp_path):
    files = {"trec.jsonl": synthetic("trec")}
    with HubServer() as server:
        server.add_file(REPO_ID, "data.zip", zip_bytes({"data/trec.jsonl": files["trec.jsonl"]}))
        url = server.url
        iter_records("trec", cache_dir=tmp_path, endpoint=url, checksums=table_for(files))
    records = iter_records("trec", cache_dir=tmp_path, endpoint=url, checksums=table_for(files))
    assert list(records) == lines_of(files["trec.jsonl"])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh process, so huggingface_hub reads HF_* variables at its first import."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    full.update(env, HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.run(
        [sys.executable, *args], env=full, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_offline_without_cache_gives_one_clear_line(tmp_path):
    code = (
        "from longbench.errors import LongBenchError\n"
        "from longbench.loading import iter_records\n"
        "try:\n    iter_records('qasper')\n"
        "except LongBenchError as error:\n    print(type(error).__name__, error)\n"
    )
    result = _run(["-c", code], {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert len(out.splitlines()) == 1
    assert out.startswith("LongBenchError ")
    assert "not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in out
    assert "--data /path/to/data.zip" in out and "`longbench download`" in out
    cli = _run(["-m", "longbench", "download"], {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines() == [f"longbench: error: {out.removeprefix('LongBenchError ')}"]


def test_cli_download_against_local_hub(hub, tmp_path, real_files):
    hub.add_file(REPO_ID, "data.zip", zip_bytes({f"data/{name}": data for name, data in real_files.items()}))
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path)}
    result = _run(["-m", "longbench", "download"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    folder = Path(lines[1])
    assert folder.is_relative_to(tmp_path)
    assert sorted(p.name for p in folder.glob("*.jsonl")) == sorted(real_files)
    assert "verified 3 released files" in lines[2]
    assert hub.count("GET", "data.zip") == 1
    # Offline afterwards: the cached, verified files load with no server at all.
    code = (
        "from longbench.loading import iter_records\nprint(sum(1 for _ in iter_records('multifieldqa_zh')))"
    )
    offline = _run(["-c", code], {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert offline.stdout.strip() == "200", offline.stderr


def test_cli_download_of_a_corrupt_file_fails_in_one_line(hub, tmp_path):
    hub.add_file(REPO_ID, "data.zip", zip_bytes({"data/multi_news.jsonl": synthetic("multi_news")}))
    result = _run(["-m", "longbench", "download"], {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("longbench: error: ") and "multi_news.jsonl" in lines[0]
    assert released_checksums()["multi_news.jsonl"].sha256 in lines[0]
