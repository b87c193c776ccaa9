"""The README's Python example runs as written (against a prediction folder made here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_api_example_runs(tmp_path: Path) -> None:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    folder = tmp_path / "pred" / "tiny"
    folder.mkdir(parents=True)
    row = {"pred": "Paris", "answers": ["Paris"], "all_classes": None, "length": 10, "_id": "a"}
    (folder / "hotpotqa.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("qa_f1 ")
    assert lines[-1] == "{'hotpotqa': 100.0}"
