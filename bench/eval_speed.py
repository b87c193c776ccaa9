"""Scoring speed: the reference's way (rouge / fuzzywuzzy / jieba per sample) versus ``longbench``.

Scores the 4,750 v1 predictions of ``../shared/longbench-preds/v1/llama2-7b-chat-4k`` twice, each in
a fresh Python process timed from the outside (start-up, imports, reading the files and scoring):

* ``baseline``: a straightforward implementation in this file that, like the reference
  ``metrics.py``, calls ``rouge.Rouge().get_scores``, fuzzywuzzy's ``fuzz.ratio`` (forced onto its
  difflib path, which the published numbers use) and jieba for every sample, on one core;
* ``longbench``: ``longbench.scoring.score_tasks`` with its defaults (all cores).

It prints a table of wall times and the speed-up, and checks that all per-sample scores are
identical. Usage: ``python bench/eval_speed.py [--runs N] [--baseline-runs N] [--preds DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

DEFAULT_PREDS = Path(__file__).resolve().parents[1].parent / "shared/longbench-preds/v1/llama2-7b-chat-4k"

FIRST_LINE_TASKS = {"trec", "triviaqa", "samsum", "lsht"}


def read_predictions(directory: Path) -> list[dict]:
    """Each task file as {"task", "predictions", "answers", "all_classes" (last line's), "lengths"}."""
    tasks = []
    for path in sorted(directory.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").split("\n")  # as `for line in file`: only on "\n"
        rows = [json.loads(line) for line in lines if line.strip()]
        tasks.append(
            {
                "task": path.stem,
                "predictions": [row["pred"] for row in rows],
                "answers": [row["answers"] for row in rows],
                "all_classes": rows[-1]["all_classes"],
                "lengths": [row.get("length") for row in rows],
            }
        )
    return tasks


# --- baseline: the reference metrics, written plainly, calling the same packages -------------------


def _baseline_metrics():
    import difflib

    import jieba
    from fuzzywuzzy import fuzz
    from rouge import Rouge

    fuzz.SequenceMatcher = difflib.SequenceMatcher  # the pure-Python path, as in the published results
    jieba.setLogLevel(60)
    cn_punct = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."

    en_punct = set(string.punctuation)
    zh_punct = set(string.punctuation + cn_punct)

    def norm_en(s):
        s = "".join(ch for ch in s.lower() if ch not in en_punct)
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    def norm_zh(s):
        return "".join("".join(ch for ch in s.lower() if ch not in zh_punct).split())

    def f1(pred, gold):
        same = sum((Counter(pred) & Counter(gold)).values())
        if same == 0:
            return 0
        p, r = 1.0 * same / len(pred), 1.0 * same / len(gold)
        return (2 * p * r) / (p + r)

    def qa_f1(pred, gold, **_):
        return f1(norm_en(pred).split(), norm_en(gold).split())

    def qa_f1_zh(pred, gold, **_):
        p = [t for t in (norm_zh(t) for t in jieba.cut(pred, cut_all=False)) if t]
        g = [t for t in (norm_zh(t) for t in jieba.cut(gold, cut_all=False)) if t]
        return f1(p, g)

    def rouge(pred, gold, **_):
        try:
            return Rouge().get_scores([pred], [gold], avg=True)["rouge-l"]["f"]
        except Exception:
            return 0.0

    def rouge_zh(pred, gold, **_):
        return rouge(" ".join(jieba.cut(pred, cut_all=False)), " ".join(jieba.cut(gold, cut_all=False)))

    def classification(pred, gold, all_classes, **_):
        found = [c for c in all_classes if c in pred]
        for term in found:  # mutating while iterating, as the reference
            if term in gold and term != gold:
                found.remove(term)
        return 1.0 / len(found) if gold in found else 0.0

    def share(pred, wanted):
        numbers = re.findall(r"\d+", pred)
        return 0.0 if not numbers else float(sum(n == wanted for n in numbers) / len(numbers))

    def code_sim(pred, gold, **_):
        line = next(
            (s for s in pred.lstrip("\n").split("\n") if not any(t in s for t in ("`", "#", "//"))), ""
        )
        return fuzz.ratio(line, gold) / 100

    return {
        "qa_f1": qa_f1,
        "qa_f1_zh": qa_f1_zh,
        "rouge": rouge,
        "rouge_zh": rouge_zh,
        "classification": classification,
        "retrieval": lambda p, g, **_: share(p, re.findall(r"Paragraph (\d+)", g)[0]),
        "retrieval_zh": lambda p, g, **_: share(p, re.findall(r"段落(\d+)", g)[0]),
        "count": lambda p, g, **_: share(p, g),
        "code_sim": code_sim,
    }


def run_baseline(tasks: list[dict]) -> dict[str, list[float]]:
    from longbench.tasks import get_task

    metrics = _baseline_metrics()
    scores = {}
    for task in tasks:
        metric = metrics[get_task(task["task"]).metric]
        values = []
        for prediction, answers in zip(task["predictions"], task["answers"], strict=True):
            if task["task"] in FIRST_LINE_TASKS:
                prediction = prediction.lstrip("\n").split("\n")[0]
            score = 0.0
            for answer in answers:
                score = max(score, metric(prediction, answer, all_classes=task["all_classes"]))
            values.append(score)
        scores[task["task"]] = values
    return scores


def run_longbench(tasks: list[dict]) -> dict[str, list[float]]:
    from longbench.scoring import TaskPredictions, score_tasks

    items = [TaskPredictions(**task) for task in tasks]
    return {result.task: [s.score for s in result.samples] for result in score_tasks(items)}


# --- driver -----------------------------------------------------------------------------------------


def _child(kind: str, directory: Path, out: Path) -> None:
    tasks = read_predictions(directory)
    scores = run_baseline(tasks) if kind == "baseline" else run_longbench(tasks)
    out.write_text(json.dumps(scores), encoding="utf-8")


def _timed_child(kind: str, directory: Path) -> tuple[float, float, dict[str, list[float]]]:
    """Wall and CPU (user + system, its worker processes included) seconds of one child run."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.json"
        command = [sys.executable, __file__, "--child", kind, "--preds", str(directory), "--out", str(out)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return elapsed, cpu, json.loads(out.read_text(encoding="utf-8"))


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preds", type=Path, default=DEFAULT_PREDS, help="a v1 prediction directory")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of longbench (median shown)")
    parser.add_argument("--baseline-runs", type=int, default=1, help="timed runs of the baseline")
    parser.add_argument("--child", choices=("baseline", "longbench"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.preds, args.out)
        return 0
    if not args.preds.is_dir():
        print(f"skipped: prediction directory {args.preds} not found (it lives in ../shared)")
        return 0

    samples = sum(len(task["predictions"]) for task in read_predictions(args.preds))
    base_times, base_cpu, base_scores = [], [], {}
    for _ in range(args.baseline_runs):
        elapsed, cpu, base_scores = _timed_child("baseline", args.preds)
        base_times.append(elapsed)
        base_cpu.append(cpu)
    ours_times, ours_cpu, ours_scores = [], [], {}
    for _ in range(args.runs):
        elapsed, cpu, ours_scores = _timed_child("longbench", args.preds)
        ours_times.append(elapsed)
        ours_cpu.append(cpu)

    differing = [
        (task, k)
        for task, values in base_scores.items()
        for k, (a, b) in enumerate(zip(values, ours_scores.get(task, []), strict=False))
        if a != b
    ]
    missing = sum(len(v) for v in base_scores.values()) - sum(len(v) for v in ours_scores.values())
    base, ours = statistics.median(base_times), statistics.median(ours_times)
    base_c, ours_c = statistics.median(base_cpu), statistics.median(ours_cpu)
    print(f"machine: {_machine()}")
    print(f"predictions: {args.preds} ({samples} samples, {len(base_scores)} tasks)")
    print()
    print("| implementation | wall (s) | CPU (s) | runs | speed-up (wall) |")
    print("|---|---:|---:|---:|---:|")
    print(
        "| baseline: rouge / fuzzywuzzy (difflib) / jieba per sample, 1 process "
        f"| {base:.2f} | {base_c:.2f} | {len(base_times)} | 1.0x |"
    )
    print(
        f"| longbench `score_tasks`, {os.cpu_count()} workers "
        f"| {ours:.2f} | {ours_c:.2f} | {len(ours_times)} | {base / ours:.1f}x |"
    )
    print()
    print(
        "Each run is a fresh `python` process: start-up, imports, reading the files, scoring (median shown)."
    )
    print(f"longbench runs (wall): {', '.join(f'{t:.2f}' for t in ours_times)} s")
    identical = not differing and missing == 0
    print(
        f"per-sample scores identical: {'yes' if identical else 'NO'} ({len(differing)} differ, {missing} missing)"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
