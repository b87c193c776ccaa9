"""Scoring metrics of LongBench, reproducing the reference implementation exactly."""
