"""The vLLM backend.

vllm is not installed here and needs a GPU, so the engine tests skip unless both are present; on such a machine
they check that vLLM's greedy answers on the tiny random-weight model equal the transformers backend's, token
for token. The parts that do not need vllm (sampling settings, the samsum stop token, the kept stop token,
the clear error without vllm) always run, on the real tiny tokenizer.
"""

from __future__ import annotations

import importlib.util

import pytest

from longbench.backends.base import GenerationRequest
from longbench.backends.vllm_engine import generated_ids, newline_token_id, sampling_settings
from longbench.errors import LongBenchError

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """The tiny model, built offline into a private cache (the environment is restored afterwards)."""
    import os

    saved = dict(os.environ)
    os.environ["LONGBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    from longbench.tinymodel import tiny_model_path

    try:
        yield tiny_model_path()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def request(
    task: str, prompt: str, *, chat: bool, max_new_tokens: int, stop: bool = False
) -> GenerationRequest:
    return GenerationRequest(
        id=f"{task}-{len(prompt)}",
        task=task,
        prompt=prompt,
        chat=chat,
        max_new_tokens=max_new_tokens,
        stop_at_newline=stop,
    )


def test_sampling_settings_are_greedy_with_the_task_budget():
    plain = sampling_settings(request("qasper", "q", chat=True, max_new_tokens=128), 13, 1.0)
    assert plain == {
        "n": 1,
        "temperature": 0.0,
        "max_tokens": 128,
        "repetition_penalty": 1.0,
        "skip_special_tokens": True,
    }
    samsum = sampling_settings(request("samsum", "q", chat=False, max_new_tokens=128, stop=True), 13, 1.05)
    assert samsum["stop_token_ids"] == [13] and samsum["min_tokens"] == 1
    assert samsum["repetition_penalty"] == 1.05 and "stop" not in samsum


def test_newline_token_is_the_references(tiny_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    newline = newline_token_id(tokenizer)
    assert tokenizer.decode([newline]) == "\n"
    assert newline == tokenizer("\n", add_special_tokens=False).input_ids[-1]


def test_stop_token_is_kept_once():
    assert generated_ids([5, 6, 13], 13) == [5, 6, 13]
    assert generated_ids([5, 6], 13) == [5, 6, 13]
    assert generated_ids([5, 6], None) == [5, 6]
    assert generated_ids([5, 6], "\n") == [5, 6]  # a stop string is not a token id


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_without_vllm_the_error_says_what_to_do(tiny_path):
    from longbench.backends import create_backend

    with pytest.raises(LongBenchError, match=r"longbench\[vllm\].*--backend openai"):
        create_backend("vllm", model=str(tiny_path))


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_cli_without_vllm_fails_with_one_line(tiny_path, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LONGBENCH_CACHE": str(tiny_path.parent), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "longbench", "predict", "--backend", "vllm", "--model", "builtin:tiny"]
    command += ["--data", "sample", "--tasks", "trec", "--out", str(tmp_path), "--tensor-parallel-size", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("longbench: error: --backend vllm needs vllm")
    assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not installed (optional extra longbench[vllm])")
@pytest.mark.skipif(HAVE_VLLM and not _cuda(), reason="vllm needs a CUDA GPU")
def test_vllm_matches_transformers_on_the_tiny_model(tiny_path):
    from longbench.backends import create_backend

    requests = [
        request(
            "qasper", "Read this and answer: what colour is the sky? " * 20, chat=True, max_new_tokens=24
        ),
        request("trec", "Question: what is a dog?\nType:", chat=False, max_new_tokens=16),
        request("samsum", "Dialogue: A: hi\nB: hello\nSummary:", chat=False, max_new_tokens=32, stop=True),
    ]
    reference = create_backend("transformers", model=str(tiny_path), dtype="float32", device="cuda:0")
    engine = create_backend("vllm", model=str(tiny_path), dtype="float32", max_model_len=4096)
    try:
        expected = {r.request.id: r.text for r in reference.generate(requests)}
        got = {r.request.id: r.text for r in engine.generate(requests)}
        for item in requests:
            assert engine.job(item).prompt_ids == reference.job(item).ids  # identical model input
    finally:
        reference.close()
        engine.close()
    assert got == expected
