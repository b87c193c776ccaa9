"""End to end: ``longbench predict --dump-prompts`` on the sample set with the built-in tiny model.

Runs the real command in a subprocess (offline, cache pointed at the session's tiny model) and checks every
dumped text against the reference construction written out here from pred.py's logic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from longbench.tasks import all_tasks

NOT_WRAPPED = ("trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p")
WINDOW = 4096  # the tiny model's context window


def _reference_text(tokenizer, template: str, record: dict, dataset: str, max_length: int) -> str:
    prompt = template.format(**record)
    token_ids = tokenizer(prompt, truncation=False, return_tensors="pt").input_ids[0]
    if len(token_ids) > max_length:
        half = int(max_length / 2)
        head = tokenizer.decode(token_ids[:half], skip_special_tokens=True)
        prompt = head + tokenizer.decode(token_ids[-half:], skip_special_tokens=True)
    if dataset not in NOT_WRAPPED:
        prompt = f"<s><|user|>\n{prompt}\n<|assistant|>\n"  # the tiny model's chat format
    return prompt


def test_dump_prompts_matches_the_reference_construction(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    dump = tmp_path / "prompts.jsonl"
    env = {**os.environ, "LONGBENCH_CACHE": str(tiny_model.parent), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "longbench", "predict", "--model", "builtin:tiny", "--data", "sample"]
    command += ["--dump-prompts", str(dump), "--out", str(tmp_path / "pred")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").rglob("*.jsonl"))

    dumped = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    by_key = {(row["dataset"], row["_id"]): row["prompt"] for row in dumped}
    assert len(by_key) == len(dumped)

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    sample_dir = Path(__file__).resolve().parents[1] / "data" / "sample"
    expected_count = cut = 0
    for task in all_tasks():
        max_length = WINDOW - task.max_new_tokens
        for line in (sample_dir / f"{task.name}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            expected = _reference_text(tokenizer, task.prompt, record, task.name, max_length)
            assert by_key[(task.name, record["_id"])] == expected, (task.name, record["_id"])
            expected_count += 1
            cut += len(tokenizer(task.prompt.format(**record)).input_ids) > max_length
    assert expected_count == len(dumped)
    assert cut >= 15  # truncation was exercised
