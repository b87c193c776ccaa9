"""Throughput of the openai backend against the loopback test server at 200 ms per request, by concurrency.

Run: ``python bench/api_speed.py`` (loopback only; about 15 s; the server runs in a subprocess). Each concurrency level sends a bounded number
of requests (``--seconds`` worth at the ideal rate) through the real OpenAIBackend and the official openai
client to tests/openai_server.py, which answers every request after a fixed latency. Prints a table with
each level's throughput relative to concurrency 1 (the target is at least 30x at concurrency 64).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from longbench.backends.base import GenerationRequest
from longbench.backends.openai_api import OpenAIBackend

SERVER = Path(__file__).resolve().parents[1] / "tests" / "openai_server.py"


def measure(url: str, concurrency: int, count: int, tokenizer: str) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds for ``count`` chat requests at ``concurrency`` in flight."""
    backend = OpenAIBackend(
        model="fake-model",
        base_urls=[url],
        api_key_env=None,
        concurrency=concurrency,
        request_timeout=30.0,
        tokenizer=tokenizer,
    )
    requests = [
        GenerationRequest(f"id-{i}", "qasper", f"prompt {i} " * 50, True, 128, False) for i in range(count)
    ]
    try:
        start, cpu = time.perf_counter(), time.process_time()
        results = list(backend.generate(requests))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        backend.close()
    failed = [r for r in results if not r.ok]
    if failed or len(results) != count:
        raise SystemExit(
            f"concurrency {concurrency}: {len(failed)} failed: {failed[0].error if failed else ''}"
        )
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request (s)")
    parser.add_argument("--levels", default="1,8,64", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=3.0, help="ideal duration of each level")
    parser.add_argument("--tokenizer", default="builtin:tiny", help="tokenizer the backend loads")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    levels = [int(level) for level in args.levels.split(",")]
    rows = []
    # The server runs in its own process so that it does not share this process's interpreter lock.
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(args.latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        url = server.stdout.readline().strip()
        measure(url, 4, 8, args.tokenizer)  # warm-up: imports, tokenizer, connections
        for level in levels:
            count = max(level, round(args.seconds / args.latency) * level)
            elapsed, cpu = measure(url, level, count, args.tokenizer)
            rows.append((level, count, elapsed, count / elapsed, 1000 * cpu / count))
    finally:
        server.terminate()
        server.wait(timeout=10)
    base = rows[0][3]
    print(f"openai backend -> loopback test server, {args.latency * 1000:.0f} ms latency per request")
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
    )
    header = ("concurrency", "requests", "seconds", "req/s", f"vs c={levels[0]}", "client CPU ms/req")
    print("  ".join(header))
    for level, count, elapsed, rate, cpu_ms in rows:
        cells = (
            str(level),
            str(count),
            f"{elapsed:.2f}",
            f"{rate:.1f}",
            f"{rate / base:.1f}x",
            f"{cpu_ms:.2f}",
        )
        print("  ".join(cell.rjust(len(name)) for cell, name in zip(cells, header, strict=True)))


if __name__ == "__main__":
    main()
