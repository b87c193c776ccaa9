"""LongBench v2 reports: the paper's six-column table, a per-domain table and the files ``eval --v2`` writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from longbench.reports import Table
from longbench.signature import v2_signature
from longbench.v2.scoring import COLUMNS, V2Row, result_txt


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main_table(rows: Sequence[V2Row]) -> Table:
    """Overall, Easy, Hard, Short, Medium, Long per row, as the paper's table."""
    title = "LongBench v2" + (" (compensated)" if rows and rows[0].compensated else "")
    body = [[row.name, *(_cell(v) for v in row.values().values())] for row in rows]
    return Table(title, ["Model", *COLUMNS], body, _signature(rows))


def domain_table(rows: Sequence[V2Row]) -> Table:
    """Accuracy per domain per row."""
    domains = list(dict.fromkeys(d for row in rows for d in row.domain_values()))
    body = [[row.name, *(_cell(row.domain_values().get(d)) for d in domains)] for row in rows]
    return Table("LongBench v2 by domain", ["Model", *domains], body, _signature(rows))


def _signature(rows: Sequence[V2Row]) -> str:
    return v2_signature([row.path for row in rows], bool(rows) and rows[0].compensated)


def notes(rows: Sequence[V2Row]) -> list[str]:
    """Warnings, counts, and how many stored judgements disagree with the extraction rule."""
    lines = [w for row in rows for w in row.warnings]
    for row in rows:
        empty = [name for name, value in row.values().items() if value is None]
        if empty:
            lines.append(f"warning: {row.name}: no records in {', '.join(empty)} (shown as -)")
        lines.append(
            f"{row.name}: {len(row.samples)} records; {row.disagreements} stored pred/judge disagree with the "
            "answer-extraction rule (the stored judge is scored, as the reference does)"
        )
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


def output_files(rows: Sequence[V2Row], out_dir: Path) -> dict[Path, str]:
    """Every file ``longbench eval --v2`` writes, path -> text, built before anything is written."""
    result = {row.name: {c.lower(): v for c, v in row.values().items()} for row in rows}
    built = [main_table(rows), domain_table(rows)]
    markdown = "\n".join(t.markdown() for t in built) + "\n" + "".join(f"- {n}\n" for n in notes(rows))
    return {
        out_dir / "result.json": json.dumps(result, ensure_ascii=False, indent=4) + "\n",
        out_dir / "result.txt": result_txt(rows),
        out_dir / "samples.jsonl": _samples_jsonl(rows),
        out_dir / "tables.md": markdown,
        out_dir / "table_v2.csv": built[0].csv(),
        out_dir / "table_v2_domains.csv": built[1].csv(),
    }
