"""What ``longbench eval`` writes besides result files and tables: figures and the shareable ``report.html``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from longbench.evaluation import ModelResult
from longbench.reports import TableOptions


@dataclass(frozen=True)
class ReportOptions:
    """The table options, and whether figures are drawn (None: when matplotlib is installed)."""

    tables: TableOptions = field(default_factory=TableOptions)
    plots: bool | None = None

    def draws_figures(self) -> bool:
        import importlib.util

        return self.plots if self.plots is not None else importlib.util.find_spec("matplotlib") is not None


def extra_report_files(
    results: Sequence[ModelResult], out_dir: Path, options: ReportOptions
) -> dict[Path, str | bytes]:
    """``report.html`` (always) and, when figures are drawn, every figure as PNG and SVG: path -> content."""
    from longbench.html_report import report_html

    files: dict[Path, str | bytes] = {}
    figures = {}
    if options.draws_figures():
        from longbench.plots import figure_files, result_figures

        figures = result_figures(results, published=options.tables.published)
        files.update(figure_files(figures, out_dir / "plots"))
    files[out_dir / "report.html"] = report_html(results, options.tables, figures)
    return files
