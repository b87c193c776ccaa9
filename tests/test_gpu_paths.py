"""GPU paths checked without a GPU: placement from the resolved dtype, attention choice and fallback.

No GPU exists here, so placement is tested as the pure function it is, fed with weight sizes measured by
building real architectures (Qwen2-shaped configs) on the meta device; the attention fallback runs on the
real tiny model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from longbench.backends.hf import (
    Placement,
    TransformersBackend,
    batch_invariant,
    choose_attention,
    cpu_threads,
    plan_placement,
    probe_model,
)
from longbench.errors import LongBenchError

GIB = 1 << 30
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _qwen_7b_config():
    from transformers import Qwen2Config

    return Qwen2Config(  # Qwen2.5-7B's shape
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        tie_word_embeddings=False,
    )


def test_seven_b_in_bf16_is_one_copy_per_24gb_gpu() -> None:
    probe = probe_model(_qwen_7b_config(), "bfloat16", None, False)
    assert 14 * GIB < probe.weight_bytes < 15 * GIB  # 7.6e9 parameters x 2 bytes
    assert plan_placement(None, probe.weight_bytes, [24 * GIB] * 4) == Placement("single", ("cuda:0",))
    in_fp32 = probe_model(_qwen_7b_config(), "float32", None, False).weight_bytes
    assert in_fp32 == 2 * probe.weight_bytes
    assert plan_placement(None, in_fp32, [24 * GIB] * 4).kind == "sharded"  # only when it does not fit
    assert plan_placement(None, probe.weight_bytes, [80 * GIB]) == Placement("single", ("cuda:0",))
    assert plan_placement(None, probe.weight_bytes, [16 * GIB]).kind == "single"  # one GPU: nothing to split


def test_flash_attention_only_when_asked_and_supported() -> None:
    assert choose_attention(None, (9, 0), "bfloat16") is None  # transformers decides
    assert choose_attention("flash_attention_2", (8, 0), "bfloat16") == "flash_attention_2"
    for capability, dtype in (((7, 5), "float16"), (None, "bfloat16"), ((9, 0), "float32")):
        with pytest.raises(LongBenchError, match="compute capability 8.0"):
            choose_attention("flash_attention_2", capability, dtype)


def test_unsupported_attention_falls_back(tiny_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model)
    default = probe_model(config, "float32", None, False)
    assert default.notice is None and default.attn_implementation
    asked = probe_model(config, "float32", "no_such_attention", False)
    assert asked.notice and asked.attn_implementation == default.attn_implementation
    backend = TransformersBackend(str(tiny_model), attn_implementation="no_such_attention")
    assert "not available" in caplog.text
    assert backend.describe()["attn_implementation"] == default.attn_implementation
    assert backend.model.config._attn_implementation == default.attn_implementation  # it really loads
    eager = TransformersBackend(str(tiny_model), attn_implementation="eager")
    assert eager.describe()["attn_implementation"] == "eager"
    assert eager.model.config._attn_implementation == "eager"


def test_describe_reports_what_is_used(tiny_model: Path) -> None:
    described = TransformersBackend(str(tiny_model), batch_size=4).describe()
    assert (described["dtype"], described["placement"], described["batch_size"]) == ("float32", "cpu", 4)
    assert described["batch_invariant"] is True  # float32 on the CPU
    gpu = Placement("single", ("cuda:0",))
    assert batch_invariant(gpu, "bfloat16", 1) and not batch_invariant(gpu, "bfloat16", 8)


def test_cpu_threads_leave_busy_cores_alone() -> None:
    assert cpu_threads(2, None, 0.1) == 2
    assert cpu_threads(2, None, 1.2) == 1  # one core busy elsewhere
    assert cpu_threads(2, None, 3.9) == 1  # never below one
    assert cpu_threads(64, 8.0, 0.0) == 8  # a cgroup quota of 8 CPUs on a 64-core host
