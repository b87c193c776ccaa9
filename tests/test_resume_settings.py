"""Resume compares everything that changes a prediction: the OpenAI backend's way of sending (endpoint, token
parameter, temperature) and the package version, with real files and a real loopback server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer  # noqa: E402

from longbench import __version__  # noqa: E402
from longbench.backends.openai_api import OpenAIBackend  # noqa: E402
from longbench.errors import LongBenchError  # noqa: E402
from longbench.runner import predict  # noqa: E402
from longbench.tasks import get_task  # noqa: E402


@pytest.fixture
def server(monkeypatch, tiny_model: Path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    with FakeOpenAIServer() as running:
        yield running


def _predict(url: str, out: Path, limit: int, **options) -> None:
    backend = OpenAIBackend("fake-model", [url], None, 2, 5.0, "builtin:tiny", **options)
    try:
        predict(
            backend, [get_task("trec")], "sample", out, max_length=1000, limit=limit, notify=lambda _: None
        )
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ({"completion_tasks_as_chat": True}, "completion_as_chat"),
        ({"token_limit_parameter": "max_completion_tokens"}, "token_limit_parameter"),
        ({"send_temperature": False}, "omit_temperature"),
    ],
)
def test_resuming_with_another_way_of_sending_is_refused(server, tmp_path: Path, option, named) -> None:
    _predict(server.url, tmp_path, limit=1)
    prediction = tmp_path / "fake-model" / "trec.jsonl"
    before = prediction.read_bytes()
    with pytest.raises(LongBenchError, match=f"different {named}"):
        _predict(server.url, tmp_path, limit=2, **option)
    assert prediction.read_bytes() == before  # nothing made the other way was appended
    _predict(server.url, tmp_path, limit=2)  # the same way resumes
    assert len(prediction.read_bytes().splitlines()) == 2


def test_another_package_version_is_refused_unless_allowed(server, tmp_path: Path) -> None:
    _predict(server.url, tmp_path, limit=1)
    run_file = tmp_path / "fake-model" / "run.json"
    run = json.loads(run_file.read_text())
    earlier = {**run["versions"], "longbench": "0.0.1"}
    run_file.write_text(json.dumps({**run, "versions": earlier}))  # as an earlier release left it
    with pytest.raises(LongBenchError, match="longbench 0.0.1.*--allow-version-change") as refused:
        _predict(server.url, tmp_path, limit=2)
    assert "\n" not in str(refused.value)
    backend = OpenAIBackend("fake-model", [server.url], None, 2, 5.0, "builtin:tiny")
    try:
        predict(backend, [get_task("trec")], "sample", tmp_path, max_length=1000, limit=2,
                notify=lambda _: None, allow_version_change=True)  # fmt: skip
    finally:
        backend.close()
    after = json.loads(run_file.read_text())
    assert after["versions"]["longbench"] == __version__
    assert after["earlier_versions"] == [earlier]  # not silently overwritten


WRONG_TYPES = [
    ("versions", 5, "'versions' must be an object"),
    ("output_settings", "fast", "'output_settings' must be an object"),
    ("max_length", [1000], "'max_length' must be an object"),
    ("stop_at_newline", 7, "'stop_at_newline' must be a list"),
    ("e", "no", "'e' must be true or false"),
    ("task_samples", {"trec": "five"}, "task_samples['trec'] must be a count"),
]


@pytest.mark.parametrize(("field", "value", "message"), WRONG_TYPES, ids=[case[0] for case in WRONG_TYPES])
def test_a_wrong_typed_run_json_field_is_one_line_for_predict_and_eval(
    server, tmp_path: Path, field, value, message
) -> None:
    from test_eval_outputs import run_cli

    _predict(server.url, tmp_path, limit=1)
    run_file = tmp_path / "fake-model" / "run.json"
    run_file.write_text(json.dumps({**json.loads(run_file.read_text()), field: value}))
    with pytest.raises(LongBenchError, match=f"run.json: not a valid run.json: .*{message[:12]}") as caught:
        _predict(server.url, tmp_path, limit=2)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    scored = run_cli("eval", tmp_path / "fake-model", "--out", tmp_path / "scores")
    assert scored.returncode == 2 and scored.stderr.count("\n") == 1, scored.stderr
    assert "run.json" in scored.stderr and message in scored.stderr


def test_a_wrong_typed_field_of_a_derived_folders_compression_json_is_one_line(tmp_path: Path) -> None:
    from longbench.sources import KIND, open_source

    (tmp_path / "compression.json").write_text(json.dumps({"kind": KIND, "settings": "bm25", "tasks": []}))
    with pytest.raises(
        LongBenchError, match="compression.json: not a valid compression.json: field 'settings'"
    ):
        open_source(str(tmp_path), top_k=3)
