"""4-bit and 8-bit bases through bitsandbytes, which runs on CPU: load, then a LoRA step."""

from __future__ import annotations

from pathlib import Path

import bitsandbytes as bnb
import numpy as np
import pytest

from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.models import load_model
from flb_dapp.training.trainer import TrainConfig, train_client

LAYER_TYPE = {"4bit": bnb.nn.Linear4bit, "8bit": bnb.nn.Linear8bitLt}


@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantized_load_and_lora_step(tiny_model: Path, task: SyntheticTask, quantization: str) -> None:
    model = load_model(tiny_model, quantization=quantization)  # type: ignore[arg-type]
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, LAYER_TYPE[quantization])
    assert not any(p.requires_grad for p in model.parameters())  # prepared for k-bit training: frozen

    start = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    cfg = TrainConfig(model=str(tiny_model), steps=2, r=4, alpha=8, batch_size=4, max_seq_len=128,
                      quantization=quantization)  # type: ignore[arg-type]  # fmt: skip
    result = train_client(cfg, task.train[:8], start)
    assert result.adapter.layout() == start.layout()
    assert all(np.isfinite(t).all() for t in result.adapter.tensors.values())
    moved = [k for k in start.tensors if not np.array_equal(start.tensors[k], result.adapter.tensors[k])]
    assert moved  # the LoRA weights trained on top of the quantized base
    assert np.isfinite(result.metrics["train_loss"])
