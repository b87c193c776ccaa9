"""The reference's eight models get the reference's own chat formats, windows and output clean-up.

A copy of the real tiny model is saved in a directory named like each reference model; its tokenizer carries
some other chat template (the tiny model's ``<|user|>`` one), so a test passes only when the reference's
hand-written format wins. The expected model inputs are written out here from SPEC.md, independently of the
code. ChatGLM2/3's formats live in their repositories' remote code, which cannot be fetched here: the message
without ``--trust-remote-code`` is tested for real, and the formats with a stand-in tokenizer object that has
the same methods (``build_prompt`` / ``build_chat_input``) around the real tiny tokenizer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from longbench.backends.base import GenerationRequest
from longbench.backends.hf import TransformersBackend
from longbench.errors import LongBenchError
from longbench.reference_models import (
    chat_ids,
    chat_text,
    clean_output,
    find_reference_model,
    resolve_reference_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VICUNA = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: {p} ASSISTANT:"
)
XGEN = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the human's questions.\n\n ### Human: {p}\n###"
)
EXPECTED = {  # SPEC.md, "The reference's own chat formats"
    "llama2-7b-chat-4k": "[INST]{p}[/INST]",
    "longchat-v1.5-7b-32k": VICUNA,
    "vicuna-v1.5-7b-16k": VICUNA,
    "xgen-7b-8k": XGEN,
    "internlm-7b-8k": "<|User|>:{p}<eoh>\n<|Bot|>:",
}
PROMPT = "Answer the question.\n\nQuestion: who?\nAnswer:"


def _named_copy(tiny_model: Path, root: Path, name: str) -> Path:
    target = root / name
    if not target.exists():
        shutil.copytree(tiny_model, target)
    return target


def _request(chat: bool = True) -> GenerationRequest:
    return GenerationRequest("id-1", "qasper", PROMPT, chat, 8, False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_directory_gets_the_reference_input(tiny_model: Path, tmp_path: Path, name: str) -> None:
    backend = TransformersBackend(str(_named_copy(tiny_model, tmp_path, name)))
    expected = EXPECTED[name].replace("{p}", PROMPT)
    assert backend.tokenizer.chat_template  # it has another template, which must not be used
    assert backend.render(_request()) == expected
    assert backend.input_ids(_request()) == backend.tokenizer(expected).input_ids  # BOS added on encoding
    assert backend.input_ids(_request())[0] == backend.tokenizer.bos_token_id
    assert backend.render(_request(chat=False)) == PROMPT  # completion-style tasks stay raw
    assert backend.describe()["reference_chat_format"] is not None


def test_other_models_keep_their_template(tiny_model: Path, tmp_path: Path) -> None:
    backend = TransformersBackend(str(_named_copy(tiny_model, tmp_path, "my-llama-chat")))
    assert backend.render(_request()).startswith("<s><|user|>\n" + PROMPT)
    none = TransformersBackend(
        str(_named_copy(tiny_model, tmp_path, "llama2-7b-chat-4k")), chat_template="none"
    )
    assert none.render(_request()) == PROMPT  # an explicit choice wins over the reference format


def test_names_hub_ids_and_paths_resolve() -> None:
    by_id = find_reference_model("meta-llama/Llama-2-7b-chat-hf")
    assert by_id is not None and by_id.name == "llama2-7b-chat-4k" and by_id.max_length == 3500
    assert find_reference_model("/models/xgen-7b-8k/").hub_id == "Salesforce/xgen-7b-8k-inst"
    assert find_reference_model("meta-llama/Llama-3-8B") is None
    resolved = resolve_reference_model("vicuna-v1.5-7b-16k", "auto", False)
    assert resolved.load == "lmsys/vicuna-7b-v1.5-16k" and resolved.chat_format == "vicuna"


@pytest.mark.parametrize("name", ["chatglm2-6b", "chatglm3-6b-32k", "THUDM/chatglm2-6b-32k"])
def test_chatglm_without_remote_code_says_so(name: str) -> None:
    with pytest.raises(LongBenchError, match="--trust-remote-code"):
        TransformersBackend(name)


class StandInGLMTokenizer:
    """Stands in for ChatGLM2/3's remote-code tokenizer (not fetchable here): the same two methods, with
    the real tiny tokenizer underneath. Only the calling convention is checked, not GLM's own text."""

    def __init__(self, tokenizer) -> None:
        self.inner = tokenizer

    def build_prompt(self, query: str) -> str:
        return f"[Round 1]\n\n问：{query}\n\n答："

    def build_chat_input(self, query: str):
        return self.inner([f"<|user|>\n{query}<|assistant|>"], return_tensors="pt")

    def __call__(self, *args, **kwargs):
        return self.inner(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.inner.decode(*args, **kwargs)


def test_chatglm_formats_use_the_tokenizer_methods(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    glm = StandInGLMTokenizer(AutoTokenizer.from_pretrained(tiny_model))
    assert chat_text("chatglm", "q?", glm) == "[Round 1]\n\n问：q?\n\n答："
    expected = glm.inner("<|user|>\nq?<|assistant|>").input_ids
    assert chat_ids("chatglm3", "q?", glm) == expected  # ids straight from build_chat_input
    with pytest.raises(LongBenchError, match="--trust-remote-code"):
        chat_text("chatglm", "q?", glm.inner)  # a tokenizer without the method


def test_output_clean_up() -> None:
    assert clean_output("xgen", "  Assistant: Paris. Assistant:x \n") == " Paris. x"
    assert clean_output("internlm", "Paris<eoa>\n<|User|>") == "Paris"
    assert clean_output("llama2", " Paris ") == " Paris "
    assert clean_output(None, "a<eoa>b") == "a<eoa>b"


def test_dump_prompts_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    """The CLI, given a directory named like a reference model, writes the reference's inputs."""
    model = _named_copy(tiny_model, tmp_path, "internlm-7b-8k")
    out = tmp_path / "prompts.jsonl"
    subprocess.run(
        [sys.executable, "-m", "longbench", "predict", "--model", str(model), "--data", "sample", "--tasks",
         "qasper,trec", "--limit", "1", "--max-length", "200", "--dump-prompts", str(out)],
        check=True, capture_output=True, env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": ""},
    )  # fmt: skip
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    chat = next(line["prompt"] for line in lines if line["dataset"] == "qasper")
    raw = next(line["prompt"] for line in lines if line["dataset"] == "trec")
    assert chat.startswith("<|User|>:") and chat.endswith("<eoh>\n<|Bot|>:")
    assert not raw.startswith("<|User|>:")
