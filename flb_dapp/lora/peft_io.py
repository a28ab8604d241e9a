"""PEFT interop: export an adapter as a folder ``PeftModel.from_pretrained`` loads, import one back,
and move weights between an :class:`Adapter` and a live ``PeftModel``.

The folder is ``adapter_config.json`` + ``adapter_model.safetensors``; the safetensors file is the
codec's own bytes, so FLB's metadata (round, client, ...) survives the round trip. A folder that
holds only ``adapter_model.bin`` (a pickle) is refused. peft and torch are imported lazily, only by
the functions that need a live model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.lora.codec import (
    AdapterLimits,
    check_layout,
    check_lora_tensors,
    encode_adapter,
    metadata_from_header,
    read_tensors,
)

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftModel

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"


def peft_config_dict(metadata: AdapterMetadata) -> dict[str, Any]:
    """The ``adapter_config.json`` content for a plain LoRA adapter on a causal LM."""
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": metadata.base_model,
        "revision": None,
        "inference_mode": True,
        "r": metadata.r,
        "lora_alpha": metadata.lora_alpha,
        "target_modules": list(metadata.target_modules),
        "lora_dropout": 0.0,
        "fan_in_fan_out": False,
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def export_peft(adapter: Adapter, folder: str | os.PathLike[str]) -> Path:
    """Write ``adapter`` as a PEFT adapter folder; returns the folder."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    data = encode_adapter(adapter)  # validates before anything is written
    (out / WEIGHTS_NAME).write_bytes(data)
    (out / CONFIG_NAME).write_text(json.dumps(peft_config_dict(adapter.metadata), indent=2) + "\n")
    return out


def import_peft(folder: str | os.PathLike[str], limits: AdapterLimits | None = None) -> Adapter:
    """Read a PEFT LoRA folder (FLB-exported or any plain PEFT LoRA) into an :class:`Adapter`."""
    path = Path(folder)
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not weights_path.is_file():
        if (path / "adapter_model.bin").exists():
            raise AdapterValidationError(
                f"{path} holds adapter_model.bin (a pickle); FLB reads adapter_model.safetensors only"
            )
        raise AdapterValidationError(f"{path} has no {WEIGHTS_NAME}")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AdapterValidationError(f"{config_path} is missing or not JSON: {exc}") from exc
    if config.get("peft_type") != "LORA":
        raise AdapterValidationError(f"{config_path}: peft_type is {config.get('peft_type')!r}, not 'LORA'")
    if config.get("use_dora") or config.get("bias", "none") != "none" or config.get("modules_to_save"):
        raise AdapterValidationError(f"{config_path}: only plain LoRA (no DoRA, bias or modules_to_save)")
    tensors, header = read_tensors(weights_path.read_bytes(), limits)
    # NOTE: PEFT saves keys with the adapter name removed; some tools leave ".default." in.
    tensors = {key.replace(".default.", "."): value for key, value in tensors.items()}
    targets = config.get("target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    from_config = AdapterMetadata(
        base_model=str(config.get("base_model_name_or_path") or ""),
        r=int(config["r"]),
        lora_alpha=int(config["lora_alpha"]),
        target_modules=tuple(sorted(targets)),
    )
    if "format" in header and header.get("format") != "pt":
        metadata, extra = metadata_from_header(header)
        if (metadata.r, metadata.lora_alpha) != (from_config.r, from_config.lora_alpha):
            raise AdapterValidationError(
                f"{path}: adapter_config.json (r={from_config.r}, alpha={from_config.lora_alpha}) disagrees "
                f"with the weights' metadata (r={metadata.r}, alpha={metadata.lora_alpha})"
            )
    else:
        metadata, extra = from_config, {}
    check_lora_tensors(tensors, metadata)
    return Adapter(tensors=tensors, metadata=metadata, extra=extra)


# --- live models (torch + peft) -----------------------------------------------------------------------------
def adapter_from_peft_model(
    peft_model: PeftModel, metadata: AdapterMetadata | None = None, adapter_name: str = "default"
) -> Adapter:
    """The LoRA weights of a live ``PeftModel`` as an :class:`Adapter`.

    Without ``metadata`` it is taken from the model's LoRA config (round 0, no client).
    """
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model, adapter_name=adapter_name)
    tensors = {key: value.detach().to("cpu").float().numpy().copy() for key, value in state.items()}
    if metadata is None:
        config: Any = peft_model.peft_config[adapter_name]
        targets = config.target_modules
        metadata = AdapterMetadata(
            base_model=str(config.base_model_name_or_path or ""),
            r=int(config.r),
            lora_alpha=int(config.lora_alpha),
            target_modules=tuple(sorted([targets] if isinstance(targets, str) else targets or [])),
        )
    check_lora_tensors(tensors, metadata)
    return Adapter(tensors=tensors, metadata=metadata)


def load_into_peft_model(peft_model: PeftModel, adapter: Adapter, adapter_name: str = "default") -> None:
    """Copy ``adapter``'s weights into a live ``PeftModel``; every LoRA weight must be matched."""
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    live = get_peft_model_state_dict(peft_model, adapter_name=adapter_name)
    check_layout(adapter.tensors, {key: tuple(value.shape) for key, value in live.items()})
    state = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in adapter.tensors.items()}
    set_peft_model_state_dict(peft_model, state, adapter_name=adapter_name)
