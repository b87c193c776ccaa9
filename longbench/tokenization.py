"""What the prompt builders need from a tokenizer: encode a text to ids, decode ids to a text.

A Hugging Face tokenizer satisfies it, and so does the tiktoken wrapper of the openai backend. It lives below
both the prompt builders and the backends, so that neither imports the other for it.
"""

from __future__ import annotations

from typing import Any, Protocol


class TokenizerLike(Protocol):
    """What prompt truncation needs from a tokenizer (a Hugging Face tokenizer satisfies it)."""

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> Any: ...  # result has ``.input_ids``

    def decode(self, ids: Any, *args: Any, **kwargs: Any) -> str: ...
