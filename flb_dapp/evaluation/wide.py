"""Float64 evaluation that stays float64 (exact scores, ``oracle.score_dtype: float64``).

transformers' Llama-family models compute RMSNorm and the rotary embedding in float32 whatever
the model's dtype, and the evaluators took log-softmax in float32: float32 ``rsqrt``, ``sin`` and
``cos`` differ in their last bits between CPU kernel sets, which moved float64 losses by 1e-8
(measured: the tiny model, ``ATEN_CPU_CAPABILITY=default`` against AVX2), as much as rounding to 8
decimals can absorb. :func:`keep_float64` makes those modules compute in their input's dtype, and
:func:`wide` keeps float64 logits float64.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def wide(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 at least (float64 stays float64)."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


def _rms_norm(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


@torch.no_grad()
def _rotary(self: Any, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = self.inv_freq.to(torch.float64)[None, :, None].expand(position_ids.shape[0], -1, 1)
    freqs = (inv_freq.to(x.device) @ position_ids[:, None, :].to(torch.float64)).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


def keep_float64(model: Any) -> int:
    """Patch a float64 model's RMSNorm and default rotary embedding modules to compute in float64;
    returns how many were patched (0 for other architectures, which are left as they are)."""
    patched = 0
    for module in model.modules():
        name = type(module).__name__
        if name.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
            module.forward = types.MethodType(_rms_norm, module)
            patched += 1
        elif (
            name.endswith("RotaryEmbedding")
            and hasattr(module, "inv_freq")
            and getattr(module, "rope_type", "default") == "default"
        ):
            module.forward = types.MethodType(_rotary, module)
            patched += 1
    return patched
