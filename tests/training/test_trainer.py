"""train_client: starts from the global adapter, is deterministic, and records who trained what."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.exceptions import AdapterMismatchError, ConfigError, TrainingError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.training.local_dp import update_norm
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.trainer import TrainConfig, sft_config, train_client


def same(a: Adapter, b: Adapter) -> bool:
    return a.layout() == b.layout() and all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


@pytest.fixture(scope="module")
def global_adapter(tiny_model: Path) -> Adapter:
    return initial_adapter(tiny_model, r=4, alpha=8, seed=0)


def config(tiny_model: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {"model": str(tiny_model), "steps": 4, "r": 4, "alpha": 8, "batch_size": 4,
                               "max_seq_len": 128, "learning_rate": 5e-3}  # fmt: skip
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_zero_steps_returns_the_global_adapter_bit_for_bit(
    tiny_model: Path, task: SyntheticTask, global_adapter: Adapter
) -> None:
    result = train_client(config(tiny_model, steps=0), task.train[:8], global_adapter, client="0xA", round=3)
    assert same(result.adapter, global_adapter)
    assert (result.adapter.metadata.round, result.adapter.metadata.client) == (3, "0xA")
    assert result.adapter.metadata.num_samples == result.num_examples == 8


def test_training_starts_from_the_global_weights(
    tiny_model: Path, task: SyntheticTask, global_adapter: Adapter
) -> None:
    """With learning rate 0 the optimizer steps move nothing: what comes out is exactly what was
    loaded, so it must be the global adapter (not peft's own random init), whichever global it is."""
    other = Adapter(
        {k: v + np.float32(0.01) for k, v in global_adapter.tensors.items()}, global_adapter.metadata
    )
    for start in (global_adapter, other):
        result = train_client(config(tiny_model, steps=2, learning_rate=0.0), task.train[:16], start)
        assert same(result.adapter, start)
        assert result.metrics["steps"] == 2


def test_same_seed_same_adapter_other_seed_other_adapter(
    tiny_model: Path, task: SyntheticTask, global_adapter: Adapter
) -> None:
    data = task.train[:32]
    a = train_client(config(tiny_model), data, global_adapter, client="c1")
    b = train_client(config(tiny_model), data, global_adapter, client="c2")
    c = train_client(config(tiny_model, seed=1), data, global_adapter)
    assert same(a.adapter, b.adapter)
    assert not same(a.adapter, c.adapter)
    assert not same(a.adapter, global_adapter)
    delta = {k: a.adapter.tensors[k] - global_adapter.tensors[k] for k in global_adapter.tensors}
    assert 0 < update_norm(delta) < 10
    assert a.adapter.metadata.client == "c1" and a.adapter.metadata.num_samples == 32
    assert a.adapter.extra["train.steps"] == "4"
    assert "train_loss" not in a.adapter.extra  # metrics stay local


def test_loss_goes_down_and_progress_is_reported(
    tiny_model: Path, task: SyntheticTask, global_adapter: Adapter
) -> None:
    seen: list[tuple[int, int]] = []
    result = train_client(
        config(tiny_model, steps=20, batch_size=8, learning_rate=1e-2),
        task.train[:64],
        global_adapter,
        progress=lambda step, total, logs: seen.append((step, total)),
    )
    assert seen and seen[-1] == (20, 20) and all(t == 20 for _, t in seen)
    first = train_client(
        config(tiny_model, steps=2, batch_size=8, learning_rate=1e-2), task.train[:64], global_adapter
    )
    assert result.metrics["train_loss"] < first.metrics["train_loss"]


def test_mismatched_config_and_bad_input_are_refused(
    tiny_model: Path, task: SyntheticTask, global_adapter: Adapter
) -> None:
    with pytest.raises(AdapterMismatchError, match="r=8"):
        train_client(config(tiny_model, r=8), task.train[:4], global_adapter)
    with pytest.raises(AdapterMismatchError, match="targets"):
        train_client(config(tiny_model, target_modules=("q_proj",)), task.train[:4], global_adapter)
    with pytest.raises(TrainingError, match="no training examples"):
        train_client(config(tiny_model), [], global_adapter)
    with pytest.raises(ConfigError):
        TrainConfig(model="x", steps=-1)
    with pytest.raises(ConfigError):
        TrainConfig(model="x", quantization="3bit")  # type: ignore[arg-type]


def test_gradient_checkpointing_is_off_on_cpu_by_default(tiny_model: Path, tmp_path: Path) -> None:
    args = sft_config(config(tiny_model), str(tmp_path), "cpu", checkpointing=False)
    assert args.gradient_checkpointing is False  # trl's own default would be True
    assert args.max_steps == 4 and args.per_device_train_batch_size == 4 and args.seed == 0


def test_gradient_checkpointing_on_request_gives_the_same_training(
    tiny_model: Path, task: SyntheticTask, global_adapter: Adapter
) -> None:
    plain = train_client(config(tiny_model, steps=2), task.train[:8], global_adapter)
    checkpointed = train_client(
        config(tiny_model, steps=2, gradient_checkpointing=True), task.train[:8], global_adapter
    )
    for key, value in plain.adapter.tensors.items():
        np.testing.assert_allclose(checkpointed.adapter.tensors[key], value, rtol=1e-4, atol=1e-6)
