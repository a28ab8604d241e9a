"""The round-0 global adapter: the same for everyone with a seed, B zero, peft's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from flb_dapp.exceptions import ConfigError, ModelLoadError
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.peft_io import extract_adapter, load_adapter_weights, wrap_with_lora

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


def test_deterministic_and_seed_dependent(tiny_model: Path) -> None:
    a = initial_adapter(tiny_model, r=4, alpha=8, seed=7)
    b = initial_adapter(tiny_model, r=4, alpha=8, seed=7)
    c = initial_adapter(tiny_model, r=4, alpha=8, seed=8)
    assert a.layout() == b.layout() == c.layout()
    assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert not np.array_equal(
        a.tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"],
        c.tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"],
    )


def test_layout_metadata_and_init_values(tiny_model: Path) -> None:
    adapter = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    assert adapter.metadata.target_modules == ATTN
    assert (adapter.metadata.r, adapter.metadata.lora_alpha, adapter.metadata.round) == (4, 8, 0)
    assert adapter.metadata.base_model == tiny_model.name  # never a local path
    assert len(adapter.tensors) == 2 * 4 * 2  # layers x targets x (A, B)
    for key, value in adapter.tensors.items():
        assert value.dtype == np.float32
        if key.endswith("lora_B.weight"):
            assert value.shape[1] == 4 and not value.any()
        else:
            assert value.shape == (4, 64)
            assert 0 < np.abs(value).max() <= 1 / 8  # 1/sqrt(in_features)


def test_adding_mlp_targets_keeps_attention_init(tiny_model: Path) -> None:
    attn = initial_adapter(tiny_model, r=4, alpha=8, seed=1)
    full = initial_adapter(tiny_model, r=4, alpha=8, seed=1, include_mlp=True)
    assert full.metadata.target_modules == (*ATTN, "gate_proj", "up_proj", "down_proj")
    assert all(np.array_equal(attn.tensors[k], full.tensors[k]) for k in attn.tensors)


def test_loads_into_peft_bit_for_bit_and_leaves_model_unchanged(tiny_model: Path) -> None:
    adapter = initial_adapter(tiny_model, r=4, alpha=8, seed=0, include_mlp=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        base = model(input_ids=ids).logits
    peft_model = wrap_with_lora(model, adapter.metadata)
    load_adapter_weights(peft_model, adapter)
    back = extract_adapter(peft_model, adapter.metadata)
    assert back.layout() == adapter.layout()
    assert all(np.array_equal(back.tensors[k], adapter.tensors[k]) for k in adapter.tensors)
    with torch.no_grad():
        assert torch.equal(peft_model(input_ids=ids).logits, base)  # B = 0: same function as the base


def test_bad_arguments(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        initial_adapter(tiny_model, r=0)
    with pytest.raises(ModelLoadError, match="config"):
        initial_adapter(tmp_path / "nothing-here")
