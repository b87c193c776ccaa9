"""The built-in tiny model written as a GGUF file, for serving it with llama.cpp (llama-cpp-python's server).

A small converter for this one model, with the ``gguf`` package: the Llama weights under llama.cpp's tensor
names (the query and key projections reordered for llama.cpp's rotary layout), its hyper-parameters, and its
byte-level tokenizer as a "gpt2" vocabulary: the three special tokens, then one token per byte in the GPT-2
byte alphabet. That tokenizer has no merges, but GGUF cannot hold an empty list, so it gets one merge that
can never apply (two 0xFF bytes: never in UTF-8 text). The chat template goes along, so the server wraps chat
prompts as transformers does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_LAYER_TENSORS: dict[str, str] = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_CONTROL, _NORMAL = 3, 1  # llama.cpp token types


def _rotary_order(weight: Any, heads: int) -> Any:
    """A q/k projection reordered from transformers' rotate-half layout to llama.cpp's interleaved pairs."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def gguf_tensors(model_dir: Path) -> dict[str, Any]:
    """The model's weights (float32 numpy arrays) under llama.cpp's names."""
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    out = {
        "token_embd.weight": weights["model.embed_tokens.weight"],
        "output_norm.weight": weights["model.norm.weight"],
        "output.weight": weights["lm_head.weight"],
    }
    for layer in range(config["num_hidden_layers"]):
        for hf_name, name in _LAYER_TENSORS.items():
            tensor = weights[f"model.layers.{layer}.{hf_name}.weight"]
            if name == "attn_q":
                tensor = _rotary_order(tensor, config["num_attention_heads"])
            elif name == "attn_k":
                tensor = _rotary_order(tensor, config["num_key_value_heads"])
            out[f"blk.{layer}.{name}.weight"] = tensor
    return {name: tensor.astype("float32") for name, tensor in out.items()}


def write_tiny_gguf(model_dir: Path, target: Path) -> Path:
    """Write the tiny model in ``model_dir`` (``longbench.tinymodel``) to the GGUF file ``target``."""
    import gguf

    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    template = (model_dir / "chat_template.jinja").read_text(encoding="utf-8")
    vocab = tokenizer["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    special = {entry["content"] for entry in tokenizer["added_tokens"]}
    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_name("longbench tiny model")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_dimension_count(config["hidden_size"] // config["num_attention_heads"])
    writer.add_rope_freq_base(float(config.get("rope_parameters", {}).get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([_CONTROL if token in special else _NORMAL for token in tokens])
    writer.add_token_merges(["\u00ff \u00ff"])  # never applies: 0xFF is no UTF-8 byte
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(template)
    for name, tensor in gguf_tensors(model_dir).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
