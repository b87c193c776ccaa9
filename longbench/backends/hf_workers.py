"""Data parallelism for the transformers backend: one worker process per device, each with its own model copy.

Workers pull batches of token jobs from one shared queue (so a slow device simply takes fewer) and send back
the new token ids; the parent decodes them. Workers are started once and reused for every task.
"""

from __future__ import annotations

import queue
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from longbench.backends.hf_engine import EngineSpec, TokenEngine, TokenJob, load_model
from longbench.errors import LongBenchError

_POLL_SECONDS = 1.0


def _worker_main(spec: EngineSpec, device: str, jobs: Any, results: Any) -> None:
    """Load the model on ``device``, then run batches until the ``None`` sentinel arrives."""
    try:
        if device.startswith("cuda"):
            import torch

            torch.cuda.set_device(device)
        engine = TokenEngine(load_model(spec, device))
        while (item := jobs.get()) is not None:
            call, index, batch = item
            results.put((call, index, engine.run(batch)))
    except BaseException:  # noqa: BLE001 -- reported to the parent, which raises it as a LongBenchError
        results.put(("error", device, traceback.format_exc()))


class WorkerPool:
    """Worker processes, one per device in ``devices``, started on first use."""

    def __init__(self, spec: EngineSpec, devices: Sequence[str]) -> None:
        import torch.multiprocessing as mp

        context = mp.get_context("spawn")
        self._jobs = context.Queue()
        self._results = context.Queue()
        self._calls = 0
        self._workers = [
            context.Process(target=_worker_main, args=(spec, device, self._jobs, self._results), daemon=True)
            for device in devices
        ]
        for worker in self._workers:
            worker.start()

    def run(self, batches: Sequence[Sequence[TokenJob]]) -> Iterator[tuple[int, list[list[int] | str]]]:
        """Yield ``(batch index, outputs)`` for every batch, in completion order."""
        self._calls += 1
        call = self._calls
        for index, batch in enumerate(batches):
            self._jobs.put((call, index, list(batch)))
        remaining = len(batches)
        while remaining:
            try:
                tag, index, outputs = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                self._check_alive()
                continue
            if tag == "error":
                raise LongBenchError(f"worker on {index} failed: {outputs.strip().splitlines()[-1]}")
            if tag == call:  # results of an abandoned earlier call are dropped
                remaining -= 1
                yield index, outputs

    def _check_alive(self) -> None:
        for worker in self._workers:
            if not worker.is_alive():
                raise LongBenchError(f"a generation worker exited unexpectedly (exit code {worker.exitcode})")

    def close(self) -> None:
        """Stop the workers (politely, then by force after a grace period)."""
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
