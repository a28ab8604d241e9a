"""The one bridge between an :class:`Adapter` (numpy, PEFT saved names) and a live peft model.

Weights are copied straight into the LoRA parameters (no state-dict round trip through peft), so a
load followed by an extract returns the input bit for bit, and swapping adapters in an evaluator
costs one copy per tensor. An adapter that does not fit the model (a missing or unexpected tensor,
another shape) raises :class:`AdapterMismatchError`, whoever calls.

PEFT *folders* (``adapter_config.json`` + safetensors, no live model) are :mod:`flb_dapp.lora.peft_folder`'s.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from flb_dapp.exceptions import AdapterMismatchError, AdapterValidationError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.lora.codec import check_layout

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
    try:
        check_layout(adapter.tensors, {key: tuple(param.shape) for key, param in params.items()})
    except AdapterValidationError as exc:
        raise AdapterMismatchError(f"adapter does not fit the model: {exc}") from exc
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(torch.from_numpy(np.ascontiguousarray(adapter.tensors[key], dtype=np.float32)))


def metadata_of(peft_model: Any, adapter_name: str = DEFAULT_ADAPTER) -> AdapterMetadata:
    """The LoRA settings of a live model's adapter, as metadata (round 0, no client)."""
    config: Any = peft_model.peft_config[adapter_name]
    targets = config.target_modules
    return AdapterMetadata(
        base_model=str(config.base_model_name_or_path or ""),
        r=int(config.r),
        lora_alpha=int(config.lora_alpha),
        target_modules=tuple(sorted([targets] if isinstance(targets, str) else targets or [])),
    )


def extract_adapter(
    peft_model: Any,
    metadata: AdapterMetadata | None = None,
    adapter_name: str = DEFAULT_ADAPTER,
    extra: dict[str, str] | None = None,
) -> Adapter:
    """The model's current LoRA weights as an :class:`Adapter` (float32 copies).

    Without ``metadata`` it is read from the model's LoRA config (:func:`metadata_of`).
    """
    tensors = {
        key: param.detach().to("cpu", torch.float32).numpy().copy()
        for key, param in sorted(lora_parameters(peft_model, adapter_name).items())
    }
    if metadata is None:
        metadata = metadata_of(peft_model, adapter_name)
    return Adapter(tensors=tensors, metadata=metadata, extra=dict(extra or {}))
