"""Inference backends: one small interface, several engines."""
