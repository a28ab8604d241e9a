"""The round computation: previous global adapter + the round's updates -> validate -> aggregate ->
evaluate -> score -> rewards -> report.

Deterministic given its inputs, and the one function that the oracle, `flb verify-round` and
`flb simulate` all call. Each step returns a JSON-able result; with a ``StepJournal`` a step that
already has a recorded result is not run again, which is how the oracle resumes after a crash.
Pure layer: storage, codec, aggregation and rewards only, no chain code.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from eth_utils import to_checksum_address

from flb_dapp import __version__
from flb_dapp.aggregation import (
    ClientUpdate,
    PrivacyAccountant,
    Strategy,
    apply_delta,
    l2_norm,
    make_strategy,
)
from flb_dapp.aggregation.registry import from_description
from flb_dapp.exceptions import (
    AdapterValidationError,
    CidMismatchError,
    ContentNotFoundError,
    ContentTooLargeError,
    FLBError,
    RoundError,
    StorageError,
)
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import AdapterLimits, decode_adapter, encode_adapter
from flb_dapp.report import REPORT_FORMAT, canonical_json
from flb_dapp.rewards import SCORING_RULES, RewardsOutcome, allocate, prototype_scores
from flb_dapp.storage.base import ContentStore

STEPS = ("fetch", "validate", "aggregate", "evaluate", "score", "report")


class Scorer(Protocol):
    """Evaluates adapters of the task's base model (``flb_dapp.evaluation.Evaluator``)."""

    def evaluate(self, adapter: Adapter | None = None) -> Any: ...


class StepJournal(Protocol):
    """Where step results are kept between runs (the oracle's SQLite journal)."""

    def load(self, step: str) -> dict[str, Any] | None: ...

    def save(self, step: str, result: dict[str, Any]) -> None: ...


class MemoryJournal:
    """A journal that lives as long as the object (simulate, verify, tests)."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def load(self, step: str) -> dict[str, Any] | None:
        return self.results.get(step)

    def save(self, step: str, result: dict[str, Any]) -> None:
        self.results[step] = result


@dataclass(frozen=True)
class UpdateRef:
    """One ``UpdateSubmitted`` event: who submitted what."""

    client: str
    cid: str
    num_samples: int


@dataclass(frozen=True)
class RoundSettings:
    """How the oracle combines and rewards a round. Recorded in every report."""

    strategy: Mapping[str, Any] = field(default_factory=lambda: {"name": "fedavg"})
    seed: int = 0
    scoring: str = "leave-one-out"
    norm_factor: float = 20.0  # reject a delta whose norm exceeds this multiple of the median norm
    max_update_bytes: int = 256 << 20
    fetch_timeout_s: float = 60.0
    fetch_retry_s: float = 0.5
    privacy_delta: float = 1e-5
    privacy_budget: float | None = None  # stop before a round that would exceed this epsilon

    def __post_init__(self) -> None:
        if self.scoring not in SCORING_RULES:
            raise RoundError(f"unknown scoring rule {self.scoring!r}; choose one of {SCORING_RULES}")
        if self.norm_factor <= 1:
            raise RoundError(f"norm_factor must be > 1, got {self.norm_factor}")

    def build_strategy(self) -> Strategy:
        params = dict(self.strategy)
        name = params.pop("name")
        dp = params.pop("dp", None)
        if dp:
            params.setdefault("seed", self.seed)
        return make_strategy(name, dp=dp, **params)

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["strategy"] = dict(self.strategy)
        out.pop("seed")  # NOTE: a DP seed would let anyone subtract the noise; it is never published
        return out


@dataclass(frozen=True)
class RoundInputs:
    """Everything a round depends on, all of it readable from the chain and the store."""

    contract: str
    chain_id: int
    round: int
    previous_global_cid: str
    updates: Sequence[UpdateRef]
    budget: int
    previous_cumulative: Mapping[str, int] = field(default_factory=dict)
    strategy_state: Mapping[str, Any] | None = None
    privacy_state: Mapping[str, Any] | None = None
    task: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RoundOutcome:
    """What the oracle writes on chain and what `verify-round` compares."""

    round: int
    global_model_cid: str
    report_cid: str
    report: dict[str, Any]
    rewards: RewardsOutcome
    metric: float
    epsilon: float
    timings: dict[str, float]

    @property
    def accepted(self) -> list[str]:
        return [d["client"] for d in self.report["inputs"] if d["accepted"]]

    @property
    def rejected(self) -> dict[str, str]:
        return {d["client"]: d["reason"] for d in self.report["inputs"] if not d["accepted"]}


# --- helpers ---------------------------------------------------------------------------------------
def _fetch_with_retry(store: ContentStore, cid: str, settings: RoundSettings) -> bytes:
    """Fetch verified bytes; retry a store that is down until ``fetch_timeout_s`` has passed."""
    deadline = time.monotonic() + settings.fetch_timeout_s
    delay = settings.fetch_retry_s
    while True:
        try:
            return store.get_bytes(cid, max_size=settings.max_update_bytes)
        except (ContentNotFoundError, CidMismatchError, ContentTooLargeError):
            raise
        except StorageError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _fetch_failure_reason(exc: Exception, settings: RoundSettings) -> str:
    if isinstance(exc, ContentNotFoundError):
        return f"CID does not resolve: {exc}"
    if isinstance(exc, CidMismatchError):
        return f"bytes do not match their CID: {exc}"
    if isinstance(exc, ContentTooLargeError):
        return f"update larger than {settings.max_update_bytes} bytes"
    return f"could not be fetched within {settings.fetch_timeout_s:g} s: {exc}"


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


def _content_digest(adapter: Adapter) -> str:
    digest = hashlib.sha256()
    for key in sorted(adapter.tensors):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(adapter.tensors[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


def _global_adapter(
    base: Adapter, delta: Mapping[str, np.ndarray], round_number: int, samples: int
) -> Adapter:
    tensors = apply_delta(base.tensors, delta) if delta else dict(base.tensors)
    metadata = base.metadata.with_(round=round_number, client="", num_samples=samples)
    return Adapter(
        tensors={k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=metadata
    )


# --- the computation ---------------------------------------------------------------------------------
class RoundComputation:
    """One round's pipeline. ``run()`` does every step; the oracle calls ``step(name)`` in turn."""

    def __init__(
        self,
        inputs: RoundInputs,
        settings: RoundSettings,
        store: ContentStore,
        scorer: Scorer,
        journal: StepJournal | None = None,
        cache: ContentStore | None = None,
    ) -> None:
        self.inputs = inputs
        self.settings = settings
        self.store = store
        self.cache = cache or store
        self.scorer = scorer
        self.journal: StepJournal = journal or MemoryJournal()
        self.timings: dict[str, float] = {}
        self._base: Adapter | None = None
        self.limits = AdapterLimits(max_bytes=settings.max_update_bytes)
        self._rewards: RewardsOutcome | None = None
        self._report_document: dict[str, Any] | None = None

    # The previous global adapter is read in every step that needs it (cheap; verified by CID).
    @property
    def base(self) -> Adapter:
        if self._base is None:
            data = _fetch_with_retry(self.store, self.inputs.previous_global_cid, self.settings)
            self._base = decode_adapter(data, self.limits)
        return self._base

    def _load_update(self, cid: str) -> Adapter:
        return decode_adapter(self.cache.get_bytes(cid, max_size=self.settings.max_update_bytes), self.limits)

    def step(self, name: str) -> dict[str, Any]:
        """Run one step (or return its recorded result) and record it."""
        recorded = self.journal.load(name)
        if recorded is not None:
            return recorded
        started = time.perf_counter()
        result: dict[str, Any] = getattr(self, f"_{name}")()
        self.timings[name] = time.perf_counter() - started
        self.journal.save(name, result)
        return result

    def run(self) -> RoundOutcome:
        for name in STEPS:
            self.step(name)
        return self.outcome()

    # --- steps -------------------------------------------------------------------------------------
    def _fetch(self) -> dict[str, Any]:
        """Bring every update into the cache; a failure is recorded, not raised."""
        fetched: list[dict[str, Any]] = []
        for ref in self.inputs.updates:
            entry = {
                "client": ref.client,
                "cid": ref.cid,
                "num_samples": ref.num_samples,
                "ok": True,
                "reason": "",
            }
            try:
                data = _fetch_with_retry(self.store, ref.cid, self.settings)
                if self.cache is not self.store:
                    self.cache.put_bytes(data)
            except FLBError as exc:
                entry.update(ok=False, reason=_fetch_failure_reason(exc, self.settings))
            fetched.append(entry)
        return {"updates": fetched}

    def _validate(self) -> dict[str, Any]:
        """Decode and check each fetched update against the global adapter and the submission."""
        base = self.base
        layout = base.layout()
        decisions: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        for entry in self.step("fetch")["updates"]:
            decision = {
                **{k: entry[k] for k in ("client", "cid", "num_samples")},
                "accepted": False,
                "reason": entry["reason"],
                "norm": None,
            }
            decisions.append(decision)
            if not entry["ok"]:
                continue
            try:
                adapter = decode_adapter(
                    self.cache.get_bytes(entry["cid"]), self.limits, expected_layout=layout
                )
            except (AdapterValidationError, StorageError) as exc:
                decision["reason"] = f"invalid adapter: {exc}"
                continue
            meta = adapter.metadata
            problem = ""
            if meta.base_model != base.metadata.base_model:
                problem = f"trained on base model {meta.base_model!r}, not {base.metadata.base_model!r}"
            elif (meta.r, meta.lora_alpha) != (base.metadata.r, base.metadata.lora_alpha):
                problem = f"LoRA r={meta.r}, alpha={meta.lora_alpha} differ from the global adapter's"
            elif meta.round != self.inputs.round:
                problem = f"adapter is labelled round {meta.round}, submitted in round {self.inputs.round}"
            elif meta.client.lower() != entry["client"].lower():
                problem = f"adapter belongs to {meta.client or 'nobody'}, submitted by {entry['client']}"
            if problem:
                decision["reason"] = problem
                continue
            digest = _content_digest(adapter)
            if digest in seen:
                decision["reason"] = f"duplicate of the update of {seen[digest]}"
                continue
            seen[digest] = entry["client"]
            decision["norm"] = l2_norm({k: adapter.tensors[k] - base.tensors[k] for k in layout})
            decision["accepted"] = True
        self._reject_norm_outliers(decisions)
        return {"decisions": decisions}

    def _reject_norm_outliers(self, decisions: list[dict[str, Any]]) -> None:
        norms = [d["norm"] for d in decisions if d["accepted"]]
        if len(norms) < 3:
            return
        median = statistics.median(norms)
        bound = self.settings.norm_factor * median
        for decision in decisions:
            if decision["accepted"] and median > 0 and decision["norm"] > bound:
                decision["accepted"] = False
                decision["reason"] = (
                    f"update norm {decision['norm']:.4g} exceeds {self.settings.norm_factor:g} x the median "
                    f"norm {median:.4g}"
                )

    def _accepted(self) -> list[dict[str, Any]]:
        return [d for d in self.step("validate")["decisions"] if d["accepted"]]

    def _client_updates(self, decisions: Sequence[dict[str, Any]]) -> list[ClientUpdate]:
        base = self.base

        def loader(cid: str) -> Callable[[], Adapter]:
            return lambda: self._load_update(cid)

        return [
            ClientUpdate(d["client"], int(d["num_samples"]), LazyDelta(loader(d["cid"]), base))
            for d in decisions
        ]

    def _strategy(self) -> Strategy:
        strategy = self.settings.build_strategy()
        if self.inputs.strategy_state and hasattr(strategy, "load_state"):
            strategy.load_state(self.inputs.strategy_state)
        return strategy

    def _combine(self, decisions: Sequence[dict[str, Any]]) -> tuple[Adapter, Any, Strategy]:
        """The new global adapter from ``decisions``' updates (the old one if there are none)."""
        strategy = self._strategy()
        if not decisions:
            return _global_adapter(self.base, {}, self.inputs.round, 0), None, strategy
        result = strategy.aggregate(self._client_updates(decisions), round=self.inputs.round)
        samples = sum(int(d["num_samples"]) for d in decisions if result.weights.get(d["client"], 0) > 0)
        return _global_adapter(self.base, result.delta, self.inputs.round, samples), result, strategy

    def _aggregate(self) -> dict[str, Any]:
        accepted = self._accepted()
        accountant = PrivacyAccountant.from_state(
            self.inputs.privacy_state or {"delta": self.settings.privacy_delta, "events": []}
        )
        adapter, result, strategy = self._combine(accepted)
        event = result.privacy if result is not None else None
        if self.settings.privacy_budget is not None and event is not None:
            accountant.check_budget(self.settings.privacy_budget, event)
        if event is not None:
            accountant.record(event)
        cid = self.store.put_bytes(encode_adapter(adapter))
        return {
            "global_model_cid": cid,
            "weights": dict(result.weights) if result else {},
            "excluded": dict(result.excluded) if result else {},
            "metrics": {k: float(v) for k, v in (result.metrics if result else {}).items()},
            "privacy_event": event.to_dict() if event is not None else None,
            "privacy_state": accountant.state(),
            "epsilon": accountant.epsilon(),
            "strategy_state": strategy.state() if hasattr(strategy, "state") else None,
        }

    def _load_global(self, cid: str) -> Adapter:
        return decode_adapter(self.store.get_bytes(cid), self.limits)

    def _evaluate(self) -> dict[str, Any]:
        aggregated = self.step("aggregate")
        before = self.scorer.evaluate(self.base)
        after = self.scorer.evaluate(self._load_global(aggregated["global_model_cid"]))
        return {"before": before.to_dict(), "after": after.to_dict()}

    def _score(self) -> dict[str, Any]:
        """Each client's contribution, then its share of the round's budget."""
        aggregated = self.step("aggregate")
        evaluation = self.step("evaluate")
        included = [d for d in self._accepted() if aggregated["weights"].get(d["client"], 0) > 0]
        contributions: dict[str, float] = {d["client"]: 0.0 for d in self.step("validate")["decisions"]}
        if self.settings.scoring == "leave-one-out":
            loss_all = float(evaluation["after"]["loss"])
            for decision in included:
                others = [d for d in included if d is not decision]
                without, _, _ = self._combine(others)
                loss_without = float(self.scorer.evaluate(without).loss)
                # Positive when the model is better with this client than without it.
                contributions[decision["client"]] = max(0.0, loss_without - loss_all)
        else:
            before, after = evaluation["before"]["accuracy"], evaluation["after"]["accuracy"]
            improvement = (after - before) / before if before > 0 else after
            weight_bytes = sum(v.nbytes for v in self.base.tensors.values())
            scores = prototype_scores(
                {d["client"]: 1 for d in included},
                weight_bytes,
                {d["client"]: int(d["num_samples"]) for d in included},
                improvement,
            )
            contributions.update(scores)
        rewards = self._rewards = allocate(contributions, self.inputs.budget, self.inputs.previous_cumulative)
        return {
            "contributions": contributions,
            "round_rewards": rewards.round_rewards,
            "cumulative": rewards.cumulative,
            "rewards_root": rewards.tree.root_hex,
        }

    def _report(self) -> dict[str, Any]:
        report = self.build_report()
        cid = self.store.put_bytes(canonical_json(report))
        return {"report_cid": cid}

    # --- results -------------------------------------------------------------------------------------
    def rewards(self) -> RewardsOutcome:
        """The round's rewards and Merkle tree from the recorded contributions, built once."""
        if self._rewards is None:
            contributions = self.step("score")["contributions"]
            self._rewards = allocate(contributions, self.inputs.budget, self.inputs.previous_cumulative)
        return self._rewards

    def build_report(self) -> dict[str, Any]:
        """The round report; built once (the report step and the outcome both need it)."""
        if self._report_document is None:
            self._report_document = self._build_report()
        return self._report_document

    def _build_report(self) -> dict[str, Any]:
        aggregated = self.step("aggregate")
        scored = self.step("score")
        rewards = self.rewards()
        decisions = self.step("validate")["decisions"]
        inputs = [
            {
                **d,
                "weight": aggregated["weights"].get(d["client"], 0.0),
                "excluded": aggregated["excluded"].get(d["client"], ""),
                "contribution": scored["contributions"].get(d["client"], 0.0),
                "reward": rewards.round_rewards.get(to_checksum_address(d["client"]), 0),
            }
            for d in decisions
        ]
        privacy_event = aggregated["privacy_event"]
        return {
            "format": REPORT_FORMAT,
            "software": {"flb": __version__},
            "contract": self.inputs.contract,
            "chain_id": self.inputs.chain_id,
            "round": self.inputs.round,
            "task": dict(self.inputs.task),
            "previous_global_model_cid": self.inputs.previous_global_cid,
            "global_model_cid": aggregated["global_model_cid"],
            "settings": self.settings.describe(),
            "strategy": self._strategy().describe(),
            "strategy_state": aggregated["strategy_state"],
            "inputs": inputs,
            "aggregation": {"metrics": aggregated["metrics"]},
            "privacy": {
                "server_noise": privacy_event is not None and privacy_event["noise_multiplier"] > 0,
                "round_event": privacy_event,
                "epsilon": aggregated["epsilon"],
                "delta": aggregated["privacy_state"]["delta"],
                "state": aggregated["privacy_state"],
            },
            "metrics": self.step("evaluate"),
            "rewards": {
                "budget": self.inputs.budget,
                "scoring": self.settings.scoring,
                "round": rewards.round_rewards,
                "round_total": rewards.total,
                "cumulative": rewards.cumulative,
                "root": rewards.tree.root_hex,
                "proofs": {c: rewards.tree.proof_hex(c) for c in rewards.tree.amounts},
            },
        }

    def outcome(self) -> RoundOutcome:
        aggregated = self.step("aggregate")
        report = self.build_report()
        rewards = self.rewards()
        return RoundOutcome(
            round=self.inputs.round,
            global_model_cid=aggregated["global_model_cid"],
            report_cid=self.step("report")["report_cid"],
            report=report,
            rewards=rewards,
            metric=float(self.step("evaluate")["after"]["accuracy"]),
            epsilon=float(aggregated["epsilon"]),
            timings=dict(self.timings),
        )


def compute_round(
    inputs: RoundInputs,
    settings: RoundSettings,
    store: ContentStore,
    scorer: Scorer,
    journal: StepJournal | None = None,
    cache: ContentStore | None = None,
) -> RoundOutcome:
    """Run a whole round (see :class:`RoundComputation`)."""
    return RoundComputation(inputs, settings, store, scorer, journal, cache).run()


def inputs_after(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the next round inherits from this round's report: cumulative rewards and DP state."""
    return {
        "previous_cumulative": {c: int(a) for c, a in report["rewards"]["cumulative"].items()},
        "strategy_state": report.get("strategy_state"),
        "privacy_state": report["privacy"]["state"],
    }


def strategy_from_report(report: Mapping[str, Any]) -> Strategy:
    """Rebuild the strategy a report describes (without its secret DP seed)."""
    return from_description(report["strategy"])
