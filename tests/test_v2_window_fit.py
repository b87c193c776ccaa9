"""LongBench v2 inputs fit a model whose window is below the reference's 120,000 tokens: the budget is the
window less the call's new tokens, the thinking budget and the chat template's own tokens (counted), and it
is used (inputs end near the limit). The tiny model's window is 4,096 tokens; its tokenizer is real."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from longbench.benchmarks import get_benchmark
from longbench.prompts import encode_model_input
from longbench.runner import predict
from longbench.v2.prompts import V2Mode

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def long_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled v2 sample with every context made far longer than the tiny model's window."""
    bundled = resources.files("longbench.data").joinpath("v2", "sample.jsonl").read_text(encoding="utf-8")
    rows = []
    for line in bundled.splitlines()[:3]:
        record = json.loads(line)
        record["context"] = " ".join([record["context"]] * 60)
        rows.append(json.dumps(record, ensure_ascii=False) + "\n")
    path = tmp_path_factory.mktemp("v2long") / "v2.jsonl"
    path.write_text("".join(rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("cot", "thinking"), [(False, 0), (True, 0), (False, 300)], ids=["plain", "cot", "think"]
)
def test_every_input_and_its_new_tokens_fit_the_window(
    long_data: Path, tiny_model: Path, tmp_path: Path, cot: bool, thinking: int
) -> None:
    from longbench.backends.hf import TransformersBackend

    backend = TransformersBackend(str(tiny_model), chat_template="tokenizer")
    window = backend.context_window()
    assert window is not None and window < 120_000
    mode = V2Mode(cot=cot)
    notices: list[str] = []
    dump = tmp_path / "prompts.jsonl"
    spec = replace(get_benchmark("v2").runs, mode=mode)
    predict(
        backend,
        None,
        str(long_data),
        tmp_path,
        benchmark=spec,
        max_length=None,
        dump_prompts=dump,
        thinking_budget=thinking,
        notify=notices.append,
    )
    new_tokens = mode.first_max_tokens + thinking
    lines = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3
    for line in lines:
        used = len(encode_model_input(line["prompt"], backend.tokenizer, chat_wrapped=True))
        assert used + new_tokens <= window  # fits, the new tokens included
        assert used + new_tokens >= window - 8  # and the budget is used, not guessed low
    assert any("chat template tokens" in notice for notice in notices)
