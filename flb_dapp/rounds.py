"""The round computation: previous global adapter + the round's updates -> validate -> aggregate ->
evaluate -> score -> rewards -> report.

Deterministic given its inputs, and the one function that the oracle, `flb verify-round` and
`flb simulate` all call. Each step returns a JSON-able result; with a ``StepJournal`` a step that
already has a recorded result is not run again, which is how the oracle resumes after a crash.
Pure layer: storage, codec, aggregation and rewards only, no chain code.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from flb_dapp.aggregation.registry import DEFAULT_STRATEGY, from_description
from flb_dapp.exceptions import (
    AdapterValidationError,
    AggregationError,
    CidMismatchError,
    ContentNotFoundError,
    ContentTooLargeError,
    FLBError,
    RoundError,
    StoreUnavailableError,
)
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import AdapterLimits, decode_adapter, encode_adapter
from flb_dapp.report import REPORT_FORMAT, canonical_json
from flb_dapp.rewards import SCORING_RULES, RewardsOutcome, allocate, prototype_scores
from flb_dapp.screening import find_copies, flatten, relative_outliers
from flb_dapp.storage.base import ContentStore
from flb_dapp.taskspec import TaskSpec

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
    """How the oracle combines and rewards a round. Recorded in every report (but the DP seed)."""

    strategy: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_STRATEGY))
    # Secret seed of server-side DP noise; None draws it from OS entropy (private by default).
    dp_seed: int | None = None
    scoring: str = "leave-one-out"
    # Reject a delta whose norm exceeds this multiple of the round's median norm. Off by default:
    # the median of self-selected clients is steerable by Sybils; the task's absolute bound is not.
    norm_factor: float | None = None
    duplicate_cosine: float = 0.95  # a delta this similar to an earlier one is a copy
    max_update_bytes: int = 256 << 20
    fetch_timeout_s: float = 60.0  # total per update, however slowly its bytes arrive
    fetch_retry_s: float = 0.5
    fetch_concurrency: int = 4
    fetch_round_budget_s: float = 600.0  # all fetches of a round together; later ones are rejected
    max_updates: int = 256  # updates past this many in chain order are not processed
    privacy_delta: float = 1e-5
    privacy_budget: float | None = None  # stop before a round that would exceed this epsilon

    def __post_init__(self) -> None:
        if self.scoring not in SCORING_RULES:
            raise RoundError(f"unknown scoring rule {self.scoring!r}; choose one of {SCORING_RULES}")
        if self.norm_factor is not None and self.norm_factor <= 1:
            raise RoundError(f"norm_factor must be > 1 or unset, got {self.norm_factor}")
        if not 0 < self.duplicate_cosine <= 1:
            raise RoundError(f"duplicate_cosine must be in (0, 1], got {self.duplicate_cosine}")
        if self.fetch_concurrency < 1 or self.max_updates < 1:
            raise RoundError("fetch_concurrency and max_updates must be >= 1")
        self.build_strategy()  # NOTE: a misconfigured strategy fails at start, not after a deadline

    def build_strategy(self) -> Strategy:
        params = dict(self.strategy)
        name = params.pop("name")
        dp = params.pop("dp", None)
        if dp:
            params.setdefault("seed", self.dp_seed)
        return make_strategy(name, dp=dp, **params)

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["strategy"] = dict(self.strategy)
        out.pop("dp_seed")  # NOTE: a DP seed would let anyone subtract the noise; it is never published
        return out

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> RoundSettings:
        """The settings a report records (reports of schema 1 named the seed ``seed``)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "dp_seed"}
        return cls(**known)


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
    block: int = 0  # the chain was read up to this block: a verifier reads exactly as far
    banned: Sequence[str] = ()  # clients banned at ``block``: their updates are rejected


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
def _fetch_with_retry(
    store: ContentStore, cid: str, settings: RoundSettings, not_after: float | None = None
) -> bytes:
    """Verified bytes within ``fetch_timeout_s`` in total.

    The store being down (StoreUnavailableError) is retried within that time and then raised: an
    outage of the oracle's own node is the oracle's problem, never the client's, so the round
    waits for the next tick instead of rejecting honest updates. Every other failure is about this
    content (missing, too big, wrong bytes, too slow) and is the caller's to turn into a rejection.
    """
    deadline = time.monotonic() + settings.fetch_timeout_s
    if not_after is not None:
        deadline = min(deadline, not_after)
    delay = settings.fetch_retry_s
    while True:
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            return store.get_bytes(cid, max_size=settings.max_update_bytes, deadline_s=remaining)
        except StoreUnavailableError:
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
    return f"could not be fetched within {settings.fetch_timeout_s:g} s: {_exception_text(exc)}"


def _exception_text(exc: BaseException) -> str:
    """What went wrong, in words: FLB errors say it themselves; others are named by their type."""
    return str(exc) if isinstance(exc, FLBError) else f"{type(exc).__name__}: {exc}"


def _describe(exc: BaseException) -> str:
    """An exception as a one-line rejection reason, at most 500 characters."""
    text = _exception_text(exc)
    return text if len(text) <= 500 else text[:497] + "..."


def _included(accepted: Sequence[dict[str, Any]], weights: Mapping[str, float]) -> list[dict[str, Any]]:
    """The accepted updates the aggregate gave a positive weight (robust rules may drop some)."""
    return [d for d in accepted if weights.get(d["client"], 0) > 0]


def _local_dp(adapter: Adapter) -> dict[str, float] | None:
    """The local DP a client declares in its adapter (``dp.epsilon``/``dp.delta``), or None."""
    extra = adapter.extra
    if "dp.epsilon" not in extra and "dp.delta" not in extra:
        return None
    try:
        epsilon, delta = float(extra["dp.epsilon"]), float(extra["dp.delta"])
    except (KeyError, ValueError) as exc:
        raise AdapterValidationError(f"malformed local DP metadata: {exc}") from exc
    if not (math.isfinite(epsilon) and epsilon > 0 and 0 < delta < 1):
        raise AdapterValidationError(f"local DP metadata out of range: epsilon={epsilon}, delta={delta}")
    declared: dict[str, Any] = {"epsilon": epsilon, "delta": delta}
    if extra.get("dp.mechanism", "").startswith("gaussian-update") or "dp.sigma" in extra:
        try:
            sigma = float(extra.get("dp.sigma", "0"))
        except ValueError as exc:
            raise AdapterValidationError(f"malformed local DP metadata: dp.sigma: {exc}") from exc
        if not (math.isfinite(sigma) and sigma >= 0):
            raise AdapterValidationError(f"local DP metadata out of range: sigma={sigma}")
        declared["sigma"] = sigma
    return declared


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
        """Bring every update into the cache, a few at a time; a failure is that update's rejection.

        Only an outage of the store itself is raised (the step is retried at the next tick).
        """
        refs = list(self.inputs.updates)
        processed = refs[: self.settings.max_updates]
        not_after = time.monotonic() + self.settings.fetch_round_budget_s

        def fetch_one(ref: UpdateRef) -> dict[str, Any]:
            entry = {
                "client": ref.client,
                "cid": ref.cid,
                "num_samples": ref.num_samples,
                "ok": True,
                "reason": "",
            }
            if time.monotonic() >= not_after:
                budget = self.settings.fetch_round_budget_s
                entry.update(
                    ok=False, reason=f"could not be fetched within the round's fetch budget of {budget:g} s"
                )
                return entry
            try:
                data = _fetch_with_retry(self.store, ref.cid, self.settings, not_after)
                if self.cache is not self.store:
                    self.cache.put_bytes(data)
            except StoreUnavailableError:
                raise
            except Exception as exc:  # NOTE: whatever one update does, it only rejects that update
                entry.update(ok=False, reason=_fetch_failure_reason(exc, self.settings))
            return entry

        with ThreadPoolExecutor(max_workers=self.settings.fetch_concurrency) as pool:
            fetched = list(pool.map(fetch_one, processed))
        for ref in refs[len(processed) :]:
            fetched.append(
                {
                    "client": ref.client,
                    "cid": ref.cid,
                    "num_samples": ref.num_samples,
                    "ok": False,
                    "reason": f"not processed: the round takes at most {self.settings.max_updates} updates "
                    "(chain order)",
                }
            )
        return {"updates": fetched}

    def _validate(self) -> dict[str, Any]:
        """Decode and check each fetched update against the task, the global adapter, the submission
        and the other updates. Any exception about one update is that update's rejection."""
        base = self.base
        layout = base.layout()
        task = TaskSpec.from_dict(dict(self.inputs.task)) if self.inputs.task else TaskSpec()
        banned = {c.lower() for c in self.inputs.banned}
        decisions: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        vectors: list[tuple[str, np.ndarray]] = []
        for entry in self.step("fetch")["updates"]:
            decision = {
                **{k: entry[k] for k in ("client", "cid", "num_samples")},
                "accepted": False,
                "reason": entry["reason"],
                "norm": None,
                "local_dp": None,
            }
            decisions.append(decision)
            if not entry["ok"]:
                continue
            try:
                problem, vector = self._check_update(entry, decision, base, layout, task, banned, seen)
            except Exception as exc:  # NOTE: a crafted file must never stop the round
                problem, vector = f"invalid adapter: {_describe(exc)}", None
            if problem:
                decision["reason"] = problem
                continue
            assert vector is not None
            decision["accepted"] = True
            vectors.append((entry["client"], vector))
        by_client = {d["client"]: d for d in decisions}
        for copy in find_copies(vectors, self.settings.duplicate_cosine):
            by_client[copy.client].update(
                accepted=False,
                reason=f"near-duplicate of the update of {copy.original} (cosine {copy.cosine:.4f} >= "
                f"{self.settings.duplicate_cosine:g})",
            )
        if self.settings.norm_factor is not None:
            norms = {d["client"]: d["norm"] for d in decisions if d["accepted"]}
            for client, reason in relative_outliers(norms, self.settings.norm_factor).items():
                by_client[client].update(accepted=False, reason=reason)
        return {"decisions": decisions}

    def _check_update(
        self,
        entry: Mapping[str, Any],
        decision: dict[str, Any],
        base: Adapter,
        layout: Any,
        task: TaskSpec,
        banned: set[str],
        seen: dict[str, str],
    ) -> tuple[str, np.ndarray | None]:
        """(why ``entry`` is rejected or "", its flattened delta). Raises on undecodable content."""
        client = entry["client"]
        if client.lower() in banned:
            return f"{client} was banned before the round was processed", None
        adapter = decode_adapter(self.cache.get_bytes(entry["cid"]), self.limits, expected_layout=layout)
        meta = adapter.metadata
        if meta.base_model != base.metadata.base_model:
            return f"trained on base model {meta.base_model!r}, not {base.metadata.base_model!r}", None
        if (meta.r, meta.lora_alpha) != (base.metadata.r, base.metadata.lora_alpha):
            return f"LoRA r={meta.r}, alpha={meta.lora_alpha} differ from the global adapter's", None
        if meta.round != self.inputs.round:
            return f"adapter is labelled round {meta.round}, submitted in round {self.inputs.round}", None
        if meta.client.lower() != client.lower():
            return f"adapter belongs to {meta.client or 'nobody'}, submitted by {client}", None
        if int(entry["num_samples"]) > task.sample_cap:
            return (
                f"claims {entry['num_samples']} samples, over the task's maximum of {task.sample_cap} "
                "(steps x batch_size unless the task sets max_samples)"
            ), None
        decision["local_dp"] = _local_dp(adapter)
        delta = {k: adapter.tensors[k] - base.tensors[k] for k in layout}
        norm = l2_norm(delta)
        decision["norm"] = norm
        bound = task.max_update_norm
        if bound is not None and decision["local_dp"] and decision["local_dp"].get("sigma", 0) > 0:
            # Local DP noise of std sigma adds about sigma * sqrt(d) of norm that the server cannot
            # tell from signal: the bound grows by that much (local DP trades robustness for privacy).
            size = sum(int(v.size) for v in delta.values())
            bound += 1.1 * decision["local_dp"]["sigma"] * math.sqrt(size)
        if bound is not None and norm > bound:
            return f"update norm {norm:.4g} exceeds the task's bound of {bound:.4g}", None
        if norm < task.min_update_norm:
            return (
                f"update norm {norm:.4g} is below the task's minimum of {task.min_update_norm:g} "
                "(no training)"
            ), None
        digest = _content_digest(adapter)
        if digest in seen:
            return f"duplicate of the update of {seen[digest]}", None
        seen[digest] = client
        return "", flatten(delta)

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
        local = self._local_dp_spent(accepted, result)
        if local is not None:
            accountant.record_local_dp(local["epsilon"], local["delta"])
        cid = self.store.put_bytes(encode_adapter(adapter))
        return {
            "global_model_cid": cid,
            "weights": dict(result.weights) if result else {},
            "excluded": dict(result.excluded) if result else {},
            "metrics": {k: float(v) for k, v in (result.metrics if result else {}).items()},
            "privacy_event": event.to_dict() if event is not None else None,
            "local_dp": local,
            "privacy_state": accountant.state(),
            "epsilon": accountant.epsilon(),
            "strategy_state": strategy.state() if hasattr(strategy, "state") else None,
        }

    @staticmethod
    def _local_dp_spent(accepted: Sequence[dict[str, Any]], result: Any) -> dict[str, Any] | None:
        """The round's local DP: the weakest guarantee (largest epsilon, then delta) that an included
        client declared. Clients without local DP are listed: the guarantee does not cover them."""
        included = _included(accepted, result.weights) if result is not None else []
        declared = [d for d in included if d.get("local_dp")]
        if not declared:
            return None
        return {
            "epsilon": max(d["local_dp"]["epsilon"] for d in declared),
            "delta": max(d["local_dp"]["delta"] for d in declared),
            "clients": [d["client"] for d in declared],
            "clients_without": [d["client"] for d in included if not d.get("local_dp")],
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
        included = _included(self._accepted(), aggregated["weights"])
        contributions: dict[str, float] = {d["client"]: 0.0 for d in self.step("validate")["decisions"]}
        note = ""
        if self.settings.scoring == "leave-one-out":
            loss_all = float(evaluation["after"]["loss"])
            try:
                for decision in included:
                    others = [d for d in included if d is not decision]
                    without, _, _ = self._combine(others)
                    loss_without = float(self.scorer.evaluate(without).loss)
                    # Positive when the model is better with this client than without it.
                    contributions[decision["client"]] = max(0.0, loss_without - loss_all)
            except AggregationError as exc:
                # A robust rule may not run on n - 1 updates (Multi-Krum needs n > 2f + 2): the
                # rule's own weights are then the contributions, and the report says why.
                note = f"leave-one-out impossible ({exc}); contributions are the aggregation weights"
                contributions.update(
                    {d["client"]: float(aggregated["weights"][d["client"]]) for d in included}
                )
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
            "note": note,
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
            "inputs_block": self.inputs.block,
            "banned": sorted(self.inputs.banned),
            "global_model_cid": aggregated["global_model_cid"],
            "settings": self.settings.describe(),
            "strategy": self._strategy().describe(),
            "strategy_state": aggregated["strategy_state"],
            "inputs": inputs,
            "aggregation": {"metrics": aggregated["metrics"]},
            "privacy": {
                "server_noise": privacy_event is not None and privacy_event["noise_multiplier"] > 0,
                "round_event": privacy_event,
                "local_dp": aggregated.get("local_dp"),
                "epsilon": aggregated["epsilon"],
                "delta": aggregated["privacy_state"]["delta"],
                "state": aggregated["privacy_state"],
            },
            "metrics": self.step("evaluate"),
            "rewards": {
                "budget": self.inputs.budget,
                "scoring": self.settings.scoring,
                "note": scored.get("note", ""),
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
