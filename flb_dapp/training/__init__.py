"""Local LoRA training of a client: models, the round-0 adapter, trl fine-tuning, local DP.

Heavy libraries (transformers, peft, trl, opacus, mlx) are imported inside the functions that
need them, so importing this package stays cheap.
"""

from flb_dapp.training.local_dp import LocalDPConfig, PrivacySpent, gaussian_sigma, privatize_update
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.models import (
    convert_smollm2,
    find_target_modules,
    load_model,
    load_smollm2,
    load_tokenizer,
)
from flb_dapp.training.tiny_model import build_tiny_model
from flb_dapp.training.trainer import TrainConfig, TrainResult, train_client

__all__ = [
    "LocalDPConfig",
    "PrivacySpent",
    "TrainConfig",
    "TrainResult",
    "build_tiny_model",
    "convert_smollm2",
    "find_target_modules",
    "gaussian_sigma",
    "initial_adapter",
    "load_model",
    "load_smollm2",
    "load_tokenizer",
    "privatize_update",
    "train_client",
]
