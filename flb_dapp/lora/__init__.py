"""LoRA adapters: the in-memory type, the safetensors codec, PEFT folder export/import."""

from flb_dapp.lora.adapter import ADAPTER_FORMAT, Adapter, AdapterMetadata

__all__ = ["ADAPTER_FORMAT", "Adapter", "AdapterMetadata"]
