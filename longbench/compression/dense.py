"""Dense retrieval: chunks and question embedded by a Hugging Face encoder, ranked by inner product.

Any ``AutoModel`` encoder works (the paper's mContriever, ``facebook/mcontriever``, among them). As Contriever
does, a text's embedding is the mean of its last hidden states over the attention mask, and a chunk's score is
its inner product with the question's embedding. Texts are embedded in batches, on the GPU when there is one;
equal scores keep document order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class DenseRanker:
    """Ranks chunks for a question with the encoder ``model`` (a hub id or a local folder)."""

    def __init__(
        self, model: str, *, device: str | None = None, batch_size: int = 32, max_tokens: int = 512
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model)
        self.model: Any = AutoModel.from_pretrained(model).to(self.device).eval()
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled embeddings of ``texts``, one row each (float32)."""
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
                rows.append(pooled.float().cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def order(self, query: str, chunks: list[str], language: str) -> list[int]:
        """Positions of all ``chunks``, best first (the ranker interface of the compression pipeline)."""
        if not chunks:
            return []
        vectors = self.embed([query, *chunks])
        scores = vectors[1:] @ vectors[0]
        return np.argsort(-scores, kind="stable").tolist()

    def __call__(self, query: str, chunks: list[str], language: str) -> list[str]:
        """All ``chunks``, best first."""
        return [chunks[i] for i in self.order(query, chunks, language)]
