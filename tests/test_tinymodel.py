"""The built-in tiny model: built once, offline and deterministically, then reused; loads and generates."""

from __future__ import annotations

from pathlib import Path

import pytest

import longbench.tinymodel as tinymodel
from longbench.tinymodel import TINY_MODEL, resolve_model, tiny_model_path

TEXTS = [
    "The quick brown fox, 1887.\n",
    "青石镇图书馆每晚开放到十点。",
    "def f(x):\n\treturn {'a': x}  # ok\r\n",
]


@pytest.fixture(scope="module")
def loaded(tiny_model: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model), AutoModelForCausalLM.from_pretrained(tiny_model)


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def test_it_is_reused_from_the_cache_without_rebuilding(tiny_model, monkeypatch):
    weights = tiny_model / "model.safetensors"
    before = weights.stat().st_mtime_ns

    def fail(target: Path) -> None:
        raise AssertionError(f"rebuilt {target}")

    monkeypatch.setattr(tinymodel, "_create", fail)
    assert tiny_model_path(tiny_model.parent) == tiny_model
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    assert tiny_model_path() == tiny_model
    assert resolve_model(TINY_MODEL) == str(tiny_model)
    assert resolve_model("org/other-model") == "org/other-model"
    assert weights.stat().st_mtime_ns == before


def test_default_cache_is_under_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("LONGBENCH_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tinymodel.cache_root() == tmp_path / ".cache" / "longbench"


def test_rebuilding_gives_identical_weights_and_replaces_a_broken_directory(tiny_model, tmp_path):
    import torch

    broken = tmp_path / tinymodel.TINY_DIR_NAME
    broken.mkdir()
    (broken / "config.json").write_text("{", encoding="utf-8")  # a half-written directory: no marker
    rng_before = torch.random.get_rng_state()
    path = tiny_model_path(tmp_path)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is left alone
    assert path == broken and (path / tinymodel.MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [tinymodel.TINY_DIR_NAME]  # no staging left
    ours, reference = _tensors(path), _tensors(tiny_model)
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[name], reference[name]) for name in ours)
    assert (path / "tokenizer.json").read_bytes() == (tiny_model / "tokenizer.json").read_bytes()


def test_tokenizer_is_byte_level_with_bos_and_chat_template(loaded):
    tok, _ = loaded
    for text in TEXTS:
        ids = tok(text).input_ids
        assert ids[0] == tok.bos_token_id and len(ids) == 1 + len(text.encode("utf-8"))
        assert tok.decode(ids, skip_special_tokens=True) == text
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered.startswith(tok.bos_token) and rendered.endswith("<|assistant|>\n") and "hi" in rendered
    assert len(tok.encode("\n", add_special_tokens=False)) == 1  # samsum's newline stop token


def test_model_is_small_with_a_4096_token_window(loaded):
    tok, model = loaded
    assert model.config.max_position_embeddings == 4096
    assert model.config.vocab_size >= len(tok)
    assert sum(p.numel() for p in model.parameters()) < 500_000


def test_it_generates_deterministic_printable_text(loaded):
    import torch

    tok, model = loaded
    ids = torch.tensor([tok(TEXTS[0] * 20).input_ids])
    runs = [model.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1] :] for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert 1 <= len(runs[0]) <= 12
    text = tok.decode(runs[0], skip_special_tokens=True)
    assert all(ch == "\n" or 32 <= ord(ch) < 127 for ch in text)
