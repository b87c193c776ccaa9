"""LongBench v2: 503 four-choice questions, prompted and scored exactly as the reference ``pred.py``/``result.py``.

``data`` reads and validates the records, ``prompts`` builds the model inputs, ``scoring`` extracts answers and
computes ``result.py``'s row, ``reports`` renders the tables and files ``longbench eval --v2`` writes.
"""
