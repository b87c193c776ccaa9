"""``report.html``: one self-contained page with a run's tables, intervals, figures, warnings and signature.

Nothing is fetched when it is opened: the style is inline and figures are embedded as PNG data URIs,
so the file can be mailed, attached to a pull request or opened offline.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from longbench.reports import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; white-space: nowrap; }
td { text-align: right; } td:first-child, th:first-child { text-align: left; }
tr.published td { color: #666; font-style: italic; }
.signature { font-family: monospace; font-size: 0.8em; color: #555; word-break: break-all; }
.warning { color: #a40; }
img { max-width: 100%; }
"""


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header)
    body = []
    for row in table.rows:
        kind = ' class="published"' if row and "(published" in row[0] else ""
        body.append(f"<tr{kind}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    parts = [
        f"<h2>{html.escape(table.title)}</h2>",
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>",
    ]
    return "\n".join(parts)


def _figure_html(name: str, figure: Figure) -> str:
    from longbench.plots import render

    data = base64.b64encode(render(figure, "png")).decode("ascii")
    return f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>'


def report_html(
    title: str,
    names: Sequence[str],
    tables: Sequence[Table],
    notes: Sequence[str],
    figures: Mapping[str, Figure] | None = None,
) -> str:
    """The whole page as text: ``title`` (the benchmark) and the models' ``names`` in its heading, then the
    tables, the figures and the notes (``warning:`` lines highlighted)."""
    heading = f"{title} results: {', '.join(names)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(heading)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(heading)}</h1>",
    ]
    parts += [_table_html(table) for table in tables]
    parts += [_figure_html(name, fig) for name, fig in (figures or {}).items()]
    parts.append("<h2>Notes</h2><ul>")
    for line in notes:
        kind = ' class="warning"' if line.startswith("warning:") else ""
        kind = ' class="signature"' if line.startswith("signature:") else kind  # long: wraps anywhere
        parts.append(f"<li{kind}>{html.escape(line)}</li>")
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
