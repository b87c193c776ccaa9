"""Throughput of Ray prediction replicas: 1 vs N replicas on this machine's CPUs, and the driver's own cost.

Starts a local Ray cluster of ``--cpus`` CPUs, then runs ``longbench.runner.predict`` end to end over the
bundled sample set (every v1 task) with the transformers backend in Ray replicas, once per replica count,
each replica one CPU and one torch thread. Replica start-up (a worker process importing torch and loading
the model) is timed apart from generation. "driver CPU/request" is this process's CPU time (all its threads,
Ray's included) during the predict call divided by the requests: what the driver spends per request to
build, send, receive and write it. Every run's predictions are checked against a plain in-process run.

A control line measures how much parallelism the CPUs offer at that moment (N busy-loop processes against
one: on a machine shared with other jobs, less than N). A second table separates Ray's scheduling from the
CPUs: replicas of a backend that waits 100 ms per request
without using a CPU (as a replica waiting on its GPU would), so N replicas should take 1/N of the time
whatever else the machine is doing.

    python bench/ray_replicas.py                       # tiny model, replicas 1 and 2 on 2 CPUs
    python bench/ray_replicas.py --replicas 1,2,4 --cpus 4 --max-length 2000
"""

from __future__ import annotations

import argparse
import functools
import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported
os.environ.setdefault(
    "OMP_NUM_THREADS", "1"
)  # one torch thread per process, the replicas' and the plain run's
import logging
import platform
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from longbench.backends import create_backend
from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.backends.ray_replicas import RayReplicasBackend, RaySettings
from longbench.runner import predict
from longbench.tasks import all_tasks
from longbench.tinymodel import tiny_model_path


class Waiting(Backend):
    """A backend whose every request waits ``seconds`` without using a CPU, then answers "x"."""

    name = "waiting"

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for request in requests:
            time.sleep(self.seconds)
            yield GenerationResult(request, "x", None, 1, 1)


def _busy_loop(_: int) -> float:
    started = time.perf_counter()
    total = 0
    for value in range(10_000_000):
        total += value
    return time.perf_counter() - started


def free_parallelism(processes: int) -> float:
    """How many times the throughput of one CPU-bound process ``processes`` of them get together right now:
    the most any replica count can gain on this machine's CPUs at this moment."""
    import multiprocessing

    started = time.perf_counter()
    _busy_loop(0)
    one = time.perf_counter() - started
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        started = time.perf_counter()
        pool.map(_busy_loop, range(processes))
        together = time.perf_counter() - started
    return processes * one / together


def waiting_rows(counts: list[int], requests: int = 40) -> list[tuple[int, float, float]]:
    """(replicas, seconds, driver CPU seconds) for ``requests`` requests through replicas of :class:`Waiting`."""
    batch = [GenerationRequest(str(i), "trec", "p", False, 8, False) for i in range(requests)]
    rows = []
    for count in counts:
        backend = RayReplicasBackend(Waiting, {}, RaySettings("local", count))
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            assert len(list(backend.generate(batch))) == requests
            rows.append((count, time.perf_counter() - wall, time.process_time() - cpu))
        finally:
            backend.close()
    return rows


def predictions(folder: Path) -> dict[str, str]:
    """``task/_id`` -> prediction for every file in ``folder``."""
    out = {}
    for path in folder.glob("*.jsonl"):
        if path.name.startswith("errors"):
            continue
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out[f"{path.stem}/{row['_id']}"] = row["pred"]
    return out


def timed_predict(backend: object, out: Path, max_length: int) -> tuple[float, float, int]:
    """Wall seconds, driver CPU seconds and requests of one predict run over the sample set."""
    wall, cpu = time.perf_counter(), time.process_time()
    summary = predict(backend, all_tasks(), "sample", out, max_length=max_length, model_name="m")  # type: ignore[arg-type]
    return time.perf_counter() - wall, time.process_time() - cpu, summary.written


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2", help="replica counts to compare (default 1,2)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs given to Ray")
    parser.add_argument("--max-length", type=int, default=1000, help="prompt budget in tokens (default 1000)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import ray

    model = str(tiny_model_path())
    options = {"model": model, "dtype": "float32", "device": "cpu"}
    ray.init(num_cpus=args.cpus, include_dashboard=False, object_store_memory=100 << 20, log_to_driver=False)
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs visible, "
        f"{args.cpus} given to Ray; load average {os.getloadavg()[0]:.1f}; Ray {ray.__version__}; "
        f"tiny model, sample set ({len(all_tasks())} tasks), --max-length {args.max_length}, batch 1"
    )
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        plain_backend = create_backend("transformers", **options)
        seconds, cpu, written = timed_predict(plain_backend, root / "plain", args.max_length)
        expected = predictions(root / "plain" / "m")
        rows = [("plain (in process)", 0.0, seconds, written, cpu)]
        for count in (int(part) for part in args.replicas.split(",")):
            started = time.perf_counter()
            backend = RayReplicasBackend(
                functools.partial(create_backend, "transformers"), options, RaySettings("local", count)
            )
            startup = time.perf_counter() - started
            try:
                seconds, cpu, written = timed_predict(backend, root / f"r{count}", args.max_length)
            finally:
                backend.close()
            assert predictions(root / f"r{count}" / "m") == expected, f"{count} replicas: other predictions"
            rows.append((f"{count} replica(s)", startup, seconds, written, cpu))
    counts = [int(part) for part in args.replicas.split(",")]
    waiting = waiting_rows(counts)
    ray.shutdown()
    one = next((row for row in rows if row[0] == "1 replica(s)"), None)
    print("| run | start-up s | predict s | samples/s | vs 1 replica | driver CPU ms/request |")
    print("|---|---|---|---|---|---|")
    for name, startup, seconds, written, cpu in rows:
        rate = written / seconds
        ratio = f"{rate / (one[3] / one[2]):.2f}x" if one else "-"
        print(
            f"| {name} | {startup:.1f} | {seconds:.1f} | {rate:.2f} | {ratio} | {1000 * cpu / written:.1f} |"
        )
    print("predictions identical to the plain run: yes")
    most = max(counts)
    print(
        f"control: {most} busy-loop processes get {free_parallelism(most):.2f}x the throughput of one right now"
    )
    print("\nreplicas waiting 100 ms per request (no CPU), 40 requests:")
    print("| replicas | seconds | requests/s | vs 1 replica | driver CPU ms/request |")
    print("|---|---|---|---|---|")
    for count, seconds, cpu in waiting:
        ratio = waiting[0][1] / seconds
        print(f"| {count} | {seconds:.2f} | {40 / seconds:.1f} | {ratio:.2f}x | {1000 * cpu / 40:.1f} |")


if __name__ == "__main__":
    main()
