"""Prediction speed of the transformers backend: batched vs one at a time, and the pipeline's own overhead.

Runs ``longbench.runner.predict`` end to end (data loading, prompt building and truncation, generation,
decoding, crash-safe writes) over the bundled sample set, once per batch size. The model's forward passes
are timed with hooks and ``model.generate`` with a wrapper, which splits the wall time three ways: forward
passes; transformers' decoding loop between them (logits processing, cache bookkeeping); and everything
longbench itself does outside ``generate``. "outside forward" is the share of wall time not in a forward
pass (target < 10%); "longbench" the share outside ``generate``. It also checks that every batch size gives
exactly the one-at-a-time predictions.

    python bench/predict_speed.py                      # tiny model, CPU, batch sizes 1 and 8
    python bench/predict_speed.py --device cuda --config qwen2-0.5b --batch-sizes 1,8,32

``--config qwen2-0.5b`` builds a random-weight model with Qwen2-0.5B's shapes (24 layers, hidden 896,
32k window; vocabulary cut to the byte-level tokenizer's): realistic compute without downloading weights.
"""

from __future__ import annotations

import argparse
import functools
import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from longbench.backends.hf import TransformersBackend
from longbench.runner import predict
from longbench.tasks import all_tasks, select_tasks
from longbench.tinymodel import tiny_model_path


def qwen2_like(directory: Path) -> Path:
    """A random-weight model with Qwen2-0.5B's layer shapes and the tiny model's tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    target = directory / "qwen2-0.5b-random"
    if (target / "config.json").exists():
        return target
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


class ForwardTimer:
    """Accumulates wall time inside the model's top-level forward calls."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._cuda = next(model.parameters()).is_cuda
        self._handles = [
            model.register_forward_pre_hook(self._start),
            model.register_forward_hook(self._stop),
        ]

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize()

    def _start(self, module, args) -> None:
        self._sync()
        self._began = time.perf_counter()

    def _stop(self, module, args, output) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._began
        self.calls += 1

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def time_generate(model: torch.nn.Module) -> list[float]:
    """Wrap ``model.generate`` (this instance only) to add its wall time to the returned one-item list."""
    spent = [0.0]
    original = model.generate

    @functools.wraps(original)
    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - began

    model.generate = timed
    return spent


def measure(model_path: Path, batch_size: int, device: str | None, tasks, max_length: int | None, out: Path):
    backend = TransformersBackend(str(model_path), batch_size=batch_size, device=device)
    timer = ForwardTimer(backend.model)  # loads the weights before the clock starts
    in_generate = time_generate(backend.model)
    started = time.perf_counter()
    summary = predict(backend, tasks, "sample", out, max_length=max_length, notify=lambda _: None)
    wall = time.perf_counter() - started
    timer.remove()
    backend.close()
    preds = {}
    for path in summary.out_dir.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            preds[record["_id"]] = record["pred"]
    return {
        "batch": batch_size,
        "samples": summary.written,
        "wall": wall,
        "forward": timer.seconds,
        "generate": in_generate[0],
        "tokens": summary.generated_tokens,
        "preds": preds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("tiny", "qwen2-0.5b"), default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--tasks", default=None, help="comma-separated (default: all 21)")
    parser.add_argument(
        "--max-length", type=int, default=None, help="default: the model's window less new tokens"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = select_tasks(args.tasks.split(",")) if args.tasks else all_tasks()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model = tiny_model_path() if args.config == "tiny" else qwen2_like(root)
        rows = [
            measure(model, int(size), args.device, tasks, args.max_length, root / f"bs{size}")
            for size in args.batch_sizes.split(",")
        ]
    cpu = platform.processor() or platform.machine()
    print(f"# {args.config} model, device {args.device}, {len(tasks)} tasks of the sample set")
    print(f"# {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads")
    print()
    print(
        "| batch | samples | wall s | samples/s | gen tok/s | forward s | decoding loop s | longbench s "
        "| outside forward | longbench | = batch 1 |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    base = rows[0]["preds"]
    for row in rows:
        same = sum(row["preds"].get(key) == value for key, value in base.items())
        loop = row["generate"] - row["forward"]
        own = row["wall"] - row["generate"]
        print(
            f"| {row['batch']} | {row['samples']} | {row['wall']:.1f} | {row['samples'] / row['wall']:.2f} "
            f"| {row['tokens'] / row['wall']:.0f} | {row['forward']:.1f} | {loop:.1f} | {own:.2f} "
            f"| {1 - row['forward'] / row['wall']:.1%} | {own / row['wall']:.1%} | {same}/{len(base)} |"
        )
    return 0 if all(row["preds"] == base for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
