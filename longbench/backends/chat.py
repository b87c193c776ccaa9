"""The chat format of the in-process engines (transformers, vLLM), composed once for both.

For the reference's eight models it is the reference's own hand-written format
(:mod:`longbench.reference_models`); for other models the chat template the ``chat_template`` setting selects
("auto", "tokenizer", "none" or a Jinja file), rendered with ``chat_template_kwargs`` (switches such as
Qwen3's ``enable_thinking``). :func:`load_chat_model` resolves the model to load, its tokenizer and its chat
format together, so both engines build the same model input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longbench.errors import LongBenchError


@dataclass(frozen=True)
class ChatFormat:
    """How chat tasks' prompts are wrapped: the reference's format, a chat template, or nothing (raw)."""

    option: str  # the chat_template setting as given
    template: str | None  # the Jinja template text in use (None: raw prompts, or the reference's format)
    reference_format: str | None = None  # the reference's format family for one of its eight models
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wraps(self) -> bool:
        """Whether chat prompts are wrapped at all."""
        return self.reference_format is not None or self.template is not None

    def template_id(self) -> str | None:
        """The text hashed into run.json: the template, or a name for the reference's own format."""
        if self.reference_format is not None:
            return f"longbench reference chat format: {self.reference_format}"
        return self.template

    def text(self, prompt: str, tokenizer: Any) -> str:
        """``prompt`` wrapped as the model sees it (unchanged when nothing wraps it)."""
        if self.reference_format is not None:
            from longbench.reference_models import chat_text

            return chat_text(self.reference_format, prompt, tokenizer)
        from longbench.prompts import wrap_chat

        return wrap_chat(prompt, tokenizer, self.template, self.template_kwargs)

    def input_ids(self, prompt: str, tokenizer: Any) -> list[int]:
        """The token ids of the wrapped ``prompt``, encoded as the reference encodes model inputs."""
        if self.reference_format is not None:
            from longbench.reference_models import chat_ids

            return chat_ids(self.reference_format, prompt, tokenizer)
        from longbench.prompts import encode_model_input

        return encode_model_input(
            self.text(prompt, tokenizer), tokenizer, chat_wrapped=self.template is not None
        )

    def describe(self) -> dict[str, Any]:
        """The chat settings recorded in run.json."""
        return {
            "chat_template": self.option,
            "reference_chat_format": self.reference_format,
            "chat_template_kwargs": dict(self.template_kwargs),
        }


@dataclass(frozen=True)
class ChatModel:
    """A model resolved for loading: the id or path to load, its tokenizer and its chat format."""

    load: str
    tokenizer: Any
    chat: ChatFormat


def load_tokenizer(model: str, revision: str | None, trust_remote_code: bool) -> Any:
    """The tokenizer of ``model`` (a hub id or a local directory), or one line saying why not."""
    from transformers import AutoTokenizer

    from longbench.hub_access import from_hub

    local = Path(model).expanduser()
    if (local.is_absolute() or model.startswith((".", "~"))) and not local.is_dir():
        raise LongBenchError(f"model directory {model!r} does not exist")
    options = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        return from_hub(AutoTokenizer.from_pretrained, model, "tokenizer", **options)
    except OSError as error:
        raise LongBenchError(f"cannot load model {model!r}: {str(error).splitlines()[0]}") from None


def load_chat_model(
    model: str,
    *,
    chat_template: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> ChatModel:
    """``model`` resolved (a reference model name loads from its hub id), its tokenizer loaded and its chat
    format chosen: the reference's own for its models under "auto", else the selected template."""
    from longbench.prompts import chat_template_from_option
    from longbench.reference_models import resolve_reference_model

    kwargs = check_template_kwargs(template_kwargs)
    resolved = resolve_reference_model(model, chat_template, trust_remote_code)
    tokenizer = load_tokenizer(resolved.load, revision, trust_remote_code)
    template = (
        None if resolved.chat_format is not None else chat_template_from_option(chat_template, tokenizer)
    )
    return ChatModel(
        resolved.load, tokenizer, ChatFormat(chat_template, template, resolved.chat_format, kwargs)
    )


def check_template_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``chat_template_kwargs`` as a dict with string keys; one line naming the setting otherwise."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(key, str) for key in kwargs):
        raise LongBenchError(f"chat_template_kwargs must be a JSON object (names to values), got {kwargs!r}")
    return dict(kwargs)
