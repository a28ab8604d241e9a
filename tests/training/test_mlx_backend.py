"""mlx-lm <-> PEFT conversion (pure numpy), and real mlx training where mlx-lm is installed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.exceptions import AdapterMismatchError, BackendUnavailableError
from flb_dapp.training import mlx_backend
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.mlx_backend import mlx_to_peft, peft_to_mlx
from flb_dapp.training.trainer import TrainConfig

MODULE = "model.layers.0.self_attn.q_proj"


def mlx_weights(rng: np.random.Generator, r: int, d_in: int = 6, d_out: int = 5) -> dict[str, np.ndarray]:
    return {
        f"{MODULE}.lora_a": rng.normal(size=(d_in, r)).astype(np.float32),
        f"{MODULE}.lora_b": rng.normal(size=(r, d_out)).astype(np.float32),
    }


def test_layout_names_and_alpha() -> None:
    w = mlx_weights(np.random.default_rng(0), r=4)
    adapter = mlx_to_peft(w, scale=20.0, base_model="m", round=2)
    a = adapter.tensors[f"base_model.model.{MODULE}.lora_A.weight"]
    b = adapter.tensors[f"base_model.model.{MODULE}.lora_B.weight"]
    assert np.array_equal(a, w[f"{MODULE}.lora_a"].T) and np.array_equal(b, w[f"{MODULE}.lora_b"].T)
    assert (adapter.metadata.r, adapter.metadata.lora_alpha) == (4, 80)  # alpha = scale * r
    assert adapter.metadata.target_modules == ("q_proj",) and adapter.metadata.round == 2
    back, scale = peft_to_mlx(adapter)
    assert scale == 20.0 and all(np.array_equal(back[k], w[k]) for k in w)


@pytest.mark.parametrize("scale", [2.0, 0.3, 1.7])
def test_the_adapted_function_is_the_same(scale: float) -> None:
    """mlx: y = x W^T + scale * (x a) b; PEFT: y = x W^T + (alpha / r) * x A^T B^T. Equal for any
    scale, also when scale * r is not an integer (the remainder is folded into B)."""
    rng = np.random.default_rng(1)
    w = mlx_weights(rng, r=3)
    x = rng.normal(size=(7, 6))
    mlx_delta = scale * (x @ w[f"{MODULE}.lora_a"]) @ w[f"{MODULE}.lora_b"]
    adapter = mlx_to_peft(w, scale=scale, base_model="m")
    a = adapter.tensors[f"base_model.model.{MODULE}.lora_A.weight"]
    b = adapter.tensors[f"base_model.model.{MODULE}.lora_B.weight"]
    peft_delta = adapter.metadata.lora_alpha / adapter.metadata.r * (x @ a.T) @ b.T
    assert np.allclose(mlx_delta, peft_delta, rtol=1e-5, atol=1e-6)


def test_malformed_mlx_weights_are_refused() -> None:
    with pytest.raises(AdapterMismatchError, match="not an mlx-lm LoRA weight"):
        mlx_to_peft({"model.layers.0.q_proj.weight": np.zeros((2, 2))}, 1.0, "m")
    rng = np.random.default_rng(0)
    mixed = {**mlx_weights(rng, r=2), "model.layers.1.self_attn.q_proj.lora_a": np.zeros((6, 3))}
    with pytest.raises(AdapterMismatchError, match="ranks"):
        mlx_to_peft(mixed, 1.0, "m")


def test_missing_mlx_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path, task: SyntheticTask
) -> None:
    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # import fails as if not installed
    assert not mlx_backend.mlx_available()
    start = initial_adapter(tiny_model, r=4, alpha=8)
    with pytest.raises(BackendUnavailableError, match="mlx-lm"):
        mlx_backend.train_client_mlx(TrainConfig(model=str(tiny_model), r=4, alpha=8), task.train[:4], start)


@pytest.mark.skipif(
    not mlx_backend.mlx_available(),
    reason="mlx-lm is not installed: mlx-lm 0.30+ needs transformers 5, which cannot share FLB's "
    "environment; install mlx-lm[cpu]==0.29.1 (Linux) or mlx-lm==0.29.1 (macOS) to run this",
)
def test_real_mlx_training_matches_peft(tiny_model: Path, task: SyntheticTask) -> None:
    import mlx.core as mx
    import mlx_lm
    import torch
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from flb_dapp.training.models import load_model
    from flb_dapp.training.peft_io import load_adapter_weights, wrap_with_lora

    start = initial_adapter(tiny_model, r=4, alpha=8, include_mlp=True)
    cfg = TrainConfig(model=str(tiny_model), steps=0, r=4, alpha=8, max_seq_len=128)
    unchanged = mlx_backend.train_client_mlx(cfg, task.train[:8], start)
    assert all(np.array_equal(unchanged.adapter.tensors[k], start.tensors[k]) for k in start.tensors)

    cfg = TrainConfig(model=str(tiny_model), steps=5, r=4, alpha=8, max_seq_len=128)
    result = mlx_backend.train_client_mlx(cfg, task.train[:32], start, client="c", round=1)
    assert result.adapter.layout() == start.layout() and result.adapter.metadata.client == "c"

    model, _ = mlx_lm.load(str(tiny_model))
    weights, scale = peft_to_mlx(result.adapter)
    keys = sorted({n for layer in model.layers for n, _ in layer.named_modules() if n.endswith("_proj")})
    linear_to_lora_layers(model, len(model.layers), {"rank": 4, "scale": scale, "dropout": 0.0, "keys": keys})
    model.load_weights([(k, mx.array(v)) for k, v in weights.items()], strict=False)
    ids = [5, 9, 14, 20, 33]
    mlx_logits = np.array(model(mx.array([ids])))
    peft_model = wrap_with_lora(load_model(tiny_model, for_training=False), result.adapter.metadata)
    load_adapter_weights(peft_model, result.adapter)
    with torch.no_grad():
        peft_logits = peft_model(input_ids=torch.tensor([ids])).logits.numpy()
    assert np.abs(mlx_logits - peft_logits).max() < 1e-4
