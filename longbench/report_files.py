"""What ``longbench eval`` writes besides result files and tables: figures and the shareable ``report.html``,
for any benchmark, through its score half."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longbench.benchmarks.base import ScoreSpec
from longbench.reports import Table, TableOptions


@dataclass(frozen=True)
class ReportOptions:
    """The table options, and whether figures are drawn (None: when matplotlib is installed)."""

    tables: TableOptions = field(default_factory=TableOptions)
    plots: bool | None = None

    def draws_figures(self) -> bool:
        import importlib.util

        return self.plots if self.plots is not None else importlib.util.find_spec("matplotlib") is not None


def extra_report_files(
    spec: ScoreSpec,
    title: str,
    results: Sequence[Any],
    out_dir: Path,
    options: ReportOptions,
    more_tables: Sequence[Table] = (),
) -> dict[Path, str | bytes]:
    """``report.html`` (always) and, when figures are drawn, every figure as PNG and SVG: path -> content."""
    from longbench.html_report import report_html

    files: dict[Path, str | bytes] = {}
    figures = {}
    if options.draws_figures():
        from longbench.plots import figure_files

        figures = spec.figures(results, options.tables)
        files.update(figure_files(figures, out_dir / "plots"))
    tables = [*spec.tables(results, options.tables), *more_tables]
    notes = spec.notes(results, options.tables)
    files[out_dir / "report.html"] = report_html(title, [r.name for r in results], tables, notes, figures)
    return files
