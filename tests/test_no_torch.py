"""Without PyTorch: ``predict``/``run`` stop with one line saying what to install, and ``--dump-prompts``
works with the tokenizer alone. PyTorch is hidden from a real subprocess by a ``None`` entry in
``sys.modules`` (``import torch`` then raises ImportError, and ``find_spec`` reports it absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BLOCK_TORCH = (
    "import sys; sys.modules['torch'] = None; from longbench.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _cli(tiny_model: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", BLOCK_TORCH, *args, "--model", str(tiny_model), "--data", "sample",
               "--tasks", "trec,qasper", "--limit", "1", "--out", str(tmp_path / "pred")]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_predict_and_run_say_what_to_install(tiny_model: Path, tmp_path: Path) -> None:
    for command in ("predict", "run"):
        done = _cli(tiny_model, tmp_path, command)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "pip install torch" in done.stderr, done.stderr
        assert not (tmp_path / "pred").exists()  # nothing written


def test_dump_prompts_needs_only_the_tokenizer(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "prompts.jsonl"
    done = _cli(tiny_model, tmp_path, "predict", "--dump-prompts", str(out), "--max-length", "300")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["dataset"] for line in lines} == {"trec", "qasper"}
    assert all(line["prompt"] for line in lines)
