"""LongBench v2 subsets (``--difficulty``, ``--length``, ``--domain``, ``--ids``) and the per-call options
(``--chat-template-kwargs``): exactly the matching records, recorded in run.json and compared on resume,
one clear line for a bad value. Selection is checked on the shared v2 data (503 questions) when present,
runs on the bundled v2 sample with the built-in tiny model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from longbench.benchmarks.v2_run import V2Run, V2Subset, read_ids
from longbench.cli import main
from longbench.sources import open_source
from longbench.v2.prompts import V2Mode

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "longbench-data" / "v2"
QUESTIONS = SHARED / "questions_no_context.jsonl"  # every field of the 503 questions but the context
needs_shared = pytest.mark.skipif(not QUESTIONS.is_file(), reason="../shared/longbench-data/v2 absent")
FILTERS = [
    {"difficulty": "hard"},
    {"length": "long"},
    {"domains": ("Code Repository Understanding",)},
    {"difficulty": "easy", "length": "medium", "domains": ("Single-Document QA", "Multi-Document QA")},
    {"difficulty": "hard", "length": "short", "domains": ("Long Structured Data Understanding",)},
]


def selected(subset: V2Subset, data: Path) -> list[str]:
    run = V2Run(mode=V2Mode(no_context=True), subset=subset)
    source = open_source(str(data))
    return [record["_id"] for record in run.records(run.tasks("m", source, None, None)[0], source, True)]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def v2_data(rows: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 503 questions as a v2 data file (context null, as the reader accepts for copies without it)."""
    path = tmp_path_factory.mktemp("v2") / "questions.jsonl"
    path.write_text("".join(json.dumps({**row, "context": None}) + "\n" for row in rows), encoding="utf-8")
    return path


@needs_shared
@pytest.mark.parametrize("chosen", FILTERS, ids=lambda f: "-".join(str(v) for v in f.values()))
def test_filters_select_exactly_the_matching_records(chosen: dict, rows: list[dict], v2_data: Path) -> None:
    expected = [
        row["_id"]
        for row in rows
        if row["difficulty"] == chosen.get("difficulty", row["difficulty"])
        and row["length"] == chosen.get("length", row["length"])
        and row["domain"] in chosen.get("domains", (row["domain"],))
    ]
    assert 0 < len(expected) < len(rows)
    assert len(rows) == 503 and selected(V2Subset(**chosen), v2_data) == expected


@needs_shared
def test_ids_file_selects_its_ids_in_data_order(rows: list[dict], v2_data: Path, tmp_path: Path) -> None:
    wanted = [row["_id"] for row in rows[::37]]
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join([*reversed(wanted), "", "no-such-id"]) + "\n", encoding="utf-8")
    ids, digest = read_ids(listed)
    assert selected(V2Subset(ids=ids, ids_sha256=digest), v2_data) == wanted
    hard = [row["_id"] for row in rows[::37] if row["difficulty"] == "hard"]
    assert selected(V2Subset(difficulty="hard", ids=ids), v2_data) == hard  # every filter given


@pytest.fixture
def tiny(tiny_model: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def test_subset_run_is_recorded_and_compared_on_resume(tiny, tmp_path: Path, capsys) -> None:
    ids = tmp_path / "ids.txt"
    sample = [json.loads(line) for line in _sample_lines()]
    ids.write_text("".join(f"{row['_id']}\n" for row in sample[:6]), encoding="utf-8")
    base = ["predict", "--v2", "--model", "builtin:tiny", "--data", "sample", "--max-length", "600"]
    base += ["--temperature", "0", "--out", str(tmp_path / "out")]
    chosen = [
        "--length",
        "medium",
        "--domain",
        "Single-Document QA,Long In-context Learning",
        "--ids",
        str(ids),
    ]
    assert main([*base, *chosen]) == 0
    expected = [
        row["_id"]
        for row in sample[:6]
        if row["length"] == "medium" and row["domain"] in ("Single-Document QA", "Long In-context Learning")
    ]
    written = [json.loads(line)["_id"] for line in (tmp_path / "out" / "tiny" / "tiny.jsonl").open()]
    assert written == expected and len(expected) == 2
    run = json.loads((tmp_path / "out" / "tiny" / "run.json").read_text())
    assert run["subset"] == {
        "difficulty": None,
        "length": "medium",
        "domain": ["Single-Document QA", "Long In-context Learning"],
        "ids_sha256": hashlib.sha256(ids.read_bytes()).hexdigest(),
        "ids": 6,
    }
    capsys.readouterr()
    assert main([*base, "--length", "medium"]) == 2  # another subset: refused, nothing appended
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different subset" in err
    assert main([*base, *chosen]) == 0 and "0 new predictions" in capsys.readouterr().out


def _sample_lines() -> list[str]:
    from importlib import resources

    return (
        resources.files("longbench.data")
        .joinpath("v2", "sample.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--v2", "--difficulty", "medium"], "difficulty 'medium': expected one of easy, hard"),
        (["--v2", "--length", "tiny"], "length 'tiny': expected one of short, medium, long"),
        (["--v2", "--domain", "Poetry"], "domain 'Poetry': expected one of Single-Document QA, "),
        (["--v2", "--domain", " , "], "domain: name at least one domain"),
        (["--v2", "--ids", "/no/such/ids.txt"], "ids file /no/such/ids.txt: No such file or directory"),
        (["--difficulty", "hard"], "apply to --v2 only"),
        (["--chat-template-kwargs", "{enable_thinking: false}"], "--chat-template-kwargs: not valid JSON"),
        (["--chat-template-kwargs", "[1]"], "--chat-template-kwargs: expected a JSON object"),
        (["--thinking-budget", "-1"], "--thinking-budget must be at least 0, got -1"),
    ],
)
def test_bad_values_are_one_line_naming_the_setting(tiny, tmp_path: Path, capsys, flags, message) -> None:
    argv = ["predict", "--model", "builtin:tiny", "--data", "sample", "--out", str(tmp_path), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("longbench: error: ") and message in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_chat_template_kwargs_reach_the_backend_and_are_compared(tiny, tmp_path: Path, capsys) -> None:
    base = ["predict", "--model", "builtin:tiny", "--data", "sample", "--tasks", "trec", "--limit", "1"]
    base += ["--max-length", "300", "--out", str(tmp_path)]
    assert main([*base, "--chat-template-kwargs", '{"enable_thinking": false}']) == 0
    run = json.loads((tmp_path / "tiny" / "run.json").read_text())
    assert run["chat_template_kwargs"] == {"enable_thinking": False}
    assert run["backend_settings"]["chat_template_kwargs"] == {"enable_thinking": False}
    capsys.readouterr()
    assert main([*base, "--chat-template-kwargs", '{"enable_thinking": true}']) == 2
    assert "different chat_template_kwargs" in capsys.readouterr().err
