"""Context compression, the paper's section 4.2: long contexts cut into chunks and ranked (BM25, dense
embeddings) or summarized, written as a derived data folder that ``longbench predict --data`` reads.

``chunking`` splits and counts words as the reference does; ``bm25`` and ``dense`` rank chunks; ``summary``
condenses segments with a model; ``pipeline`` runs a whole compression, resumably, into the derived folder
that :mod:`longbench.sources` defines and reads; ``v2`` writes LongBench v2's ``retrieved_context``.
"""

from __future__ import annotations

DEFAULT_TASKS: tuple[str, ...] = (
    "multifieldqa_en",
    "qasper",
    "2wikimqa",
    "dureader",
    "hotpotqa",
    "narrativeqa",
    "musique",
    "multifieldqa_zh",
)  # the reference's eight QA tasks (LongBench/retrieval)
SUMMARY_TASKS: tuple[str, ...] = ("gov_report", "qmsum", "multi_news", "vcsum")  # summarization tasks
