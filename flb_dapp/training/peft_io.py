"""Moving LoRA weights between an :class:`Adapter` (numpy, PEFT saved names) and a live peft model.

Weights are copied straight into the LoRA parameters (no state-dict round trip through peft), so a
load followed by an extract returns the input bit for bit, and swapping adapters in an evaluator
costs one copy per tensor.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from flb_dapp.exceptions import AdapterMismatchError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata

DEFAULT_ADAPTER = "default"


def lora_config(metadata: AdapterMetadata, dropout: float = 0.0) -> Any:
    """The peft ``LoraConfig`` an adapter's metadata describes (causal LM, no bias)."""
    from peft import LoraConfig

    return LoraConfig(
        r=metadata.r,
        lora_alpha=metadata.lora_alpha,
        target_modules=list(metadata.target_modules),
        lora_dropout=dropout,
        bias="none",
        task_type="CAUSAL_LM",
    )


def wrap_with_lora(model: Any, metadata: AdapterMetadata, adapter_name: str = DEFAULT_ADAPTER) -> Any:
    """``get_peft_model`` with the adapter's LoRA settings. peft's own random init is overwritten by
    :func:`load_adapter_weights` right after, so it does not matter which RNG state it used."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(metadata), adapter_name=adapter_name)


def lora_parameters(peft_model: Any, adapter_name: str = DEFAULT_ADAPTER) -> dict[str, torch.nn.Parameter]:
    """PEFT saved name -> live parameter (``...lora_A.weight`` -> ``...lora_A.default.weight``)."""
    pattern = re.compile(rf"\.(lora_[AB])\.{re.escape(adapter_name)}\.weight$")
    out: dict[str, torch.nn.Parameter] = {}
    for name, param in peft_model.named_parameters():
        saved, n = pattern.subn(r".\1.weight", name)
        if n:
            out[saved] = param
    if not out:
        raise AdapterMismatchError(f"the model has no LoRA parameters for adapter {adapter_name!r}")
    return out


def load_adapter_weights(peft_model: Any, adapter: Adapter, adapter_name: str = DEFAULT_ADAPTER) -> None:
    """Copy every tensor of ``adapter`` into the model; names and shapes must match exactly."""
    params = lora_parameters(peft_model, adapter_name)
    missing = sorted(set(params) - set(adapter.tensors))
    unexpected = sorted(set(adapter.tensors) - set(params))
    if missing or unexpected:
        raise AdapterMismatchError(
            f"adapter does not fit the model: {len(missing)} LoRA tensors missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    with torch.no_grad():
        for key, param in params.items():
            value = adapter.tensors[key]
            if tuple(value.shape) != tuple(param.shape):
                raise AdapterMismatchError(
                    f"{key}: adapter has shape {tuple(value.shape)}, model expects {tuple(param.shape)}"
                )
            param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


def extract_adapter(
    peft_model: Any,
    metadata: AdapterMetadata,
    adapter_name: str = DEFAULT_ADAPTER,
    extra: dict[str, str] | None = None,
) -> Adapter:
    """The model's current LoRA weights as an :class:`Adapter` (float32 copies)."""
    tensors = {
        key: param.detach().to("cpu", torch.float32).numpy().copy()
        for key, param in sorted(lora_parameters(peft_model, adapter_name).items())
    }
    return Adapter(tensors=tensors, metadata=metadata, extra=dict(extra or {}))
