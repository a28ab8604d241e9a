"""Which linear layers get LoRA: chosen from the architecture, overridable by name.

Names follow peft's list semantics: a key matches a module whose dotted name equals it or ends with
``.<key>``. So ``attn.c_proj`` picks GPT-2's attention output but not its MLP ``c_proj``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import nn

from flb_dapp.exceptions import AdapterMismatchError

_LLAMA_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
_LLAMA_MLP = ("gate_proj", "up_proj", "down_proj")
_LLAMA_LIKE = (
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "gemma", "gemma2", "gemma3_text",
    "olmo", "olmo2", "granite", "starcoder2", "cohere", "smollm3",
)  # fmt: skip

# model_type -> (attention targets, MLP targets)
ARCHITECTURE_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{t: (_LLAMA_ATTN, _LLAMA_MLP) for t in _LLAMA_LIKE},
    # Phi-3 fuses q/k/v and gate/up into single projections.
    "phi3": (("qkv_proj", "o_proj"), ("gate_up_proj", "down_proj")),
    "phi": (("q_proj", "k_proj", "v_proj", "dense"), ("fc1", "fc2")),
    # GPT-2 uses Conv1D with a fused c_attn; c_proj exists in both attention and MLP.
    "gpt2": (("c_attn", "attn.c_proj"), ("c_fc", "mlp.c_proj")),
    "gpt_neox": (("query_key_value", "dense"), ("dense_h_to_4h", "dense_4h_to_h")),
    "falcon": (("query_key_value", "dense"), ("dense_h_to_4h", "dense_4h_to_h")),
    "gptj": (("q_proj", "k_proj", "v_proj", "out_proj"), ("fc_in", "fc_out")),
    "opt": (("q_proj", "k_proj", "v_proj", "out_proj"), ("fc1", "fc2")),
}


def matches(module_name: str, key: str) -> bool:
    """peft's rule for a target given as a list entry."""
    return module_name == key or module_name.endswith("." + key)


def is_lora_capable(module: nn.Module) -> bool:
    """Linear layers peft wraps: ``nn.Linear`` (incl. bitsandbytes subclasses) and GPT-2's Conv1D."""
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def linear_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Dotted name -> LoRA-capable layer, without the output head (LoRA on it is rarely wanted)."""
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    return {n: m for n, m in model.named_modules() if is_lora_capable(m) and m is not head}


def find_target_modules(
    model: nn.Module, *, include_mlp: bool = False, override: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Target-module names for ``model``: ``override`` if given (each must match a layer), else the
    table entry for ``model.config.model_type``, else the attention projections found by name,
    else every linear layer's short name."""
    layers = linear_layers(model)
    if override:
        _require_matches(layers, override)
        return tuple(override)
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    if model_type in ARCHITECTURE_TARGETS:
        attn, mlp = ARCHITECTURE_TARGETS[model_type]
        chosen = (*attn, *mlp) if include_mlp else attn
        if all(any(matches(n, k) for n in layers) for k in chosen):
            return chosen
    short = sorted({n.rsplit(".", 1)[-1] for n in layers})
    for attn, mlp in ARCHITECTURE_TARGETS.values():
        if set(attn) <= set(short):
            return (*attn, *mlp) if include_mlp and set(mlp) <= set(short) else attn
    if not short:
        raise AdapterMismatchError(f"{type(model).__name__} has no linear layers LoRA could adapt")
    return tuple(short)


def target_layers(model: nn.Module, target_modules: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Dotted name -> (in_features, out_features) of every layer the targets select, in model order."""
    keys = tuple(target_modules)
    layers = linear_layers(model)
    _require_matches(layers, keys)
    return {n: _in_out(m) for n, m in layers.items() if any(matches(n, k) for k in keys)}


def _in_out(module: Any) -> tuple[int, int]:
    if isinstance(module, nn.Linear):
        return int(module.in_features), int(module.out_features)
    rows, cols = module.weight.shape  # Conv1D stores (in, out)
    return int(rows), int(cols)


def _require_matches(layers: dict[str, nn.Module], keys: Sequence[str]) -> None:
    missing = [k for k in keys if not any(matches(n, k) for n in layers)]
    if missing:
        sample = ", ".join(list(layers)[:6])
        raise AdapterMismatchError(
            f"target modules {missing} match no linear layer of this model (layers look like: {sample})"
        )
