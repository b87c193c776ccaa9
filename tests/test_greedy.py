"""Greedy decoding cannot be changed by a model's generation_config.json (transformers backend, tiny model).

A copy of the real tiny model whose generation_config.json asks for sampling at a high temperature, top-k/p,
a strong repetition penalty and a no-repeat n-gram rule must give exactly the predictions of the plain model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from longbench.backends.base import GenerationRequest
from longbench.backends.hf import TransformersBackend
from longbench.loading import iter_records
from longbench.prompts import build_prompt
from longbench.tasks import get_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NOISY = {
    "do_sample": True,
    "temperature": 5.0,
    "top_k": 3,
    "top_p": 0.5,
    "repetition_penalty": 3.0,
    "no_repeat_ngram_size": 2,
}


def _requests(backend: TransformersBackend, temperature: float = 0.0) -> list[GenerationRequest]:
    out = []
    for task_name in ("qasper", "samsum"):
        task = get_task(task_name)
        for record in list(iter_records(task_name, "sample"))[:2]:
            prompt = build_prompt(task, record, backend.tokenizer, 200)
            out.append(
                GenerationRequest(
                    record["_id"], task_name, prompt, task.chat, 12, task.stop_at_newline, temperature
                )
            )
    return out


def _texts(backend: TransformersBackend, requests: list[GenerationRequest]) -> dict[str, str | None]:
    return {result.request.id: result.text for result in backend.generate(requests)}


@pytest.fixture(scope="module")
def noisy_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("noisy") / "noisy-model"
    shutil.copytree(tiny_model, target)
    path = target / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **NOISY}))
    return target


def test_model_generation_config_cannot_change_greedy(tiny_model: Path, noisy_model: Path) -> None:
    plain = TransformersBackend(str(tiny_model), batch_size=2)
    noisy = TransformersBackend(str(noisy_model), batch_size=2)
    assert noisy.model.generation_config.do_sample is False  # neutralised on load
    expected = _texts(plain, _requests(plain))
    assert _texts(noisy, _requests(noisy)) == expected
    assert _texts(noisy, _requests(noisy)) == expected  # and again: no sampling, so no run-to-run change


def test_only_an_explicit_temperature_samples(tiny_model: Path) -> None:
    import torch

    backend = TransformersBackend(str(tiny_model), batch_size=2)
    greedy = _texts(backend, _requests(backend))
    torch.manual_seed(0)
    hot = _texts(backend, _requests(backend, temperature=50.0))
    assert hot != greedy  # a request's temperature > 0 samples (random weights at T=50: nearly uniform)
