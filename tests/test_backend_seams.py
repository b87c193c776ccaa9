"""The backends' shared seams: the registry, per-call seeds, and the chat template's own tokens that a v2
window must leave room for. Real tiny model and tokenizer throughout (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from longbench.backends import BACKENDS, REGISTRY, Backend, create_backend
from longbench.backends.base import GenerationRequest
from longbench.backends.vllm_engine import sampling_settings
from longbench.errors import LongBenchError
from longbench.v2.prompts import DEFAULT_WINDOW, V2Mode, first_prompt, resolve_window

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> Backend:
    return create_backend("transformers", model=str(tiny_model), batch_size=4)


def test_registry_names_every_backend() -> None:
    import importlib

    assert BACKENDS == tuple(REGISTRY) == ("transformers", "openai", "vllm")
    for module, cls in REGISTRY.values():
        assert issubclass(getattr(importlib.import_module(module), cls), Backend)
    with pytest.raises(LongBenchError, match="unknown backend 'nope'; valid: transformers, openai, vllm"):
        create_backend("nope")


def _sampled(request_id: str, seed: int | None) -> GenerationRequest:
    prompt = f"Write something about {request_id}."
    return GenerationRequest(request_id, "qasper", prompt, True, 24, False, temperature=1.5, seed=seed)


def test_a_seeded_sample_draws_the_same_whatever_runs_with_it(tiny: Backend) -> None:
    a, b, c = _sampled("a", 11), _sampled("b", 12), _sampled("c", 13)
    before = torch.get_rng_state()
    together = {r.request.id: r.text for r in tiny.generate([a, b, c])}
    reordered = {r.request.id: r.text for r in tiny.generate([c, a])}
    alone = next(iter(tiny.generate([a]))).text
    assert torch.equal(torch.get_rng_state(), before)  # the global generator was neither used nor moved
    assert together["a"] == reordered["a"] == alone and together["c"] == reordered["c"]
    other_seed = next(iter(tiny.generate([_sampled("a", 99)]))).text
    assert other_seed != alone


def test_seeded_samples_are_generated_alone_greedy_ones_batched(tiny: Backend) -> None:
    greedy = [GenerationRequest(f"g{k}", "qasper", "q" * (k + 3), True, 8, False) for k in range(3)]
    batches = tiny.batches([_sampled("a", 1), _sampled("b", 2), *greedy])
    sizes = sorted(len(batch) for batch in batches)
    assert sizes == [1, 1, 3]


def test_vllm_gets_each_calls_seed() -> None:
    seeded = GenerationRequest("a", "qasper", "q", True, 8, False, temperature=0.1, seed=7)
    assert sampling_settings(seeded, 13)["seed"] == 7
    assert "seed" not in sampling_settings(GenerationRequest("a", "qasper", "q", True, 8, False), 13)


def test_chat_template_tokens_are_counted(tiny: Backend, tiny_model: Path) -> None:
    empty = tiny.render(GenerationRequest("", "", "", True, 0, False))
    assert tiny.chat_template_tokens() == len(empty.encode()) - len(
        "<s>"
    )  # byte tokens; the BOS is the prompt's
    raw = create_backend("transformers", model=str(tiny_model), chat_template="none")
    assert raw.chat_template_tokens() == 0
    server = create_backend("openai", model="m", base_urls=["http://127.0.0.1:9/v1"], api_key_env=None,
                            concurrency=1, request_timeout=1.0, tokenizer=str(tiny_model))  # fmt: skip
    assert server.chat_template_tokens() == tiny.chat_template_tokens()  # the tokenizer's template, as served


@pytest.mark.parametrize("window", [4096, 8192])
@pytest.mark.parametrize("cot", [False, True])
def test_v2_inputs_fit_a_small_window_and_use_it(tiny: Backend, window: int, cot: bool) -> None:
    mode = V2Mode(cot=cot)
    record = {"_id": "x", "question": "Which?", "context": "the long document goes on. " * 2000}
    record.update({f"choice_{letter}": f"option {letter}" for letter in "ABCD"})
    budget, notice = resolve_window(
        "some-model",
        None,
        window,
        new_tokens=mode.first_max_tokens,
        template_tokens=tiny.chat_template_tokens(),
    )
    assert notice is not None and f"{mode.first_max_tokens} new tokens" in notice
    prompt = first_prompt(record, mode, tiny.tokenizer, budget)
    request = GenerationRequest("x", "v2", prompt, True, mode.first_max_tokens, False)
    used = len(tiny.input_ids(request)) + mode.first_max_tokens
    assert window - 2 <= used <= window


def test_v2_keeps_the_references_window_where_it_fits() -> None:
    assert resolve_window("m", None, 131_072, new_tokens=1024, template_tokens=30) == (DEFAULT_WINDOW, None)
    squeezed, notice = resolve_window("m", None, 120_500, new_tokens=1024, template_tokens=30)
    assert squeezed == 120_500 - 1024 - 30 and notice is not None
    with pytest.raises(LongBenchError, match="no room"):
        resolve_window("m", None, 1000, new_tokens=1024, template_tokens=30)
