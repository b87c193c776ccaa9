"""GPU check of the transformers backend with real architectures and sizes, offline (random weights).

Builds Qwen2.5-0.5B- and 7B-shaped models with random weights straight on each GPU (nothing downloaded), feeds
them the sample set's real prompts (byte-level tokenizer of the built-in tiny model, middle-truncated to
``--max-length``) through the backend's own ``TokenEngine``, one worker process per GPU, and prints per config
and batch size: prefill and decode tokens/s, model FLOP utilisation against the GPU's peak, peak memory, and
how many outputs differ from batch size 1. Random weights make the outputs noise, but the work per token is
the real model's. ``--config tiny`` runs in seconds on a CPU (to check the script itself).

    python bench/gpu_check.py --config 0.5b,7b --batch-sizes 1,8 --max-length 7500
    python bench/gpu_check.py --config tiny --device cpu --limit 2       # CPU smoke run
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

SHAPES: dict[str, dict[str, int]] = {  # Qwen2.5 configs (hidden, intermediate, layers, heads, kv heads, vocab)
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064),
}  # fmt: skip
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
               "4090": 165.0, "V100": 125.0}  # dense bf16/fp16 tensor-core peaks  # fmt: skip


def sample_jobs(max_length: int, limit: int, max_new: int) -> list[Any]:
    """TokenJobs for the sample set's prompts, built as the runner builds them (tiny tokenizer)."""
    from transformers import AutoTokenizer

    from longbench.backends.hf import TokenJob
    from longbench.loading import iter_records
    from longbench.prompts import build_prompt, encode_model_input
    from longbench.tasks import all_tasks
    from longbench.tinymodel import tiny_model_path

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    jobs = []
    for task in all_tasks():
        for record in list(iter_records(task.name, "sample"))[:limit]:
            ids = encode_model_input(build_prompt(task, record, tokenizer, max_length), tokenizer, False)
            jobs.append(TokenJob(tuple(ids), min(max_new, task.max_new_tokens), None, 0))
    return jobs


def build_model(shape: str, device: str, dtype: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=32768, tie_word_embeddings=shape != "7b")
    config.eos_token_id = 2
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    return model.eval()


def flops(params: int, layers: int, hidden: int, prompt: int, new: int) -> float:
    """Forward FLOPs of a prompt plus ``new`` greedy tokens: 2 x params per token, plus causal attention."""
    attention = 2 * layers * hidden * ((prompt * prompt) + 2 * prompt * new + new * new)
    return 2.0 * params * (prompt + new) + attention


def measure(shape: str, device: str, dtype: str, jobs: list[Any], batch_sizes: list[int]) -> list[dict]:
    import torch

    from longbench.backends.hf import TokenEngine

    model = build_model(shape, device, dtype)
    engine = TokenEngine(model)
    params = sum(p.numel() for p in model.parameters())
    rows, reference = [], None
    for batch in batch_sizes:
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        ordered = sorted(jobs, key=lambda job: (job.max_new_tokens, -len(job.ids)))
        groups = [ordered[i : i + batch] for i in range(0, len(ordered), batch)]
        prefill_s = 0.0
        with torch.inference_mode():
            for group in groups:  # the prompts' forward pass alone, for the prefill rate
                start = time.perf_counter()
                for job in group:
                    model(torch.tensor([job.ids], device=device))
                if device.startswith("cuda"):
                    torch.cuda.synchronize(device)
                prefill_s += time.perf_counter() - start
        start = time.perf_counter()
        outputs = [out for group in groups for out in engine.run(group)]
        total_s = time.perf_counter() - start
        prompt_tokens = sum(len(job.ids) for job in ordered)
        new_tokens = sum(len(out) for out in outputs if isinstance(out, list))
        work = sum(
            flops(params, model.config.num_hidden_layers, model.config.hidden_size, len(j.ids), len(o))
            for j, o in zip(ordered, outputs, strict=True)
            if isinstance(o, list)
        )
        reference = reference or outputs
        peak = torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None
        rows.append({
            "config": shape, "device": device, "batch": batch, "samples": len(ordered),
            "prefill_tok_s": prompt_tokens / prefill_s,
            # generation time less the (unbatched) prefill time: an estimate of the decoding steps' share
            "decode_tok_s": new_tokens / (total_s - prefill_s if total_s > 2 * prefill_s else total_s),
            "tflops": work / total_s / 1e12,
            "peak_gib": (peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            / 2**30,
            "differ_vs_batch1": sum(a != b for a, b in zip(outputs, reference, strict=True)),
        })  # fmt: skip
    return rows


def _worker(args: tuple[str, str, str, list[Any], list[int]], results: Any) -> None:
    results.put(measure(*args))


def peak_tflops(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_TFLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="0.5b,7b", help="tiny, 0.5b, 7b (comma-separated)")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--max-length", type=int, default=7500)
    parser.add_argument("--max-new-tokens", type=int, default=64, help="cap per task (default 64)")
    parser.add_argument("--limit", type=int, default=5, help="samples per task (the sample set has up to 5)")
    parser.add_argument("--device", default="auto", help="auto (every GPU, one worker each), cpu, cuda:N")
    parser.add_argument("--dtype", default=None, help="default bfloat16 on GPUs, float32 on the CPU")
    args = parser.parse_args()

    import torch
    import torch.multiprocessing as mp

    if args.device == "auto":
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    else:
        devices = [args.device]
    if devices == ["cpu"]:
        print("no GPU: CPU run (a check of this script, not a GPU measurement)")
        from longbench.backends.hf import configure_cpu_threads

        configure_cpu_threads()
    dtype = args.dtype or ("float32" if devices == ["cpu"] else "bfloat16")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    jobs = sample_jobs(args.max_length, args.limit, args.max_new_tokens)
    header = f"{'config':6} {'device':7} {'batch':>5} {'n':>4} {'prefill tok/s':>13} {'decode tok/s':>12} "
    print(header + f"{'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>8} {'differ vs b1':>12}")
    for shape in args.config.split(","):
        shards = [jobs[i :: len(devices)] for i in range(len(devices))]
        if len(devices) == 1:
            rows = measure(shape, devices[0], dtype, shards[0], batch_sizes)
        else:  # one worker per GPU, each with its own copy and a share of the samples
            context = mp.get_context("spawn")
            results = context.Queue()
            workers = [
                context.Process(target=_worker, args=((shape, d, dtype, s, batch_sizes), results))
                for d, s in zip(devices, shards, strict=True)
            ]
            for worker in workers:
                worker.start()
            rows = [row for _ in workers for row in results.get()]
            for worker in workers:
                worker.join()
        for row in rows:
            peak = peak_tflops(row["device"])
            mfu = f"{100 * row['tflops'] / peak:5.1f}%" if peak else "   n/a"
            print(
                f"{row['config']:6} {row['device']:7} {row['batch']:>5} {row['samples']:>4} "
                f"{row['prefill_tok_s']:>13.0f} {row['decode_tok_s']:>12.1f} {row['tflops']:>8.3f} {mfu:>6} "
                f"{row['peak_gib']:>8.2f} {row['differ_vs_batch1']:>12}"
            )


if __name__ == "__main__":
    main()
