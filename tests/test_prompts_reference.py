"""Parity with the reference ``pred.py`` on real LongBench files: the exact text (and ids) the model gets.

Needs ../shared (three released files and the reference prompt table); skipped without it. Two tokenizers
are trained here on those files in a few seconds: a byte-level BPE (GPT-2 / Llama-3 style) and a
Llama-2-style one (metaspace "▁" pieces with byte fallback). Each gets the chat format that the reference
hand-wrote for one of its models, as a Jinja chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longbench.prompts import build_prompt, encode_model_input, render_prompt
from longbench.tasks import get_task

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "longbench-data" / "v1"
PROMPT_TABLE = SHARED / "spec" / "reference-config" / "v1" / "dataset2prompt.json"
FILES = ("multi_news", "multifieldqa_zh", "passage_retrieval_zh")
MAX_LENGTHS = (3500, 7500, 31500)
NOT_WRAPPED = ("trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p")

if not (PROMPT_TABLE.is_file() and all((DATA / f"{name}.jsonl").is_file() for name in FILES)):
    pytest.skip(f"reference data not present under {SHARED}", allow_module_level=True)


# The reference's hand-written chat formats (pred.py build_chat) for llama2 and internlm, and the same
# formats as chat templates for our construction.
def llama2_chat(prompt: str) -> str:
    return f"[INST]{prompt}[/INST]"


def internlm_chat(prompt: str) -> str:
    return f"<|User|>:{prompt}<eoh>\n<|Bot|>:"


LLAMA2_TEMPLATE = "{% for message in messages %}[INST]{{ message['content'] }}[/INST]{% endfor %}"
INTERNLM_TEMPLATE = (
    "{% for message in messages %}<|User|>:{{ message['content'] }}<eoh>\n<|Bot|>:{% endfor %}"
)


def reference_model_text(tokenizer, template: str, record: dict, dataset: str, max_lengths, build_chat):
    """pred.py's get_pred up to the model call, for several max lengths: {max_length: text}."""
    prompt = template.format(**record)
    token_ids = tokenizer(prompt, truncation=False, return_tensors="pt").input_ids[0]
    texts = {}
    for max_length in max_lengths:
        text = prompt
        if len(token_ids) > max_length:
            half = int(max_length / 2)
            head = tokenizer.decode(token_ids[:half], skip_special_tokens=True)
            text = head + tokenizer.decode(token_ids[-half:], skip_special_tokens=True)
        if dataset not in NOT_WRAPPED:
            text = build_chat(text)
        texts[max_length] = (text, len(token_ids) > max_length)
    return texts


def _records() -> dict[str, list[dict]]:
    return {
        name: [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        for name in FILES
    }


def _training_texts(records: dict[str, list[dict]]):
    for rows in records.values():
        for row in rows[:50]:
            yield row["context"][:4000]


def _byte_level_tokenizer(records):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_training_texts(records), trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")


def _llama2_style_tokenizer(records):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=400, show_progress=False
    )
    trained.train_from_iterator(_training_texts(records), trainer)
    spec = json.loads(trained.to_str())
    vocab = spec["model"]["vocab"]
    for byte in range(256):  # byte fallback pieces, as in Llama 2's vocabulary
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    spec["model"]["byte_fallback"] = True
    backend = Tokenizer.from_str(json.dumps(spec))
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict]]:
    return _records()


@pytest.fixture(scope="module")
def prompt_table() -> dict[str, str]:
    return json.loads(PROMPT_TABLE.read_text(encoding="utf-8"))


# case: (tokenizer, chat template, reference chat format, every n-th record, lengths that must cut something)
CASES = {
    "byte-level-bpe+llama2-chat": (_byte_level_tokenizer, LLAMA2_TEMPLATE, llama2_chat, 1, MAX_LENGTHS),
    # every third record, to keep the file fast; its longest prompt is under 31500 tokens
    "llama2-style-bpe+internlm-chat": (
        _llama2_style_tokenizer,
        INTERNLM_TEMPLATE,
        internlm_chat,
        3,
        (3500, 7500),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_model_text_equals_the_reference_construction(case, records, prompt_table):
    make_tokenizer, chat_template, build_chat, step, must_cut = CASES[case]
    tokenizer = make_tokenizer(records)
    truncated = dict.fromkeys(MAX_LENGTHS, 0)
    compared = 0
    for name, rows in records.items():
        task = get_task(name)
        assert task.prompt == prompt_table[name]
        for line, record in list(enumerate(rows, 1))[::step]:
            compared += 1
            expected = reference_model_text(
                tokenizer, prompt_table[name], record, name, MAX_LENGTHS, build_chat
            )
            for max_length, (reference_text, was_cut) in expected.items():
                prompt = build_prompt(task, record, tokenizer, max_length)
                ours = render_prompt(prompt, task.chat, tokenizer, chat_template)
                assert ours == reference_text, f"{name}.jsonl:{line} at max_length {max_length}"
                truncated[max_length] += was_cut
                if max_length == MAX_LENGTHS[0] and line % 10 == 1:  # the ids, as pred.py makes them
                    reference_ids = tokenizer(reference_text, truncation=False).input_ids
                    assert encode_model_input(ours, tokenizer, chat_wrapped=task.chat) == reference_ids
    # the comparison must have exercised truncation, and not only truncation
    assert compared == sum(len(rows[::step]) for rows in records.values())
    assert all(truncated[max_length] > 0 for max_length in must_cut), truncated
    assert all(count < compared for count in truncated.values()), truncated
