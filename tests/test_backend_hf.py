"""The transformers backend on the real tiny model (CPU): reference-exact greedy decoding, batching, OOM retry.

No GPU exists here: a real CUDA out-of-memory error cannot happen, so the OOM tests raise
``torch.OutOfMemoryError`` from a forward pre-hook on the real model (the only injected part); the GPU
placement logic is tested as the pure function it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from longbench.backends.base import GenerationRequest
from longbench.backends.hf import (
    Placement,
    TokenJob,
    TransformersBackend,
    choose_attention,
    cut_at_stop,
    is_out_of_memory,
    plan_placement,
    resolve_dtype,
)
from longbench.loading import iter_records
from longbench.prompts import build_prompt, encode_model_input
from longbench.tasks import all_tasks, get_task

WINDOW = 4096  # the tiny model's context window
GIB = 1 << 30


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> TransformersBackend:
    return TransformersBackend(str(tiny_model), batch_size=1)


def _requests(
    backend: TransformersBackend, task_name: str, cap: int | None = None, max_length: int | None = None
) -> list[GenerationRequest]:
    """The sample set's requests for ``task_name``; a smaller ``max_length`` keeps CPU attention cheap."""
    task = get_task(task_name)
    out = []
    for record in iter_records(task_name, "sample"):
        budget = max_length or WINDOW - task.max_new_tokens
        prompt = build_prompt(task, record, backend.tokenizer, budget)
        new = task.max_new_tokens if cap is None else min(cap, task.max_new_tokens)
        out.append(GenerationRequest(record["_id"], task.name, prompt, task.chat, new, task.stop_at_newline))
    return out


def _texts(backend: TransformersBackend, requests: list[GenerationRequest]) -> dict[str, str | None]:
    results = list(backend.generate(requests))
    assert sorted(r.request.id for r in results) == sorted(r.id for r in requests)
    return {r.request.id: r.text for r in results}


def _reference_generate(backend: TransformersBackend, request: GenerationRequest) -> str:
    """The reference pred.py call on one prompt, written out independently of the backend."""
    tokenizer, model = backend.tokenizer, backend.model
    wrapped = request.chat and backend.chat_template() is not None
    ids = torch.tensor([encode_model_input(backend.render(request), tokenizer, chat_wrapped=wrapped)])
    context_length = ids.shape[-1]
    extra = {}
    if request.task == "samsum":
        extra = {
            "min_length": context_length + 1,
            "eos_token_id": [tokenizer.eos_token_id, tokenizer.encode("\n", add_special_tokens=False)[-1]],
        }
    output = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=request.max_new_tokens,
        num_beams=1,
        do_sample=False,
        temperature=1.0,
        **extra,
    )[0]
    return tokenizer.decode(output[context_length:], skip_special_tokens=True)


@pytest.mark.parametrize("task_name", ["hotpotqa", "trec", "samsum", "multifieldqa_zh"])
def test_one_at_a_time_output_equals_the_reference_generate_call(backend, task_name) -> None:
    requests = _requests(backend, task_name)[-1:]  # the longest sample, truncated to the full window
    got = _texts(backend, requests)
    for request in requests:
        assert got[request.id] == _reference_generate(backend, request)


def test_batched_output_equals_unbatched_on_all_21_sample_tasks(backend) -> None:
    # prompts truncated to 300-1000 tokens (varied, so batches mix lengths and need left padding) and new
    # tokens capped at 24 keep this fast on a CPU, where padded batched attention costs batch x length^2;
    # bench/predict_speed.py checks the full window and full generation lengths
    requests = []
    for task in all_tasks():
        for number, record in enumerate(iter_records(task.name, "sample")):
            prompt = build_prompt(task, record, backend.tokenizer, 300 + 350 * (number % 3))
            new = min(24, task.max_new_tokens)
            requests.append(
                GenerationRequest(record["_id"], task.name, prompt, task.chat, new, task.stop_at_newline)
            )
    lengths = [len(backend.job(r).ids) for r in requests]
    assert max(lengths) > 3 * min(lengths)
    backend.batch_size = 1
    alone = _texts(backend, requests)
    backend.batch_size = 8
    try:
        together = _texts(backend, requests)
    finally:
        backend.batch_size = 1
    assert len(alone) == 67
    assert together == alone
    assert all(isinstance(text, str) for text in alone.values())


def test_batches_group_by_decoding_settings_and_sort_longest_first(backend) -> None:
    requests = _requests(backend, "trec") + _requests(backend, "samsum") + _requests(backend, "hotpotqa")
    backend.batch_size = 2
    try:
        batches = backend.batches(requests)
    finally:
        backend.batch_size = 1
    assert sorted(r.id for batch in batches for r, _ in batch) == sorted(r.id for r in requests)
    for batch in batches:
        assert len(batch) <= 2
        assert len({(job.max_new_tokens, job.eos_ids) for _, job in batch}) == 1
        assert [len(job.ids) for _, job in batch] == sorted((len(job.ids) for _, job in batch), reverse=True)


def test_stop_tokens_cut_every_batch_row_exactly_like_a_lone_run(backend) -> None:
    engine = backend._local_engine()
    prompts = [r.prompt[:600] for r in _requests(backend, "qasper")] + ["Hello there.", "x" * 50]
    ids = [tuple(backend.tokenizer(p).input_ids) for p in prompts]
    free = engine.run([TokenJob(i, 16, None, 0) for i in ids])
    # a stop token that the unconstrained rows emit at different positions (or not at all)
    candidates = sorted(
        {t for row in free for t in row[1:]},
        key=lambda t: sorted(row.index(t) if t in row else 99 for row in free),
    )
    stop = next(t for t in candidates if len({row.index(t) if t in row else -1 for row in free}) > 1)
    first = free[0][0]  # the first token of row 0: forbidden as a first token by min_new_tokens=1
    eos = (backend.tokenizer.eos_token_id, stop, first)
    jobs = [TokenJob(i, 16, eos, 1) for i in ids]
    together = engine.run(jobs)
    alone = [engine.run([job])[0] for job in jobs]
    assert together == alone
    assert any(len(row) < 16 for row in together)  # some row stopped early...
    assert all(len(row) >= 1 for row in together)  # ...but every row generated at least one token
    assert together[0][0] != first
    for row in together:
        assert not set(row[:-1]) & set(eos)  # nothing after the first stop token


def test_cut_at_stop_keeps_the_stop_token() -> None:
    assert cut_at_stop([5, 6, 2, 0, 0], [2]) == [5, 6, 2]
    assert cut_at_stop([5, 6, 7], [2, 9]) == [5, 6, 7]
    assert cut_at_stop([9], [2, 9]) == [9]
    assert cut_at_stop([], [2]) == []


def _oom_hook(predicate):
    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and predicate(ids):
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)"
            )

    return hook


def test_an_oom_batch_is_retried_one_sample_at_a_time(backend) -> None:
    requests = _requests(backend, "qasper", 8, 1024) + _requests(backend, "hotpotqa", 8, 1024)
    expected = _texts(backend, requests)
    handle = backend.model.register_forward_pre_hook(
        _oom_hook(lambda ids: ids.shape[0] > 1), with_kwargs=True
    )
    backend.batch_size = 4
    try:
        results = list(backend.generate(requests))
    finally:
        handle.remove()
        backend.batch_size = 1
    assert all(r.ok for r in results)
    assert {r.request.id: r.text for r in results} == expected


def test_a_sample_that_never_fits_fails_with_a_reason_and_no_text(backend) -> None:
    requests = _requests(backend, "qasper", cap=4, max_length=1024)
    lengths = {r.id: len(backend.job(r).ids) for r in requests}
    limit = sorted(lengths.values())[1]  # the two longest prompts exceed it
    handle = backend.model.register_forward_pre_hook(
        _oom_hook(lambda ids: ids.shape[0] * ids.shape[1] > limit), with_kwargs=True
    )
    backend.batch_size = 3
    try:
        results = {r.request.id: r for r in backend.generate(requests)}
    finally:
        handle.remove()
        backend.batch_size = 1
    for sample_id, length in lengths.items():
        result = results[sample_id]
        if length > limit:
            assert not result.ok and result.text is None
            assert f"out of memory on a {length}-token prompt" in result.error
        else:
            assert result.ok and result.error is None and result.generated_tokens == 4


def test_errors_other_than_oom_are_not_swallowed(backend) -> None:
    def hook(module, args, kwargs):
        raise ValueError("a bug, not a memory problem")

    handle = backend.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with pytest.raises(ValueError, match="a bug"):
            list(backend.generate(_requests(backend, "trec", cap=2)[:1]))
    finally:
        handle.remove()


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory."))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(MemoryError())


def test_chat_tasks_are_wrapped_and_completion_tasks_are_not(backend) -> None:
    chat, plain = _requests(backend, "hotpotqa")[0], _requests(backend, "lcc")[0]
    assert backend.render(plain) == plain.prompt
    rendered = backend.render(chat)
    assert rendered != chat.prompt and chat.prompt in rendered
    ids = backend.job(chat).ids
    assert ids[0] == backend.tokenizer.bos_token_id and ids[1] != backend.tokenizer.bos_token_id


def test_the_tokenizer_is_usable_without_model_weights(tiny_model: Path, tmp_path: Path) -> None:
    light = tmp_path / "no-weights"
    shutil.copytree(tiny_model, light, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    backend = TransformersBackend(str(light), chat_template="none")
    request = GenerationRequest("i", "hotpotqa", "Question?", True, 4, False)
    assert backend.render(request) == "Question?"  # --chat-template none: raw prompt even for chat tasks
    assert backend.context_window() == WINDOW
    assert backend.describe()["dtype"] == "float32"
    with pytest.raises(OSError):
        list(backend.generate([request]))  # only generation needs the weights


def test_describe_records_settings(backend, tiny_model: Path) -> None:
    described = backend.describe()
    assert described["model"] == str(tiny_model)
    assert described["placement"] == "cpu" and described["devices"] == ["cpu"]
    assert described["attn_implementation"] == "sdpa"
    assert described["chat_template"] == "auto" and backend.chat_template() == backend.tokenizer.chat_template


def test_placement_plan() -> None:
    # pure decision from the device option, the weight size and each GPU's memory
    assert plan_placement(None, 10 * GIB, []) == Placement("cpu", ("cpu",))
    assert plan_placement("cpu", 10 * GIB, [80 * GIB]) == Placement("cpu", ("cpu",))
    assert plan_placement("cuda:1", 10 * GIB, [80 * GIB] * 2) == Placement("single", ("cuda:1",))
    assert plan_placement("auto", 15 * GIB, [80 * GIB]) == Placement("single", ("cuda:0",))
    # fits one GPU: one copy on the first (a copy per GPU is --ray local --replicas 4)
    assert plan_placement(None, 15 * GIB, [80 * GIB] * 4) == Placement("single", ("cuda:0",))
    assert plan_placement(None, 140 * GIB, [80 * GIB] * 2) == Placement("sharded", ("cuda:0", "cuda:1"))
    assert plan_placement(None, 70 * GIB, [80 * GIB, 40 * GIB]) == Placement("sharded", ("cuda:0", "cuda:1"))
    assert plan_placement("cuda", None, [80 * GIB] * 2).kind == "single"  # unknown size: assume it fits
    with pytest.raises(Exception, match="no CUDA GPU"):
        plan_placement("cuda", 1, [])


def test_dtype_and_attention_defaults() -> None:
    cpu = Placement("cpu", ("cpu",))
    assert resolve_dtype("auto", cpu) == "float32"
    assert resolve_dtype("bfloat16", cpu) == "bfloat16"
    with pytest.raises(Exception, match="unknown dtype"):
        resolve_dtype("int3", cpu)
    assert choose_attention(None, None, "float32") is None  # transformers decides
    assert choose_attention("eager", None, "float32") == "eager"
