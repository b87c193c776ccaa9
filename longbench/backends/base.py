"""The interface every inference backend implements: requests in, results out (in completion order)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


class TokenizerLike(Protocol):
    """What prompt truncation needs from a tokenizer (a Hugging Face tokenizer satisfies it)."""

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> Any: ...  # result has ``.input_ids``

    def decode(self, ids: Any, *args: Any, **kwargs: Any) -> str: ...


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
    """An inference engine. Subclasses set ``name`` and ``tokenizer`` and implement :meth:`generate`."""

    name: str = "backend"
    tokenizer: TokenizerLike | None = None  # used by the runner for truncation (and --dump-prompts)
    # The reference's own chat format family for one of its eight models (longbench.reference_models), used
    # instead of a chat template; None for other models.
    reference_format: str | None = None

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
        return None

    def render(self, request: GenerationRequest) -> str:
        """The exact text the model sees for ``request`` (written by ``--dump-prompts``): the prompt, wrapped in
        the chat template for chat tasks when there is one (or the reference's own format for its models)."""
        if request.chat and self.reference_format is not None:
            from longbench.reference_models import chat_text

            return chat_text(self.reference_format, request.prompt, self.tokenizer)
        template = self.chat_template()
        if not request.chat or template is None:
            return request.prompt
        from longbench.prompts import wrap_chat

        return wrap_chat(request.prompt, self.tokenizer, template)

    def input_ids(self, request: GenerationRequest) -> list[int]:
        """The token ids the model receives for ``request`` (the text of :meth:`render`, encoded as the
        reference encodes it; ChatGLM3's chat input comes from its tokenizer as ids)."""
        from longbench.prompts import encode_model_input

        if request.chat and self.reference_format is not None:
            from longbench.reference_models import chat_ids

            return chat_ids(self.reference_format, request.prompt, self.tokenizer)
        wrapped = request.chat and self.chat_template() is not None
        return encode_model_input(self.render(request), self.tokenizer, chat_wrapped=wrapped)

    def clean_output(self, text: str) -> str:
        """A decoded answer after the reference's clean-up for its model (xgen, internlm); others unchanged."""
        from longbench.reference_models import clean_output

        return clean_output(self.reference_format, text)

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
