"""DP-SGD on the LoRA parameters with Opacus: per-example clipping and Gaussian noise every step,
Poisson-sampled batches, and the privacy spent read from Opacus' accountant.

This is a hand-written loop, not ``SFTTrainer``: Opacus needs to own the optimizer and the data
loader and computes per-sample gradients through hooks on the (training-mode) peft model.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from flb_dapp.exceptions import TrainingError
from flb_dapp.training.encoding import encode_record
from flb_dapp.training.local_dp import LocalDPConfig, PrivacySpent

IGNORE = -100


def tokenize_records(tokenizer: Any, records: Sequence[dict[str, Any]], max_len: int) -> TensorDataset:
    """Prompt-completion records -> right-padded ``(input_ids, attention_mask, labels)``; labels keep
    only the completion tokens (what trl's completion-only loss trains on)."""
    rows: list[tuple[list[int], list[int]]] = []
    for rec in records:
        full, start = encode_record(tokenizer, rec)
        labels = [IGNORE] * start + full[start:]
        rows.append((full[:max_len], labels[:max_len]))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels_t = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (ids, labels) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
        labels_t[i, : len(labels)] = torch.tensor(labels)
    return TensorDataset(input_ids, mask, labels_t)


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over each example's labelled tokens, shape ``(batch,)``.

    Each example's loss depends on that example alone, as per-sample clipping assumes.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    token_loss = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(shift_labels.shape)
    counts = (shift_labels != IGNORE).sum(dim=1).clamp(min=1)
    return token_loss.sum(dim=1) / counts


def dp_sgd_train(
    peft_model: Any,
    tokenizer: Any,
    records: Sequence[dict[str, Any]],
    config: Any,
    dp: LocalDPConfig,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[PrivacySpent, dict[str, float]]:
    """Run ``config.steps`` DP-SGD steps on the LoRA parameters of ``peft_model`` in place.

    The noise multiplier is chosen so that ``steps`` steps at sample rate ``batch_size / n`` spend
    ``(dp.epsilon, dp.delta)``; the epsilon reported is the accountant's after the run.
    """
    data = tokenize_records(tokenizer, records, config.max_seq_len)
    sample_rate = min(1.0, config.batch_size / len(data))
    noise_multiplier = _noise_multiplier(dp, sample_rate, config.steps)
    run = _make_private(peft_model, data, config, dp, noise_multiplier)
    started, step, empty, losses = time.perf_counter(), 0, 0, []
    while step < config.steps:
        for input_ids, mask, labels in run.loader:
            if step >= config.steps:
                break
            loss = run.step(input_ids, mask, labels)
            if loss is None:
                empty += 1
            else:
                losses.append(loss)
            step += 1
            if progress is not None:
                progress(step, config.steps, {"loss": losses[-1] if losses else float("nan")})
    seconds = time.perf_counter() - started
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        epsilon = float(run.engine.get_epsilon(dp.delta))
    if epsilon > dp.epsilon * 1.05:
        raise TrainingError(f"DP-SGD spent epsilon={epsilon:.3f}, above the target {dp.epsilon}")
    _unwrap(run.model)
    spent = PrivacySpent(
        mechanism=f"dp-sgd/opacus-{dp.accountant}",
        epsilon=epsilon,
        delta=dp.delta,
        clip_norm=dp.clip_norm,
        noise_multiplier=float(noise_multiplier),
        sigma=float(noise_multiplier * dp.clip_norm),
        steps=step,
    )
    metrics = {
        "train_loss": sum(losses) / len(losses) if losses else float("nan"),
        "steps": float(step),
        "train_seconds": seconds,
        "steps_per_second": step / seconds if seconds > 0 else 0.0,
        "dp_sample_rate": sample_rate,
        "dp_noise_multiplier": float(noise_multiplier),
        "dp_empty_batches": float(empty),
    }
    return spent, metrics


def _noise_multiplier(dp: LocalDPConfig, sample_rate: float, steps: int) -> float:
    """The noise multiplier with which ``steps`` steps at ``sample_rate`` spend ``(dp.epsilon, dp.delta)``."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "optimal order is the largest alpha": harmless
        return float(
            get_noise_multiplier(
                target_epsilon=dp.epsilon,
                target_delta=dp.delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=dp.accountant,
            )
        )


@dataclass
class _PrivateRun:
    """What Opacus' ``make_private`` returns, with the device and the trained parameters."""

    engine: Any  # opacus.PrivacyEngine
    model: Any  # the peft model wrapped in Opacus' GradSampleModule
    optimizer: Any  # Opacus' DPOptimizer around AdamW
    loader: DataLoader[Any]  # Poisson-sampled batches
    params: list[Any]  # the LoRA parameters (requires_grad)
    device: torch.device

    def step(self, input_ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> float | None:
        """One DP-SGD step on a batch; its mean loss, or None for an empty Poisson batch."""
        self.optimizer.zero_grad(set_to_none=True)
        loss: float | None = None
        if input_ids.shape[0] == 0:
            # An empty Poisson batch still takes a noise-only step: the accountant counts it.
            for p in self.params:
                p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)
        else:
            out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
            batch_loss = per_example_loss(out.logits, labels.to(self.device)).mean()
            with warnings.catch_warnings():
                # The frozen embeddings need no input grads; torch warns about the hooks anyway.
                warnings.simplefilter("ignore", UserWarning)
                batch_loss.backward()
            loss = float(batch_loss.detach())
        self.optimizer.step()
        return loss


def _make_private(
    peft_model: Any, data: TensorDataset, config: Any, dp: LocalDPConfig, noise_multiplier: float
) -> _PrivateRun:
    """AdamW on the trainable parameters, wrapped by Opacus with per-sample clipping and noise."""
    from opacus import PrivacyEngine

    device = next(peft_model.parameters()).device
    peft_model.train()  # Opacus' hooks record per-sample activations only in training mode
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    sampling = torch.Generator().manual_seed(config.seed)
    noise = torch.Generator(device=device).manual_seed(dp.noise_seed) if dp.noise_seed is not None else None
    with warnings.catch_warnings():
        # Opacus warns that its secure RNG (torchcsprng, not installed) is off.
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant=dp.accountant)
        model, optimizer, loader = engine.make_private(
            module=peft_model,
            optimizer=optimizer,
            data_loader=DataLoader(data, batch_size=config.batch_size, generator=sampling),
            noise_multiplier=noise_multiplier,
            max_grad_norm=dp.clip_norm,
            poisson_sampling=True,
            noise_generator=noise,
        )
    return _PrivateRun(engine, model, optimizer, loader, params, device)


def _unwrap(model: Any) -> None:
    """Remove Opacus' hooks so the peft model is plain again (for extraction or reuse)."""
    standard = getattr(model, "to_standard_module", None)
    if callable(standard):
        standard()
