"""Robust aggregation against poisoned updates, end to end: real local training on the tiny model,
real multiple-choice evaluation of the aggregated adapter.

Seven clients train one round from the same global adapter on an IID share of the bundled task.
Then two of them turn malicious and send their update scaled by -10, or sign-flipped. FedAvg
follows the attackers and its accuracy collapses; coordinate median, trimmed mean and Multi-Krum
stay within 0.05 of what FedAvg reaches when all seven clients are honest.

The clients are trained once (module fixture) and their deltas reused for every strategy and
attack, so the cost is seven short trainings plus a dozen evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from flb_dapp.aggregation import (
    ClientUpdate,
    CoordinateMedian,
    FedAvg,
    MultiKrum,
    Strategy,
    TrimmedMean,
    apply_delta,
    compute_delta,
)
from flb_dapp.evaluation.multiple_choice import Evaluator
from flb_dapp.evaluation.task import make_task
from flb_dapp.lora.adapter import Adapter
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.tiny_model import build_tiny_model
from flb_dapp.training.trainer import TrainConfig, train_client

pytestmark = pytest.mark.slow

NUM_CLIENTS = 7
ATTACKERS = ("client5", "client6")
TOLERANCE = 0.05

ATTACKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "scaled-x-10": lambda x: -10.0 * x,
    "sign-flipped": lambda x: -x,
}

ROBUST: dict[str, Callable[[], Strategy]] = {
    "median": CoordinateMedian,
    # floor(0.3 * 7) = 2 values trimmed at each end: as many as there are attackers.
    "trimmed-mean": lambda: TrimmedMean(beta=0.3),
    "multi-krum": lambda: MultiKrum(num_malicious=2),
}


class Federation:
    """One trained round: the global adapter, each client's honest delta, and an evaluator."""

    def __init__(self, tmp_dir: str) -> None:
        # 700 training creatures -> ~200 questions per client: enough that the seven honest
        # updates point the same way (robust rules need that; with ~50 questions each they don't).
        task = make_task(seed=0, n_train=700)
        model = build_tiny_model(tmp_dir, task.texts(), seed=0)
        self.global_adapter = initial_adapter(model, r=8, alpha=16, seed=0, include_mlp=True)
        # skew = 1/n is an IID split: robustness is about attackers, not about client drift.
        shares = task.split_non_iid(NUM_CLIENTS, seed=0, skew=1 / NUM_CLIENTS)
        self.honest: list[ClientUpdate] = []
        # Every client keeps TrainConfig's default seed, as clients do unless they choose one.
        config = TrainConfig(model=str(model), steps=40, learning_rate=5e-3, batch_size=16)
        for i, share in enumerate(shares):
            trained = train_client(config, share, self.global_adapter, client=f"client{i}", round=1)
            delta = compute_delta(trained.adapter.tensors, self.global_adapter.tensors)
            self.honest.append(ClientUpdate(f"client{i}", trained.num_examples, delta))
        self.evaluator = Evaluator(model, task.test, batch_size=64)

    def attacked(self, attack: Callable[[np.ndarray], np.ndarray]) -> list[ClientUpdate]:
        """The same round with the attackers' updates replaced by ``attack(update)``."""
        return [
            ClientUpdate(u.client, u.num_samples, {k: attack(v) for k, v in u.tensors.items()})
            if u.client in ATTACKERS
            else u
            for u in self.honest
        ]

    def accuracy(self, strategy: Strategy, updates: list[ClientUpdate]) -> float:
        delta = strategy.aggregate(updates, round=1).delta
        tensors = apply_delta(self.global_adapter.tensors, delta)
        return self.evaluator.evaluate(Adapter(tensors, self.global_adapter.metadata)).accuracy


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    return Federation(str(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture(scope="module")
def honest_accuracy(federation: Federation) -> float:
    accuracy = federation.accuracy(FedAvg(), federation.honest)
    base = federation.evaluator.evaluate(federation.global_adapter).accuracy
    # The round must have taught the model something, or "robust" would be vacuous.
    assert accuracy > base + 0.15, f"all-honest FedAvg reached only {accuracy:.3f} (untrained {base:.3f})"
    return accuracy


@pytest.mark.parametrize("attack", ATTACKS)
def test_fedavg_collapses_under_attack(federation: Federation, honest_accuracy: float, attack: str) -> None:
    accuracy = federation.accuracy(FedAvg(), federation.attacked(ATTACKS[attack]))
    assert accuracy < honest_accuracy - 0.15, f"FedAvg {accuracy:.3f} vs all-honest {honest_accuracy:.3f}"


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("rule", ROBUST)
def test_robust_rules_hold_under_attack(
    federation: Federation, honest_accuracy: float, rule: str, attack: str
) -> None:
    accuracy = federation.accuracy(ROBUST[rule](), federation.attacked(ATTACKS[attack]))
    assert abs(accuracy - honest_accuracy) <= TOLERANCE, (
        f"{rule} under {attack}: {accuracy:.3f} vs all-honest FedAvg {honest_accuracy:.3f}"
    )


def test_multi_krum_rejects_exactly_the_attackers(federation: Federation) -> None:
    result = MultiKrum(num_malicious=2).aggregate(federation.attacked(ATTACKS["scaled-x-10"]), round=1)
    assert set(result.excluded) == set(ATTACKERS)
