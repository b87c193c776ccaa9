"""Data parallelism (one worker process per device) exercised for real with CPU workers.

On a machine with several GPUs the backend starts one worker per GPU; no GPU exists here, so the same pool
runs with two CPU "devices". Only the device names differ from the GPU case.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from longbench.backends.base import GenerationRequest
from longbench.backends.hf import Placement, TransformersBackend
from longbench.backends.hf_workers import WorkerPool
from longbench.errors import LongBenchError
from longbench.loading import iter_records
from longbench.prompts import build_prompt
from longbench.tasks import get_task


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by the spawned workers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _requests(backend: TransformersBackend) -> list[GenerationRequest]:
    requests = []
    for name in ("trec", "hotpotqa", "samsum"):
        task = get_task(name)
        for record in iter_records(name, "sample"):
            prompt = build_prompt(task, record, backend.tokenizer, 600)
            requests.append(
                GenerationRequest(record["_id"], name, prompt, task.chat, 12, task.stop_at_newline)
            )
    return requests


def test_two_workers_give_the_in_process_results(tiny_model: Path) -> None:
    local = TransformersBackend(str(tiny_model), batch_size=2)
    requests = _requests(local)
    expected = {r.request.id: r.text for r in local.generate(requests)}
    parallel = TransformersBackend(str(tiny_model), batch_size=2)
    parallel.placement = Placement("data_parallel", ("cpu", "cpu"))  # stands in for ("cuda:0", "cuda:1")
    try:
        results = list(parallel.generate(requests))
        again = list(parallel.generate(requests[:3]))  # the workers are reused for the next task
    finally:
        parallel.close()
    assert parallel._engine is None  # the parent never loaded the model
    assert {r.request.id: r.text for r in results} == expected
    assert len(results) == len(requests) and all(r.ok for r in results)
    assert {r.request.id: r.text for r in again} == {r.id: expected[r.id] for r in requests[:3]}


def test_a_worker_that_cannot_load_the_model_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    backend = TransformersBackend(str(tiny_model))
    spec = dataclasses.replace(backend.spec, model=str(tmp_path / "gone"))
    pool = WorkerPool(spec, ("cpu",))
    try:
        with pytest.raises(LongBenchError, match="worker on cpu failed"):
            list(pool.run([[backend.job(_requests(backend)[0])]]))
    finally:
        pool.close()
