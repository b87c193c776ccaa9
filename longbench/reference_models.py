"""The reference's eight models: their hub ids, windows, hand-written chat formats and output clean-up.

The reference ``pred.py`` never used tokenizers' chat templates. For the models it evaluated
(``data/model2path.json``) it chose a format by a substring of the model name and wrapped the truncated
prompt in it; after decoding it cleaned xgen's and internlm's outputs. The published rows were made that
way, so ``--chat-template auto`` means these formats for these models (SPEC.md, "The reference's own chat
formats and output clean-up"). A model is recognised by its reference name (``llama2-7b-chat-4k``), by a
local directory whose last path component is that name, or by its hub id (``meta-llama/Llama-2-7b-chat-hf``).

ChatGLM2 and ChatGLM3 are wrapped by their tokenizer's own methods (``build_prompt`` and
``build_chat_input``), which exist only in the model repository's code, so they need ``--trust-remote-code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longbench.errors import LongBenchError
from longbench.spec_data import data_json

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
XGEN_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


@dataclass(frozen=True)
class ReferenceModel:
    """One model of the reference: its name there, hub id, prompt budget and chat format family."""

    name: str  # as in model2path.json, e.g. "llama2-7b-chat-4k"
    hub_id: str
    max_length: int
    family: str  # "chatglm3", "chatglm", "vicuna", "llama2", "xgen", "internlm"

    @property
    def needs_remote_code(self) -> bool:
        """True for ChatGLM2/3, whose chat format lives in the tokenizer's remote code."""
        return self.family in ("chatglm", "chatglm3")


def format_family(name: str) -> str | None:
    """The reference's chat format for a model called ``name``, chosen by substring in the reference's order."""
    for needle, family in (
        ("chatglm3", "chatglm3"),
        ("chatglm", "chatglm"),
        ("longchat", "vicuna"),
        ("vicuna", "vicuna"),
        ("llama2", "llama2"),
        ("xgen", "xgen"),
        ("internlm", "internlm"),
    ):
        if needle in name:
            return family
    return None


def reference_models() -> list[ReferenceModel]:
    """The eight models of ``model2path.json`` with their windows from ``model2maxlen.json``."""
    paths: dict[str, str] = data_json("model2path.json")
    windows: dict[str, int] = data_json("model2maxlen.json")
    return [
        ReferenceModel(name, hub_id, windows[name], format_family(name) or "")
        for name, hub_id in paths.items()
    ]


def find_reference_model(model: str) -> ReferenceModel | None:
    """The reference model ``model`` names: its reference name, a path ending in that name, or its hub id."""
    last = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    for known in reference_models():
        if model in (known.name, known.hub_id) or last == known.name:
            return known
    return None


def chat_text(family: str, prompt: str, tokenizer: Any) -> str:
    """``prompt`` in the reference's chat format ``family`` as text (ChatGLM3's ids are decoded)."""
    if family == "chatglm3":
        return tokenizer.decode(chat_ids(family, prompt, tokenizer))
    if family == "chatglm":
        return _remote_method(tokenizer, "build_prompt")(prompt)
    if family == "vicuna":
        return f"{VICUNA_SYSTEM} USER: {prompt} ASSISTANT:"
    if family == "llama2":
        return f"[INST]{prompt}[/INST]"
    if family == "xgen":
        return f"{XGEN_SYSTEM}\n\n ### Human: {prompt}\n###"
    if family == "internlm":
        return f"<|User|>:{prompt}<eoh>\n<|Bot|>:"
    raise LongBenchError(f"unknown reference chat format {family!r}")


def chat_ids(family: str, prompt: str, tokenizer: Any) -> list[int]:
    """The model input ids of ``prompt`` in format ``family``: ChatGLM3's ``build_chat_input``, or the
    formatted text tokenized with the tokenizer's default special tokens (as the reference does)."""
    if family == "chatglm3":
        built = _remote_method(tokenizer, "build_chat_input")(prompt)
        ids = built["input_ids"] if isinstance(built, dict) or hasattr(built, "keys") else built.input_ids
        first = ids[0] if len(ids) and not isinstance(ids[0], int) else ids  # a batch of one, or flat ids
        return [int(token) for token in first]
    return list(tokenizer(chat_text(family, prompt, tokenizer), truncation=False).input_ids)


def _remote_method(tokenizer: Any, method: str) -> Any:
    found = getattr(tokenizer, method, None)
    if found is None:
        raise LongBenchError(
            f"the reference's ChatGLM format uses the tokenizer's own {method}(), which comes with the model's "
            "code: pass --trust-remote-code"
        )
    return found


def clean_output(family: str | None, text: str) -> str:
    """The reference's post-processing of a decoded answer: xgen drops every "Assistant:", internlm keeps
    what precedes the first "<eoa>"; other formats are left as they are."""
    if family == "xgen":
        return text.strip().replace("Assistant:", "")
    if family == "internlm":
        return text.split("<eoa>")[0]
    return text


def truncation_special_tokens(family: str | None) -> bool:
    """Whether the truncation count includes the tokenizer's special tokens: not for ChatGLM3 (as the reference)."""
    return family != "chatglm3"


@dataclass(frozen=True)
class ResolvedModel:
    """What a backend loads for ``--model``: the id or path to load and the reference format to use."""

    load: str  # a hub id or a local path
    reference: ReferenceModel | None
    chat_format: str | None  # the reference's format family when --chat-template is auto, else None


def resolve_reference_model(model: str, chat_template: str, trust_remote_code: bool) -> ResolvedModel:
    """``--model`` resolved: a reference name that is not a local directory loads from its hub id; for the
    reference's models ``--chat-template auto`` selects the reference's own format. ChatGLM without
    ``--trust-remote-code`` is refused with one line (its tokenizer and format are the repository's code)."""
    from pathlib import Path

    known = find_reference_model(model)
    if known is None:
        return ResolvedModel(model, None, None)
    if known.needs_remote_code and not trust_remote_code:
        raise LongBenchError(
            f"{model}: the reference's {known.name} runs its tokenizer's own code (build_prompt / "
            "build_chat_input); pass --trust-remote-code to allow it"
        )
    load = known.hub_id if model == known.name and not Path(model).is_dir() else model
    return ResolvedModel(load, known, known.family if chat_template == "auto" else None)
