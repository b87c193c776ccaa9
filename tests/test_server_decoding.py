"""Decoding on OpenAI-compatible servers is that of the in-process backends, and run.json says when it is not.

Against tests/openai_server.py on 127.0.0.1 (nothing mocked): a server that applies a repetition penalty to
requests that do not set one (as vLLM does with a model's generation_config.json), one that refuses every
field OpenAI's API does not know, one that refuses ``chat_template_kwargs``; and the per-call seeds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import OPENAI_FIELDS, FakeOpenAIServer, penalized, reply_text  # noqa: E402

from longbench.backends.base import GenerationRequest  # noqa: E402
from longbench.backends.openai_api import REFUSALS_TO_STOP, FatalAPIError, OpenAIBackend  # noqa: E402
from longbench.backends.server_decoding import NEUTRAL_FIELDS, NeutralDecoding  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _hermetic(tiny_model: Path):
    saved = dict(os.environ)
    os.environ.update(
        HF_HUB_OFFLINE="1", LONGBENCH_CACHE=str(tiny_model.parent), LONGBENCH_RETRY_BASE_DELAY="0"
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


def _backend(url: str, **options) -> OpenAIBackend:
    settings = dict(
        model="fake-model", base_urls=[url], api_key_env=None, concurrency=4, request_timeout=10.0
    )
    return OpenAIBackend(**{**settings, "tokenizer": "builtin:tiny", **options})


def _requests(count: int, **fields) -> list[GenerationRequest]:
    return [
        GenerationRequest(f"id-{k}", "qasper", f"question {k}?", k % 2 == 0, 16, False, **fields)
        for k in range(count)
    ]


def _generate(backend: OpenAIBackend, requests: list[GenerationRequest]) -> dict[str, str | None]:
    try:
        return {result.request.id: result.text for result in backend.generate(requests)}
    finally:
        backend.close()


def test_a_default_repetition_penalty_is_always_overridden() -> None:
    requests = _requests(6)
    expected = {r.id: reply_text(r.prompt, 16) for r in requests}
    with FakeOpenAIServer(default_repetition_penalty=1.1) as server:
        left_to_server = _generate(_backend(server.url, neutral_decoding=False), requests)
        neutral = _generate(_backend(server.url), requests)
        bodies = [r.body for r in server.requests[len(requests) :]]
    assert left_to_server == {key: penalized(text) for key, text in expected.items()} != expected
    assert neutral == expected
    assert all({name: body[name] for name in NEUTRAL_FIELDS} == NEUTRAL_FIELDS for body in bodies)


def test_an_api_refusing_unknown_fields_gets_none_after_its_first_refusal(tmp_path: Path) -> None:
    from longbench.runner import predict
    from longbench.tasks import get_task

    with FakeOpenAIServer(known_fields_only=True) as server:
        backend = _backend(server.url, concurrency=1)
        assert backend.describe()["decoding_neutral"] is True
        try:
            summary = predict(backend, [get_task("qasper"), get_task("trec")], "sample", tmp_path, max_length=300,
                              model_name="m", notify=lambda _: None)  # fmt: skip
        finally:
            backend.close()
        recorded = [r for r in server.requests if r.body is not None]
    refused = [r for r in recorded if r.outcome == "bad_request"]
    assert summary.failed == 0 and summary.written == len(recorded) - len(refused) > 3
    assert 1 <= len(refused) <= 2  # top_k's other "off" value tried once, then every neutral field dropped
    later = recorded[len(refused) :]
    assert all(set(r.body) <= OPENAI_FIELDS and r.outcome == "ok" for r in later)
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    settings = run["backend_settings"]
    assert settings["decoding_neutral"] is False
    assert settings["decoding"]["neutral_fields_sent"] == {}
    assert "Unrecognized request argument" in settings["decoding"]["neutral_fields_refused"]


def test_omitted_temperature_is_not_neutral_decoding() -> None:
    with FakeOpenAIServer() as server:
        backend = _backend(server.url, send_temperature=False)
        assert backend.describe()["decoding_neutral"] is False
        backend.close()


def test_describe_records_no_temperature_of_its_own(tiny_model: Path) -> None:
    """A v2 run samples at 0.1: the backend settings must not claim 0 (the run's temperature is in run.json)."""
    from longbench.backends import create_backend

    server = _backend("http://127.0.0.1:9/v1")
    local = create_backend("transformers", model=str(tiny_model))
    for described in (server.describe(), local.describe()):
        assert "run.json temperature" in described["decoding"]["temperature"]


def test_top_k_switches_to_the_other_off_value_once() -> None:
    decoding = NeutralDecoding()
    sent = decoding.fields()
    assert sent["top_k"] == -1
    assert decoding.adapt("Input should be greater than or equal to 0 ('body', 'top_k')", sent) is True
    assert decoding.fields()["top_k"] == 0 and decoding.neutral
    # a request built before that change, refused the same way: sent again, nothing else changes
    assert decoding.adapt("Input should be greater than or equal to 0 ('body', 'top_k')", sent) is True
    assert decoding.fields()["top_k"] == 0
    assert decoding.adapt("Unsupported parameter: 'max_tokens'", decoding.fields()) is False
    assert decoding.adapt("Unrecognized request argument supplied: top_k", decoding.fields()) is True
    assert decoding.fields() == {} and not decoding.neutral


def test_a_server_refusing_chat_template_kwargs_stops_the_run() -> None:
    with FakeOpenAIServer(unsupported=("chat_template_kwargs",)) as server:
        backend = _backend(server.url, concurrency=1, chat_template_kwargs={"enable_thinking": False})
        with pytest.raises(FatalAPIError, match="chat_template_kwargs"):
            _generate(backend, _requests(20))
        refused = [r for r in server.requests if r.outcome == "bad_request"]
    assert len(refused) == REFUSALS_TO_STOP and all("chat_template_kwargs" in r.body for r in refused)


def test_each_call_sends_its_own_seed() -> None:
    seeded = [
        GenerationRequest(f"id-{k}", "qasper", f"q {k}", True, 8, False, temperature=0.1, seed=1000 + k)
        for k in range(4)
    ]
    with FakeOpenAIServer() as server:
        _generate(_backend(server.url), seeded + _requests(2))
        sent = {r.body["messages"][0]["content"] if "messages" in r.body else r.body["prompt"]: r.body
                for r in server.requests if r.body is not None}  # fmt: skip
    for request in seeded:
        assert sent[request.prompt]["seed"] == request.seed and sent[request.prompt]["temperature"] == 0.1
    assert "seed" not in sent["question 0?"] and "seed" not in sent["question 1?"]
