"""A reasoning model's output split into its thinking and its answer.

Models such as Qwen3 or DeepSeek-R1 write ``<think>...</think>`` before they answer, or only ``...</think>``
when the chat template wrote the opening tag itself. The answer is what follows the thinking, with leading
whitespace removed; it is what gets scored. Thinking that never closes (the token budget ran out) leaves an
empty answer. An output without the tags is returned untouched, so non-reasoning models' predictions are
exactly what they generated.
"""

from __future__ import annotations

from dataclasses import dataclass

from longbench.errors import SettingError

ThinkTags = tuple[str, str]
DEFAULT_THINK_TAGS: ThinkTags = ("<think>", "</think>")


@dataclass(frozen=True)
class SplitOutput:
    """An output as answer and thinking; ``thinking`` is None when there was none."""

    answer: str
    thinking: str | None
    unfinished: bool = False  # the thinking never closed: the answer is empty


def split_thinking(
    text: str, tags: ThinkTags | None = DEFAULT_THINK_TAGS, *, opened: bool = False
) -> SplitOutput:
    """``text`` split at its thinking delimited by ``tags`` (None: ``text`` untouched).

    A leading ``OPEN...CLOSE`` block is removed; so is everything up to the first ``CLOSE`` (the template
    opened the tag); an ``OPEN`` that never closes, or no ``CLOSE`` at all when ``opened`` says the prompt
    ended with ``OPEN``, is unfinished thinking with an empty answer.
    """
    if tags is None:
        return SplitOutput(text, None)
    open_tag, close_tag = tags
    body = text.lstrip()
    if body.startswith(open_tag):
        body = body[len(open_tag) :]
    elif close_tag not in text and not opened:
        return SplitOutput(text, None)
    else:
        body = text
    thinking, closed, answer = body.partition(close_tag)
    if not closed:
        return SplitOutput("", thinking.strip(), unfinished=True)
    return SplitOutput(answer.lstrip(), _kept(thinking))


def _kept(thinking: str) -> str | None:
    """The thinking stripped of surrounding whitespace; None when nothing is left."""
    stripped = thinking.strip()
    return stripped or None


def parse_think_tags(option: str) -> ThinkTags | None:
    """The ``think_tags`` setting from its text form: ``OPEN,CLOSE``, or ``none`` (outputs kept untouched).

    Raises ValueError with a one-line reason when the text is neither.
    """
    if option.strip().lower() == "none":
        return None
    open_tag, comma, close_tag = option.partition(",")
    open_tag, close_tag = open_tag.strip(), close_tag.strip()
    if not comma or not open_tag or not close_tag or "," in close_tag:
        raise ValueError(f"expected OPEN,CLOSE (e.g. <think>,</think>) or none, got {option!r}")
    return open_tag, close_tag


def check_think_tags(tags: object) -> ThinkTags | None:
    """``tags`` as a (open, close) pair of non-empty strings, or None; a one-line :class:`SettingError` for
    anything else."""
    if tags is None:
        return None
    if (
        isinstance(tags, (tuple, list))
        and len(tags) == 2
        and all(isinstance(tag, str) and tag for tag in tags)
    ):
        return str(tags[0]), str(tags[1])
    raise SettingError("{think_tags} must be a pair of non-empty strings or None, got {value!r}", value=tags)
