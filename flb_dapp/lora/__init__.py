"""LoRA adapters: the in-memory type, the safetensors codec, PEFT folder export/import."""

from flb_dapp.lora.adapter import ADAPTER_FORMAT, Adapter, AdapterMetadata
from flb_dapp.lora.codec import AdapterLimits, decode_adapter, encode_adapter
from flb_dapp.lora.peft_folder import export_peft, import_peft

__all__ = [
    "ADAPTER_FORMAT",
    "Adapter",
    "AdapterLimits",
    "AdapterMetadata",
    "decode_adapter",
    "encode_adapter",
    "export_peft",
    "import_peft",
]
