"""Local training with mlx-lm on Apple silicon, producing the same PEFT-format :class:`Adapter`.

mlx-lm's ``LoRALinear`` computes ``y = W x + scale * (x @ lora_a) @ lora_b`` with ``lora_a`` of shape
``(in, r)`` and ``lora_b`` of shape ``(r, out)``; PEFT computes ``W x + (alpha / r) * B A x`` with
``A = (r, in)``, ``B = (out, r)``. So ``A = lora_a.T``, ``B = lora_b.T`` and ``alpha = scale * r``.
When ``scale * r`` is not an integer (the adapter format stores an integer alpha) the remainder is
folded into B, which keeps the function identical.

mlx-lm is optional: the pure conversions work without it; training raises
:class:`BackendUnavailableError` when it is missing. Version note (measured): mlx-lm 0.30+ needs
transformers 5, which cannot share FLB's environment; ``mlx-lm[cpu]==0.29.1`` installs beside it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flb_dapp.evaluation.prompts import has_chat_template
from flb_dapp.exceptions import AdapterMismatchError, BackendUnavailableError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.training.encoding import encode_record
from flb_dapp.training.targets import matches
from flb_dapp.training.trainer import Example, TrainConfig, TrainResult, check_adapter_fits, to_records

PEFT_PREFIX = "base_model.model."
_MLX_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[ab])$")
_PEFT_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")


def mlx_to_peft(weights: Mapping[str, np.ndarray], scale: float, base_model: str, **metadata: Any) -> Adapter:
    """An mlx-lm LoRA state (``...q_proj.lora_a`` -> array) as a PEFT-named :class:`Adapter`."""
    tensors: dict[str, np.ndarray] = {}
    ranks, modules = set(), set()
    for key, value in weights.items():
        m = _MLX_KEY.match(key)
        if m is None:
            raise AdapterMismatchError(f"{key!r} is not an mlx-lm LoRA weight (…lora_a / …lora_b)")
        arr = np.asarray(value, dtype=np.float32)
        ranks.add(arr.shape[1] if m["which"] == "a" else arr.shape[0])
        modules.add(m["module"].rsplit(".", 1)[-1])
        name = f"{PEFT_PREFIX}{m['module']}.lora_{m['which'].upper()}.weight"
        tensors[name] = np.ascontiguousarray(arr.T)
    if len(ranks) != 1:
        raise AdapterMismatchError(f"mlx-lm adapter mixes LoRA ranks {sorted(ranks)}")
    r = ranks.pop()
    alpha = max(1, round(scale * r))
    fold = scale * r / alpha  # 1.0 whenever scale * r is an integer
    if fold != 1.0:
        for name in tensors:
            if name.endswith(".lora_B.weight"):
                tensors[name] = (tensors[name].astype(np.float64) * fold).astype(np.float32)
    meta = AdapterMetadata(
        base_model=base_model, r=r, lora_alpha=alpha, target_modules=tuple(sorted(modules)), **metadata
    )
    return Adapter(tensors=dict(sorted(tensors.items())), metadata=meta)


def peft_to_mlx(adapter: Adapter) -> tuple[dict[str, np.ndarray], float]:
    """The inverse: ``(mlx-lm weights, scale)`` for loading a PEFT adapter into mlx-lm LoRA layers."""
    out: dict[str, np.ndarray] = {}
    for key, value in adapter.tensors.items():
        m = _PEFT_KEY.match(key)
        if m is None:
            raise AdapterMismatchError(f"{key!r} is not a PEFT LoRA weight name")
        out[f"{m['module']}.lora_{m['which'].lower()}"] = np.ascontiguousarray(value.T)
    return out, adapter.metadata.lora_alpha / adapter.metadata.r


def mlx_available() -> bool:
    try:
        import mlx_lm  # noqa: F401
    except Exception:  # ImportError, or mlx's native library failing to load
        return False
    return True


def _require_mlx() -> Any:
    try:
        import mlx_lm
    except Exception as exc:
        raise BackendUnavailableError(
            "the mlx backend needs mlx-lm: pip install 'mlx-lm==0.29.1' (Apple silicon) or "
            "'mlx-lm[cpu]==0.29.1' (Linux CPU); later versions require transformers 5 "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return mlx_lm


def train_client_mlx(
    config: TrainConfig,
    examples: Sequence[Example],
    global_adapter: Adapter,
    client: str = "",
    round: int = 0,
) -> TrainResult:
    """:func:`flb_dapp.training.trainer.train_client` on mlx-lm: start from the global adapter,
    train ``config.steps`` Adam steps on the completion tokens, return the PEFT-format adapter."""
    mlx_lm = _require_mlx()
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.trainer import default_loss, iterate_batches
    from mlx_lm.tuner.utils import linear_to_lora_layers

    check_adapter_fits(config, global_adapter)
    started = time.perf_counter()
    mx.random.seed(config.seed)
    model, tokenizer = mlx_lm.load(config.model)
    model.freeze()
    targets = global_adapter.metadata.target_modules
    keys = sorted(
        {
            name
            for layer in model.layers
            for name, _ in layer.named_modules()
            if any(matches(name, t) for t in targets)
        }
    )
    weights, scale = peft_to_mlx(global_adapter)
    lora = {"rank": global_adapter.metadata.r, "scale": scale, "dropout": 0.0, "keys": keys}
    linear_to_lora_layers(model, len(model.layers), lora)
    model.load_weights([(k, mx.array(v)) for k, v in weights.items()], strict=False)
    metrics: dict[str, float] = {}
    if config.steps > 0:
        hf_tokenizer = getattr(tokenizer, "_tokenizer", tokenizer)
        data = [encode_record(hf_tokenizer, r) for r in to_records(examples, has_chat_template(hf_tokenizer))]
        optimizer = optim.Adam(learning_rate=config.learning_rate)
        loss_and_grad = nn.value_and_grad(model, default_loss)
        np.random.seed(config.seed)  # iterate_batches shuffles with numpy's global RNG
        batches = iterate_batches(
            dataset=data,
            batch_size=min(config.batch_size, len(data)),
            max_seq_length=config.max_seq_len,
            loop=True,
        )
        model.train()
        losses = []
        for _, (batch, lengths) in zip(range(config.steps), batches, strict=False):
            (loss, _ntoks), grads = loss_and_grad(model, batch, lengths)
            optimizer.update(model, grads)
            mx.eval(model.parameters(), optimizer.state, loss)
            losses.append(loss.item())
        metrics = {"train_loss": float(np.mean(losses)), "steps": float(len(losses))}
    flat: list[tuple[str, Any]] = list(tree_flatten(model.trainable_parameters()))  # type: ignore[arg-type]
    trained = {k: np.array(v) for k, v in flat}
    meta = {"round": round, "client": client, "num_samples": len(examples)}
    adapter = mlx_to_peft(trained, scale, global_adapter.metadata.base_model, **meta)
    adapter.metadata = adapter.metadata.with_(target_modules=global_adapter.metadata.target_modules)
    if adapter.layout() != global_adapter.layout():
        raise AdapterMismatchError("the mlx-trained adapter does not have the global adapter's layout")
    adapter.extra.update({"train.backend": "mlx-lm", "train.steps": str(config.steps)})
    metrics["total_seconds"] = time.perf_counter() - started
    return TrainResult(adapter=adapter, num_examples=len(examples), metrics=metrics)
