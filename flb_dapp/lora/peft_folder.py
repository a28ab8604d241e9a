"""PEFT folders: export an adapter as a folder ``PeftModel.from_pretrained`` loads, import one back.

The folder is ``adapter_config.json`` + ``adapter_model.safetensors``; the safetensors file is the
codec's own bytes, so FLB's metadata (round, client, ...) survives the round trip. A folder that
holds only ``adapter_model.bin`` (a pickle) is refused. Neither peft nor torch is needed: moving
weights into or out of a live model is :mod:`flb_dapp.training.peft_io`'s (this layer is pure).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.lora.codec import (
    AdapterLimits,
    check_lora_tensors,
    encode_adapter,
    metadata_from_header,
    read_tensors,
)

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
