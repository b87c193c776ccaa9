"""The signature tells apart runs whose predictions were made differently: a seed, a thinking budget, chat
template switches, decoding left to the server, a v2 subset, Ray execution (read from real run.json files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longbench.signature import signature, v2_signature

VARIANTS = {
    "seed": ({"seed": 7}, "seed:7"),
    "thinking": ({"thinking_budget": 512}, "thinking:512"),
    "kwargs": ({"chat_template_kwargs": {"enable_thinking": False}}, "chat-kwargs:"),
    "server": ({"backend_settings": {"decoding_neutral": False}}, "decoding:server"),
    "subset": ({"subset": {"difficulty": "hard"}}, "subset:"),
    "ray": ({"backend_settings": {"execution": {"engine": "ray", "replicas": 2}}}, "exec:ray"),
}


def folder_with_run(root: Path, run: dict) -> Path:
    folder = root / "model"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"backend": "transformers", **run}), encoding="utf-8")
    return folder


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_setting_changes_both_signatures(tmp_path: Path, variant: str) -> None:
    run, field = VARIANTS[variant]
    plain = folder_with_run(tmp_path / "plain", {})
    changed = folder_with_run(tmp_path / "changed", run)
    assert field not in signature([plain], False, False)
    assert field in signature([changed], False, False)
    assert field not in v2_signature([plain / "m.jsonl"], False)
    assert field in v2_signature([changed / "m.jsonl"], False)
