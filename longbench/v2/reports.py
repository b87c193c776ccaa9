"""LongBench v2 reports: the paper's six-column table, a per-domain table and the files ``eval --v2`` writes.

The tables take the same options as v1's (:class:`longbench.reports.TableOptions`): bootstrap intervals
after each value, and the leaderboard's rows (``data/published_v2.json``) in the run's mode. A row scored on
fewer records than the benchmark's 503 (a subset, ``--limit``, the reference's partial files) is marked
``*`` and named in the title, the CSV's ``partial`` column, ``summary.json`` and the signature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longbench.health import count_health, health_note
from longbench.published import (
    PublishedV2Model,
    published_v2_credit,
    published_v2_label,
    published_v2_models,
)
from longbench.reports import Table, TableOptions
from longbench.signature import completeness_parts, read_run_json, v2_signature
from longbench.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, finite_interval
from longbench.v2.prompts import V2Mode
from longbench.v2.scoring import COLUMNS, EXPECTED, V2Row, result_txt

_PLAIN = TableOptions()
_RAG = re.compile(r"_rag_(\d+)$")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _with_ci(row: V2Row, quantity: str, value: float | None, ci: bool) -> str:
    cell = _cell(value)
    if not ci or value is None:
        return cell
    bounds = finite_interval(row.bootstrap[quantity])
    return cell if bounds is None else f"{cell} [{bounds[0]:.1f}, {bounds[1]:.1f}]"


def row_run(row: V2Row) -> dict[str, Any] | None:
    """The ``run.json`` beside the row's first file (written by ``predict --v2``), if any."""
    return read_run_json(row.path.parent)


def row_mode(row: V2Row) -> V2Mode:
    """The prompt mode of a row: run.json's ``v2_mode`` when it names this row's file, else the reference's
    file names (``<model>_cot``, ``<model>_no_context``, ``<model>_rag_N``; plain otherwise)."""
    run = row_run(row) or {}
    recorded = run.get("v2_mode")
    if isinstance(recorded, dict):
        try:
            mode = V2Mode(
                bool(recorded.get("cot")), bool(recorded.get("no_context")), int(recorded.get("rag", 0))
            )
        except (TypeError, ValueError):
            mode = None
        if mode is not None and mode.output_stem(str(run.get("model_name", ""))) == row.name:
            return mode
    rag = _RAG.search(row.name)
    if rag:
        return V2Mode(rag=int(rag.group(1)))
    return V2Mode(cot=row.name.endswith("_cot"), no_context=row.name.endswith("_no_context"))


def row_unverified(row: V2Row) -> bool:
    """True when the row's run.json says its data was used without checking its sha256."""
    return (row_run(row) or {}).get("verify") is False


def _title(base: str, rows: Sequence[V2Row]) -> str:
    partial = [row.name for row in rows if row.partial()]
    if partial:
        base += f" (PARTIAL: {', '.join(partial)} scored on fewer records than the benchmark's 503)"
    if any(row_unverified(row) for row in rows):
        base += " (UNVERIFIED DATA)"
    return base


def row_subset(row: V2Row) -> Any:
    """The subset of the benchmark the row's run chose (run.json ``subset``: difficulty, length, domains, ids),
    None for the whole benchmark."""
    return (row_run(row) or {}).get("subset") or None


def _partial_cell(row: V2Row) -> str:
    parts = [f"{c} {n['samples']}/{n['expected']}" for c, n in row.partial().items()]
    subset = row_subset(row)
    if subset:
        parts.append(f"subset {json.dumps(subset, sort_keys=True)}")
    if row_unverified(row):
        parts.append("unverified data")
    return "; ".join(parts)


def _published(rows: Sequence[V2Row]) -> list[tuple[str, PublishedV2Model, bool]]:
    """The leaderboard rows to show: (label, model, cot) in the rows' mode (both modes when rows differ;
    none for no-context and RAG runs, which the leaderboard does not publish)."""
    modes = {row_mode(row) for row in rows}
    cots = sorted({mode.cot for mode in modes if not mode.no_context and not mode.rag})
    models = published_v2_models()
    shown = []
    for cot in cots:
        for model in models:
            label = published_v2_label(model, models)
            if len(cots) > 1:
                label = label.replace(" (published)", f" (published, {'w/' if cot else 'w/o'} CoT)")
            shown.append((label, model, cot))
    return shown


def main_table(rows: Sequence[V2Row], options: TableOptions = _PLAIN) -> Table:
    """Overall, Easy, Hard, Short, Medium, Long per row, as the paper's table (intervals and the leaderboard's
    rows on request)."""
    title = "LongBench v2" + (" (compensated)" if rows and rows[0].compensated else "")
    body, partial = [], []
    for row in rows:
        values = row.values()
        mark = "*" if row.partial() else ""
        body.append([row.name + mark, *(_with_ci(row, c, values[c], options.ci) for c in COLUMNS)])
        partial.append(_partial_cell(row))
    if options.published:
        for label, model, cot in _published(rows):
            body.append([label, *model.cells(cot).values()])
            partial.append("")
    return Table(_title(title, rows), ["Model", *COLUMNS], body, _signature(rows), partial)


def domain_table(rows: Sequence[V2Row], options: TableOptions = _PLAIN) -> Table:
    """Accuracy per domain per row."""
    domains = list(dict.fromkeys(d for row in rows for d in row.domain_values()))
    body = []
    for row in rows:
        values = row.domain_values()
        body.append([row.name, *(_with_ci(row, d, values.get(d), options.ci) for d in domains)])
    partial = [_partial_cell(row) for row in rows]
    return Table(_title("LongBench v2 by domain", rows), ["Model", *domains], body, _signature(rows), partial)


def tables(rows: Sequence[V2Row], options: TableOptions = _PLAIN) -> list[Table]:
    """The tables of ``eval --v2``: the six columns, then the domains."""
    return [main_table(rows, options), domain_table(rows, options)]


def _signature(rows: Sequence[V2Row]) -> str:
    base = v2_signature([path for row in rows for path in row.files], bool(rows) and rows[0].compensated)
    scored = sum(len(row.samples) for row in rows)
    return base + completeness_parts(scored, EXPECTED["Overall"] * len(rows), any(map(row_unverified, rows)))


def signature(row: V2Row) -> str:
    """The signature of one row."""
    return _signature([row])


def output_health(row: V2Row) -> dict[str, object]:
    """``summary.json``'s ``output_health`` of a row (one result file: its total is its only task)."""
    counts = count_health((s.health for s in row.samples), v2=True)
    return {"total": counts, "tasks": {row.name: counts}}


def notes(rows: Sequence[V2Row], options: TableOptions = _PLAIN) -> list[str]:
    """Warnings, counts, partial rows, output health, and how many stored judgements disagree with the
    extraction rule."""
    lines = [w for row in rows for w in row.warnings]
    for row in rows:
        empty = [name for name, value in row.values().items() if value is None]
        if empty:
            lines.append(f"warning: {row.name}: no records in {', '.join(empty)} (shown as -)")
        if row_unverified(row):
            lines.append(
                f"warning: {row.name}: data used without checking its sha256 (run.json verify: false)"
            )
        lines.append(
            f"{row.name}: {len(row.samples)} records; {row.disagreements} stored pred/judge disagree with the "
            "answer-extraction rule (the stored judge is scored, as the reference does)"
        )
        if row.partial():
            lines.append(f"{row.name}: partial, {len(row.samples)} of the benchmark's 503 records scored")
        if (row_run(row) or {}).get("data") == "sample":
            lines.append(
                f"{row.name}: scored on the bundled sample set: a smoke test, not LongBench v2's scores"
            )
        health = health_note(row.name, output_health(row)["total"])  # type: ignore[arg-type]
        if health:
            lines.append(health)
    if any(row.partial() for row in rows):
        lines.append("* scored on fewer records than the benchmark has (a subset, --limit or a partial file)")
    if options.ci:
        lines.append("[lo, hi]: 95% bootstrap interval over records (1,000 seeded resamples, percentile)")
    if options.published:
        shown = _published(rows)
        if not shown:
            lines.append("published rows: the leaderboard publishes no no-context or RAG results")
        lines.append(published_v2_credit())
    lines.append(f"signature: {_signature(rows)}")
    return lines


def _samples_jsonl(rows: Sequence[V2Row]) -> str:
    lines = []
    for row in rows:
        for s in row.samples:
            record = {"model": row.name, "_id": s.sample_id, "pred": s.pred, "judge": s.judge}
            record |= {"difficulty": s.difficulty, "length": s.length, "domain": s.domain}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


def ci95(row: V2Row) -> dict[str, object]:
    """``summary.json``'s ``ci95``: each column and each domain -> [lo, hi] (None for an empty bucket)."""
    columns = {c: finite_interval(row.bootstrap[c]) for c in COLUMNS}
    domains = {d: finite_interval(row.bootstrap[d]) for d in row.domain_values()}
    return {"columns": columns, "domains": domains}


def _summary_json(row: V2Row) -> str:
    summary = {
        "model": row.name,
        "result_files": [str(path) for path in row.files],
        "mode": row_mode(row).output_stem("").lstrip("_") or "plain",
        "signature": signature(row),
        "samples": len(row.samples),
        "warnings": row.warnings,
        "partial": row.partial(),
        "subset": row_subset(row),
        "data_verified": not row_unverified(row),
        "output_health": output_health(row),
        "ci95": ci95(row),
        "bootstrap": {"resamples": DEFAULT_RESAMPLES, "seed": DEFAULT_SEED, "interval": "percentile"},
    }
    return json.dumps(summary, ensure_ascii=False, indent=2) + "\n"


def output_files(rows: Sequence[V2Row], out_dir: Path, options: TableOptions = _PLAIN) -> dict[Path, str]:
    """Every file ``longbench eval --v2`` writes, path -> text, built before anything is written: the
    reference's result.txt, result.json, samples, tables, and ``summary.json`` per row (in ``out_dir`` for
    one row, ``out_dir/<row>/`` for several, as v1 does per model)."""
    result = {row.name: {c.lower(): v for c, v in row.values().items()} for row in rows}
    built = tables(rows, options)
    markdown = (
        "\n".join(t.markdown() for t in built) + "\n" + "".join(f"- {n}\n" for n in notes(rows, options))
    )
    files = {
        out_dir / "result.json": json.dumps(result, ensure_ascii=False, indent=4) + "\n",
        out_dir / "result.txt": result_txt(rows),
        out_dir / "samples.jsonl": _samples_jsonl(rows),
        out_dir / "tables.md": markdown,
        out_dir / "table_v2.csv": built[0].csv(),
        out_dir / "table_v2_domains.csv": built[1].csv(),
    }
    for row in rows:
        folder = out_dir if len(rows) == 1 else out_dir / row.name
        files[folder / "summary.json"] = _summary_json(row)
    return files
