"""Summary compression for the summarization tasks: the context cut into segments, each summarized by a
model through any backend, the summaries concatenated in order as the new context.

Segments are the reference's chunks (:func:`~longbench.compression.chunking.split_chunks`) of ``chunk_size``
words. The instruction below is this package's own: SPEC.md does not give the reference's summary prompt.
"""

from __future__ import annotations

from longbench.backends.base import Backend, GenerationRequest
from longbench.compression.chunking import split_chunks
from longbench.errors import LongBenchError
from longbench.schema import Record

SEGMENT_PROMPT = "Summarize the following text concisely, keeping every fact a reader may ask about.\n\n{segment}\n\nSummary:"
SUMMARY_TOKENS = 128  # new tokens per segment summary


class SegmentSummarizer:
    """Condenses a record's context: each segment summarized by ``backend``, summaries joined by newlines."""

    def __init__(self, backend: Backend, chunk_size: int, max_new_tokens: int = SUMMARY_TOKENS) -> None:
        self.backend = backend
        self.chunk_size = chunk_size
        self.max_new_tokens = max_new_tokens

    def requests(self, record: Record) -> list[GenerationRequest]:
        """One chat request per segment of the record's context, in document order."""
        segments = split_chunks(record["context"], self.chunk_size)
        return [
            GenerationRequest(
                id=f"{record['_id']}#{index}",
                task=record["dataset"],
                prompt=SEGMENT_PROMPT.format(segment=segment),
                chat=True,
                max_new_tokens=self.max_new_tokens,
                stop_at_newline=False,
            )
            for index, segment in enumerate(segments)
        ]

    def __call__(self, record: Record) -> str:
        """The record's compressed context; a failed segment fails the record (nothing is written for it)."""
        requests = self.requests(record)
        summaries: dict[str, str] = {}
        for result in self.backend.generate(requests):
            if not result.ok:
                raise LongBenchError(
                    f"summarizing {record['_id']!r} failed: {result.error}; run again to resume"
                )
            summaries[result.request.id] = (result.text or "").strip()
        return "\n".join(summaries[request.id] for request in requests)
