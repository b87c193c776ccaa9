"""A reasoning model's thinking kept apart from its answer, on every backend.

The split itself is a pure function (checked on each layout); the backends are checked for real: the
OpenAI-compatible backend against tests/openai_server.py answering in each reasoning model's layout, the
runner writing the answer alone as ``pred``, and the transformers backend on the tiny random-weight model
with a chat template that opens ``<think>``. Random weights cannot write ``...</think>answer``, so for those
layouts the tiny model's token engine is replaced by one that returns scripted token ids; vLLM, which cannot
run here (no GPU), gets a stand-in engine the same way. Those are the only stand-ins: the tokenizer, chat
template, decoding, finish reasons and the split are the backends' own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import FakeOpenAIServer, reply_text, thinking_text  # noqa: E402

from longbench.backends.base import GenerationRequest  # noqa: E402
from longbench.backends.openai_api import OpenAIBackend  # noqa: E402
from longbench.errors import LongBenchError  # noqa: E402
from longbench.thinking import parse_think_tags, split_thinking  # noqa: E402

OPENS_THINKING = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}<|assistant|>\n{% if enable_thinking is defined and not enable_thinking %}"
    "<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}"
)


# -- the split -----------------------------------------------------------------------------------------------


def test_each_layout_gives_the_answer_alone() -> None:
    assert split_thinking("<think>\nplan it\n</think>\n\n  Paris") == split_thinking("plan it</think> Paris")
    inline = split_thinking("  <think>\nplan it\n</think>\n\n  Paris\n")
    assert (inline.answer, inline.thinking, inline.unfinished) == ("Paris\n", "plan it", False)
    opened = split_thinking("plan it\n</think>\nParis", opened=True)
    assert (opened.answer, opened.thinking) == ("Paris", "plan it")
    cut = split_thinking("<think>\nplan it and then")
    assert (cut.answer, cut.thinking, cut.unfinished) == ("", "plan it and then", True)
    cut_opened = split_thinking("plan it and then", opened=True)
    assert (cut_opened.answer, cut_opened.thinking, cut_opened.unfinished) == ("", "plan it and then", True)
    empty = split_thinking("<think>\n\n</think>\n\nParis")
    assert (empty.answer, empty.thinking) == ("Paris", None)


def test_plain_outputs_are_untouched() -> None:
    for text in ("  Paris\n", "\nanswer: <think> is a tag", ""):
        split = split_thinking(text)
        assert (split.answer, split.thinking, split.unfinished) == (text, None, False)


def test_other_tags_and_none() -> None:
    tags = parse_think_tags("<reasoning>,</reasoning>")
    assert tags == ("<reasoning>", "</reasoning>")
    assert split_thinking("<reasoning>x</reasoning> y", tags).answer == "y"
    assert split_thinking("<think>x</think> y", tags).answer == "<think>x</think> y"
    assert split_thinking("<think>x</think> y", None).answer == "<think>x</think> y"
    assert parse_think_tags("none") is None and parse_think_tags(" NONE ") is None
    for bad in ("<think>", "<think>,", ",</think>", "a,b,c"):
        with pytest.raises(ValueError, match="OPEN,CLOSE"):
            parse_think_tags(bad)


def test_unparsable_think_tags_option_is_one_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "longbench", "predict", "--backend", "openai", "--model", "m",
               "--base-url", "http://127.0.0.1:9/v1", "--tokenizer", "builtin:tiny", "--data", "sample",
               "--tasks", "qasper", "--out", str(tmp_path / "out"), "--think-tags", "<think>"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("longbench: error: --think-tags:")
    assert not (tmp_path / "out").exists()


# -- the OpenAI-compatible backend against a server answering in each layout ---------------------------------


@pytest.fixture(scope="module", autouse=True)
def _hermetic(tiny_model: Path):
    saved = dict(os.environ)
    os.environ.update(
        HF_HUB_OFFLINE="1", LONGBENCH_CACHE=str(tiny_model.parent), LONGBENCH_RETRY_BASE_DELAY="0"
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


def _openai(url: str, **options) -> OpenAIBackend:
    settings = dict(
        model="fake-model", base_urls=[url], api_key_env=None, concurrency=4, request_timeout=10.0
    )
    return OpenAIBackend(**{**settings, "tokenizer": "builtin:tiny", **options})


STYLES = ("reasoning_content", "inline", "template_opened", "unclosed", "plain")


def _styled_requests(budget: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(style, "qasper", f"Question {k} [style:{style}]?", True, budget, False)
        for k, style in enumerate(STYLES)
    ]


def test_server_replies_in_every_layout_give_the_answer_alone() -> None:
    budget = 64
    with FakeOpenAIServer() as server:
        backend = _openai(server.url, chat_template_kwargs={"enable_thinking": True})
        try:
            results = {result.request.id: result for result in backend.generate(_styled_requests(budget))}
        finally:
            backend.close()
        seen = [r.body for r in server.requests if r.body is not None]
    assert len(seen) == len(STYLES)
    assert all(body["max_tokens"] == budget for body in seen)
    assert all(body["chat_template_kwargs"] == {"enable_thinking": True} for body in seen)
    for style, result in results.items():
        prompt = result.request.prompt
        answer = reply_text(prompt, budget)
        if style == "unclosed":
            assert (result.text, result.finish_reason) == ("", "length")
            assert result.thinking is not None and result.thinking.startswith(thinking_text(prompt))
        elif style == "plain":
            assert (result.text, result.thinking) == (answer, None)
        else:
            assert (result.text, result.thinking, result.finish_reason) == (
                answer,
                thinking_text(prompt),
                "stop",
            )
    assert results["reasoning_content"].thinking_tokens == len(thinking_text("x").split())
    assert results["inline"].generated_tokens > len(reply_text("x", budget).split())  # thinking included


def test_without_think_tags_server_outputs_stay_whole() -> None:
    with FakeOpenAIServer() as server:
        backend = _openai(server.url, think_tags=None)
        try:
            results = {result.request.id: result for result in backend.generate(_styled_requests(64))}
        finally:
            backend.close()
    assert results["inline"].text.startswith("<think>") and results["inline"].thinking is None
    kept_apart = results["reasoning_content"]  # the content untouched; the server's reasoning still kept
    assert kept_apart.text.startswith("\n\n") and kept_apart.thinking == thinking_text(
        kept_apart.request.prompt
    )


def test_runner_writes_the_answer_alone_as_pred(tmp_path: Path) -> None:
    from longbench.runner import predict
    from longbench.tasks import get_task

    data = tmp_path / "qasper.jsonl"
    records = [
        {"input": f"Which style? [style:{style}]", "context": "A short document.", "answers": ["a"],
         "length": 4, "dataset": "qasper", "language": "en", "all_classes": None, "_id": style}
        for style in STYLES
    ]  # fmt: skip
    data.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    with FakeOpenAIServer() as server:
        backend = _openai(server.url)
        try:
            predict(backend, [get_task("qasper")], str(data), tmp_path / "pred", max_length=500,
                    model_name="m", verify=False, notify=lambda _: None)  # fmt: skip
        finally:
            backend.close()
        prompts = {body["messages"][0]["content"].split("[style:")[1].split("]")[0]: body["messages"][0]["content"]
                   for body in (r.body for r in server.requests if r.body is not None)}  # fmt: skip
    lines = {line["_id"]: line for line in map(json.loads, (tmp_path / "pred" / "m" / "qasper.jsonl").open())}
    assert set(lines) == set(STYLES)
    for style, line in lines.items():
        expected = "" if style == "unclosed" else reply_text(prompts[style], 128)
        assert line["pred"] == expected, style


# -- the transformers backend on the tiny model, with a template that opens <think> ------------------------


class ScriptedEngine:
    """Stands in for the tiny model's forward passes: returns the token ids of a scripted output per prompt."""

    def __init__(self, outputs: dict[tuple[int, ...], list[int]]) -> None:
        self.outputs = outputs

    def run(self, jobs):
        return [self.outputs[job.ids][: job.max_new_tokens] for job in jobs]


@pytest.fixture(scope="module")
def thinking_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "opens_thinking.jinja"
    path.write_text(OPENS_THINKING, encoding="utf-8")
    return path


def test_transformers_chat_template_kwargs_reach_the_template(
    tiny_model: Path, thinking_template: Path
) -> None:
    from longbench.backends.hf import TransformersBackend

    thinking = TransformersBackend(str(tiny_model), chat_template=str(thinking_template))
    plain = TransformersBackend(
        str(tiny_model), chat_template=str(thinking_template), chat_template_kwargs={"enable_thinking": False}
    )
    request = GenerationRequest("a", "qasper", "Why?", True, 8, False)
    assert thinking.render(request).endswith("<|assistant|>\n<think>\n") and thinking.opens_thinking()
    assert plain.render(request).endswith("<think>\n\n</think>\n\n") and not plain.opens_thinking()
    assert plain.describe()["chat_template_kwargs"] == {"enable_thinking": False}
    assert len(plain.input_ids(request)) == len(thinking.input_ids(request)) + len("\n</think>\n\n")


def test_transformers_outputs_in_every_layout(
    tiny_model: Path, thinking_template: Path, one_torch_thread
) -> None:
    from longbench.backends.hf import TransformersBackend

    backend = TransformersBackend(str(tiny_model), chat_template=str(thinking_template), batch_size=2)
    tokenizer = backend.tokenizer
    budget = 60
    scripted = {
        "opened": "I should look at the passage.\n</think>\n\nParis",
        "inline": "<think>\nfirst, the passage\n</think>\nRome",
        "unclosed": "the passage says many things and I keep going on and on and on and on and on",
    }
    requests = [
        GenerationRequest(name, "qasper", f"Question about {name}?", True, budget, False) for name in scripted
    ]
    eos = tokenizer.eos_token_id
    outputs = {}
    for request in requests:
        ids = tokenizer(scripted[request.id], add_special_tokens=False).input_ids
        outputs[tuple(backend.input_ids(request))] = ids + [eos] if request.id != "unclosed" else ids
    # the model's forward passes, scripted (see the module docstring)
    backend._engine = ScriptedEngine(outputs)
    results = {result.request.id: result for result in backend.generate(requests)}
    assert (results["opened"].text, results["opened"].thinking) == ("Paris", "I should look at the passage.")
    assert (results["inline"].text, results["inline"].thinking) == ("Rome", "first, the passage")
    assert results["opened"].finish_reason == "stop" and results["unclosed"].finish_reason == "length"
    assert (
        results["unclosed"].text == ""
        and results["unclosed"].thinking == scripted["unclosed"][:budget].strip()
    )
    assert results["unclosed"].generated_tokens == budget


def test_transformers_real_generation_inside_an_opened_tag(
    tiny_model: Path, thinking_template: Path, one_torch_thread
) -> None:
    """The tiny model's own output after a prompt ending in ``<think>`` never closes it: all of it is thinking."""
    from longbench.backends.hf import TransformersBackend

    request = GenerationRequest("a", "qasper", "Tell me about the passage.", True, 24, False)
    split = TransformersBackend(str(tiny_model), chat_template=str(thinking_template))
    whole = TransformersBackend(str(tiny_model), chat_template=str(thinking_template), think_tags=None)
    raw = next(iter(whole.generate([request])))
    kept = next(iter(split.generate([request])))
    assert raw.text and raw.thinking is None
    assert kept.text == "" and kept.thinking == raw.text.strip()
    assert kept.finish_reason == raw.finish_reason and kept.generated_tokens == raw.generated_tokens


def test_unknown_think_tags_setting_is_refused(tiny_model: Path) -> None:
    from longbench.backends import create_backend

    with pytest.raises(LongBenchError, match="think_tags"):
        create_backend("transformers", model=str(tiny_model), think_tags=("<think>",))


# -- the vLLM backend: vllm cannot run here (no GPU), so a minimal stand-in engine replays scripted token ids ----


def _fake_vllm(outputs: dict[tuple[int, ...], list[int]]):
    """A stand-in ``vllm`` module: ``LLM(...).llm_engine`` finishes each request at once with the scripted ids."""
    from types import ModuleType, SimpleNamespace

    class Engine:
        model_config = SimpleNamespace(max_model_len=4096)

        def __init__(self) -> None:
            self.queue: list = []
            self.params: list = []

        def add_request(self, request_id, prompt, params) -> None:
            self.params.append(params.settings)
            self.queue.append((request_id, tuple(prompt["prompt_token_ids"]), params.settings["max_tokens"]))

        def step(self):
            done, self.queue = self.queue, []
            return [
                SimpleNamespace(
                    request_id=rid,
                    finished=True,
                    outputs=[SimpleNamespace(token_ids=outputs[ids][:limit], stop_reason=None,
                                             finish_reason="length" if len(outputs[ids]) > limit else "stop")],
                )
                for rid, ids, limit in done
            ]  # fmt: skip

    module = ModuleType("vllm")
    module.SamplingParams = lambda **settings: SimpleNamespace(settings=settings)
    engine = Engine()
    module.LLM = lambda **options: SimpleNamespace(llm_engine=engine)
    return module, engine


def test_vllm_outputs_get_the_same_treatment(tiny_model: Path, thinking_template: Path, monkeypatch) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    outputs: dict[tuple[int, ...], list[int]] = {}
    module, engine = _fake_vllm(outputs)
    monkeypatch.setitem(sys.modules, "vllm", module)
    from longbench.backends import create_backend

    backend = create_backend(
        "vllm",
        model=str(tiny_model),
        chat_template=str(thinking_template),
        chat_template_kwargs={"enable_thinking": True},
        max_model_len=4096,
    )
    requests = [
        GenerationRequest("closed", "qasper", "First?", True, 40, False, temperature=0.1, seed=5),
        GenerationRequest("unclosed", "qasper", "Second?", True, 10, False),
    ]
    scripted = {"closed": "weighing it\n</think>\n\nParis", "unclosed": "weighing it for a long while"}
    for request in requests:
        ids = tokenizer(scripted[request.id], add_special_tokens=False).input_ids
        outputs[tuple(backend.job(request).prompt_ids)] = ids
    results = {result.request.id: result for result in backend.generate(requests)}
    assert backend.render(requests[0]).endswith("<|assistant|>\n<think>\n")
    assert backend.describe()["chat_template_kwargs"] == {"enable_thinking": True}
    assert (results["closed"].text, results["closed"].thinking, results["closed"].finish_reason) == (
        "Paris",
        "weighing it",
        "stop",
    )
    assert (results["unclosed"].text, results["unclosed"].thinking) == ("", scripted["unclosed"][:10])
    assert results["unclosed"].finish_reason == "length"
    assert [params.get("seed") for params in engine.params] == [5, None]


def test_server_styles_through_predict_and_eval(tmp_path: Path) -> None:
    """End to end: the server sees the task budget plus ``thinking_budget``, each line keeps its thinking apart,
    and eval counts the unclosed thinking as ``output_health.thinking_unfinished``."""
    from helpers import run_cli

    from longbench.runner import predict
    from longbench.tasks import get_task

    data = tmp_path / "qasper.jsonl"
    records = [
        {"input": f"Which style? [style:{style}]", "context": "A short document.", "answers": ["a"],
         "length": 4, "dataset": "qasper", "language": "en", "all_classes": None, "_id": f"{style}-{k}"}
        for k in range(2) for style in STYLES
    ]  # fmt: skip
    data.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    with FakeOpenAIServer() as server:
        backend = _openai(server.url)
        try:
            predict(backend, [get_task("qasper")], str(data), tmp_path / "pred", max_length=500, model_name="m",
                    verify=False, notify=lambda _: None, thinking_budget=100)  # fmt: skip
        finally:
            backend.close()
        budgets = {body["max_tokens"] for body in (r.body for r in server.requests if r.body is not None)}
    assert budgets == {get_task("qasper").max_new_tokens + 100}
    lines = list(map(json.loads, (tmp_path / "pred" / "m" / "qasper.jsonl").open()))
    thought = {line["_id"].split("-")[0] for line in lines if line["thinking"] is not None}
    assert thought == set(STYLES) - {"plain"}
    proc = run_cli("eval", tmp_path / "pred" / "m", "--out", tmp_path / "o", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    health = json.loads((tmp_path / "o" / "summary.json").read_text())["output_health"]
    unclosed = sum(line["_id"].startswith("unclosed") for line in lines)
    assert health["total"]["thinking_unfinished"] == unclosed == 2
