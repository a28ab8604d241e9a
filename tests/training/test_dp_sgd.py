"""DP-SGD with Opacus on the LoRA parameters of a peft model, in a hand-written loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from flb_dapp.evaluation.prompts import prompt_completion_record
from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.training.dp_sgd import IGNORE, per_example_loss, tokenize_records
from flb_dapp.training.local_dp import LocalDPConfig
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.models import load_tokenizer
from flb_dapp.training.trainer import TrainConfig, train_client


def test_dp_sgd_runs_and_reports_epsilon(tiny_model: Path, task: SyntheticTask) -> None:
    start = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    dp = LocalDPConfig(epsilon=3.0, delta=1e-5, clip_norm=1.0, method="dp_sgd", noise_seed=0)
    cfg = TrainConfig(
        model=str(tiny_model), steps=4, r=4, alpha=8, batch_size=8, max_seq_len=128, local_dp=dp
    )
    result = train_client(cfg, task.train[:64], start, client="c", round=1)
    m = result.metrics
    assert m["steps"] == 4 and m["dp_sample_rate"] == 8 / 64
    assert 2.5 < m["dp_epsilon"] <= 3.0 * 1.01  # the accountant's epsilon, close to the target
    assert m["dp_noise_multiplier"] > 0.5
    assert (
        result.adapter.extra["dp.mechanism"] == "dp-sgd/opacus-rdp"
        and result.adapter.extra["dp.steps"] == "4"
    )
    assert result.adapter.layout() == start.layout()
    assert any(not np.array_equal(result.adapter.tensors[k], start.tensors[k]) for k in start.tensors)
    again = train_client(cfg, task.train[:64], start, client="c", round=1)
    assert all(np.array_equal(again.adapter.tensors[k], result.adapter.tensors[k]) for k in start.tensors)


def test_empty_poisson_batches_still_step(tiny_model: Path, task: SyntheticTask) -> None:
    """Sample rate 1/64: most Poisson batches are empty, and each still counts as a noisy step."""
    start = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    dp = LocalDPConfig(epsilon=8.0, delta=1e-5, clip_norm=1.0, method="dp_sgd", noise_seed=0)
    cfg = TrainConfig(
        model=str(tiny_model), steps=6, r=4, alpha=8, batch_size=1, max_seq_len=128, local_dp=dp
    )
    result = train_client(cfg, task.train[:64], start)
    assert result.metrics["steps"] == 6
    assert result.metrics["dp_empty_batches"] >= 1


def test_labels_cover_only_the_answer(tiny_model: Path, task: SyntheticTask) -> None:
    tok = load_tokenizer(tiny_model)
    data = tokenize_records(tok, [prompt_completion_record(q) for q in task.train[:3]], max_len=128)
    input_ids, mask, labels = data.tensors
    for row in range(3):
        kept = input_ids[row][labels[row] != IGNORE].tolist()
        assert tok.decode(kept) == f"{task.train[row].answer}<|im_end|>\n"
        assert int(mask[row].sum()) == int((input_ids[row] != tok.pad_token_id).sum())


def test_per_example_loss_ignores_other_examples() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, IGNORE], [IGNORE, 1, 2, 3, 4]])
    both = per_example_loss(logits, labels)
    alone = per_example_loss(logits[:1], labels[:1])
    assert torch.equal(both[:1], alone)
    expected = torch.nn.functional.cross_entropy(logits[0, 1:3], labels[0, 2:4])
    assert torch.allclose(both[0], expected)
