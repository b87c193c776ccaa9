"""The built-in tiny model (``--model builtin:tiny``): a random-weight Llama with a byte-level tokenizer.

It lets the whole prediction pipeline run offline on a CPU in about a minute: tests, demos and smoke runs.
Its answers are noise. It is created once, deterministically (fixed seed), with ``save_pretrained`` into
``$LONGBENCH_CACHE/tiny-model-v1`` (default ``~/.cache/longbench/tiny-model-v1``) and reused afterwards;
it loads with ``AutoTokenizer`` / ``AutoModelForCausalLM`` like any local model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from longbench.cache import cache_root
from longbench.permissions import follow_umask

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

TINY_MODEL = "builtin:tiny"
TINY_DIR_NAME = "tiny-model-v1"
CONTEXT_WINDOW = 4096
SEED = 20240811
MARKER = "longbench-tiny.json"  # written last: a directory holding it is complete

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2; the 256 bytes follow
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _byte_symbols() -> list[str]:
    """The printable stand-in of each byte 0..255 used by byte-level BPE (the GPT-2 byte alphabet)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols: dict[int, str] = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[byte] for byte in range(256)]


def _build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer: every byte is a token, a BOS token is prepended, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({symbol: len(SPECIAL_TOKENS) + byte for byte, symbol in enumerate(_byte_symbols())})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    bos_id = vocab["<s>"]
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=CONTEXT_WINDOW,
        chat_template=CHAT_TEMPLATE,
    )


def _silenced_ids(vocab_size: int) -> list[int]:
    """Token ids the tiny model never predicts: <pad>, <s>, control bytes and non-ASCII bytes."""
    offset = len(SPECIAL_TOKENS)
    allowed = {SPECIAL_TOKENS.index("</s>"), offset + ord("\n"), *(offset + b for b in range(0x20, 0x7F))}
    return [index for index in range(vocab_size) if index not in allowed]


def _build_model(vocab_size: int) -> LlamaForCausalLM:
    """A two-layer Llama with random weights drawn from a fixed seed (the caller's RNG is left alone)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_WINDOW,
        pad_token_id=SPECIAL_TOKENS.index("<pad>"),
        bos_token_id=SPECIAL_TOKENS.index("<s>"),
        eos_token_id=SPECIAL_TOKENS.index("</s>"),
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    with torch.no_grad():  # it can then only emit printable ASCII, newlines and </s>: readable noise
        model.lm_head.weight[_silenced_ids(vocab_size)] = 0.0
    return model.eval()


def is_tiny_model(model: str) -> bool:
    """Whether ``model`` is a folder holding the built-in tiny model."""
    return _is_complete(Path(model))


def _is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def _create(target: Path) -> None:
    """Build the tiny model in a temporary directory next to ``target``, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        follow_umask(staging)  # mkdtemp makes 0700: a shared cache follows the umask
        tokenizer = _build_tokenizer()
        model = _build_model(len(tokenizer))
        tokenizer.save_pretrained(staging)
        model.save_pretrained(staging)
        marker = {"name": TINY_MODEL, "seed": SEED, "context_window": CONTEXT_WINDOW}
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        if target.exists() and not _is_complete(target):
            shutil.rmtree(target)  # left by something other than this function
        try:
            os.replace(staging, target)
        except OSError:
            if not _is_complete(target):  # not another process finishing first: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def tiny_model_path(cache_dir: Path | None = None) -> Path:
    """The directory of the built-in tiny model under ``cache_dir`` (default :func:`cache_root`).

    The model is created on first use, offline and atomically, and reused afterwards.
    """
    target = (cache_dir if cache_dir is not None else cache_root()) / TINY_DIR_NAME
    if not _is_complete(target):
        _create(target)
    return target


def resolve_model(model: str, cache_dir: Path | None = None) -> str:
    """``model`` as a loadable id or path: ``builtin:tiny`` becomes the tiny model's directory."""
    return str(tiny_model_path(cache_dir)) if model == TINY_MODEL else model
