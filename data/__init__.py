"""The LongBench definition as data: task table, prompt templates, model windows, checksums, sample set."""
