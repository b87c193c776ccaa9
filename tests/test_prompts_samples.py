"""The bundled sample set (data/sample): schema, coverage of the 21 tasks, lengths, answers' shapes."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from longbench.prompts import fill_prompt, resolve_max_length
from longbench.schema import FIELDS, validate_record
from longbench.tasks import all_tasks

SAMPLE_DIR = Path(str(resources.files("longbench.data").joinpath("sample")))
SHARED_V1 = Path(__file__).resolve().parents[1].parent / "shared" / "longbench-data" / "v1"


def _length(language: str, obj: dict) -> int:
    """The released files' rule: input + context + first answer, in characters (zh) or words."""
    parts = (obj["input"], obj["context"], obj["answers"][0])
    return sum(len(p) for p in parts) if language == "zh" else sum(len(p.split()) for p in parts)


def _read(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{path} must end with a newline"
    return [json.loads(line) for line in lines[:-1]]


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict]]:
    return {task.name: _read(SAMPLE_DIR / f"{task.name}.jsonl") for task in all_tasks()}


def test_one_file_per_task_plus_readme_and_small():
    names = {p.name for p in SAMPLE_DIR.iterdir()} - {"README.md"}  # the README is not installed
    assert names == {f"{t.name}.jsonl" for t in all_tasks()}
    assert sum(p.stat().st_size for p in SAMPLE_DIR.iterdir()) < 1_000_000


def test_every_record_validates_and_belongs_to_its_task(samples):
    ids = set()
    for task in all_tasks():
        rows = samples[task.name]
        assert len(rows) >= 3, task.name
        for line, obj in enumerate(rows, 1):
            record = validate_record(obj, SAMPLE_DIR / f"{task.name}.jsonl", line)
            assert list(obj) == list(FIELDS) and record == obj
            assert obj["dataset"] == task.name
            assert obj["language"] == ("zh" if task.language == "zh" else "en")
            assert obj["length"] == _length(obj["language"], obj), (task.name, line)
            assert obj["context"].strip() and all(a.strip() for a in obj["answers"])
            ids.add(obj["_id"])
    assert len(ids) == sum(len(rows) for rows in samples.values())


def test_chinese_tasks_are_chinese_and_english_ones_are_not(samples):
    han = re.compile(r"[\u4e00-\u9fff]")
    for task in all_tasks():
        for obj in samples[task.name]:
            assert bool(han.search(obj["context"])) == (task.language == "zh"), task.name


def test_classification_tasks_carry_realistic_class_lists(samples):
    for task in all_tasks():
        for obj in samples[task.name]:
            if task.name not in ("trec", "lsht"):
                assert obj["all_classes"] is None
                continue
            classes = obj["all_classes"]
            assert len(classes) >= 20 and len(set(classes)) == len(classes)
            assert obj["answers"][0] in classes
            labels = re.findall(r"(?:Type|类别)[:：] ?(.+)\n", obj["context"])
            assert labels and set(labels) <= set(classes)


def test_synthetic_answers_have_the_benchmark_shapes(samples):
    for obj in samples["passage_retrieval_en"]:
        number = int(re.fullmatch(r"Paragraph (\d+)", obj["answers"][0]).group(1))
        assert f"Paragraph {number}:" in obj["context"]
    for obj in samples["passage_retrieval_zh"]:
        number = int(re.fullmatch(r"段落(\d+)", obj["answers"][0]).group(1))
        assert f"段落{number}：" in obj["context"]
    for obj in samples["passage_count"]:
        paragraphs = re.findall(r"Paragraph \d+: (.*)", obj["context"])
        assert obj["answers"] == [str(len(set(paragraphs)))] and len(paragraphs) > len(set(paragraphs))


def test_code_answers_are_the_next_line(samples):
    for name in ("lcc", "repobench-p"):
        for obj in samples[name]:
            answer = obj["answers"][0]
            assert "\n" not in answer and answer.strip()
            code_before_cursor = obj["context"] if name == "lcc" else obj["input"]
            assert code_before_cursor.endswith("\n")
    assert all(obj["input"] == "" for obj in samples["lcc"])


def test_several_samples_are_truncated_at_the_tiny_models_window(samples, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    over = under = 0
    for task in all_tasks():
        budget, _ = resolve_max_length("builtin:tiny", task, override=None, context_window=4096)
        for obj in samples[task.name]:
            if len(tok(fill_prompt(task, obj)).input_ids) > budget:
                over += 1
            else:
                under += 1
    assert over >= 15 and under >= 15, (over, under)


@pytest.mark.parametrize("name", ["multi_news", "multifieldqa_zh"])
def test_the_length_rule_reproduces_the_released_files(name):
    path = SHARED_V1 / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"reference data not present: {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 200
    assert all(obj["length"] == _length(obj["language"], obj) for obj in rows)
