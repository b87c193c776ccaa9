"""Model input construction: filling, middle truncation, chat wrapping, encoding and the max length.

Uses the built-in tiny model's byte-level tokenizer (one token per UTF-8 byte, a BOS token prepended), so
the expected strings follow from byte arithmetic written out here, independently of the code under test.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from longbench.errors import InputError, LongBenchError
from longbench.prompts import (
    build_prompt,
    chat_template_from_option,
    encode_model_input,
    fill_prompt,
    render_prompt,
    resolve_max_length,
    truncate_middle,
    wrap_chat,
)
from longbench.tasks import all_tasks, get_task

COMPLETION_TASKS = {"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"}  # SPEC, "Chat wrapping"
LLAMA2_LIKE = "{% for message in messages %}[INST]{{ message['content'] }}[/INST]{% endfor %}"


@pytest.fixture(scope="module")
def tok(tiny_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _record(context: str, input_: str = "", dataset: str = "narrativeqa") -> dict:
    return {
        "input": input_,
        "context": context,
        "answers": ["x"],
        "length": 1,
        "dataset": dataset,
        "language": "en",
        "all_classes": None,
        "_id": "id-1",
    }


# ------------------------------------------------------------------ fill_prompt
@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.name)
def test_fill_prompt_substitutes_context_and_input_verbatim(task):
    context = "Braces {stay} {input} {{as}} they are, and so does {context}."
    record = _record(context, "Q? {0}", task.name)
    expected = re.sub(r"\{(context|input)\}", lambda m: record[m.group(1)], task.prompt)
    assert fill_prompt(task, record) == expected


def test_templates_keep_the_reference_typos():
    assert "asconcisely" in get_task("narrativeqa").prompt
    assert (
        fill_prompt(get_task("lcc"), _record("x = 1\n"))
        == "Please complete the code given below. \nx = 1\nNext line of code:\n"
    )


# ------------------------------------------------------------------ truncate_middle
def test_prompt_of_exactly_max_length_tokens_is_untouched(tok):
    prompt = "abcdefghij" * 5  # 50 bytes + BOS = 51 tokens
    assert truncate_middle(prompt, tok, 51) == prompt


def test_one_token_over_drops_the_middle_counting_the_bos(tok):
    prompt = "".join(chr(ord("a") + i % 26) for i in range(50))  # 51 tokens with BOS
    # max_length 50: half = 25 -> BOS + 24 bytes from the front, the last 25 bytes from the back
    assert truncate_middle(prompt, tok, 50) == prompt[:24] + prompt[-25:]


def test_odd_max_length_keeps_floor_half_on_each_side(tok):
    prompt = "abcdefghijklmnop"  # 17 tokens with BOS
    assert truncate_middle(prompt, tok, 7) == "ab" + "nop"
    assert truncate_middle(prompt, tok, 16) == prompt[:7] + prompt[-8:]


def test_max_length_one_keeps_the_whole_prompt_like_the_reference(tok):
    # the reference slices ids[-0:] (every token) when max_length // 2 == 0
    assert truncate_middle("abcdef", tok, 1) == "abcdef"


def test_multibyte_text_is_counted_in_tokens_and_cut_inside_characters(tok):
    prompt = "中文" * 10  # 20 characters, 60 bytes, 61 tokens with BOS
    assert truncate_middle(prompt, tok, 61) == prompt
    # half = 7: BOS + 6 bytes ("中文") in front; the last 7 bytes are a stray byte of "文" then "中文"
    assert truncate_middle(prompt, tok, 14) == "中文" + "\ufffd" + "中文"


def test_build_prompt_is_fill_then_truncate(tok):
    task = get_task("hotpotqa")
    record = _record("p " * 600, "Who?", "hotpotqa")
    filled = fill_prompt(task, record)
    assert build_prompt(task, record, tok, 300) == filled[:149] + filled[-150:]


# ------------------------------------------------------------------ chat wrapping
def test_wrap_chat_renders_one_user_turn_with_generation_prompt(tok):
    template = chat_template_from_option("auto", tok)
    assert wrap_chat("Hi {x}", tok, template) == "<s><|user|>\nHi {x}\n<|assistant|>\n"
    assert wrap_chat("Hi", tok, LLAMA2_LIKE) == "[INST]Hi[/INST]"


def test_no_template_means_raw_prompt(tok):
    assert wrap_chat("Hi", tok, None) == "Hi"


def test_exactly_the_six_completion_tasks_are_not_wrapped(tok):
    template = chat_template_from_option("auto", tok)
    for task in all_tasks():
        rendered = render_prompt("PROMPT", task.chat, tok, template)
        if task.name in COMPLETION_TASKS:
            assert rendered == "PROMPT", task.name
        else:
            assert rendered == "<s><|user|>\nPROMPT\n<|assistant|>\n", task.name


def test_chat_template_none_gives_raw_prompts(tok):
    assert chat_template_from_option("none", tok) is None
    assert render_prompt("P", True, tok, chat_template_from_option("none", tok)) == "P"


def test_chat_template_auto_uses_the_tokenizers_template(tok, tiny_model):
    on_disk = (tiny_model / "chat_template.jinja").read_text(encoding="utf-8")
    assert chat_template_from_option("auto", tok) == on_disk


def test_chat_template_auto_without_one_falls_back_to_raw_with_a_notice(tok, caplog):
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, bos_token="<s>", eos_token="</s>")
    assert bare.chat_template is None
    with caplog.at_level(logging.WARNING, logger="longbench.prompts"):
        assert chat_template_from_option("auto", bare) is None
    assert "no chat template" in caplog.text


def test_chat_template_from_a_file(tok, tmp_path):
    path = tmp_path / "llama2.jinja"
    path.write_text(LLAMA2_LIKE, encoding="utf-8")
    template = chat_template_from_option(str(path), tok)
    assert template == LLAMA2_LIKE
    assert render_prompt("Q", True, tok, template) == "[INST]Q[/INST]"


def test_bad_template_files_are_input_errors(tok, tmp_path):
    with pytest.raises(InputError, match="missing.jinja"):
        chat_template_from_option(str(tmp_path / "missing.jinja"), tok)
    broken = tmp_path / "broken.jinja"
    broken.write_text("line one\n{% for m in messages %}\n{{ m['content'] }\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        chat_template_from_option(str(broken), tok)
    assert caught.value.path == str(broken) and caught.value.line == 3


# ------------------------------------------------------------------ encoding
def test_template_that_writes_the_bos_gets_no_second_one(tok):
    wrapped = wrap_chat("hello", tok, chat_template_from_option("auto", tok))
    assert wrapped.startswith("<s>")
    ids = encode_model_input(wrapped, tok, chat_wrapped=True)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert ids[1:] == [tok.convert_tokens_to_ids(t) for t in tok.tokenize(wrapped[3:])]
    assert len(ids) == 1 + len(wrapped[3:].encode("utf-8"))


def test_template_without_bos_gets_the_default_one(tok):
    wrapped = wrap_chat("hello", tok, LLAMA2_LIKE)
    ids = encode_model_input(wrapped, tok, chat_wrapped=True)
    assert ids[0] == tok.bos_token_id and len(ids) == 1 + len(wrapped.encode("utf-8"))


def test_completion_prompts_get_the_default_special_tokens(tok):
    ids = encode_model_input("def f():\n", tok, chat_wrapped=False)
    assert ids == [tok.bos_token_id] + [3 + b for b in b"def f():\n"]
    # raw text that happens to start with "<s>" is tokenized as the reference would: BOS added
    assert encode_model_input("<s>x", tok, chat_wrapped=False)[:2] == [tok.bos_token_id, tok.bos_token_id]


# ------------------------------------------------------------------ max length
def test_override_wins():
    task = get_task("gov_report")
    assert resolve_max_length("llama2-7b-chat-4k", task, override=1234, context_window=8192) == (1234, None)


@pytest.mark.parametrize(
    ("model", "expected"),
    [  # reference config/model2maxlen.json with config/model2path.json
        ("llama2-7b-chat-4k", 3500),
        ("/models/llama2-7b-chat-4k/", 3500),
        ("meta-llama/Llama-2-7b-chat-hf", 3500),
        ("longchat-v1.5-7b-32k", 31500),
        ("THUDM/chatglm3-6b-32k", 31500),
        ("xgen-7b-8k", 7500),
    ],
)
def test_reference_windows_by_model_name(model, expected):
    assert resolve_max_length(model, get_task("qasper"), override=None, context_window=100_000) == (
        expected,
        None,
    )


def test_unknown_model_uses_window_less_generation_budget_with_a_notice():
    length, notice = resolve_max_length(
        "org/new-model", get_task("gov_report"), override=None, context_window=4096
    )
    assert length == 4096 - 512
    assert notice is not None and "3584" in notice and "4096" in notice and "--max-length" in notice
    assert (
        resolve_max_length("org/new-model", get_task("hotpotqa"), override=None, context_window=4096)[0]
        == 4064
    )


def test_unknown_model_and_window_is_an_error():
    with pytest.raises(LongBenchError, match="--max-length"):
        resolve_max_length("org/new-model", get_task("qasper"), override=None, context_window=None)
    with pytest.raises(LongBenchError, match="--max-length"):
        resolve_max_length("org/new-model", get_task("gov_report"), override=None, context_window=500)
    with pytest.raises(LongBenchError, match="positive"):
        resolve_max_length("llama2-7b-chat-4k", get_task("qasper"), override=0, context_window=None)
