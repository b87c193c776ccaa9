"""Model inputs built exactly as the reference ``pred.py``: fill the template, truncate the middle, wrap, encode.

The reference (THUDM/LongBench ``pred.py``) fills the task template with the record, tokenizes the result with
the tokenizer's default special tokens, and when it has more than ``max_length`` tokens keeps the first and
the last ``max_length // 2`` tokens, decoding each half with special tokens skipped. All tasks except the six
completion-style ones are then wrapped in the model's chat format: for the reference's own eight models its
hand-written formats (:mod:`longbench.reference_models`), for other models the tokenizer's own chat template
(or one given by the user).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longbench.errors import InputError, LongBenchError, SettingError
from longbench.spec_data import data_json

if TYPE_CHECKING:
    from longbench.schema import Record
    from longbench.tasks import Task
    from longbench.tokenization import TokenizerLike

logger = logging.getLogger(__name__)

CHAT_TEMPLATE_CHOICES: tuple[str, ...] = ("none", "auto")  # or a path to a Jinja template file


def fill_prompt(task: Task, record: Record) -> str:
    """The task's template filled with the record's fields (``str.format``, as the reference does)."""
    return task.prompt.format(**record)


def truncate_middle(
    prompt: str, tokenizer: TokenizerLike, max_length: int, *, add_special_tokens: bool = True
) -> str:
    """``prompt`` cut to about ``max_length`` tokens by dropping its middle, exactly as the reference does.

    The count includes the tokenizer's default special tokens (a BOS token, say). A longer prompt becomes
    the decoded first ``max_length // 2`` tokens followed by the decoded last ``max_length // 2`` tokens,
    each half decoded with special tokens skipped. As in the reference, a ``max_length`` below 2 keeps the
    whole prompt (``ids[-0:]`` is every token). ``add_special_tokens=False`` counts without them, as the
    reference does for ChatGLM3.
    """
    ids = list(
        tokenizer(prompt, truncation=False, verbose=False, add_special_tokens=add_special_tokens).input_ids
    )  # no "longer than the maximum" warning: we cut next
    if len(ids) <= max_length:
        return prompt
    half = max_length // 2
    head = tokenizer.decode(ids[:half], skip_special_tokens=True)
    tail = tokenizer.decode(ids[-half:], skip_special_tokens=True)
    return head + tail


def build_prompt(task: Task, record: Record, tokenizer: TokenizerLike, max_length: int) -> str:
    """The filled and middle-truncated prompt of ``record`` (not chat-wrapped): what the runner sends."""
    return truncate_middle(fill_prompt(task, record), tokenizer, max_length)


def wrap_chat(
    prompt: str, tokenizer: Any, chat_template: str | None, template_kwargs: Mapping[str, Any] | None = None
) -> str:
    """``prompt`` as a single user turn rendered with ``chat_template``, ready for the assistant's reply.

    ``chat_template`` is the template text as returned by :func:`chat_template_from_option`; None means
    no chat format, and the prompt is returned unchanged. ``template_kwargs`` are extra variables for the
    template (a model's switches such as Qwen3's ``enable_thinking``).
    """
    if chat_template is None:
        return prompt
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        chat_template=chat_template,
        **dict(template_kwargs or {}),
    )


def render_prompt(
    prompt: str,
    chat: bool,
    tokenizer: Any,
    chat_template: str | None,
    template_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The text the model sees: ``prompt`` chat-wrapped for chat tasks, raw for the six completion tasks."""
    return wrap_chat(prompt, tokenizer, chat_template, template_kwargs) if chat else prompt


def encode_model_input(text: str, tokenizer: TokenizerLike, chat_wrapped: bool) -> list[int]:
    """The token ids the model receives for ``text``.

    Like the reference, the text is tokenized with the tokenizer's default special tokens, except that a
    chat-wrapped text which already begins with the BOS token (many templates write it) gets no second one.
    """
    bos = getattr(tokenizer, "bos_token", None)
    has_bos = chat_wrapped and isinstance(bos, str) and bos != "" and text.startswith(bos)
    return list(tokenizer(text, truncation=False, add_special_tokens=not has_bos).input_ids)


def _tokenizer_template(tokenizer: Any) -> str | None:
    """The tokenizer's own chat template text, or None when it has none."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the one called "default" is the chat one
        template = template.get("default")
    return template if isinstance(template, str) and template.strip() else None


def _read_template_file(path: Path) -> str:
    """A Jinja chat template read from ``path``; syntax errors are reported with their line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read chat template: {error}") from None
    if not text.strip():
        raise InputError(path, "chat template file is empty")
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as error:
        raise InputError(path, f"chat template is not valid Jinja: {error.message}", error.lineno) from None
    return text


def chat_template_from_option(option: str, tokenizer: Any) -> str | None:
    """The chat template selected by ``--chat-template``: "none", "auto", "tokenizer" or a path to a Jinja file.

    "none" gives None (prompts stay raw, for base models); "auto" and "tokenizer" give the tokenizer's own
    template, or None with a logged notice when it has none ("tokenizer" also for the reference's models,
    whose "auto" is the reference's own format); anything else is read as a template file.
    """
    if option == "none":
        return None
    if option in ("auto", "tokenizer"):
        template = _tokenizer_template(tokenizer)
        if template is None:
            logger.warning(
                "longbench: the tokenizer has no chat template; chat tasks get the raw prompt "
                "(pass --chat-template PATH to use one)"
            )
        return template
    return _read_template_file(Path(option))


def _known_max_length(model: str) -> int | None:
    """The reference's window for ``model`` (a name from model2maxlen.json, or a path/id ending in it)."""
    windows: dict[str, int] = data_json("model2maxlen.json")
    name = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    if name in windows:
        return windows[name]
    for short, hub_id in data_json("model2path.json").items():  # the reference's own hub ids
        if model == hub_id and short in windows:
            return windows[short]
    return None


def resolve_max_length(
    model: str, task: Task, *, override: int | None, context_window: int | None
) -> tuple[int, str | None]:
    """The prompt budget in tokens for ``model`` on ``task``, and a notice when it had to be derived.

    In order: ``override`` (--max-length); the reference's value for a model it evaluated, found by the
    basename of ``model`` (or its hub id in model2path.json); else the model's ``context_window`` less the
    task's ``max_new_tokens``, with a notice saying so.
    """
    if override is not None:
        if override < 1:
            raise SettingError(
                "{max_length} must be a positive number of tokens, got {value}", value=override
            )
        return override, None
    known = _known_max_length(model)
    if known is not None:
        return known, None
    if context_window is None:
        raise LongBenchError(
            f"no max length known for model {model!r} and its context window is unknown; pass --max-length"
        )
    derived = context_window - task.max_new_tokens
    if derived < 1:
        raise LongBenchError(
            f"context window {context_window} of {model!r} leaves no room for a prompt on {task.name} "
            f"({task.max_new_tokens} new tokens); pass --max-length"
        )
    notice = (
        f"max length for {model!r} on {task.name}: {derived} tokens "
        f"(context window {context_window} - {task.max_new_tokens} new tokens); pass --max-length to change it"
    )
    return derived, notice
