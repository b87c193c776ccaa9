"""The interface every inference backend implements: requests in, results out (in completion order)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from longbench.thinking import DEFAULT_THINK_TAGS, ThinkTags, split_thinking
from longbench.tokenization import TokenizerLike

if TYPE_CHECKING:
    from longbench.backends.chat import ChatFormat


@dataclass(frozen=True)
class GenerationRequest:
    """One sample to generate for: the final (filled, middle-truncated) prompt, before any chat wrapping."""

    id: str  # the sample's _id
    task: str
    prompt: str  # filled and middle-truncated prompt, NOT chat-wrapped
    chat: bool  # wrap in the model's chat format (False for the 6 completion-style tasks)
    max_new_tokens: int
    stop_at_newline: bool  # samsum: also stop at a newline token, and generate at least one token
    temperature: float = (
        0.0  # 0.0: greedy (LongBench v1's reference); a positive value is the only way to sample
    )
    seed: int | None = (
        None  # this call's own sampling seed (--seed), derived from the run's seed, _id and call
    )
    call: int = 0  # which call of its sample this is (0, or 1 for the answer after v2's chain of thought)


@dataclass(frozen=True)
class GenerationResult:
    """The outcome of one request: ``text`` on success, or ``error`` (and ``text`` None) on failure.

    ``text`` is the answer alone: a reasoning model's thinking is removed from it and kept in ``thinking``.
    """

    request: GenerationRequest
    text: str | None  # None when it failed
    error: str | None  # reason when it failed
    prompt_tokens: int | None = None
    generated_tokens: int | None = None  # completion tokens, thinking included
    thinking: str | None = None  # the reasoning kept apart from ``text`` (None when there was none)
    finish_reason: str | None = None  # "stop", "length", ... as the engine or server reports it
    thinking_tokens: int | None = None  # where the engine or server reports them

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @classmethod
    def failure(cls, request: GenerationRequest, error: str) -> GenerationResult:
        """A failed result; the runner logs it to errors.jsonl and a later run retries it."""
        return cls(request=request, text=None, error=error)


class Backend(ABC):
    """An inference engine. Subclasses set ``name`` and ``tokenizer`` and implement :meth:`generate`.

    In-process engines (transformers, vLLM) also set ``chat_format``: how chat tasks' prompts are wrapped.
    Every backend splits a reasoning model's thinking from its answer with ``think_tags`` (:meth:`result`).
    """

    name: str = "backend"
    tokenizer: TokenizerLike | None = None  # used by the runner for truncation (and --dump-prompts)
    chat_format: ChatFormat | None = None  # None: prompts are sent as they are (or a server wraps them)
    think_tags: ThinkTags | None = DEFAULT_THINK_TAGS  # None: outputs are kept untouched
    _opens_thinking: bool | None = None

    @property
    def reference_format(self) -> str | None:
        """The reference's own chat format family for one of its eight models (longbench.reference_models),
        used instead of a chat template; None for other models."""
        return self.chat_format.reference_format if self.chat_format is not None else None

    @property
    def truncation_special_tokens(self) -> bool:
        """Whether the truncation count includes the tokenizer's default special tokens (not for ChatGLM3)."""
        from longbench.reference_models import truncation_special_tokens

        return truncation_special_tokens(self.reference_format)

    def context_window(self) -> int | None:
        """The model's context window in tokens, when known (used when no max length is known by name)."""
        return None

    def chat_template(self) -> str | None:
        """The chat template text in use (hashed into run.json), or None when prompts are sent raw."""
        return self.chat_format.template_id() if self.chat_format is not None else None

    def chat_text(self, prompt: str) -> str | None:
        """``prompt`` wrapped in the chat format the model sees, or None when this side does not know it (no
        chat format, or a server's own template)."""
        if self.chat_format is None or not self.chat_format.wraps:
            return None
        return self.chat_format.text(prompt, self.tokenizer)

    def render(self, request: GenerationRequest) -> str:
        """The exact text the model sees for ``request`` (written by ``--dump-prompts``): the prompt, wrapped in
        the chat format for chat tasks when there is one (or the reference's own format for its models)."""
        wrapped = self.chat_text(request.prompt) if request.chat else None
        return request.prompt if wrapped is None else wrapped

    def input_ids(self, request: GenerationRequest) -> list[int]:
        """The token ids the model receives for ``request`` (the text of :meth:`render`, encoded as the
        reference encodes it; ChatGLM3's chat input comes from its tokenizer as ids)."""
        from longbench.prompts import encode_model_input

        if request.chat and self.chat_format is not None and self.chat_format.wraps:
            return self.chat_format.input_ids(request.prompt, self.tokenizer)
        return encode_model_input(request.prompt, self.tokenizer, chat_wrapped=False)

    def chat_template_tokens(self) -> int | None:
        """Tokens the chat format adds to a chat prompt's own count: an empty prompt rendered and encoded, less
        the special tokens the prompt's count already holds; None when not known here (no tokenizer)."""
        if self.tokenizer is None:
            return None
        bare = len(self.tokenizer("", truncation=False).input_ids)
        empty = GenerationRequest(
            id="", task="", prompt="", chat=True, max_new_tokens=0, stop_at_newline=False
        )
        return max(0, len(self.input_ids(empty)) - bare)

    def opens_thinking(self) -> bool:
        """Whether the chat format ends the prompt with the opening think tag (the model then writes only the
        thinking and ``CLOSE``); decided once, on an empty prompt."""
        if self._opens_thinking is None:
            text = self.chat_text("") if self.think_tags is not None else None
            self._opens_thinking = text is not None and text.rstrip().endswith(self.think_tags[0])  # type: ignore[index]
        return self._opens_thinking

    def clean_output(self, text: str) -> str:
        """A decoded answer after the reference's clean-up for its model (xgen, internlm); others unchanged."""
        from longbench.reference_models import clean_output

        return clean_output(self.reference_format, text)

    def result(
        self,
        request: GenerationRequest,
        output: str,
        *,
        reasoning: str | None = None,
        finish_reason: str | None = None,
        prompt_tokens: int | None = None,
        generated_tokens: int | None = None,
        thinking_tokens: int | None = None,
    ) -> GenerationResult:
        """The result of ``request`` from the model's decoded ``output``: the thinking split off at
        ``think_tags`` (:func:`longbench.thinking.split_thinking`). ``reasoning`` is thinking a server already
        returned apart (``reasoning_content``): it is kept, and ``output`` is the answer (its leading
        whitespace removed, unless ``think_tags`` is None: outputs untouched)."""
        if reasoning is not None:
            split = split_thinking(output, self.think_tags)
            thinking = "\n".join(part for part in (reasoning.strip(), split.thinking) if part) or None
            answer = split.answer if self.think_tags is None else split.answer.lstrip()
        else:
            split = split_thinking(output, self.think_tags, opened=request.chat and self.opens_thinking())
            thinking, answer = split.thinking, split.answer
        return GenerationResult(
            request,
            answer,
            None,
            prompt_tokens=prompt_tokens,
            generated_tokens=generated_tokens,
            thinking=thinking,
            finish_reason=finish_reason,
            thinking_tokens=thinking_tokens,
        )

    @abstractmethod
    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        """Yield one result per request, in completion order (not necessarily request order).

        ``requests`` is consumed lazily (the runner builds each prompt when it is asked for the next one): read
        only a bounded number ahead of the results, enough to batch, never all of it up front."""

    def describe(self) -> dict[str, Any]:
        """Settings recorded in run.json; must never contain secrets."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release the engine's resources (processes, GPU memory, connections); nothing by default."""
        return None
