"""LongBench v2 prompts exactly as the reference ``pred.py`` builds them (SPEC-v2 sections 2-3).

The template is chosen rag, then no-context, then CoT, then 0-shot; placeholders are replaced one after
another over the whole growing string (``$DOC$``, ``$Q$``, ``$C_A$``..``$C_D$``, then ``$COT$``), each field
stripped; the filled prompt is counted with the tokenizer's default special tokens and, when longer than the
window ``L``, cut to its first ``L//2`` and last ``ceil(L/2)`` tokens, decoded together in one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from longbench.errors import InputError, LongBenchError
from longbench.spec_data import data_json, data_text
from longbench.tokenization import TokenizerLike

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 120_000
COT_ANSWER_TEMPLATE = "0shot_cot_ans.txt"


@dataclass(frozen=True)
class V2Mode:
    """The reference's prompt mode: ``cot`` adds a 1,024-token first call and a second call in every mode."""

    cot: bool = False
    no_context: bool = False
    rag: int = 0

    @property
    def template(self) -> str:
        """The first call's template file, chosen in the reference's order."""
        if self.rag > 0:
            return "0shot_rag.txt"
        if self.no_context:
            return "0shot_no_context.txt"
        return "0shot_cot.txt" if self.cot else "0shot.txt"

    def output_stem(self, model: str) -> str:
        """The result file's name without ``.jsonl``, as the reference names it."""
        if self.rag > 0:
            return f"{model}_rag_{self.rag}"
        if self.no_context:
            return f"{model}_no_context"
        return f"{model}_cot" if self.cot else model

    @property
    def first_max_tokens(self) -> int:
        return 1024 if self.cot else 128


def template_text(name: str) -> str:
    """A v2 template as shipped (UTF-8, no final newline)."""
    return data_text(f"v2/{name}")


def rag_context(record: dict[str, Any], n: int) -> str:
    """The first ``n`` retrieved chunks, re-sorted by ``c_idx``, as ``Retrieved chunk k: content`` blocks."""
    chunks = record.get("retrieved_context")
    if not isinstance(chunks, list):
        raise LongBenchError(
            f"record {record.get('_id')}: --rag needs a 'retrieved_context' list in the data"
        )
    chosen = sorted(chunks[:n], key=lambda chunk: chunk["c_idx"])
    return "\n\n".join(f"Retrieved chunk {k}: {chunk['content']}" for k, chunk in enumerate(chosen, 1))


def record_context(record: dict[str, Any], mode: V2Mode) -> str:
    """The context the reference fills in (and stores cut to 1,000 characters): the chunks in RAG mode."""
    if mode.rag > 0:
        return rag_context(record, mode.rag)
    context = record.get("context")
    if not isinstance(context, str):
        raise InputError("data", f"record {record.get('_id')} has no context (null)")
    return context


def fill(template: str, record: dict[str, Any], context: str, cot: str | None = None) -> str:
    """Plain replacements applied one after another, in the reference's order."""
    prompt = template.replace("$DOC$", context.strip())
    prompt = prompt.replace("$Q$", record["question"].strip())
    for letter in "ABCD":
        prompt = prompt.replace(f"$C_{letter}$", record[f"choice_{letter}"].strip())
    if cot is not None:
        prompt = prompt.replace("$COT$", cot)
    return prompt


def truncate(prompt: str, tokenizer: TokenizerLike, window: int) -> tuple[str, bool]:
    """``prompt`` unchanged if it has at most ``window`` tokens, else the first ``window//2`` and the last
    ``ceil(window/2)`` tokens decoded in one call (special tokens skipped); and whether it was cut."""
    ids = list(tokenizer(prompt, truncation=False, verbose=False).input_ids)
    if len(ids) <= window:
        return prompt, False
    kept = ids[: window // 2] + ids[-window // 2 :]
    return tokenizer.decode(kept, skip_special_tokens=True), True


def first_prompt(record: dict[str, Any], mode: V2Mode, tokenizer: TokenizerLike, window: int) -> str:
    """The first call's prompt (not chat-wrapped)."""
    filled = fill(template_text(mode.template), record, record_context(record, mode))
    return truncate(filled, tokenizer, window)[0]


def second_prompt(
    record: dict[str, Any], mode: V2Mode, first_answer: str, tokenizer: TokenizerLike, window: int
) -> str:
    """The CoT answer call's prompt: the first call's stripped output in place of ``$COT$``."""
    filled = fill(
        template_text(COT_ANSWER_TEMPLATE), record, record_context(record, mode), first_answer.strip()
    )
    return truncate(filled, tokenizer, window)[0]


def uses_tiktoken(model: str) -> bool:
    """The reference counts with tiktoken o200k_base for names containing "gpt" or "o1"."""
    return "gpt" in model or "o1" in model


def resolve_window(
    model: str,
    override: int | None,
    context_window: int | None,
    *,
    new_tokens: int = 0,
    template_tokens: int | None = None,
) -> tuple[int, str | None]:
    """``L``, the prompt budget: ``--max-length`` as given (a warning above the model's window); else the
    reference's v2 table by name; else the reference's 120,000 where it fits the model's window with the
    call's ``new_tokens`` (its answer budget and any thinking budget) and the chat template's own
    ``template_tokens`` (:meth:`longbench.backends.base.Backend.chat_template_tokens`); else the window less
    both, with a notice saying so."""
    name = model.rstrip("/").rsplit("/", 1)[-1]
    if override is not None:
        if context_window is not None and override > context_window:
            return override, f"--max-length {override} exceeds the model's window of {context_window} tokens"
        return override, None
    table: dict[str, int] = data_json("v2/model2maxlen.json")
    if name in table:
        return table[name], None
    around = new_tokens + (template_tokens or 0)
    if context_window is None or context_window >= DEFAULT_WINDOW + around:
        return DEFAULT_WINDOW, None
    window = context_window - around
    template = "unknown" if template_tokens is None else str(template_tokens)
    parts = f"{context_window} - {new_tokens} new tokens - {template} chat template tokens"
    if window < 1:
        raise LongBenchError(
            f"the context window of {model!r} leaves no room for a LongBench v2 prompt ({parts}); "
            "set max_length (--max-length)"
        )
    return window, (
        f"LongBench v2 window for {model!r}: {window} tokens (the reference's 120,000 capped to the model's "
        f"window: {parts}); pass --max-length to change it"
    )


def api_model_name(model: str) -> str:
    """The ``model`` field the reference sends: its model2path entry when listed, else the name itself."""
    paths: dict[str, str] = data_json("v2/model2path.json")
    return paths.get(model, model)
