"""LongBench v2 prompts against the reference's construction, rebuilt here from SPEC-v2 sections 2-3.

The oracle reads the templates from ``../shared/spec/reference-config/v2`` (not the package's copy), fills
them with chained ``str.replace`` calls written out as pred.py does, counts with ``tokenizer.encode`` and
cuts with the literal ``ids[:L//2] + ids[-L//2:]`` decoded in one call. Compared character for character on
real records of ``../shared/longbench-data/v2`` with the tiny model's byte-level tokenizer (every byte a
token, so cuts fall inside multi-byte characters) and a BPE tokenizer trained in the test.
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from longbench.v2.prompts import V2Mode, fill, first_prompt, resolve_window, second_prompt, truncate

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "longbench-data" / "v2" / "data_reconstructed.jsonl.gz"
TEMPLATES = SHARED / "spec" / "reference-config" / "v2"
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="../shared/longbench-data/v2 absent")


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def reference_query_prompt(prompt: str, tokenizer: Any, L: int) -> str:  # noqa: N803 - the reference's name
    """query_llm's truncation: encode with default special tokens, keep ids[:L//2] + ids[-L//2:]."""
    input_ids = tokenizer.encode(prompt)
    if len(input_ids) > L:
        input_ids = input_ids[: L // 2] + input_ids[-L // 2 :]
        prompt = tokenizer.decode(input_ids, skip_special_tokens=True)
    return prompt


def reference_prompts(item: dict, *, cot: bool, no_context: bool, rag: int, cot_output: str) -> list[str]:
    """pred.py's get_pred for one item: the first prompt, and the CoT answer prompt when ``cot``."""
    context = item["context"]
    if rag > 0:
        tpl = template("0shot_rag.txt")
        retrieved = sorted(item["retrieved_context"][:rag], key=lambda x: x["c_idx"])
        context = "\n\n".join([f"Retrieved chunk {i + 1}: {x['content']}" for i, x in enumerate(retrieved)])
    elif no_context:
        tpl = template("0shot_no_context.txt")
    elif cot:
        tpl = template("0shot_cot.txt")
    else:
        tpl = template("0shot.txt")
    prompt = (
        tpl.replace("$DOC$", context.strip())
        .replace("$Q$", item["question"].strip())
        .replace("$C_A$", item["choice_A"].strip())
        .replace("$C_B$", item["choice_B"].strip())
        .replace("$C_C$", item["choice_C"].strip())
        .replace("$C_D$", item["choice_D"].strip())
    )
    prompts = [prompt]
    if cot:
        prompts.append(
            template("0shot_cot_ans.txt")
            .replace("$DOC$", context.strip())
            .replace("$Q$", item["question"].strip())
            .replace("$C_A$", item["choice_A"].strip())
            .replace("$C_B$", item["choice_B"].strip())
            .replace("$C_C$", item["choice_C"].strip())
            .replace("$C_D$", item["choice_D"].strip())
            .replace("$COT$", cot_output.strip())
        )
    return prompts


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """Records 0-29 of the real data that have a context (record 0's context is over 1,000,000 characters)."""
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in itertools.islice(handle, 30)]
    return [r for r in rows if r["context"] is not None]


@pytest.fixture(scope="module")
def byte_tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def bpe_tokenizer(records: list[dict]) -> Any:
    """A byte-level BPE tokenizer (with merges, BOS added) trained here on a slice of the real contexts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800, special_tokens=["<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator([r["context"][:20000] for r in records[:8]], trainer)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>")


def with_retrieval(record: dict, chunks: int = 6) -> dict:
    """The record with a retrieved_context list (ranked out of document order) cut from its own context."""
    size = 400
    ranked = [7, 2, 11, 0, 5, 3][:chunks]
    pieces = [{"c_idx": i, "content": record["context"][i * size : (i + 1) * size]} for i in ranked]
    return {**record, "retrieved_context": pieces}


MODES = {
    "0-shot": V2Mode(),
    "cot": V2Mode(cot=True),
    "no-context": V2Mode(no_context=True),
    "rag-3": V2Mode(rag=3),
    "rag-5-cot": V2Mode(rag=5, cot=True),
    "no-context-cot": V2Mode(no_context=True, cot=True),
}
COT = "  The passage says $Q$ and $C_A$; so (B).\n"


def compare(record: dict, mode: V2Mode, tokenizer: Any, window: int) -> list[str]:
    expected = reference_prompts(
        record, cot=mode.cot, no_context=mode.no_context, rag=mode.rag, cot_output=COT
    )
    expected = [reference_query_prompt(p, tokenizer, window) for p in expected]
    got = [first_prompt(record, mode, tokenizer, window)]
    if mode.cot:
        got.append(second_prompt(record, mode, COT, tokenizer, window))
    assert got == expected
    return got


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
@pytest.mark.parametrize("window", [120_000, 8_001, 999, 7, 1, 0])
def test_prompts_equal_the_reference_on_real_records(
    records: list[dict], byte_tokenizer: Any, mode: V2Mode, window: int
) -> None:
    """Real records with their contexts trimmed to 20,000 characters (the full size is tested below)."""
    for record in records[1:3]:
        compare(
            with_retrieval({**record, "context": record["context"][:20_000]}), mode, byte_tokenizer, window
        )


def test_context_over_120000_tokens_is_cut_to_the_window(records: list[dict], byte_tokenizer: Any) -> None:
    record = records[0]
    assert len(record["context"].encode()) > 1_000_000
    prompt = compare(record, V2Mode(), byte_tokenizer, 120_000)[0]
    assert len(byte_tokenizer.encode(prompt)) <= 120_001  # the BOS counted in the window is skipped on decode
    assert prompt.startswith("Please read the following text") and prompt.endswith('(insert answer here)".')


@pytest.mark.parametrize("window", [120_000, 4_095, 333])
def test_trained_bpe_tokenizer(records: list[dict], bpe_tokenizer: Any, window: int) -> None:
    for record in records[3:5]:
        trimmed = {**record, "context": record["context"][:40_000]}
        for mode in (V2Mode(), V2Mode(cot=True), V2Mode(rag=4)):
            compare(with_retrieval(trimmed), mode, bpe_tokenizer, window)


def test_cut_inside_a_multibyte_character_is_decoded_jointly(
    records: list[dict], byte_tokenizer: Any
) -> None:
    """The head ends one byte into a U+2019 and the tail starts two bytes into another: decoded jointly (as
    the reference does) they form a new, valid character; v1's separate decodes give three U+FFFD instead."""
    tpl = (TEMPLATES / "0shot.txt").read_text(encoding="utf-8")
    record = next(r for r in records if r["context"][:30_000].count("\u2019") > 20)
    context = record["context"][:30_000]
    prefix = len(tpl.split("$DOC$")[0].encode())
    suffix = len(fill(tpl, record, "").encode()) - prefix
    marks = [i for i, ch in enumerate(context) if ch == "\u2019"]
    offsets = [prefix + len(context[:i].encode()) for i in marks]  # byte offset of each U+2019 in the prompt
    ends = {len(context[:c].encode()): c for c in range(len(context) + 1)}  # byte length -> characters
    found = [
        (s, t, ends[s + t + 4 - prefix - suffix])
        for s in offsets
        for j, t in zip(marks, offsets, strict=True)
        if t > s
        and ends.get(s + t + 4 - prefix - suffix, 0) > j + 1
        and not context[ends[s + t + 4 - prefix - suffix] - 1].isspace()
    ]
    assert found, "no trimming of the context puts both cuts inside a U+2019"
    s, t, c = found[0]
    trimmed = {**record, "context": context[:c]}
    filled = fill(tpl, trimmed, trimmed["context"])
    window = 2 * (s + 2) + 1  # odd: the tail keeps one token more than the head
    got, cut = truncate(filled, byte_tokenizer, window)
    assert cut and got == reference_query_prompt(filled, byte_tokenizer, window)
    ids = byte_tokenizer.encode(filled)
    separately = byte_tokenizer.decode(ids[: window // 2], skip_special_tokens=True) + byte_tokenizer.decode(
        ids[-window // 2 :], skip_special_tokens=True
    )
    assert "\ufffd" not in got and separately.count("\ufffd") == 3
    assert (
        got
        == filled.encode()[: s + 1].decode(errors="replace")[:-1]
        + "\u2019"
        + filled.encode()[t + 3 :].decode()
    )


def test_placeholders_inside_fields_are_replaced_in_sequence(
    records: list[dict], byte_tokenizer: Any
) -> None:
    record = dict(records[1])
    record["context"] = "  ctx $Q$ and $C_D$ and $COT$  " + record["context"][:3000]
    record["question"] = " Which $C_A$ with $DOC$? "
    record["choice_B"] = "b $C_C$ $Q$"
    record["choice_C"] = "c-choice"
    for mode in (V2Mode(), V2Mode(cot=True), V2Mode(rag=2, cot=True)):
        prompts = compare(with_retrieval(record, 3), mode, byte_tokenizer, 100_000)
    prompts = compare(record, V2Mode(cot=True), byte_tokenizer, 100_000)
    one_pass = prompts[0]
    assert "b c-choice $Q$" in one_pass and "$DOC$?" in one_pass
    assert "The passage says $Q$ and $C_A$; so (B)." in prompts[1]  # $COT$ goes last: its placeholders stay


def test_no_context_needs_a_context_like_the_reference(records: list[dict], byte_tokenizer: Any) -> None:
    from longbench.errors import LongBenchError

    with pytest.raises(LongBenchError, match="no context"):
        first_prompt({**records[0], "context": None}, V2Mode(no_context=True), byte_tokenizer, 100)


def test_window_resolution() -> None:
    assert resolve_window("meta-llama/Llama-3.1-8B-Instruct", None, 131072) == (120_000, None)
    assert resolve_window("claude-3.5-sonnet-20241022", None, None) == (200_000, None)
    window, notice = resolve_window("builtin:tiny", None, 2048)
    assert window == 2048 and notice is not None and "capped" in notice
    assert resolve_window("x", None, 200_000) == (120_000, None)
    window, warning = resolve_window("x", 5000, 2048)
    assert window == 5000 and warning is not None and "exceeds" in warning


def test_tiktoken_path_with_a_locally_built_encoding(records: list[dict]) -> None:
    """The reference's tiktoken path (encode with ``disallowed_special=()``, no BOS, one decode) through the
    package's tiktoken adapter, on an encoding built here: o200k_base's BPE file needs the network."""
    tiktoken = pytest.importorskip("tiktoken")
    from longbench.backends.openai_api import TiktokenTokenizer

    ranks = {bytes([b]): b for b in range(256)}
    for pair in (b"th", b"he", b"in", b"er", b"an", b" t", b"\xe2\x80"):
        ranks[pair] = len(ranks)
    encoding = tiktoken.Encoding(
        name="local-test",
        pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks)},
    )
    adapter = object.__new__(TiktokenTokenizer)
    adapter._encoding = encoding

    class Reference:  # what pred.py calls on a tiktoken encoding
        def encode(self, text: str) -> list[int]:
            return encoding.encode(text, disallowed_special=())

        def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
            return encoding.decode(ids)

    record = {**records[1], "context": "<|endoftext|> " + records[1]["context"][:20_000]}
    for window in (5_001, 2_000, 1):
        for mode in (V2Mode(), V2Mode(cot=True)):
            expected = reference_prompts(record, cot=mode.cot, no_context=False, rag=0, cot_output=COT)
            expected = [reference_query_prompt(p, Reference(), window) for p in expected]
            got = [first_prompt(record, mode, adapter, window)]
            if mode.cot:
                got.append(second_prompt(record, mode, COT, adapter, window))
            assert got == expected
    assert "<|endoftext|>" in first_prompt(record, V2Mode(), adapter, 5_001)
