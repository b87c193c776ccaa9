"""Figures: the objects hold the right axes, lines, labels and models (no pixel comparison), and the
files `eval --plots` writes are valid PNG and SVG."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from longbench.evaluation import evaluate  # noqa: E402
from longbench.plots import length_lines, radar, task_bars  # noqa: E402
from longbench.published import PAPER_CATEGORIES, published_models  # noqa: E402
from longbench.reports import category_scores  # noqa: E402
from longbench.stats import interval  # noqa: E402
from longbench.tasks import all_tasks  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _full_model(root: Path, name: str, k: int, lengths: bool = False) -> Path:
    """Every task with 6 samples, some answered: a model every table and figure can show."""
    folder = root / name
    for t, task in enumerate(all_tasks()):
        rows = []
        for i in range(6):
            hit = (i + t + k) % 3 == 0
            if task.metric == "classification":
                row = {"pred": "a" if hit else "zz", "answers": ["a"], "all_classes": ["a", "b"]}
            elif task.metric.startswith("retrieval"):
                gold = "段落3" if task.language == "zh" else "Paragraph 3"
                row = {"pred": "3" if hit else "4", "answers": [gold], "all_classes": None}
            elif task.metric == "count":
                row = {"pred": "7" if hit else "8", "answers": ["7"], "all_classes": None}
            else:
                row = {"pred": "word" if hit else "", "answers": ["word"], "all_classes": None}
            row["length"] = [1000, 5000, 9000][i % 3]
            rows.append(row)
        _write(folder / f"{task.name}.jsonl", rows)
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("pred")
    return evaluate([_full_model(root, "alpha", 0), _full_model(root, "beta", 1)], workers=1)


def test_radar_has_the_six_categories_and_every_model(results) -> None:  # type: ignore[no-untyped-def]
    fig = radar(results, published=True)
    (ax,) = fig.axes
    assert ax.name == "polar"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(PAPER_CATEGORIES.values())
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["alpha", "beta", *(f"{m.name} (published)" for m in published_models())]
    scores = category_scores(results[0], "en")
    radii = list(ax.get_lines()[0].get_ydata())
    assert radii[:-1] == [scores[c] for c in PAPER_CATEGORIES] and radii[-1] == radii[0]  # closed polygon
    chatglm3 = ax.get_lines()[-1].get_ydata()
    assert list(chatglm3[:6]) == [40.3, 46.6, 29.5, 68.1, 56.2, 50.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_task_bars_show_scores_with_their_intervals(results) -> None:  # type: ignore[no-untyped-def]
    fig = task_bars(results)
    (ax,) = fig.axes
    assert len(ax.get_xticklabels()) == 21 and ax.get_xticklabels()[0].get_text() == "NarrativeQA"
    from matplotlib.container import BarContainer

    bar_sets = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bar_sets] == ["alpha", "beta"]
    bars = bar_sets[0]
    heights = [patch.get_height() for patch in bars.patches]
    assert heights[0] == results[0].task_score("narrativeqa")
    # the error bar of the first bar spans the bootstrap interval
    segments = bars.errorbar.lines[2][0].get_segments()
    lo, hi = interval(results[0].bootstrap.tasks["narrativeqa"])
    assert segments[0][0][1] == pytest.approx(lo) and segments[0][1][1] == pytest.approx(hi)


def test_length_chart_for_longbench_e(tmp_path: Path) -> None:
    e_results = evaluate([_full_model(tmp_path, "gamma", 2)], e=True, workers=1)
    fig = length_lines(e_results)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Length" and ax.get_ylabel() == "Avg Score"
    (line,) = ax.get_lines()
    assert line.get_label() == "gamma" and list(line.get_xdata()) == ["0-4k", "4-8k", "8k+"]
    scores = [s.bucket_scores() for s in e_results[0].scores.values()]
    want = [sum(b[k] for b in scores) / len(scores) for k in ("0-4k", "4-8k", "8k+")]
    assert list(line.get_ydata()) == pytest.approx(want)


def test_eval_writes_valid_png_and_svg(tmp_path: Path) -> None:
    model = _full_model(tmp_path / "pred", "alpha", 0)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "longbench",
            "eval",
            str(model),
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
    for name in ("radar", "tasks"):
        assert (out / "plots" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
        root = ET.parse(out / "plots" / f"{name}.svg").getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_plots_without_matplotlib_is_one_clear_line_and_no_output(tmp_path: Path) -> None:
    """matplotlib made unimportable in the child process: the extra is named, nothing is written."""
    model = tmp_path / "pred" / "alpha"
    _write(model / "hotpotqa.jsonl", [{"pred": "a", "answers": ["a"], "all_classes": None}])
    out = tmp_path / "out"
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
        "from longbench.cli import main\n"
        f"sys.exit(main(['eval', {str(model)!r}, '--plots', '--out', {str(out)!r}, '--workers', '1']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "longbench[plots]" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
