"""The in-memory LoRA adapter that every layer of FLB passes around.

Tensors are float32 numpy arrays keyed by PEFT's saved names, e.g.
``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`` (shape ``(r, in)``) and
``...lora_B.weight`` (shape ``(out, r)``). Numpy keeps the pure layers free of torch; training
converts at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

ADAPTER_FORMAT = "flb-lora/1"


@dataclass(frozen=True)
class AdapterMetadata:
    """What the safetensors header's ``__metadata__`` records about an adapter."""

    base_model: str
    r: int
    lora_alpha: int
    target_modules: tuple[str, ...]
    round: int = 0
    client: str = ""  # checksum address of the client; "" for a global model
    num_samples: int = 0
    format: str = ADAPTER_FORMAT

    def with_(self, **changes: object) -> AdapterMetadata:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class Adapter:
    """LoRA weights (PEFT names -> float32 arrays) plus their metadata."""

    tensors: dict[str, np.ndarray]
    metadata: AdapterMetadata
    extra: dict[str, str] = field(default_factory=dict)  # further header metadata, e.g. training stats

    @property
    def num_parameters(self) -> int:
        return int(sum(t.size for t in self.tensors.values()))

    @property
    def nbytes(self) -> int:
        return int(sum(t.nbytes for t in self.tensors.values()))

    def layout(self) -> dict[str, tuple[int, ...]]:
        """Key -> shape: what two adapters must share to be combined."""
        return {k: tuple(v.shape) for k, v in sorted(self.tensors.items())}
