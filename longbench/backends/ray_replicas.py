"""Prediction replicas on a Ray cluster: N Ray actors, each holding one real backend, fed requests lazily.

The driver (this process) keeps everything that makes outputs safe: the runner's writer, lock, run.json,
errors.jsonl and resume work as with any backend, because this is one. It never loads the model: each
replica builds its backend from a picklable recipe (``build(**options)``, on ``gpus_per_replica`` GPUs, or
on one CPU when the cluster has no GPU), and the driver copies from the first replica only what the runner
asks of a backend (the tokenizer for truncation, the chat format, the context window, the settings).

Requests are read from the runner's iterator only when a replica has room (``in_flight`` calls queued per
replica, ``chunk_size`` requests a call: the backend's batch size), so memory stays bounded and fast replicas
take more work. Results are yielded as they arrive.

Faults: a replica whose process dies (SIGKILL, out of memory, a lost node) is restarted by Ray (up to
``max_restarts`` times), and the calls it held are sent again. Which of them killed it is not known (a call
may have finished with its reply lost), so each resent request runs alone: on a replica with nothing else in
flight, new requests waiting meanwhile. A replica that dies running one request alone was killed by it; a
request that kills ``max_attempts`` replicas that way becomes a failed result (errors.jsonl), so one
poisonous sample cannot stop the run and no other sample is blamed for it. An exception raised by a
replica's backend is a clear error.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.errors import LongBenchError, SettingError

logger = logging.getLogger(__name__)

RAY_MISSING = "--ray needs Ray: pip install 'longbench[ray]' (or pip install ray)"
_NAMESPACE = "longbench"
_RECHECK_SECONDS = 0.5  # how soon a replica that is still restarting is asked again
_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # requests and results are small; a local cluster needs little


def import_ray() -> Any:
    """The ``ray`` module, or one line saying what to install."""
    try:
        import ray
    except ImportError:
        raise LongBenchError(RAY_MISSING) from None
    return ray


@dataclass(frozen=True)
class RaySettings:
    """Where and how the replicas run."""

    address: str  # "local" (start Ray here), "auto" (the configured cluster) or "ray://host:port"
    replicas: int
    gpus_per_replica: int | None = None  # None: 1 when the cluster has GPUs, else 0 (CPU replicas)
    in_flight: int = 2  # calls queued per replica: one running, one ready, so a replica never waits
    chunk_size: int = 1  # requests per call: the replicas' batch size (--batch-size)
    max_attempts: int = 3  # replicas a request may kill (running alone) before it is recorded as failed
    max_restarts: int = 10  # restarts Ray makes of each replica before it is gone for good

    def check(self) -> None:
        """One line naming the first setting out of range."""
        if not (self.address in ("local", "auto") or self.address.startswith("ray://")):
            raise SettingError(
                "{ray} {address!r}: expected local, auto or ray://host:port", address=self.address
            )
        checked = (
            (self.replicas, "--replicas"),
            (self.in_flight, "in_flight"),
            (self.chunk_size, "--batch-size"),
        )
        for value, option in checked:
            if value < 1:
                raise LongBenchError(f"{option} must be at least 1, got {value}")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise SettingError(
                "{gpus_per_replica} must be at least 0, got {value}", value=self.gpus_per_replica
            )


class Replica:
    """What runs inside one Ray actor: a backend built from its recipe, generating one chunk per call."""

    def __init__(self, build: Callable[..., Backend], options: Mapping[str, Any]) -> None:
        self.backend = build(**options)

    def front(self) -> dict[str, Any]:
        """What the driver needs to stand in for this backend, and where this replica runs."""
        import ray

        backend = self.backend
        return {
            "name": backend.name,
            "tokenizer": backend.tokenizer,
            "chat_format": backend.chat_format,
            "think_tags": backend.think_tags,
            "chat_template": backend.chat_template(),
            "context_window": backend.context_window(),
            "describe": backend.describe(),
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }

    def pid(self) -> int:
        return os.getpid()

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return list(self.backend.generate(requests))

    def close(self) -> None:
        self.backend.close()


@dataclass
class _Chunk:
    """Requests sent to one replica in one call, each with the number of replicas it has killed."""

    replica: int
    items: list[tuple[GenerationRequest, int]]
    alone: bool  # a resent request, the only call on its replica: if the replica dies, this request did it


@dataclass
class _Flow:
    """The state of one ``generate`` call: requests to send again, calls in flight, replicas restarting."""

    retry: deque[tuple[GenerationRequest, int]] = field(default_factory=deque)
    flying: dict[Any, _Chunk] = field(default_factory=dict)  # object ref -> chunk
    probes: dict[Any, int] = field(default_factory=dict)  # object ref of a ping -> replica restarting
    recheck: dict[int, float] = field(default_factory=dict)  # replica still restarting -> when to ask again
    source_done: bool = False
    results: int = 0


class RayReplicasBackend(Backend):
    """A backend that spreads requests over ``settings.replicas`` copies of another backend on Ray."""

    def __init__(
        self, build: Callable[..., Backend], options: Mapping[str, Any], settings: RaySettings
    ) -> None:
        settings.check()
        self.ray = import_ray()
        self.settings = settings
        self._owns_ray = _connect(self.ray, settings.address)
        self._actors: list[Any] = []
        try:
            self.gpus_per_replica = _gpus_per_replica(self.ray, settings.gpus_per_replica)
            _check_room(self.ray, settings, self.gpus_per_replica)
            self._actors = self._start(build, options)
            fronts = self._fronts()
        except BaseException:
            self.close()
            raise
        self._alive = set(range(len(self._actors)))
        first = fronts[0]
        self.name = first["name"]
        self.tokenizer = first["tokenizer"]
        # the driver renders prompts as a replica does (--dump-prompts)
        self.chat_format = first["chat_format"]
        self.think_tags = first["think_tags"]  # replicas split the thinking; recorded as theirs
        self._chat_template = first["chat_template"]
        self._context_window = first["context_window"]
        self._described = first["describe"]
        self.nodes = len({front["node"] for front in fronts})
        self.restarts = 0
        logger.warning(
            "longbench: ray %s: %d replicas of %s on %d node(s), %d GPU(s) each",
            self.ray.__version__,
            len(self._actors),
            self.name,
            self.nodes,
            self.gpus_per_replica,
        )

    # -- start-up ------------------------------------------------------------------------------------------
    def _start(self, build: Callable[..., Backend], options: Mapping[str, Any]) -> list[Any]:
        remote = self.ray.remote(Replica)
        run_id = os.urandom(4).hex()
        return [
            remote.options(
                name=f"longbench-replica-{run_id}-{index}",
                namespace=_NAMESPACE,
                num_cpus=1,
                num_gpus=self.gpus_per_replica,
                max_restarts=self.settings.max_restarts,
                max_task_retries=0,  # in-flight chunks of a dead replica are resent by this driver
            ).remote(build, dict(options))
            for index in range(self.settings.replicas)
        ]

    def _fronts(self) -> list[dict[str, Any]]:
        """Every replica's front; a replica that cannot build its backend is one clear error."""
        fronts = []
        for index, actor in enumerate(self._actors):
            try:
                fronts.append(self.ray.get(actor.front.remote()))
            except self.ray.exceptions.RayError as error:
                raise LongBenchError(f"Ray replica {index} could not start: {_reason(error)}") from None
        return fronts

    # -- what the runner asks ------------------------------------------------------------------------------
    def context_window(self) -> int | None:
        return self._context_window

    def chat_template(self) -> str | None:
        return self._chat_template

    def describe(self) -> dict[str, Any]:
        """The replicas' own settings, plus how they ran (``execution``: not an output setting)."""
        execution = {
            "engine": "ray",
            "ray_version": self.ray.__version__,
            "address": self.settings.address,
            "replicas": self.settings.replicas,
            "gpus_per_replica": self.gpus_per_replica,
            "nodes": self.nodes,
            "in_flight_per_replica": self.settings.in_flight,
            "requests_per_call": self.settings.chunk_size,
            "max_attempts": self.settings.max_attempts,
        }
        return {**self._described, "execution": execution}

    # -- generation ----------------------------------------------------------------------------------------
    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        source = iter(requests)
        flow = _Flow()
        started = time.perf_counter()
        while True:
            self._fill(flow, source)
            if not flow.flying and not flow.retry and flow.source_done:
                break  # replicas still restarting are not waited for
            if not flow.flying and not flow.probes and not flow.recheck:
                raise LongBenchError("every Ray replica died; see the Ray logs for why")
            yield from self._collect(flow)
        seconds = max(time.perf_counter() - started, 1e-9)
        logger.warning(
            "longbench: ray: %d results from %d replicas in %.1f s (%.2f/s), %d replica restart(s)",
            flow.results,
            len(self._alive),
            seconds,
            flow.results / seconds,
            self.restarts,
        )

    def _fill(self, flow: _Flow, source: Iterator[GenerationRequest]) -> None:
        """Give the ready replicas work: a resent request alone to an idle replica; else new requests, up to
        ``in_flight`` calls per replica (none while requests wait to be resent, so that replicas fall idle)."""
        restarting = set(flow.probes.values()) | set(flow.recheck)
        for index in sorted(self._alive - restarting):
            load = sum(chunk.replica == index for chunk in flow.flying.values())
            if flow.retry:
                if load == 0:
                    self._send(flow, index, [flow.retry.popleft()], alone=True)
                continue
            while load < self.settings.in_flight and not flow.source_done:
                items = [(request, 0) for request in islice(source, self.settings.chunk_size)]
                flow.source_done = len(items) < self.settings.chunk_size
                if items:
                    self._send(flow, index, items, alone=False)
                    load += 1

    def _send(self, flow: _Flow, index: int, items: list[tuple[GenerationRequest, int]], alone: bool) -> None:
        ref = self._actors[index].generate.remote([request for request, _ in items])
        flow.flying[ref] = _Chunk(index, items, alone)

    def _collect(self, flow: _Flow) -> Iterator[GenerationResult]:
        """Wait for the next finished call; yield its results, or handle the replica it lost."""
        timeout = max(0.0, min(flow.recheck.values()) - time.monotonic()) if flow.recheck else None
        refs = [*flow.flying, *flow.probes]
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout) if refs else ([], None)
        if not ready:
            if not refs and timeout:
                time.sleep(timeout)
            self._probe_due(flow)
            return
        ref = ready[0]
        if ref in flow.probes:
            self._probed(flow, ref)
            return
        chunk = flow.flying.pop(ref)
        try:
            results = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as error:
            yield from self._lost(flow, chunk, error)
            return
        except self.ray.exceptions.RayTaskError as error:
            raise LongBenchError(f"Ray replica {chunk.replica} failed: {_reason(error)}") from None
        flow.results += len(results)
        yield from results

    def _lost(self, flow: _Flow, chunk: _Chunk, error: Exception) -> Iterator[GenerationResult]:
        """A replica died: every call it held is resent; a request it was running alone killed it (one
        attempt more, a failed result after ``max_attempts``). The replica is probed until it is back."""
        index = chunk.replica
        held = [ref for ref, other in flow.flying.items() if other.replica == index]
        restarting = index in flow.probes.values() or index in flow.recheck
        if not restarting and index in self._alive:
            logger.warning(
                "longbench: ray: replica %d lost (%s); resending its requests", index, _reason(error)
            )
            flow.probes[self._actors[index].pid.remote()] = index
        for lost in [chunk, *(flow.flying.pop(ref) for ref in held)]:
            for request, attempts in lost.items:
                if not lost.alone:
                    flow.retry.append((request, attempts))
                elif attempts + 1 < self.settings.max_attempts:
                    flow.retry.append((request, attempts + 1))
                else:
                    flow.results += 1
                    yield GenerationResult.failure(
                        request,
                        f"it killed the Ray replica running it {attempts + 1} times (last: {_reason(error)})",
                    )

    def _probed(self, flow: _Flow, ref: Any) -> None:
        """A restarting replica answered (restarted: it takes work again) or is gone for good."""
        index = flow.probes.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.ActorUnavailableError:  # still restarting: ask again shortly
            flow.recheck[index] = time.monotonic() + _RECHECK_SECONDS
            return
        except self.ray.exceptions.RayError as error:
            logger.warning("longbench: ray: replica %d is gone (%s)", index, _reason(error))
            self._alive.discard(index)
            return
        self.restarts += 1

    def _probe_due(self, flow: _Flow) -> None:
        """Ping again the restarting replicas whose time has come."""
        now = time.monotonic()
        for index, due in list(flow.recheck.items()):
            if due <= now:
                del flow.recheck[index]
                flow.probes[self._actors[index].pid.remote()] = index

    def close(self) -> None:
        """Stop the replicas, and Ray itself when this backend started it."""
        for actor in self._actors:
            self.ray.kill(actor, no_restart=True)
        self._actors = []
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns_ray = False


def _connect(ray: Any, address: str) -> bool:
    """Connect to (or, for "local", start) Ray unless this process already is; True when we connected."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {
        "namespace": _NAMESPACE,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    if address == "local":
        options.update(include_dashboard=False, object_store_memory=_OBJECT_STORE_BYTES)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as error:  # ray:// needs ray[client]
        raise SettingError(
            "{ray} {address}: cannot connect ({reason})", address=address, reason=_reason(error)
        ) from None
    return True


def _gpus_per_replica(ray: Any, requested: int | None) -> int:
    """``--gpus-per-replica``, checked against the cluster; by default 1 with GPUs in the cluster, else 0."""
    cluster = int(ray.cluster_resources().get("GPU", 0))
    if requested is None:
        return 1 if cluster else 0
    if requested > cluster:
        raise SettingError(
            "{gpus_per_replica} {requested}: the Ray cluster has {cluster} GPU(s)",
            requested=requested,
            cluster=cluster,
        )
    return requested


def _check_room(ray: Any, settings: RaySettings, gpus: int) -> None:
    """Refuse more replicas than a local cluster holds (they would wait forever); on a cluster that may
    grow (an autoscaler), only warn."""
    resource, each = ("GPU", gpus) if gpus else ("CPU", 1)
    total = int(ray.cluster_resources().get(resource, 0))
    if settings.replicas * each <= total:
        return
    message = f"--replicas {settings.replicas} needs {settings.replicas * each} {resource}s; the Ray cluster has {total}"
    if settings.address == "local":
        raise LongBenchError(message)
    logger.warning("longbench: %s: the rest wait until the cluster grows", message)


def _reason(error: BaseException) -> str:
    """The last non-empty line of an error's text (a remote traceback's own message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (
        lines[-1].removeprefix(f"{LongBenchError.__module__}.LongBenchError: ")
        if lines
        else type(error).__name__
    )
