"""Reports: the published result tables (Markdown, CSV, terminal) and the files ``longbench eval`` writes."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from longbench.evaluation import BUCKETS, ModelResult
from longbench.outputset import install_output_set
from longbench.tasks import table_layout


@dataclass(frozen=True)
class Table:
    """A titled grid of cells; numbers are already formatted."""

    title: str
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def text(self) -> str:
        grid = [self.header, *self.rows]
        widths = [max(len(row[i]) for row in grid) for i in range(len(self.header))]
        lines = [self.title]
        for n, row in enumerate(grid):
            cells = [
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _fmt(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def _mark(result: ModelResult, task: str) -> str:
    """A footnote mark for a task scored on a partial set of samples."""
    return "*" if result.predictions.missing(task) else ""


def category_scores(result: ModelResult, language: str) -> dict[str, float | None]:
    """Category -> mean of its task scores (None when a task is absent), plus "Avg" over the six categories."""
    scores: dict[str, float | None] = {}
    for category, tasks in table_layout(language).items():
        present = [result.task_score(t) for t in tasks if t in result.scores]
        scores[category] = _mean(present) if len(present) == len(tasks) else None
    categories = list(scores.values())
    scores["Avg"] = None if None in categories else _mean(categories)  # type: ignore[arg-type]
    return scores


def category_table(results: Sequence[ModelResult], language: str) -> Table:
    """The paper's table for ``language``: one row per model, the six categories and their average."""
    title = {"en": "LongBench English", "zh": "LongBench Chinese"}[language]
    header = ["Model", *table_layout(language), "Avg"]
    rows = [[r.name, *(_fmt(v, 1) for v in category_scores(r, language).values())] for r in results]
    return Table(title, header, rows)


def task_table(results: Sequence[ModelResult]) -> Table:
    """Every task's score: one row per task, one column per model (``*``: partial task)."""
    rows = [
        [task, *(_fmt(r.task_score(task), 2) + _mark(r, task) if task in r.scores else "-" for r in results)]
        for task in _task_order(results)
    ]
    return Table("Scores per task", ["Task", *(r.name for r in results)], rows)


def e_table(result: ModelResult) -> Table:
    """LongBench-E: task x length bucket for one model, with the mean of each bucket."""
    rows, columns = [], {b: [] for b in BUCKETS}
    for task, scores in result.scores.items():
        buckets = scores.bucket_scores()
        rows.append([task + _mark(result, task), *(_fmt(buckets[b], 2) for b in BUCKETS)])
        for b in BUCKETS:
            if not math.isnan(buckets[b]):
                columns[b].append(buckets[b])
    rows.append(["Avg", *(_fmt(_mean(columns[b]), 2) for b in BUCKETS)])
    return Table(f"LongBench-E {result.name}", ["Task", *BUCKETS], rows)


def _task_order(results: Sequence[ModelResult]) -> list[str]:
    order: list[str] = []
    for result in results:
        order += [t for t in result.scores if t not in order]
    return order


def tables(results: Sequence[ModelResult]) -> list[Table]:
    """The tables for these results: the two published tables and per task, or per bucket for LongBench-E."""
    if results and results[0].e:
        return [e_table(r) for r in results]
    return [category_table(results, "en"), category_table(results, "zh"), task_table(results)]


def notes(results: Sequence[ModelResult]) -> list[str]:
    """Lines to show under the tables: signature, partial tasks, samples zeroed by rouge's recursion limit."""
    lines = []
    for result in results:
        for warning in result.predictions.warnings:
            lines.append(f"warning: {warning}")
        zeroed = result.recursion_zeroed
        what = "scored properly (--corrected)" if result.corrected else "scored 0 as the reference does"
        detail = ": " + ", ".join(f"{task} {n}" for task, n in zeroed.items()) if zeroed else ""
        lines.append(
            f"{result.name}: {sum(zeroed.values())} sample(s) overflow the reference rouge's recursion limit,"
            f" {what}{detail}"
        )
    if any(r.predictions.missing(t) for r in results for t in r.scores):
        lines.append("* task scored on a partial set of samples (see the warnings above)")
    lines += sorted({f"signature: {r.signature()}" for r in results})
    return lines


def _samples_jsonl(result: ModelResult) -> str:
    merged = len(result.predictions.dirs) > 1
    lines = []
    for task, scores in result.scores.items():
        for record, sample in zip(result.predictions.tasks[task], scores.samples, strict=True):
            row: dict[str, object] = {"dataset": task, "index": record.index, "score": sample.score}
            if merged:
                row["file"] = str(record.path)
            if record.id is not None:
                row["_id"] = record.id
            if result.e:
                row["length"] = record.length
            if sample.recursion_zeroed:
                row["recursion_zeroed"] = True
            lines.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _summary_json(result: ModelResult) -> str:
    summary = {
        "model": result.name,
        "prediction_dirs": [str(d) for d in result.predictions.dirs],
        "signature": result.signature(),
        "samples": {t: len(r) for t, r in result.predictions.tasks.items()},
        "missing": result.predictions.missing_by_task(),
        "recursion_zeroed": result.recursion_zeroed,
        "warnings": result.predictions.warnings,
    }
    return json.dumps(summary, ensure_ascii=False, indent=2) + "\n"


def output_files(results: Sequence[ModelResult], out_dir: Path) -> dict[Path, str]:
    """Every file ``longbench eval`` writes, path -> text, so nothing is written until all are ready.

    One model writes into ``out_dir`` itself; several models write ``out_dir/<model>/`` each plus the
    comparison tables in ``out_dir``.
    """
    files: dict[Path, str] = {}
    single = len(results) == 1
    for result in results:
        folder = out_dir if single else out_dir / result.name
        files[folder / "result.json"] = json.dumps(result.result_json(), ensure_ascii=False, indent=4) + "\n"
        files[folder / "samples.jsonl"] = _samples_jsonl(result)
        files[folder / "summary.json"] = _summary_json(result)
        files.update(_table_files(folder, [result]))
    if not single:
        files.update(_table_files(out_dir, results))
    return files


def _table_files(folder: Path, results: Sequence[ModelResult]) -> dict[Path, str]:
    built = tables(results)
    markdown = (
        "\n".join(t.markdown() for t in built) + "\n" + "\n".join(f"- {n}" for n in notes(results)) + "\n"
    )
    files = {folder / "tables.md": markdown}
    for table in built:
        slug = table.title.lower().replace("longbench-e ", "e_").replace("longbench ", "").replace(" ", "_")
        files[folder / f"table_{slug}.csv"] = table.csv()
    return files


def write_output_set(out_dir: Path, files: dict[Path, str]) -> None:
    """Install ``files`` (all under ``out_dir``) as one set: ``out_dir`` ends up with the old set or this one."""
    install_output_set(
        out_dir, {str(path.relative_to(out_dir)): text.encode("utf-8") for path, text in files.items()}
    )
