"""longbench: the LongBench long-context benchmark, reproduced exactly."""

__version__ = "0.1.0"
