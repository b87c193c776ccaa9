"""Comparing runs rather than folders: two folders (A, B), the shard folders of two models, or the seeded
runs of two models, paired seed by seed, with the mean and spread of every compared difference across seeds.

Works for any benchmark through its score half (:class:`longbench.benchmarks.base.ScoreSpec`): it groups the
folders into runs (:meth:`group_runs`) and compares two runs (:meth:`compare`); this module only pairs them.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longbench.benchmarks.base import ScoreSettings, ScoreSpec
from longbench.errors import LongBenchError
from longbench.reports import Table
from longbench.seeds import SEED_MARK

ALPHA = 0.05


@dataclass
class SeededComparison:
    """Model ``a`` against model ``b`` on each seed both were run with: one comparison per seed."""

    a: str
    b: str
    runs: dict[str, Any]  # seed -> that seed's comparison

    def spread(self) -> dict[str, dict[str, float | int]]:
        """Compared quantity -> the mean, sample std, min and max of its difference across seeds, and in how
        many seeds p < 0.05."""
        diffs: dict[str, list[tuple[float, float]]] = {}
        for comparison in self.runs.values():
            for label, row in comparison.quantities().items():
                diffs.setdefault(label, []).append((row.diff, row.p))
        return {
            label: {
                "mean_diff": round(statistics.fmean(d for d, _ in values), 2),
                "std": round(statistics.stdev(d for d, _ in values), 2) if len(values) > 1 else 0.0,
                "min": min(d for d, _ in values),
                "max": max(d for d, _ in values),
                "seeds": len(values),
                "significant": sum(p < ALPHA for _, p in values),
            }
            for label, values in diffs.items()
        }

    def table(self) -> Table:
        header = ["", "mean diff", "std", "min", "max", f"p < {ALPHA}"]
        rows = [
            [
                label,
                f"{v['mean_diff']:+.2f}",
                f"{v['std']:.2f}",
                f"{v['min']:+.2f}",
                f"{v['max']:+.2f}",
                f"{v['significant']} of {v['seeds']}",
            ]
            for label, v in self.spread().items()
        ]
        signature = " ; ".join(sorted({c.signature for c in self.runs.values()}))
        return Table(f"{self.a} vs {self.b} across seeds {', '.join(self.runs)}", header, rows, signature)

    def notes(self) -> list[str]:
        return [
            f"diff = {self.a} - {self.b}, paired seed by seed; std is the sample standard deviation across seeds;"
            " each seed's own comparison (intervals, p-values) is in its folder seed<S>/",
        ]

    def files(self, out_dir: Path) -> dict[Path, str]:
        files: dict[Path, str] = {}
        for seed, comparison in self.runs.items():
            files.update(comparison.files(out_dir / f"seed{seed}"))
        table = self.table()
        data = {"a": self.a, "b": self.b, "seeds": list(self.runs), "spread": self.spread()}
        files[out_dir / "comparison_seeds.json"] = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        files[out_dir / "comparison_seeds.md"] = (
            table.markdown() + "".join(f"\n- {n}" for n in self.notes()) + "\n"
        )
        files[out_dir / "comparison_seeds.csv"] = table.csv()
        return files


def _by_seed(runs: dict[str, list[Path]], base: str) -> dict[str, list[Path]]:
    """Seed -> folders of the seeded runs of ``base`` ("" for an unseeded run)."""
    found = {}
    for name, folders in runs.items():
        stem, mark, seed = name.rpartition(SEED_MARK)
        if (stem if mark else name) == base:
            found[seed if mark else ""] = folders
    return found


def compare_runs(spec: ScoreSpec, dirs: Sequence[Path], settings: ScoreSettings) -> Any:
    """Two folders: A against B. More: the folders grouped into the runs of two models (first seen is A);
    seeded runs are paired by seed (both models need the same seeds) and summarised by :class:`SeededComparison`."""
    if len(dirs) < 2:
        raise LongBenchError(
            "compare needs two prediction folders (or the shard or seed folders of two models)"
        )
    if len(dirs) == 2:
        return spec.compare([dirs[0]], [dirs[1]], settings)
    runs = spec.group_runs(dirs)
    bases = list(dict.fromkeys(name.rpartition(SEED_MARK)[0] or name for name in runs))
    if len(bases) != 2:
        raise LongBenchError(f"compare: the folders hold {len(bases)} models ({', '.join(bases)}); give two")
    a, b = (_by_seed(runs, base) for base in bases)
    if set(a) != set(b):
        raise LongBenchError(
            f"compare: {bases[0]} has seeds {sorted(a)} and {bases[1]} has {sorted(b)}; pair runs of the same seeds"
        )
    if list(a) == [""]:
        return spec.compare(a[""], b[""], settings)
    return SeededComparison(
        bases[0], bases[1], {seed: spec.compare(a[seed], b[seed], settings) for seed in a}
    )
