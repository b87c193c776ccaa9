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
from typing import Any

from longbench.evaluation import BUCKETS, ModelResult
from longbench.health import health_note
from longbench.jsonl import utf8
from longbench.result_folder import install_output_set
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
    partial: list[str] | None = None  # per row, what is partial ("" when complete): a CSV column

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(map(markdown_cell, self.header)) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|")
        lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        partial = self.partial if self.partial and any(self.partial) else None
        writer.writerow(map(csv_cell, [*self.header, "partial"] if partial else self.header))
        if partial:
            writer.writerows(
                map(csv_cell, [*row, mark]) for row, mark in zip(self.rows, partial, strict=False)
            )
        else:
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
    """A footnote mark for a task scored on fewer samples than the benchmark has."""
    return "*" if result.predictions.short(task) else ""


def _partial_cell(result: ModelResult, tasks: Sequence[str]) -> str:
    """What of ``tasks`` is partial for ``result``, for the CSV's partial column ("" when complete)."""
    shown = [
        f"{t} {len(result.predictions.tasks[t])}/{result.partial()[t]['expected']}"
        for t in _partial_tasks(result, tasks)
    ]
    if result.predictions.unverified:
        shown.append("unverified data")
    return "; ".join(shown)


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
    return [t for t in tasks if t in result.scores and result.predictions.short(t)]


def _partial_title(title: str, results: Sequence[ModelResult], tasks: Sequence[str]) -> str:
    partial = sorted({t for r in results for t in _partial_tasks(r, tasks)})
    if partial:
        title = f"{title} (PARTIAL: {', '.join(partial)} scored on fewer samples than the benchmark has)"
    if any(r.predictions.unverified for r in results):
        title += " (UNVERIFIED DATA)"
    return title


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
    all_tasks_here = [t for ts in layout.values() for t in ts]
    partial = [_partial_cell(r, all_tasks_here) for r in results]
    if options.published:
        for model in published_models():
            printed = model.categories[language]
            rows.append([model.name + PUBLISHED_MARK, printed["Avg"], *(printed[c] for c in layout)])
            partial.append("")
    title = _partial_title(title, results, all_tasks_here)
    return Table(title, header, rows, _signature(results), partial)


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
        partial = [_partial_cell(r, tasks) for r in results]
        if options.published:
            rows += [[m.name + PUBLISHED_MARK, *(m.tasks[t] for t in tasks)] for m in published_models()]
            partial += [""] * len(published_models())
        title = _partial_title(f"Scores per task: {PAPER_CATEGORIES[category]}", results, tasks)
        header = ["Model", *(display_name(t) for t in tasks)]
        built.append(Table(title, header, rows, _signature(results), partial))
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
    partial = [
        ", ".join(r.name for r in results if task in _partial_tasks(r, [task]))
        for task in _task_order(results)
    ]
    return Table(title, ["Task", *(r.name for r in results)], rows, _signature(results), partial)


def _bucket_resamples(result: ModelResult) -> dict[tuple[str, str], Any]:
    """LongBench-E: (task, bucket) -> the bucket score (x100) of each seeded bootstrap resample."""
    from longbench.scoring import bucket_of
    from longbench.stats import task_resamples

    samples: dict[tuple[str, str], list[float]] = {}
    for task, scores in result.scores.items():
        for sample, length in zip(scores.samples, scores.lengths or [], strict=True):
            samples.setdefault((task, bucket_of(length)), []).append(sample.score)
    return task_resamples(samples)


def _e_cell(value: float | None, resampled: Sequence[Any], ci: bool) -> str:
    """A bucket score, with the interval of the mean of ``resampled`` (its tasks' bucket resamples)."""
    import numpy as np

    cell = _fmt(value, 2)
    if not ci or cell == "-" or not resampled:
        return cell
    return _with_ci(cell, np.mean(resampled, axis=0), True)


def e_table(result: ModelResult, options: TableOptions = TableOptions()) -> Table:
    """LongBench-E: task x length bucket for one model (the paper's names and order), with each bucket's mean
    (and with ``ci``, each cell's bootstrap 95% interval)."""
    from longbench.published import display_name, paper_task_order

    boot = _bucket_resamples(result) if options.ci else {}
    rows, columns = [], {b: [] for b in BUCKETS}
    for task in [t for t in paper_task_order() if t in result.scores]:
        buckets = result.scores[task].bucket_scores()
        cells = [
            _e_cell(buckets[b], [boot[task, b]] if (task, b) in boot else [], options.ci) for b in BUCKETS
        ]
        rows.append([display_name(task) + _mark(result, task), *cells])
        for b in BUCKETS:
            if not math.isnan(buckets[b]):
                columns[b].append(buckets[b])
    averages = [
        _e_cell(_mean(columns[b]), [v for (t, k), v in boot.items() if k == b], options.ci) for b in BUCKETS
    ]
    rows.append(["Avg", *averages])
    title = _partial_title(f"LongBench-E {result.name}", [result], list(result.scores))
    order = [t for t in paper_task_order() if t in result.scores]
    partial = [_partial_cell(result, [t]) for t in order] + [_partial_cell(result, order)]
    return Table(title, ["Task", *BUCKETS], rows, result.signature(), partial)


def e_category_table(result: ModelResult, options: TableOptions = TableOptions()) -> Table:
    """LongBench-E: category x length bucket, each cell the mean of its tasks' bucket scores."""
    from longbench.published import PAPER_CATEGORIES

    boot = _bucket_resamples(result) if options.ci else {}
    rows, partial = [], []
    for category, name in PAPER_CATEGORIES.items():
        tasks = [t.name for t in all_tasks(e=True) if t.category == category and t.name in result.scores]
        if not tasks:
            continue
        cells = []
        for b in BUCKETS:
            values = [result.scores[t].bucket_scores()[b] for t in tasks]
            values = [v for v in values if not math.isnan(v)]
            resampled = [boot[t, b] for t in tasks if (t, b) in boot]
            cells.append(_e_cell(_mean(values), resampled, options.ci))
        mark = "*" if _partial_tasks(result, tasks) else ""
        rows.append([name + mark, *cells])
        partial.append(_partial_cell(result, tasks))
    title = _partial_title(f"LongBench-E {result.name} by category", [result], list(result.scores))
    return Table(title, ["Category", *BUCKETS], rows, result.signature(), partial)


def _task_order(results: Sequence[ModelResult]) -> list[str]:
    order: list[str] = []
    for result in results:
        order += [t for t in result.scores if t not in order]
    return order


def v1_tables(results: Sequence[ModelResult], options: TableOptions = TableOptions()) -> list[Table]:
    """LongBench v1's tables: the paper's two category tables, its per-task tables and every task by id."""
    return [
        category_table(results, "en", options),
        category_table(results, "zh", options),
        *paper_task_tables(results, options),
        task_table(results),
    ]


def e_tables(results: Sequence[ModelResult], options: TableOptions = TableOptions()) -> list[Table]:
    """LongBench-E's tables: per model, task x length bucket and category x length bucket."""
    return [table for r in results for table in (e_table(r, options), e_category_table(r, options))]


def tables(results: Sequence[ModelResult], options: TableOptions = TableOptions()) -> list[Table]:
    """The tables for these results: :func:`e_tables` for LongBench-E results, else :func:`v1_tables`."""
    return (e_tables if results and results[0].e else v1_tables)(results, options)


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
    for result in results:
        if result.predictions.sample_set:
            lines.append(
                f"{result.name}: scored on the bundled sample set (a few samples per task): a smoke test, not "
                "LongBench's scores"
            )
        for task, counts in result.partial().items():
            lines.append(
                f"{result.name}/{task}: partial, {counts['samples']} of the benchmark's {counts['expected']} "
                "samples scored"
            )
        health = health_note(result.name, result.output_health()["total"])  # type: ignore[arg-type]
        if health:
            lines.append(health)
    if any(r.partial() for r in results):
        lines.append(
            "* task scored on fewer samples than the benchmark has (--limit, the sample set, a subset, smaller"
            " derived data or an unfinished run); not comparable with full results"
        )
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
    return result.partial()


def _ci95(result: ModelResult) -> dict[str, object]:
    """``summary.json``'s ``ci95``; with LongBench-E also task -> bucket -> [lo, hi] (result.json's shape)."""
    from longbench.stats import ci95, interval

    intervals = ci95(result.bootstrap)
    if result.e:
        buckets: dict[str, dict[str, list[float]]] = {}
        for (task, bucket), values in _bucket_resamples(result).items():
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
        "data_verified": not result.predictions.unverified,
        "output_health": result.output_health(),
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

    base = (
        re.sub(r" \((PARTIAL|UNVERIFIED).*$", "", title)
        .lower()
        .replace("longbench-e ", "e_")
        .replace("longbench ", "")
    )
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


def seed_tables(spread: Mapping[str, Mapping[str, Mapping[str, float | int]]]) -> list[Table]:
    """One table per model run with several seeds: each headline quantity's mean, std, min and max across
    the runs (see :mod:`longbench.seeds`)."""
    built = []
    for model, quantities in spread.items():
        rows = [
            [
                name,
                _fmt(v["mean"], 2),
                _fmt(v["std"], 2),
                _fmt(v["min"], 2),
                _fmt(v["max"], 2),
                str(v["runs"]),
            ]
            for name, v in quantities.items()
        ]
        header = ["Quantity", "mean", "std", "min", "max", "runs"]
        built.append(Table(f"{model} across seeds (mean and spread of separate runs)", header, rows))
    return built


def seed_files(spread: Mapping[str, object], tables_: Sequence[Table], out_dir: Path) -> dict[Path, str]:
    """``seeds.json`` (model -> quantity -> mean, std, min, max, runs) and each spread table as CSV."""
    if not spread:
        return {}
    files = {out_dir / "seeds.json": json.dumps(spread, ensure_ascii=False, indent=2) + "\n"}
    for table in tables_:
        files[out_dir / f"table_seeds_{_slug(table.title.split(' across seeds')[0])}.csv"] = table.csv()
    files[out_dir / "seeds.md"] = "\n".join(t.markdown() for t in tables_)
    return files
