"""``longbench.api``: predict and evaluate through typed options give what the CLI gives; bad settings are
one LongBenchError naming the setting (the CLI names it by its flag)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from longbench.api import (
    BackendOptions,
    CompareOptions,
    CompressOptions,
    EvalOptions,
    PredictOptions,
    SettingError,
    compare,
    compress,
    evaluate,
    predict,
)
from longbench.cli import main
from longbench.errors import LongBenchError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_architecture import graph  # noqa: E402

TASKS = ("trec", "hotpotqa")


@pytest.fixture(autouse=True)
def environment(tiny_model: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None):
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))  # builtin:tiny -> the session's tiny model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")


def _task_lines(folder: Path) -> dict[str, list[dict]]:
    return {
        path.name: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def test_predict_evaluate_and_compare_through_the_api_equal_the_cli(tmp_path: Path, capsys) -> None:
    options = PredictOptions(
        "builtin:tiny", data="sample", tasks=TASKS, limit=2, max_length=600, out=tmp_path / "api"
    )
    summary = predict(options)
    assert summary.written == 4 and summary.failed == 0 and summary.out_dir == tmp_path / "api" / "tiny"
    report = evaluate(EvalOptions([summary.out_dir], out=tmp_path / "api_metrics", plots=False))

    common = ["--data", "sample", "--tasks", ",".join(TASKS), "--limit", "2", "--max-length", "600"]
    assert main(["predict", "--model", "builtin:tiny", *common, "--out", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    cli_metrics = tmp_path / "cli_metrics"
    assert main(["eval", str(tmp_path / "cli" / "tiny"), "--out", str(cli_metrics), "--no-plots"]) == 0
    printed = capsys.readouterr().out

    assert _task_lines(summary.out_dir) == _task_lines(tmp_path / "cli" / "tiny")
    assert len(_task_lines(summary.out_dir)) == 2
    assert report.out_dir == tmp_path / "api_metrics"
    written = {path.name for path in cli_metrics.iterdir() if not path.name.startswith(".")}  # not the marker
    assert {path.name for path in report.files} == written and f"wrote {len(written)} files" in printed
    for name in ("result.json", "table_scores_per_task.csv", "samples.jsonl", "tables.md"):
        assert (report.out_dir / name).read_bytes() == (cli_metrics / name).read_bytes()
    assert set(json.loads((report.out_dir / "result.json").read_text(encoding="utf-8"))) >= set(TASKS)
    for table in report.tables:  # what the CLI prints is the report's tables
        assert table.text() in printed

    runs = [summary.out_dir, Path(shutil.copytree(tmp_path / "cli" / "tiny", tmp_path / "b" / "b"))]
    compared = compare(CompareOptions(runs, out=tmp_path / "api_compare"))
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "cli_compare")]) == 0
    assert compared.table.text() in capsys.readouterr().out
    assert (compared.out_dir / "comparison.json").read_bytes() == (
        tmp_path / "cli_compare" / "comparison.json"
    ).read_bytes()
    assert {path.name for path in compared.files} >= {"comparison.json"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "limit must be at least 1, got 0"),
        ({"max_length": -5}, "max_length must be at least 1, got -5"),
        ({"shard": "2/2"}, "shard '2/2': expected I/N"),
        ({"thinking_budget": -1}, "thinking_budget must be at least 0, got -1"),
        (
            {"top_k": 3, "v2": True, "tasks": None},
            "top_k applies to LongBench v1; v2 reads retrieved_context with rag N",
        ),
        ({"engine": BackendOptions(chat_template_kwargs="{x")}, "chat_template_kwargs: not valid JSON"),
        (
            {"engine": BackendOptions(chat_template_kwargs="[1]")},
            "chat_template_kwargs: expected a JSON object",
        ),
        ({"engine": BackendOptions(think_tags="<think>")}, "think_tags: expected OPEN,CLOSE"),
        ({"engine": BackendOptions(replicas=2)}, "replicas and gpus_per_replica need ray"),
    ],
)
def test_bad_predict_settings_name_the_setting(options: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(LongBenchError) as error:
        predict(
            PredictOptions(
                "builtin:tiny", **{"data": "sample", "tasks": ("trec",), "out": tmp_path, **options}
            )
        )
    assert str(error.value).startswith(message)
    assert "--" not in str(error.value)
    assert not any(tmp_path.iterdir())  # nothing written


def test_bad_eval_and_compress_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="^v2 and e are two benchmarks; choose one$"):
        evaluate(EvalOptions([tmp_path], v2=True, e=True))
    with pytest.raises(SettingError, match=r"^method dense needs embedder MODEL"):
        compress(CompressOptions(method="dense", data="sample", out=tmp_path / "c"))
    assert not (tmp_path / "c").exists()


def test_the_cli_names_a_setting_by_its_flag(tmp_path: Path, capsys) -> None:
    argv = ["predict", "--model", "builtin:tiny", "--data", "sample", "--out", str(tmp_path)]
    assert main([*argv, "--max-length", "0"]) == 2
    assert capsys.readouterr().err == "longbench: error: --max-length must be at least 1, got 0\n"


def test_the_api_is_below_the_cli() -> None:
    edges = graph()
    assert "longbench.api" in edges["longbench.cli"]
    assert "longbench.cli" not in edges["longbench.api"]
