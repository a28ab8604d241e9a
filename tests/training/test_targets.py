"""Target-module discovery on tiny random models of each supported family, checked against peft."""

from __future__ import annotations

from typing import Any

import pytest
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    GPT2Config,
    LlamaConfig,
    Phi3Config,
    PretrainedConfig,
    Qwen2Config,
)

from flb_dapp.exceptions import AdapterMismatchError
from flb_dapp.training.lora_init import lora_a_init
from flb_dapp.training.targets import find_target_modules, target_layers

SMALL = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2}  # fmt: skip
CONFIGS: dict[str, PretrainedConfig] = {
    "llama": LlamaConfig(**SMALL),
    "qwen2": Qwen2Config(**SMALL),
    "gemma2": Gemma2Config(**SMALL, head_dim=8),
    "phi3": Phi3Config(**SMALL, pad_token_id=0),
    "gpt2": GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64),
}
EXPECTED = {
    "llama": (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")),
    "qwen2": (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")),
    "gemma2": (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")),
    "phi3": (("qkv_proj", "o_proj"), ("gate_up_proj", "down_proj")),
    "gpt2": (("c_attn", "attn.c_proj"), ("c_fc", "mlp.c_proj")),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def arch(request: pytest.FixtureRequest) -> tuple[str, Any]:
    return request.param, AutoModelForCausalLM.from_config(CONFIGS[request.param])


def test_targets_from_architecture(arch: tuple[str, Any]) -> None:
    name, model = arch
    attn, mlp = EXPECTED[name]
    assert find_target_modules(model) == attn
    assert find_target_modules(model, include_mlp=True) == attn + mlp


def test_layer_names_and_shapes_agree_with_peft(arch: tuple[str, Any]) -> None:
    """Our names and shapes for every targeted layer are exactly the keys peft saves."""
    name, model = arch
    targets = find_target_modules(model, include_mlp=True)
    ours = {}
    for layer, (fan_in, fan_out) in target_layers(model, targets).items():
        ours[f"base_model.model.{layer}.lora_A.weight"] = (4, fan_in)
        ours[f"base_model.model.{layer}.lora_B.weight"] = (fan_out, 4)
    fresh = AutoModelForCausalLM.from_config(CONFIGS[name])
    conv1d = name == "gpt2"  # GPT-2's Conv1D stores weights transposed
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), fan_in_fan_out=conv1d)
    peft_model = get_peft_model(fresh, lora)
    theirs = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(peft_model).items()}
    assert ours == theirs
    assert len(ours) == 2 * 2 * len(targets)  # 2 layers, A and B per target


def test_gpt2_attention_projection_only() -> None:
    model = AutoModelForCausalLM.from_config(CONFIGS["gpt2"])
    layers = target_layers(model, find_target_modules(model))
    assert sorted(layers) == [f"transformer.h.{i}.attn.{m}" for i in (0, 1) for m in ("c_attn", "c_proj")]
    assert layers["transformer.h.0.attn.c_attn"] == (32, 96)  # Conv1D: fused q, k, v


def test_override_is_validated() -> None:
    model = AutoModelForCausalLM.from_config(CONFIGS["llama"])
    assert find_target_modules(model, override=["v_proj"]) == ("v_proj",)
    with pytest.raises(AdapterMismatchError, match="qkv_proj"):
        find_target_modules(model, override=["qkv_proj"])


def test_unknown_architecture_falls_back_to_layer_names() -> None:
    model = AutoModelForCausalLM.from_config(CONFIGS["llama"])
    model.config.model_type = "my-llama-fork"
    assert find_target_modules(model) == ("q_proj", "k_proj", "v_proj", "o_proj")


def test_lora_a_init_matches_peft_default_bounds() -> None:
    a = lora_a_init("k", r=64, in_features=256, seed=0)
    assert a.shape == (64, 256) and a.dtype.name == "float32"
    assert abs(a).max() <= 1 / 16 and abs(a).max() > 0.99 / 16  # U(-1/sqrt(in), 1/sqrt(in))
