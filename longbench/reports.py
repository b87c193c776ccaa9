"""Reports: the published result tables (Markdown, CSV, terminal) and the files ``longbench eval`` writes."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from longbench.evaluation import BUCKETS, ModelResult
from longbench.jsonl import utf8
from longbench.outputset import install_output_set
from longbench.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from longbench.tasks import all_tasks, table_layout

_NUMBER_LIKE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[^\w=]{0,3}|-")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(cell: str) -> str:
    """``cell`` safe for a spreadsheet: text that would start a formula (``=HYPERLINK(...)``, ``+``, ``-``,
    ``@``) gets a leading ``'``; numbers (``-1.25``, ``3.50*``) are left as they are."""
    if cell.startswith(_FORMULA_START) and not _NUMBER_LIKE.fullmatch(cell):
        return "'" + cell
    return cell


def markdown_cell(cell: str) -> str:
    """``cell`` inside a Markdown table row: ``|`` and backslashes escaped, line breaks made spaces."""
    return " ".join(cell.replace("\\", "\\\\").replace("|", "\\|").splitlines())


@dataclass(frozen=True)
class Table:
    """A titled grid of cells; numbers are already formatted."""

    title: str
    header: list[str]
    rows: list[list[str]]
    signature: str = ""  # what the numbers came from; printed once per output by the caller, not per table

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(map(markdown_cell, self.header)) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|")
        lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(map(csv_cell, self.header))
        writer.writerows(map(csv_cell, row) for row in self.rows)
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


@dataclass(frozen=True)
class TableOptions:
    """What the tables show besides the user's scores."""

    published: bool = False  # the paper's eight models' rows, marked "(published)"
    ci: bool = False  # the bootstrap 95% interval after each score


def _partial_tasks(result: ModelResult, tasks: Sequence[str]) -> list[str]:
    return [t for t in tasks if t in result.scores and result.predictions.missing(t)]


def _partial_title(title: str, results: Sequence[ModelResult], tasks: Sequence[str]) -> str:
    partial = sorted({t for r in results for t in _partial_tasks(r, tasks)})
    if not partial:
        return title
    return f"{title} (PARTIAL: {', '.join(partial)} scored on fewer samples than the benchmark has)"


def _with_ci(cell: str, values: object, ci: bool) -> str:
    from longbench.stats import interval

    if not ci or values is None or cell == "-":
        return cell
    lo, hi = interval(values)  # type: ignore[arg-type]
    return f"{cell} [{lo:.1f}, {hi:.1f}]"


def category_table(
    results: Sequence[ModelResult], language: str, options: TableOptions = TableOptions()
) -> Table:
    """The paper's table for ``language``: Avg then the six categories in the paper's order and names.

    A model row with a partial task is marked ``*`` and the title says which tasks are partial.
    """
    from longbench.published import PAPER_CATEGORIES, PUBLISHED_MARK, paper_layout, published_models

    title = {"en": "LongBench English", "zh": "LongBench Chinese"}[language]
    layout = paper_layout(language)
    header = ["Model", "Avg", *(PAPER_CATEGORIES[c] for c in layout)]
    rows = []
    for r in results:
        scores = category_scores(r, language)
        boot = r.bootstrap if options.ci else None
        cells = [_with_ci(_fmt(scores["Avg"], 1), boot and boot.averages.get(language), options.ci)]
        cells += [
            _with_ci(_fmt(scores[c], 1), boot and boot.categories[language].get(c), options.ci)
            for c in layout
        ]
        mark = "*" if _partial_tasks(r, [t for ts in layout.values() for t in ts]) else ""
        rows.append([r.name + mark, *cells])
    if options.published:
        for model in published_models():
            printed = model.categories[language]
            rows.append([model.name + PUBLISHED_MARK, printed["Avg"], *(printed[c] for c in layout)])
    all_tasks_here = [t for ts in layout.values() for t in ts]
    return Table(_partial_title(title, results, all_tasks_here), header, rows, _signature(results))


def paper_task_tables(results: Sequence[ModelResult], options: TableOptions = TableOptions()) -> list[Table]:
    """The paper's per-task tables: one per category, a row per model, the tasks' display names."""
    from longbench.published import PAPER_CATEGORIES, PUBLISHED_MARK, display_name, published_models

    built = []
    for category in PAPER_CATEGORIES:
        tasks = [t.name for t in all_tasks() if t.category == category]
        if not any(t in r.scores for r in results for t in tasks):
            continue
        rows = []
        for r in results:
            boot = r.bootstrap if options.ci else None
            cells = [
                _with_ci(_fmt(r.task_score(t), 2), boot and boot.tasks[t], options.ci) + _mark(r, t)
                if t in r.scores
                else "-"
                for t in tasks
            ]
            rows.append([r.name, *cells])
        if options.published:
            rows += [[m.name + PUBLISHED_MARK, *(m.tasks[t] for t in tasks)] for m in published_models()]
        title = _partial_title(f"Scores per task: {PAPER_CATEGORIES[category]}", results, tasks)
        built.append(Table(title, ["Model", *(display_name(t) for t in tasks)], rows, _signature(results)))
    return built


def _signature(results: Sequence[ModelResult]) -> str:
    return " ; ".join(sorted({r.signature() for r in results}))


def task_table(results: Sequence[ModelResult]) -> Table:
    """Every task's score: one row per task, one column per model (``*``: partial task)."""
    rows = [
        [task, *(_fmt(r.task_score(task), 2) + _mark(r, task) if task in r.scores else "-" for r in results)]
        for task in _task_order(results)
    ]
    title = _partial_title("Scores per task", results, _task_order(results))
    return Table(title, ["Task", *(r.name for r in results)], rows, _signature(results))


def e_table(result: ModelResult) -> Table:
    """LongBench-E: task x length bucket for one model (the paper's names and order), with each bucket's mean."""
    from longbench.published import display_name, paper_task_order

    rows, columns = [], {b: [] for b in BUCKETS}
    for task in [t for t in paper_task_order() if t in result.scores]:
        buckets = result.scores[task].bucket_scores()
        rows.append([display_name(task) + _mark(result, task), *(_fmt(buckets[b], 2) for b in BUCKETS)])
        for b in BUCKETS:
            if not math.isnan(buckets[b]):
                columns[b].append(buckets[b])
    rows.append(["Avg", *(_fmt(_mean(columns[b]), 2) for b in BUCKETS)])
    title = _partial_title(f"LongBench-E {result.name}", [result], list(result.scores))
    return Table(title, ["Task", *BUCKETS], rows, result.signature())


def e_category_table(result: ModelResult) -> Table:
    """LongBench-E: category x length bucket, each cell the mean of its tasks' bucket scores."""
    from longbench.published import PAPER_CATEGORIES

    rows = []
    for category, name in PAPER_CATEGORIES.items():
        tasks = [t.name for t in all_tasks(e=True) if t.category == category and t.name in result.scores]
        if not tasks:
            continue
        cells = []
        for b in BUCKETS:
            values = [result.scores[t].bucket_scores()[b] for t in tasks]
            values = [v for v in values if not math.isnan(v)]
            cells.append(_fmt(_mean(values), 2))
        mark = "*" if _partial_tasks(result, tasks) else ""
        rows.append([name + mark, *cells])
    title = _partial_title(f"LongBench-E {result.name} by category", [result], list(result.scores))
    return Table(title, ["Category", *BUCKETS], rows, result.signature())


def _task_order(results: Sequence[ModelResult]) -> list[str]:
    order: list[str] = []
    for result in results:
        order += [t for t in result.scores if t not in order]
    return order


def tables(results: Sequence[ModelResult], options: TableOptions = TableOptions()) -> list[Table]:
    """The tables for these results: the paper's two category tables, its per-task tables and every task
    by id; or per bucket for LongBench-E."""
    if results and results[0].e:
        return [table for r in results for table in (e_table(r), e_category_table(r))]
    return [
        category_table(results, "en", options),
        category_table(results, "zh", options),
        *paper_task_tables(results, options),
        task_table(results),
    ]


def notes(results: Sequence[ModelResult], options: TableOptions = TableOptions()) -> list[str]:
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
    if options.ci:
        lines.append("[lo, hi]: 95% bootstrap interval over samples (1,000 seeded resamples, percentile)")
    if options.published:
        from longbench.published import published_credit

        lines.append(published_credit())
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


def partial_tasks(result: ModelResult) -> dict[str, dict[str, int]]:
    """Tasks scored on fewer samples than the benchmark has: task -> {"samples", "expected"}."""
    return {
        task: {"samples": len(result.predictions.tasks[task]), "expected": result.predictions.expected[task]}
        for task in result.scores
        if result.predictions.missing(task)
    }


def _ci95(result: ModelResult) -> dict[str, object]:
    """``summary.json``'s ``ci95``; with LongBench-E also task -> bucket -> [lo, hi] (result.json's shape)."""
    from longbench.scoring import bucket_of
    from longbench.stats import ci95, interval, task_resamples

    intervals = ci95(result.bootstrap)
    if result.e:
        samples: dict[tuple[str, str], list[float]] = {}
        for task, scores in result.scores.items():
            for sample, length in zip(scores.samples, scores.lengths or [], strict=True):
                samples.setdefault((task, bucket_of(length)), []).append(sample.score)
        buckets: dict[str, dict[str, list[float]]] = {}
        for (task, bucket), values in task_resamples(samples).items():
            buckets.setdefault(task, {})[bucket] = interval(values)
        intervals["buckets"] = buckets
    return intervals


def _summary_json(result: ModelResult) -> str:
    summary = {
        "model": result.name,
        "prediction_dirs": [str(d) for d in result.predictions.dirs],
        "signature": result.signature(),
        "samples": {t: len(r) for t, r in result.predictions.tasks.items()},
        "missing": result.predictions.missing_by_task(),
        "recursion_zeroed": result.recursion_zeroed,
        "warnings": result.predictions.warnings,
        "partial": partial_tasks(result),
        "ci95": _ci95(result),
        "bootstrap": {"resamples": DEFAULT_RESAMPLES, "seed": DEFAULT_SEED, "interval": "percentile"},
    }
    return json.dumps(summary, ensure_ascii=False, indent=2) + "\n"


def output_files(
    results: Sequence[ModelResult], out_dir: Path, options: TableOptions = TableOptions()
) -> dict[Path, str]:
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
        files.update(_table_files(folder, [result], options))
    if not single:
        files.update(_table_files(out_dir, results, options))
    return files


def _table_files(folder: Path, results: Sequence[ModelResult], options: TableOptions) -> dict[Path, str]:
    built = tables(results, options)
    lines = notes(results, options)
    markdown = "\n".join(t.markdown() for t in built) + "\n" + "\n".join(f"- {n}" for n in lines) + "\n"
    files = {folder / "tables.md": markdown}
    for table in built:
        slug = _slug(table.title)
        files[folder / f"table_{slug}.csv"] = table.csv()
    return files


def _slug(title: str) -> str:
    """A file name part from a table title: "LongBench English (PARTIAL: ...)" -> "english"."""
    import re

    base = title.split(" (PARTIAL")[0].lower().replace("longbench-e ", "e_").replace("longbench ", "")
    return re.sub(r"[^a-z0-9_.-]+", "_", base.replace("scores per task: ", "tasks_")).strip("_")


def write_output_set(out_dir: Path, files: Mapping[Path, str | bytes]) -> None:
    """Install ``files`` (all under ``out_dir``; text, or bytes for figures) as one set: ``out_dir`` ends up
    with the old set or this one."""
    install_output_set(
        out_dir,
        {
            str(path.relative_to(out_dir)): content if isinstance(content, bytes) else utf8(content)
            for path, content in files.items()
        },
    )
