"""Prediction replicas on Ray, for real: a local cluster of this machine's 2 CPUs (started once per session by
the ``ray_cluster`` fixture), replicas of the tiny model in their own worker processes, and a replica's
process killed with SIGKILL mid-run. Nothing is mocked; only the GPU is absent (replicas run on CPUs).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longbench.cli import main

pytest.importorskip("ray")

TASKS = ("trec", "samsum", "hotpotqa", "lcc")  # 16 sample records, completion and chat tasks, samsum's stop
PREDICT = ["predict", "--model", "builtin:tiny", "--model-name", "tiny", "--data", "sample"]
PREDICT += ["--tasks", ",".join(TASKS), "--max-length", "400"]


def _predictions(folder: Path) -> dict[str, list[dict]]:
    """Each task's prediction lines, sorted by _id."""
    return {
        task: sorted(
            (json.loads(line) for line in (folder / f"{task}.jsonl").read_text().splitlines()),
            key=lambda line: line["_id"],
        )
        for task in TASKS
    }


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, one_torch_thread: None) -> dict:
    """The predictions of a plain run in this process (the reference for the Ray runs)."""
    out = tmp_path_factory.mktemp("plain")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
        assert main([*PREDICT, "--out", str(out)]) == 0
    return _predictions(out / "tiny")


def _replica_names(ray: object) -> set[str]:
    named = ray.util.list_named_actors(all_namespaces=True)  # type: ignore[attr-defined]
    return {entry["name"] for entry in named if entry["name"].startswith("longbench-replica-")}


def test_two_replicas_predict_what_one_process_predicts(
    ray_cluster: object, plain: dict, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    assert main([*PREDICT, "--out", str(tmp_path), "--ray", "local", "--replicas", "2"]) == 0
    got = _predictions(tmp_path / "tiny")
    assert got == plain  # sample for sample, each once (lines sorted by _id, duplicates would show)
    assert all(len({line["_id"] for line in lines}) == len(lines) for lines in got.values())
    run = json.loads((tmp_path / "tiny" / "run.json").read_text())
    execution = run["backend_settings"]["execution"]
    assert execution["engine"] == "ray" and execution["replicas"] == 2 and execution["nodes"] == 1
    assert execution["ray_version"] == ray_cluster.__version__ and execution["gpus_per_replica"] == 0
    assert run["backend"] == "transformers" and run["backend_settings"]["dtype"] == "float32"
    assert not _replica_names(ray_cluster)  # the replicas are stopped at the end


class _Killer(threading.Thread):
    """Waits for the run's replica 0, learns its worker's pid, and SIGKILLs it once predictions appear."""

    def __init__(self, ray: object, folder: Path, before: set[str]) -> None:
        super().__init__(daemon=True)
        self.ray, self.folder, self.before = ray, folder, before
        self.pid: int | None = None
        self.written_at_kill: int | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 120
        name = None
        while name is None and time.monotonic() < deadline:
            name = next((n for n in _replica_names(self.ray) - self.before if n.endswith("-0")), None)
            time.sleep(0.02)
        if name is None:
            return
        actor = self.ray.get_actor(name, namespace="longbench")  # type: ignore[attr-defined]
        pid = self.ray.get(actor.pid.remote())  # type: ignore[attr-defined]
        while self._written() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.written_at_kill = self._written()
        os.kill(pid, signal.SIGKILL)
        self.pid = pid

    def _written(self) -> int:
        files = self.folder.glob("*.jsonl") if self.folder.is_dir() else iter(())
        return sum(len(path.read_text().splitlines()) for path in files)


def test_a_replica_killed_mid_run_loses_nothing(
    ray_cluster: object,
    plain: dict,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    killer = _Killer(ray_cluster, tmp_path / "tiny", _replica_names(ray_cluster))
    killer.start()
    status = main([*PREDICT, "--out", str(tmp_path), "--ray", "local", "--replicas", "2"])
    killer.join(timeout=10)
    assert killer.pid is not None  # the worker process really was killed ...
    assert 0 < killer.written_at_kill < sum(len(lines) for lines in plain.values())  # ... mid-run
    with pytest.raises(ProcessLookupError):
        os.kill(killer.pid, 0)
    assert "replica 0 lost" in caplog.text
    assert status == 0
    assert _predictions(tmp_path / "tiny") == plain  # complete, each sample once, the same text
    assert (
        not (tmp_path / "tiny" / "errors.jsonl").exists()
        or not (tmp_path / "tiny" / "errors.jsonl").read_text().strip()
    )


def test_requests_are_read_only_as_replicas_have_room(ray_cluster: object) -> None:
    import scripted_backend
    from scripted_backend import ScriptedBackend

    from longbench.backends.base import GenerationRequest
    from longbench.backends.ray_replicas import RayReplicasBackend, RaySettings

    ray_cluster.cloudpickle.register_pickle_by_value(scripted_backend)  # tests/ is not on the workers' path
    pulled: list[int] = []

    def requests() -> Iterator[GenerationRequest]:
        for index in range(40):
            pulled.append(index)
            yield GenerationRequest(str(index), "trec", f"prompt {index}", False, 8, False)

    backend = RayReplicasBackend(ScriptedBackend, {}, RaySettings("local", 2, in_flight=2, chunk_size=3))
    try:
        stream = backend.generate(requests())
        first = next(stream)
        assert len(pulled) <= 2 * 2 * 3  # 2 replicas x 2 calls in flight x 3 requests a call, no more
        ids = [first.request.id] + [result.request.id for result in stream]
    finally:
        backend.close()
    assert sorted(ids, key=int) == [str(index) for index in range(40)]  # every request once


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_sample_that_kills_every_replica_it_meets_goes_to_errors(
    replicas: int, ray_cluster: object, tmp_path: Path
) -> None:
    """The sample SIGKILLs the replica running it. It fails after killing 3 replicas while running alone (after
    the first death, which cannot be pinned on one of the calls the replica held); the samples that were on
    the dying replicas with it are written."""
    import scripted_backend
    from scripted_backend import ScriptedBackend

    from longbench.backends.ray_replicas import RayReplicasBackend, RaySettings
    from longbench.loading import iter_records
    from longbench.runner import predict
    from longbench.tasks import get_task

    ray_cluster.cloudpickle.register_pickle_by_value(scripted_backend)  # tests/ is not on the workers' path
    ids = [record["_id"] for record in iter_records("trec", "sample")]
    backend = RayReplicasBackend(ScriptedBackend, {"kill": [ids[1]]}, RaySettings("local", replicas))
    try:
        summary = predict(backend, [get_task("trec")], "sample", tmp_path, max_length=None, model_name="m")
    finally:
        backend.close()
    written = [json.loads(line)["_id"] for line in (tmp_path / "m" / "trec.jsonl").read_text().splitlines()]
    assert sorted(written) == sorted(ids[:1] + ids[2:])
    errors = [json.loads(line) for line in (tmp_path / "m" / "errors.jsonl").read_text().splitlines()]
    assert [error["_id"] for error in errors] == [ids[1]] and summary.failed == 1
    assert "killed the Ray replica running it 3 times" in json.dumps(errors[0])
    assert backend.restarts >= 1  # killed replicas came back and took work again
    if replicas == 1:  # 4 deaths (1 with others in flight, 3 alone), and the last samples needed it back
        assert backend.restarts == 4


def test_a_replica_that_cannot_build_its_backend_is_one_line(
    ray_cluster: object, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "no-model"
    command = [
        "predict",
        "--model",
        str(missing),
        "--data",
        "sample",
        "--tasks",
        "trec",
        "--out",
        str(tmp_path / "p"),
    ]
    assert main([*command, "--ray", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1]
        == f"longbench: error: Ray replica 0 could not start: model directory '{missing}' does not exist"
    )
    assert not (tmp_path / "p").exists() and not _replica_names(ray_cluster)


def test_without_ray_the_option_says_what_to_install(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    status = main([*PREDICT, "--out", str(tmp_path), "--ray", "local", "--replicas", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [
        "longbench: error: --ray needs Ray: pip install 'longbench[ray]' (or pip install ray)"
    ]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--replicas", "2"], "--replicas and --gpus-per-replica need --ray local|auto|ray://HOST:PORT"),
        (["--ray", "somewhere"], "--ray 'somewhere': expected local, auto or ray://host:port"),
        (["--ray", "local", "--replicas", "0"], "--replicas must be at least 1, got 0"),
        (["--ray", "local", "--replicas", "3"], "--replicas 3 needs 3 CPUs; the Ray cluster has 2"),
        (["--ray", "local", "--gpus-per-replica", "1"], "--gpus-per-replica 1: the Ray cluster has 0 GPU(s)"),
    ],
)
def test_bad_ray_settings_are_one_line(
    ray_cluster: object,
    extra: list[str],
    message: str,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    assert main([*PREDICT, "--out", str(tmp_path), *extra]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"longbench: error: {message}"]
    assert not any(tmp_path.iterdir())
