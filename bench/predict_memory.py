"""Time to the first prediction and peak memory of a prediction run, for 120 vs 1,200 records.

The three real released files in ``../shared/longbench-data/v1`` (multi_news, multifieldqa_zh,
passage_retrieval_zh) are replicated with new ids into files of 40 and 400 records each (120 and 1,200 in
all). Each run is ``longbench.runner.predict`` in a fresh Python process, with prompts middle-truncated to a
31,500-token budget by the built-in tiny model's real (byte-level) tokenizer, and a trivial real backend that
answers each request at once (so what is measured is longbench's own pipeline, not a model). Two ways are
compared side by side:

- ``lazy`` (the code as it is): the backend pulls requests from the runner's iterable, so each prompt is
  built and tokenized when it is asked for;
- ``up-front`` (the previous behaviour, kept here for comparison only): the backend first takes every
  request, so every prompt is built and tokenized before the first generation, as the runner used to.

Printed: seconds from the start of ``predict`` to the first prediction, the process's peak RSS, and the
1,200/120 ratios (targets for ``lazy``: below 2x and 1.5x).

    python bench/predict_memory.py
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SHARED_V1 = Path(__file__).resolve().parents[1].parent / "shared" / "longbench-data" / "v1"
TASKS = ("multi_news", "multifieldqa_zh", "passage_retrieval_zh")
BUDGET = 31_500
SIZES = (120, 1_200)
MODES = ("lazy", "up-front")


def replicate(folder: Path, total: int) -> None:
    """``<task>.jsonl`` files of ``total // 3`` records each: the real records cycled, with new ids."""
    folder.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        lines = (SHARED_V1 / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
        with open(folder / f"{task}.jsonl", "w", encoding="utf-8") as out:
            for number in range(total // len(TASKS)):
                record = json.loads(lines[number % len(lines)])
                record["_id"] = f"{record['_id']}-copy{number}"
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


def child(mode: str, data: str, out: str) -> dict[str, Any]:
    """One prediction run in this process; what it measured."""
    from transformers import AutoTokenizer

    from longbench.backends.base import Backend, GenerationRequest, GenerationResult
    from longbench.runner import predict
    from longbench.tasks import get_task
    from longbench.tinymodel import tiny_model_path

    class Instant(Backend):
        """Answers every request at once; ``up_front`` takes all requests before answering any."""

        name = "instant"

        def __init__(self, tokenizer: Any, up_front: bool) -> None:
            self.tokenizer = tokenizer
            self.up_front = up_front
            self.first: float | None = None

        def describe(self) -> dict[str, Any]:
            return {"backend": self.name, "model": "instant"}

        def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
            pending = list(requests) if self.up_front else requests
            for request in pending:
                if self.first is None:
                    self.first = time.perf_counter()
                yield GenerationResult(request, "answer", None, 1, 1)

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path()))
    tokenizer("warm up")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    backend = Instant(tokenizer, up_front=mode == "up-front")
    started = time.perf_counter()
    summary = predict(
        backend,
        [get_task(task) for task in TASKS],
        data,
        Path(out),
        max_length=BUDGET,
        model_name="instant",
        verify=False,  # the replicated files are named like released ones
        notify=lambda _: None,
    )
    ended = time.perf_counter()
    assert backend.first is not None
    return {
        "written": summary.written,
        "first_s": backend.first - started,
        "total_s": ended - started,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_mib": baseline / 1024,
    }


def measure(mode: str, data: Path, out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(data), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if not SHARED_V1.is_dir():
        sys.exit(f"{SHARED_V1} is absent: the three real released files are needed")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    figures: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in SIZES:
            data = Path(scratch) / f"data-{size}"
            replicate(data, size)
            for mode in MODES:
                figures[mode, size] = measure(mode, data, Path(scratch) / f"out-{mode}-{size}")
                assert figures[mode, size]["written"] == size
    small, large = SIZES
    print("\n| way | records | first prediction s | whole run s | peak RSS MiB | above start MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in MODES:
        for size in SIZES:
            f = figures[mode, size]
            grown = f["peak_mib"] - f["baseline_mib"]
            print(
                f"| {mode} | {size:,} | {f['first_s']:.3f} | {f['total_s']:.1f} | {f['peak_mib']:.0f} | {grown:.0f} |"
            )
    print(f"\n| way | first prediction {large:,}/{small} | peak RSS {large:,}/{small} |")
    print("|---|---:|---:|")
    for mode in MODES:
        a, b = figures[mode, small], figures[mode, large]
        print(f"| {mode} | {b['first_s'] / a['first_s']:.2f}x | {b['peak_mib'] / a['peak_mib']:.2f}x |")


if __name__ == "__main__":
    main()
