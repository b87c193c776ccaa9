"""``--shard auto``: the shard of a Slurm job array task, from the variables Slurm sets for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longbench.cli import main
from longbench.errors import LongBenchError
from longbench.loading import iter_records
from longbench.slurm import shard_from_slurm


def _array(task: int, count: int, first: int | None = None, step: int | None = None) -> dict[str, str]:
    environ = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(count)}
    if first is not None:
        environ["SLURM_ARRAY_TASK_MIN"] = str(first)
    if step is not None:
        environ["SLURM_ARRAY_TASK_STEP"] = str(step)
    return environ


def test_array_tasks_are_numbered_from_the_arrays_first_task() -> None:
    assert [shard_from_slurm(_array(task, 4, 0)) for task in range(4)] == [(i, 4) for i in range(4)]
    assert [shard_from_slurm(_array(task, 8, 1)) for task in range(1, 9)] == [(i, 8) for i in range(8)]
    assert shard_from_slurm(_array(3, 4)) == (3, 4)  # no SLURM_ARRAY_TASK_MIN: from 0
    assert [shard_from_slurm(_array(task, 3, 10, 5)) for task in (10, 15, 20)] == [(0, 3), (1, 3), (2, 3)]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "not in a Slurm job array"),
        ({"SLURM_ARRAY_TASK_ID": "2"}, "not in a Slurm job array"),
        (_array(9, 3, 1), "array task 9 is not one of 3 evenly spaced tasks from 1"),  # --array=1,4,9
        (_array(4, 3, 1, 2), "array task 4 is not one of 3 evenly spaced tasks from 1 \\(step 2\\)"),
        ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"}, "SLURM_ARRAY_TASK_ID='x'"),
    ],
)
def test_outside_an_even_array_is_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(LongBenchError, match=message):
        shard_from_slurm(environ)


def test_cli_takes_the_shard_from_the_array(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("LONGBENCH_CACHE", str(tiny_model.parent))
    for name, value in _array(2, 2, 1).items():  # sbatch --array=1-2, second task: shard 1/2
        monkeypatch.setenv(name, value)
    dump = tmp_path / "prompts.jsonl"
    command = ["predict", "--model", "builtin:tiny", "--data", "sample", "--tasks", "trec", "--shard", "auto"]
    assert main([*command, "--dump-prompts", str(dump), "--out", str(tmp_path / "pred")]) == 0
    ids = [record["_id"] for record in iter_records("trec", "sample")]
    assert [json.loads(line)["_id"] for line in dump.read_text().splitlines()] == ids[1::2]
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(name)
    capsys.readouterr()
    assert main([*command, "--out", str(tmp_path / "outside")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("longbench: error: --shard auto: not in a Slurm job array")
    assert not (tmp_path / "outside").exists()
