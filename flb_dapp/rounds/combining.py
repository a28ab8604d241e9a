"""The aggregate step: the new global adapter from the accepted updates, and the privacy spent."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from flb_dapp.aggregation import ClientUpdate, PrivacyAccountant, Strategy, apply_delta
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.rounds.results import AggregateResult, Decision, LocalDpSpent

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation


class LazyDelta(Mapping[str, np.ndarray]):
    """A client's delta, decoded from the store only when a strategy first reads it."""

    def __init__(self, load: Callable[[], Adapter], base: Adapter) -> None:
        self._load = load
        self._base = base
        self._tensors: dict[str, np.ndarray] | None = None

    def _ensure(self) -> dict[str, np.ndarray]:
        if self._tensors is None:
            trained = self._load().tensors
            self._tensors = {k: trained[k] - v for k, v in self._base.tensors.items()}
        return self._tensors

    def __getitem__(self, key: str) -> np.ndarray:
        return self._ensure()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._base.tensors)

    def __len__(self) -> int:
        return len(self._base.tensors)


def included(accepted: Sequence[Decision], weights: Mapping[str, float]) -> list[Decision]:
    """The accepted updates the aggregate gave a positive weight (robust rules may drop some)."""
    return [d for d in accepted if weights.get(d.client, 0) > 0]


def global_adapter(
    base: Adapter, delta: Mapping[str, np.ndarray], round_number: int, samples: int
) -> Adapter:
    tensors = apply_delta(base.tensors, delta) if delta else dict(base.tensors)
    metadata = base.metadata.with_(round=round_number, client="", num_samples=samples)
    return Adapter(
        tensors={k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=metadata
    )


def strategy_for(run: RoundComputation) -> Strategy:
    """The round's strategy, carrying the state (adaptive clipping) the previous round left."""
    strategy = run.settings.build_strategy()
    if run.inputs.strategy_state and hasattr(strategy, "load_state"):
        strategy.load_state(run.inputs.strategy_state)
    return strategy


def combine(run: RoundComputation, decisions: Sequence[Decision]) -> tuple[Adapter, Any, Strategy]:
    """The new global adapter from ``decisions``' updates (the old one if there are none)."""
    strategy = strategy_for(run)
    base = run.base
    if not decisions:
        return global_adapter(base, {}, run.inputs.round, 0), None, strategy

    def loader(cid: str) -> Callable[[], Adapter]:
        return lambda: run.load_update(cid)

    updates = [ClientUpdate(d.client, d.num_samples, LazyDelta(loader(d.cid), base)) for d in decisions]
    result = strategy.aggregate(updates, round=run.inputs.round)
    samples = sum(d.num_samples for d in decisions if result.weights.get(d.client, 0) > 0)
    return global_adapter(base, result.delta, run.inputs.round, samples), result, strategy


def _local_dp_spent(accepted: Sequence[Decision], result: Any) -> LocalDpSpent | None:
    """The round's local DP: the weakest guarantee (largest epsilon, then delta) that an included
    client declared. Clients without local DP are listed: the guarantee does not cover them."""
    chosen = included(accepted, result.weights) if result is not None else []
    declared = [d for d in chosen if d.local_dp]
    if not declared:
        return None
    return LocalDpSpent(
        epsilon=max(d.local_dp["epsilon"] for d in declared if d.local_dp),
        delta=max(d.local_dp["delta"] for d in declared if d.local_dp),
        clients=[d.client for d in declared],
        clients_without=[d.client for d in chosen if not d.local_dp],
    )


def aggregate_step(run: RoundComputation) -> AggregateResult:
    accepted = run.result("validate").accepted
    accountant = PrivacyAccountant.from_state(
        run.inputs.privacy_state or {"delta": run.settings.privacy_delta, "events": []}
    )
    adapter, result, strategy = combine(run, accepted)
    event = result.privacy if result is not None else None
    if run.settings.privacy_budget is not None and event is not None:
        accountant.check_budget(run.settings.privacy_budget, event)
    if event is not None:
        accountant.record(event)
    local = _local_dp_spent(accepted, result)
    if local is not None:
        accountant.record_local_dp(local.epsilon, local.delta)
    cid = run.store.put_bytes(encode_adapter(adapter))
    return AggregateResult(
        global_model_cid=cid,
        weights=dict(result.weights) if result else {},
        excluded=dict(result.excluded) if result else {},
        metrics={k: float(v) for k, v in (result.metrics if result else {}).items()},
        privacy_event=event.to_dict() if event is not None else None,
        local_dp=local,
        privacy_state=accountant.state(),
        epsilon=accountant.epsilon(),
        strategy_state=strategy.state() if hasattr(strategy, "state") else None,
    )
