"""``--shard auto``: this job's shard I/N from a Slurm job array's environment variables."""

from __future__ import annotations

from collections.abc import Mapping

from longbench.errors import LongBenchError, SettingError

_NOT_AN_ARRAY = (
    "--shard auto: not in a Slurm job array (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set); "
    "submit with sbatch --array=0-N-1, or pass --shard I/N"
)


def _integer(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    text = environ.get(name)
    if text is None and default is not None:
        return default
    if text is None or not text.strip().lstrip("-").isdigit():
        raise SettingError(
            "{shard} auto: {variable}={text!r} is not a whole number", variable=name, text=text
        )
    return int(text)


def shard_from_slurm(environ: Mapping[str, str]) -> tuple[int, int]:
    """``(I, N)`` for this array task: N tasks numbered from ``SLURM_ARRAY_TASK_MIN`` in steps of
    ``SLURM_ARRAY_TASK_STEP`` (``--array=1-8`` gives shards 0/8 to 7/8); one line when outside an array or
    when the array is not evenly spaced (``--array=1,4,9``)."""
    if "SLURM_ARRAY_TASK_ID" not in environ or "SLURM_ARRAY_TASK_COUNT" not in environ:
        raise LongBenchError(_NOT_AN_ARRAY)
    task = _integer(environ, "SLURM_ARRAY_TASK_ID")
    count = _integer(environ, "SLURM_ARRAY_TASK_COUNT")
    first = _integer(environ, "SLURM_ARRAY_TASK_MIN", 0)
    step = max(1, _integer(environ, "SLURM_ARRAY_TASK_STEP", 1))
    index, off_step = divmod(task - first, step)
    if off_step or not 0 <= index < count:
        raise LongBenchError(
            f"--shard auto: array task {task} is not one of {count} evenly spaced tasks from {first} "
            f"(step {step}); use --array=0-{count - 1}, or pass --shard I/N"
        )
    return index, count
