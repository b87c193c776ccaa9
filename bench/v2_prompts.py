"""LongBench v2 prompt building: time and peak memory, ``longbench`` beside a straightforward build, same run.

Both builds produce the 0-shot prompt of every record that has a context, cut to ``--window`` tokens
(default 120,000), from a ``data.json`` (a JSON array, as on the hub) written from
``../shared/longbench-data/v2/data_reconstructed.jsonl.gz``:

* ``straightforward``: ``json.load`` of the whole file, then per record: fill, tokenize the whole prompt,
  cut, decode (the reference's ``query_llm``);
* ``longbench``: ``longbench.v2.data.iter_records`` (incremental parse, one record held, sha256 on the way)
  and ``longbench.v2.prompts.first_prompt``.

Each build runs in a fresh process (peak RSS from ``getrusage``); the prompts' sha256 must agree. The tokenizer
is a byte-level BPE trained by this script (4,000 tokens) on the first contexts, saved in a temporary folder.
Usage: ``python bench/v2_prompts.py [--limit N] [--window L]``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "longbench-data" / "v2"


def train_tokenizer(texts: list[str], folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4000, special_tokens=["<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(texts, trainer)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>").save_pretrained(folder)


def straightforward(data: Path, tokenizer_dir: Path, window: int) -> str:
    from transformers import AutoTokenizer

    template = (Path(__file__).resolve().parents[1] / "data" / "v2" / "0shot.txt").read_text(encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    digest = hashlib.sha256()
    with open(data, encoding="utf-8") as handle:
        items = json.load(handle)
    for item in items:
        if item["context"] is None:
            continue
        prompt = template.replace("$DOC$", item["context"].strip()).replace("$Q$", item["question"].strip())
        for letter in "ABCD":
            prompt = prompt.replace(f"$C_{letter}$", item[f"choice_{letter}"].strip())
        ids = tokenizer.encode(prompt)
        if len(ids) > window:
            prompt = tokenizer.decode(ids[: window // 2] + ids[-window // 2 :], skip_special_tokens=True)
        digest.update(prompt.encode("utf-8"))
    return digest.hexdigest()


def packaged(data: Path, tokenizer_dir: Path, window: int) -> str:
    from transformers import AutoTokenizer

    from longbench.v2.data import DataSource, iter_records
    from longbench.v2.prompts import V2Mode, first_prompt

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    digest = hashlib.sha256()
    for record in iter_records(DataSource(data)):
        if record["context"] is not None:
            digest.update(first_prompt(record, V2Mode(), tokenizer, window).encode("utf-8"))
    return digest.hexdigest()


def child(which: str, data: Path, tokenizer_dir: Path, window: int) -> None:
    started = time.perf_counter()
    digest = (straightforward if which == "straightforward" else packaged)(data, tokenizer_dir, window)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "sha256": digest}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N records (default: all 503)")
    parser.add_argument("--window", type=int, default=120_000)
    parser.add_argument("--child", choices=("straightforward", "longbench"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.tokenizer, args.window)
        return
    with tempfile.TemporaryDirectory() as folder:
        data, tokenizer_dir = Path(folder) / "data.json", Path(folder) / "tokenizer"
        with gzip.open(SHARED / "data_reconstructed.jsonl.gz", "rt", encoding="utf-8") as handle:
            records = [json.loads(line) for line in itertools.islice(handle, args.limit)]
        data.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        train_tokenizer([r["context"][:50_000] for r in records[:20] if r["context"]], tokenizer_dir)
        contexts = sum(r["context"] is not None for r in records)
        del records
        rows = {}
        for which in ("straightforward", "longbench"):
            command = [sys.executable, __file__, "--child", which, "--data", str(data)]
            command += ["--tokenizer", str(tokenizer_dir), "--window", str(args.window)]
            env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
            output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
            rows[which] = json.loads(output.strip().splitlines()[-1])
        size = data.stat().st_size / 2**20
    print(
        f"{contexts} contexts, data.json {size:.0f} MiB, window {args.window}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"{'build':<16} {'seconds':>8} {'peak MiB':>9}")
    for which, row in rows.items():
        print(f"{which:<16} {row['seconds']:>8.1f} {row['peak_mib']:>9.0f}")
    base, ours = rows["straightforward"], rows["longbench"]
    print(
        f"{'ratio':<16} {base['seconds'] / ours['seconds']:>7.2f}x {base['peak_mib'] / ours['peak_mib']:>8.2f}x"
    )
    print("identical prompts:", base["sha256"] == ours["sha256"])


if __name__ == "__main__":
    main()
