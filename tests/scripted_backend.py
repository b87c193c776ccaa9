"""Small real backends for runner tests: no model, answers computed from the request, optional gate.

``ScriptedBackend`` answers every request with a fixed text, or one computed from the request (or fails the
ids it is told to), optionally waits at the first request until a gate file exists (so that a child process
can be held mid-run) or stops with an error after a number of results (a crash mid-run), and keeps what it
saw: every request, how many requests it had pulled, and how many tokenizer calls had been made, when it
produced each result. Run as a script, it predicts the sample set's ``trec`` into a folder, held at the gate. Ids in ``kill`` make it SIGKILL its own process
(a replica that dies on a sample).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult


class CountingTokenizer:
    """A real tokenizer, counting the calls that encode text."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.calls = 0

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._tokenizer(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(
        self,
        text: str | Callable[[GenerationRequest], str] = "an answer",
        *,
        tokenizer: Any = None,
        gate: Path | None = None,
        ready: Path | None = None,
        fail: Iterable[str | tuple[str, int]] = (),  # sample ids, or (id, call) pairs
        kill: Iterable[str] = (),
        model: str = "scripted-model",
        crash_after: int | None = None,
    ) -> None:
        self.text = text
        self.tokenizer = tokenizer
        self.gate = gate
        self.ready = ready
        self.fail = set(fail)
        self.kill = set(kill)
        self.model = model
        self.crash_after = crash_after  # results given before generate raises (None: never)
        self.seen: list[tuple[int, int]] = []  # (requests pulled, tokenizer calls) at each result
        self.requests: list[GenerationRequest] = []  # every request pulled, in order

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model}

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for pulled, request in enumerate(requests, start=1):
            if pulled == 1:
                self._wait_at_gate()
            if self.crash_after is not None and len(self.seen) >= self.crash_after:
                raise RuntimeError("scripted crash")
            self.requests.append(request)
            self.seen.append((pulled, getattr(self.tokenizer, "calls", 0)))
            if request.id in self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            if request.id in self.fail or (request.id, request.call) in self.fail:
                yield GenerationResult.failure(request, "scripted failure")
            else:
                text = self.text if isinstance(self.text, str) else self.text(request)
                yield GenerationResult(request, text, None, 1, 1, finish_reason="stop")

    def _wait_at_gate(self) -> None:
        if self.ready is not None:
            self.ready.touch()
        deadline = time.monotonic() + 60
        while self.gate is not None and not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def main(out: str, gate: str, ready: str, shard: str) -> None:
    from longbench.runner import predict
    from longbench.tasks import get_task

    index, count = (int(part) for part in shard.split("/"))
    backend = ScriptedBackend(gate=Path(gate), ready=Path(ready))
    predict(
        backend,
        [get_task("trec")],
        "sample",
        Path(out),
        max_length=None,
        shard=(index, count),
        model_name="m",
        notify=lambda _: None,
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
