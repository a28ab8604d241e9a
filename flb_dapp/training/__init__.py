"""Local LoRA training of a client: models, the round-0 adapter, trl fine-tuning, local DP.

The names below load on first use (PEP 562): importing a submodule such as
``flb_dapp.training.pool`` must not import torch, so that `flb simulate` with worker processes
keeps the model stack out of its own process (the workers load it).
"""

from __future__ import annotations

from flb_dapp.lazy import lazy_getattr

_HOMES = {
    "LocalDPConfig": "local_dp",
    "PrivacySpent": "local_dp",
    "gaussian_sigma": "local_dp",
    "privatize_update": "local_dp",
    "initial_adapter": "lora_init",
    "convert_smollm2": "models",
    "find_target_modules": "models",
    "load_model": "models",
    "load_smollm2": "models",
    "load_tokenizer": "models",
    "build_tiny_model": "tiny_model",
    "TrainConfig": "trainer",
    "TrainResult": "trainer",
    "train_client": "trainer",
}

__all__ = sorted(_HOMES)
__getattr__ = lazy_getattr(__name__, _HOMES)
