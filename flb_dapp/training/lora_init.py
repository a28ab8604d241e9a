"""The round-0 global adapter: the common starting point of every client.

Clients that start from independent random LoRA inits cannot be averaged meaningfully (the products
``B @ A`` live in unrelated bases); so round 0 publishes one adapter and everyone starts from it.
A follows peft's default init (``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(in), 1/sqrt(in))),
B is zero, so the adapted model equals the base model. A is drawn with numpy from
``(seed, layer name)``: the same on every machine and torch version, independent of which other
layers are targeted, and computed from the config alone (the model is built on torch's meta device,
so no weights are loaded, whatever the model's size).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flb_dapp.exceptions import ConfigError, ModelLoadError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.training.targets import find_target_modules, target_layers


def skeleton(model_path: str | Path) -> Any:
    """The model's module tree on the meta device (shapes only, no memory, no weights read)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(model_path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the config of {model_path!s}: {exc}") from exc
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def lora_a_init(key: str, r: int, in_features: int, seed: int) -> np.ndarray:
    """peft's default A init for one layer, reproducible from ``(seed, key)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(key.encode())]))
    bound = 1.0 / np.sqrt(in_features)
    return rng.uniform(-bound, bound, size=(r, in_features)).astype(np.float32)


def initial_adapter(
    model_path: str | Path,
    r: int = 8,
    alpha: int = 16,
    target_modules: Sequence[str] | None = None,
    seed: int = 0,
    *,
    include_mlp: bool = False,
    base_model: str | None = None,
) -> Adapter:
    """The round-0 global adapter for ``model_path`` (A random from ``seed``, B zero).

    ``target_modules=None`` picks them from the architecture. ``base_model`` is the name recorded in
    the metadata (default: the hub id, or a local folder's name: a local path means nothing to others).
    """
    if r < 1 or alpha < 1:
        raise ConfigError(f"LoRA rank and alpha must be >= 1, got r={r}, alpha={alpha}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    model = skeleton(model_path)
    targets = find_target_modules(model, include_mlp=include_mlp, override=target_modules)
    tensors: dict[str, np.ndarray] = {}
    for name, (fan_in, fan_out) in target_layers(model, targets).items():
        prefix = f"base_model.model.{name}"
        tensors[f"{prefix}.lora_A.weight"] = lora_a_init(prefix, r, fan_in, seed)
        tensors[f"{prefix}.lora_B.weight"] = np.zeros((fan_out, r), dtype=np.float32)
    if base_model is None:
        path = Path(model_path)
        base_model = path.name if path.exists() else str(model_path)
    metadata = AdapterMetadata(base_model=base_model, r=r, lora_alpha=alpha, target_modules=tuple(targets))
    return Adapter(tensors=dict(sorted(tensors.items())), metadata=metadata, extra={"init_seed": str(seed)})
