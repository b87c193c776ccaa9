"""`longbench eval`'s outputs under OS faults: kills during the swap, full disks, read-only folders, file-size
limits, a second process, odd files named like task files, pathological JSON, interrupted runs, v1 vs E.

Everything runs the real CLI in a subprocess on real files; disks are real tmpfs mounts (skipped where this
machine does not allow mounting), limits are real ``setrlimit`` calls in the child, kills are real SIGKILLs.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


from helpers import no_figures, run_cli, write_jsonl  # noqa: E402

from longbench.result_folder import MANIFEST, check_output_location  # noqa: E402
from longbench.run_files import write_atomic  # noqa: E402

PAUSE_ENV = "LONGBENCH_TEST_PAUSE_SWAP"


def qa_rows(n: int, correct: int) -> list[dict]:
    return [
        {
            "pred": f"answer {i}" if i < correct else "wrong",
            "answers": [f"answer {i}"],
            "all_classes": None,
            "length": 1000 * (i % 10),
            "_id": f"id{i:04d}",
        }
        for i in range(n)
    ]


def predictions(root: Path, n: int, correct: int) -> Path:
    """``root/toy/hotpotqa.jsonl`` with ``n`` samples, ``correct`` of them right."""
    write_jsonl(root / "toy" / "hotpotqa.jsonl", qa_rows(n, correct))
    return root / "toy"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: relative name -> content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(out: Path) -> list[str]:
    """Temporary or old folders an install left beside ``out``."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.is_dir())


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("longbench: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def two_sets(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes], dict[str, bytes]]:
    """Predictions A and B of one model ("toy"), and the complete output set each produces."""
    model_a, model_b = predictions(tmp_path / "a", 200, 50), predictions(tmp_path / "b", 200, 150)
    for model, ref in ((model_a, "ref_a"), (model_b, "ref_b")):
        assert run_cli("eval", model, "--out", tmp_path / ref).returncode == 0
    set_a, set_b = snapshot(tmp_path / "ref_a"), snapshot(tmp_path / "ref_b")
    assert set_a != set_b and MANIFEST in set_a
    return model_a, model_b, set_a, set_b


def kill_at_step(args: list[str | Path], step: str, prelude: str = "") -> None:
    """Start an eval that pauses at swap step ``step``, SIGKILL it once it reports being there."""
    code = f"import sys; {prelude}from longbench.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args), *no_figures(tuple(args))],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, PAUSE_ENV: step},
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.strip() == f"swap-step: {step}":
                break
        else:
            pytest.fail(f"the eval ended without reaching step {step!r}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("step", ["new set written", "sets exchanged"])
def test_kill_during_the_swap_leaves_a_complete_old_or_new_set(tmp_path: Path, two_sets, step: str) -> None:
    model_a, model_b, set_a, set_b = two_sets
    out = tmp_path / "metrics" / "toy"
    assert run_cli("eval", model_a, "--out", out).returncode == 0
    kill_at_step(["eval", model_b, "--out", out], step)
    assert snapshot(out) in (set_a, set_b)  # at the very moment of the kill: one whole set, never a mix
    proc = run_cli("eval", model_b, "--out", out)  # the next run cleans up after the killed one
    assert proc.returncode == 0, proc.stderr
    assert snapshot(out) == set_b and leftovers(out) == []


def test_kill_mid_swap_without_exchange_is_repaired_by_the_next_run(tmp_path: Path, two_sets) -> None:
    """Where the kernel cannot exchange two folders (forced here by disabling it in the child), the old set
    is moved aside first: a kill right then leaves no folder, and the next install puts the old set back."""
    model_a, model_b, set_a, set_b = two_sets
    out = tmp_path / "metrics" / "toy"
    assert run_cli("eval", model_a, "--out", out).returncode == 0
    prelude = "import longbench.result_folder as o; o._exchange = lambda a, b: False; "
    kill_at_step(["eval", model_b, "--out", out], "old set moved aside", prelude)
    assert not out.exists() and leftovers(out)
    check_output_location(out)  # what every eval does first
    assert snapshot(out) == set_a and leftovers(out) == []


def test_two_processes_into_one_folder_leave_one_complete_set(tmp_path: Path, two_sets) -> None:
    model_a, model_b, set_a, set_b = two_sets
    out = tmp_path / "metrics" / "toy"
    command = [sys.executable, "-m", "longbench", "eval", "--no-plots"]
    procs = [
        subprocess.Popen([*command, model, "--out", out], stderr=subprocess.PIPE)
        for model in (model_a, model_b)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert snapshot(out) in (set_a, set_b) and leftovers(out) == []


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``path``; the test is skipped where mounting is not allowed."""
    path.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        )
    except FileNotFoundError:
        pytest.skip("no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_leaves_the_old_set(tmp_path: Path) -> None:
    small, large = predictions(tmp_path / "a", 5, 1), predictions(tmp_path / "b", 200, 150)
    with tmpfs(tmp_path / "disk", "256k") as disk:
        out = disk / "toy"
        assert run_cli("eval", small, "--out", out).returncode == 0
        before = snapshot(out)
        with open(disk / "filler", "wb", buffering=0) as filler:  # fill the disk to the last block
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError:
                pass
        proc = run_cli("eval", large, "--out", out)
        assert_one_line_error(proc, str(out), "disk full")
        assert snapshot(out) == before and leftovers(out) == []


def test_read_only_output_fails_before_scoring(tmp_path: Path) -> None:
    model = predictions(tmp_path / "a", 5, 1)
    with tmpfs(tmp_path / "disk", "256k") as disk:
        out = disk / "toy"
        assert run_cli("eval", model, "--out", out).returncode == 0
        before = snapshot(out)
        with open(model / "hotpotqa.jsonl", "a") as file:
            file.write("{not json\n")  # scoring would fail on this line: the folder must be checked first
        remount = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        proc = run_cli("eval", model, "--out", out)
        assert_one_line_error(proc, str(out), "Read-only file system")
        assert snapshot(out) == before


def test_file_size_limit_leaves_the_old_set(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in the child: Python ignores SIGXFSZ, so the write fails with EFBIG."""
    small, large = predictions(tmp_path / "a", 5, 1), predictions(tmp_path / "b", 200, 150)
    out = tmp_path / "metrics" / "toy"
    assert run_cli("eval", small, "--out", out).returncode == 0
    before = snapshot(out)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = run_cli("eval", large, "--out", out, preexec=limit)
    assert_one_line_error(proc, str(out), "file size limit exceeded")
    assert snapshot(out) == before and leftovers(out) == []


def test_a_folder_of_other_files_is_never_replaced(tmp_path: Path) -> None:
    model = predictions(tmp_path / "a", 5, 1)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    proc = run_cli("eval", model, "--out", out)
    assert_one_line_error(proc, str(out), "did not write")
    assert snapshot(out) == {"notes.txt": b"my notes"}
    # a file of the user's put into an earlier result folder is not swept away with it either
    earlier = tmp_path / "metrics" / "toy"
    assert run_cli("eval", model, "--out", earlier).returncode == 0
    (earlier / "notes.txt").write_text("my notes")
    before = snapshot(earlier)
    assert_one_line_error(run_cli("eval", model, "--out", earlier), str(earlier), "did not write")
    assert snapshot(earlier) == before


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_output_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    model = predictions(tmp_path / "a", 5, 1)
    out = tmp_path / "metrics" / "toy"
    proc = run_cli("eval", model, "--out", out, preexec=lambda: os.umask(umask) and None)
    assert proc.returncode == 0, proc.stderr
    assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {oct(mode)}
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "atomic.json", "{}\n")  # the writer run.json and prediction rewrites use
    finally:
        os.umask(old)
    assert (tmp_path / "atomic.json").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink loop"])
def test_odd_files_named_like_task_files_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    model = predictions(tmp_path / "a", 5, 1)
    odd = model / "trec.jsonl"
    {"fifo": os.mkfifo, "directory": os.mkdir, "symlink loop": lambda p: os.symlink(p.name, p)}[kind](odd)
    proc = run_cli("eval", model, "--out", tmp_path / "out")  # a FIFO used to block here forever
    expected = {"fifo": "is a FIFO", "directory": "is a directory", "symlink loop": "symbolic links"}[kind]
    assert_one_line_error(proc, f"{odd}: ", expected)
    assert not (tmp_path / "out").exists()


def test_a_prediction_folder_that_is_a_symlink_loop_is_a_one_line_error(tmp_path: Path) -> None:
    loop = tmp_path / "toy"
    os.symlink(loop.name, loop)
    proc = run_cli("eval", loop, "--out", tmp_path / "out")
    assert_one_line_error(proc, f"{loop}: not a directory of predictions", "symbolic links")


@pytest.mark.parametrize(
    ("line", "reason"),
    [("[" * 100_000 + "]" * 100_000, "nested too deeply"), ('{"pred": ' + "7" * 5000 + "}", "digits")],
    ids=["deep nesting", "5000-digit integer"],
)
def test_pathological_json_in_predictions_is_one_line_error(tmp_path: Path, line: str, reason: str) -> None:
    model = predictions(tmp_path / "a", 5, 1)
    with open(model / "hotpotqa.jsonl", "a") as file:
        file.write(line + "\n")
    proc = run_cli("eval", model, "--out", tmp_path / "out")
    assert_one_line_error(proc, f"{model / 'hotpotqa.jsonl'}:6: invalid JSON", reason)


@pytest.mark.parametrize(
    "line",
    ["[" * 100_000 + "]" * 100_000, '{"input": ' + "7" * 5000 + "}"],
    ids=["deep nesting", "5000-digit integer"],
)
def test_pathological_json_in_data_is_an_input_error(tmp_path: Path, line: str) -> None:
    from longbench.errors import InputError
    from longbench.loading import iter_records

    path = tmp_path / "my_qasper.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(InputError) as caught:
        list(iter_records("qasper", path))
    assert caught.value.line == 1 and caught.value.path == str(path)


def test_interrupted_run_scores_what_is_there_and_reports_what_is_missing(tmp_path: Path) -> None:
    """The folder an interrupted predict leaves: run.json planning three tasks, one half done, one empty."""
    model = predictions(tmp_path / "pred", 50, 10)
    (model / "trec.jsonl").touch()
    declared = {"hotpotqa": 200, "trec": 200, "musique": 200}
    (model / "run.json").write_text(json.dumps({"e": False, "task_samples": declared, "complete": False}))
    out = tmp_path / "out"
    proc = run_cli("eval", model, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "result.json").read_text()) == {"hotpotqa": 20.0}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing"] == {"hotpotqa": 150, "trec": 200, "musique": 200}
    assert "toy/trec: all 200 samples missing" in proc.stderr
    assert "toy/musique: all 200 samples missing" in proc.stderr
    assert "toy/hotpotqa: 150 of 200 samples missing" in proc.stderr


def test_v1_and_e_results_go_to_distinct_default_folders(tmp_path: Path) -> None:
    v1 = predictions(tmp_path / "pred", 200, 50)
    e = predictions(tmp_path / "pred_e", 300, 150)
    assert run_cli("eval", v1, cwd=tmp_path).returncode == 0
    assert run_cli("eval", e, "--e", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "metrics" / "toy" / "result.json").read_text()) == {"hotpotqa": 25.0}
    assert "0-4k" in json.loads((tmp_path / "metrics_e" / "toy" / "result.json").read_text())["hotpotqa"]


@pytest.mark.parametrize(("n", "flag", "advice"), [(200, ["--e"], "drop --e"), (300, [], "add --e")])
def test_v1_scored_as_e_or_the_reverse_is_refused_by_sample_counts(
    tmp_path: Path, n: int, flag: list[str], advice: str
) -> None:
    model = predictions(tmp_path / "pred", n, 10)
    proc = run_cli("eval", model, *flag, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(model / "hotpotqa.jsonl"), advice)


@pytest.mark.parametrize(
    ("made_as_e", "flag", "advice"), [(False, ["--e"], "drop --e"), (True, [], "add --e")]
)
def test_v1_scored_as_e_or_the_reverse_is_refused_by_run_json(
    tmp_path: Path, made_as_e: bool, flag: list[str], advice: str
) -> None:
    model = predictions(tmp_path / "pred", 20, 10)  # a partial run: the counts alone could not tell
    (model / "run.json").write_text(json.dumps({"e": made_as_e, "task_samples": {"hotpotqa": 20}}))
    proc = run_cli("eval", model, *flag, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(model / "run.json"), advice)


def test_eval_of_a_killed_predict_scores_what_is_there(tmp_path: Path, tiny_model: Path) -> None:
    """A real `longbench predict` (the built-in tiny model) SIGKILLed once its first predictions reach the
    disk: eval scores those and names, per task, how many samples are missing."""
    out = tmp_path / "pred"
    env = {
        **os.environ,
        "LONGBENCH_CACHE": str(tiny_model.parent),
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "longbench", "predict", "--model", "builtin:tiny", "--data", "sample"]
    command += ["--tasks", "trec,hotpotqa", "--max-length", "400", "--out", str(out)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        model = out / "tiny"
        deadline = 600
        while proc.poll() is None and deadline:
            if (
                sum(p.read_bytes().count(b"\n") for p in model.glob("*.jsonl")) >= 1
                and (model / "run.json").exists()
            ):
                break
            time.sleep(0.05)
            deadline -= 1
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "predict finished before it could be killed"
    model = next(out.iterdir())
    done = {p.stem: p.read_bytes().count(b"\n") for p in model.glob("*.jsonl") if p.stem != "errors"}
    result = run_cli("eval", model, "--out", tmp_path / "metrics")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    declared = json.loads((model / "run.json").read_text())["task_samples"]
    assert summary["missing"] == {t: n - done.get(t, 0) for t, n in declared.items() if n > done.get(t, 0)}
    assert summary["missing"] and set(json.loads((tmp_path / "metrics" / "result.json").read_text())) == {
        t for t, n in done.items() if n
    }
