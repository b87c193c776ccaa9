"""report.html: self-contained (no external resource), with the tables, intervals, figures, warnings and
signature; partial tasks marked in titles, rows and summary.json; the signature carries run.json's hashes.

Always checked by parsing (html.parser); also opened in a real headless Chromium when one is installed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _qa(n: int, correct: int) -> list[dict]:
    return [
        {"pred": f"a{i}" if i < correct else "no", "answers": [f"a{i}"], "all_classes": None, "_id": f"i{i}"}
        for i in range(n)
    ]


class Page(HTMLParser):
    """What the report holds: tables with their cells, headings, image sources, links, list items."""

    def __init__(self) -> None:
        super().__init__()
        self.tables = 0
        self.cells: list[str] = []
        self.headings: list[str] = []
        self.sources: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table":
            self.tables += 1
        if tag in ("td", "h2"):
            self._in = tag
        if tag == "img":
            self.sources.append(values.get("src") or "")
        for key in ("src", "href"):
            value = values.get(key)
            if value and not value.startswith("data:"):
                self.external.append(value)
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in == "td":
            self.cells.append(data)
        elif self._in == "h2":
            self.headings.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    model = root / "pred" / "toy"
    _write(model / "hotpotqa.jsonl", _qa(40, 20))
    _write(model / "musique.jsonl", _qa(200, 50))
    run = {"prompt_table_sha256": "ab" * 32, "chat_template_sha256": "cd" * 32, "compression": {"top_k": 3}}
    (model / "run.json").write_text(json.dumps(run))
    out = root / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "longbench",
            "eval",
            str(model),
            "--ci",
            "--plots",
            "--out",
            str(out),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_report_is_self_contained_with_tables_figures_and_signature(report: Path) -> None:
    page = Page()
    page.feed((report / "report.html").read_text(encoding="utf-8"))
    assert page.external == []
    assert page.tables >= 3
    assert len(page.sources) == 2
    for source in page.sources:
        assert base64.b64decode(source.removeprefix("data:image/png;base64,")).startswith(b"\x89PNG")
    summary = json.loads((report / "summary.json").read_text())
    text = "".join(page.text)
    assert f"signature: {summary['signature']}" in text
    lo, hi = summary["ci95"]["tasks"]["hotpotqa"]
    assert f"50.00 [{lo:.1f}, {hi:.1f}]*" in page.cells  # score, interval, partial mark
    assert "warning:" in text and "hotpotqa" in text


def test_partial_tasks_are_marked_everywhere(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    assert summary["partial"] == {"hotpotqa": {"samples": 40, "expected": 200}}
    tables = (report / "tables.md").read_text()
    titles = [line for line in tables.splitlines() if line.startswith("### ")]
    with_hotpotqa = [
        t
        for t in titles
        if t.startswith(("### LongBench English", "### Scores per task: Multi", "### Scores per task ("))
    ]
    assert len(with_hotpotqa) == 3 and all("PARTIAL: hotpotqa" in t for t in with_hotpotqa)
    assert not any("PARTIAL" in t for t in titles if t.startswith("### LongBench Chinese"))
    assert "| toy* |" in tables  # the row of a category table with a partial task


def test_signature_names_what_decided_the_numbers(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    fields = dict(part.split(":", 1) for part in summary["signature"].split("|"))
    assert fields["benchmark"] == "LongBench-v1" and fields["mode"] == "reference"
    assert fields["prompts"] == "ab" * 6 and fields["chat"] == "cd" * 6
    assert fields["compression"] == "top_k=3"
    assert {"data", "longbench", "numpy", "jieba"} <= set(fields)
    tables = (report / "tables.md").read_text()
    assert tables.count(f"signature: {summary['signature']}") == 1  # once per output, not under every table


@pytest.mark.skipif(
    shutil.which("chromium") is None and os.environ.get("CI") != "true",
    reason="chromium is not installed (under CI=true, as in .ci/run, this test fails instead)",
)
def test_report_renders_offline_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    """A copy of the page with a probe script: every image decodes, nothing was fetched, and the page fits a
    1,200-pixel window (the long signature line wraps)."""
    assert shutil.which("chromium"), "CI=true: .ci/run installs Debian's chromium for this test"
    probe = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " document.body.setAttribute('data-probe', JSON.stringify({tables: document.querySelectorAll('table').length,"
        " images: imgs.length, decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,"
        " fetched: performance.getEntriesByType('resource').length,"
        " width: document.documentElement.scrollWidth})); });</script>"
    )
    page = tmp_path / "probe.html"
    page.write_text((report / "report.html").read_text().replace("</body>", probe + "</body>"))
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    marker = 'data-probe="'
    start = proc.stdout.index(marker) + len(marker)
    probe_json = proc.stdout[start : proc.stdout.index('"', start)].replace("&quot;", '"')
    seen = json.loads(probe_json)
    assert seen["images"] == 2 and seen["decoded"] == 2 and seen["fetched"] == 0 and seen["tables"] >= 3
    assert seen["width"] <= 1200, seen  # no horizontal scrolling in a 1,200-pixel window
