"""The round's contribution game: who plays, and what any coalition of players is worth.

Players are the included updates (accepted, with positive aggregation weight) less two kinds that
add nothing of their own: a zero delta (the previous global model sent back: a free rider) and an
update identical to one submitted earlier (a copier; the earlier one, in chain order, plays). Both
score 0 and stay out of every coalition, so a copy can neither take nor dilute its original's value.

``v(S) = loss(previous global) - loss(aggregate of S)``: ``v(empty) = 0`` costs nothing, and the
grand coalition reuses the round's evaluated global model when that model is exactly its
aggregate. For a linear rule (FedAvg; a DP wrapper around it) each coalition's aggregate comes from
the rule's :class:`~flb_dapp.aggregation.linear.LinearParts` with every update decoded once; under
DP that is the aggregate *before* the noise, because the same noise on every coalition would only
add variance. Robust rules recompute each coalition exactly with the round's strategy (updates are
decoded once and shared between coalitions).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from flb_dapp.aggregation import ClientUpdate
from flb_dapp.aggregation.linear import LinearParts
from flb_dapp.lora.adapter import Adapter
from flb_dapp.rounds.combining import LazyDelta, global_adapter, strategy_for
from flb_dapp.rounds.results import Decision

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation

ZERO_DELTA = "zero delta (the previous global model sent back): no contribution of its own"


def copy_reason(original: str) -> str:
    return f"identical to the earlier update of {original}: scored with the original, not again"


def delta_digest(delta: Mapping[str, np.ndarray]) -> str:
    """The identity of a delta's values (float32 bytes, keys sorted)."""
    digest = hashlib.sha256()
    for key in sorted(delta):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(delta[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


def non_players(chosen: Sequence[Decision], deltas: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, str]:
    """Client -> why it is not a player: a zero delta, or a copy of an earlier update (``chosen`` is
    in chain order, so "earlier" is the earlier commit)."""
    seen: dict[str, str] = {}
    out: dict[str, str] = {}
    for decision in chosen:
        delta = deltas[decision.client]
        if not any(np.any(delta[key]) for key in sorted(delta)):
            out[decision.client] = ZERO_DELTA
            continue
        digest = delta_digest(delta)
        if digest in seen:
            out[decision.client] = copy_reason(seen[digest])
        else:
            seen[digest] = decision.client
    return out


class Subsets(Protocol):
    """The aggregate delta of any coalition of players (a bit mask over them)."""

    def delta(self, mask: int) -> dict[str, np.ndarray]: ...


class LinearSubsets:
    """Coalition aggregates of a linear rule: ``sum_S w_i x_i / sum_S w_i``, summed in float64.

    A coalition of more than half the players is the grand total less its non-members, so each
    leave-one-out aggregate is ``(S - w_i x_i) / (W - w_i)``: one subtraction, not a re-aggregation.
    Either way the sum depends on the coalition alone, never on the order coalitions are asked in.
    """

    def __init__(self, players: Sequence[str], parts: LinearParts) -> None:
        self.weights = [float(parts.weights[p]) for p in players]
        # Each update is read (decoded, checked, clipped) exactly once, here.
        self.deltas = [
            {k: np.asarray(parts.deltas[p][k], dtype=np.float32) for k in sorted(parts.deltas[p])}
            for p in players
        ]
        self.keys = sorted(self.deltas[0]) if self.deltas else []
        self.total = self._sum(range(len(players)))

    def _sum(self, members: Sequence[int] | range) -> dict[str, np.ndarray]:
        acc = {k: np.zeros(self.deltas[0][k].shape, dtype=np.float64) for k in self.keys}
        for i in members:
            for k in self.keys:
                acc[k] += self.weights[i] * self.deltas[i][k].astype(np.float64)
        return acc

    def delta(self, mask: int) -> dict[str, np.ndarray]:
        n = len(self.weights)
        members = [i for i in range(n) if mask >> i & 1]
        weight = math.fsum(self.weights[i] for i in members)
        if len(members) <= n - len(members):
            summed = self._sum(members)
        else:
            missing = self._sum([i for i in range(n) if not mask >> i & 1])
            summed = {k: self.total[k] - missing[k] for k in self.keys}
        return {k: (summed[k] / weight).astype(np.float32) for k in self.keys}


class ExactSubsets:
    """Coalition aggregates recomputed by the round's strategy (robust rules: not linear)."""

    def __init__(self, run: RoundComputation, updates: Sequence[ClientUpdate]) -> None:
        self.run = run
        self.updates = list(updates)

    def delta(self, mask: int) -> dict[str, np.ndarray]:
        members = [u for i, u in enumerate(self.updates) if mask >> i & 1]
        result = strategy_for(self.run).aggregate(members, round=self.run.inputs.round)
        return result.delta


def loss_value(base_loss: float, loss: float | None) -> float:
    """The value of a coalition whose model has ``loss``. A loss that is not finite counts as
    twice the previous model's plus one: worse than any finite outcome, yet finite, so one
    diverging coalition lowers the values of its members instead of voiding everyone's."""
    if loss is None or not math.isfinite(loss):
        loss = 2 * abs(base_loss) + 1.0
    return base_loss - float(loss)


class DryRun:
    """A stand-in game that answers 0 and remembers which coalitions were asked for, in order.

    Every estimator here asks for coalitions that depend on ``n``, the seed and how many new ones
    it asked for so far, never on their values, so running it once against a DryRun names exactly
    the coalitions the real run will need (and counts ``evaluations`` the way RoundGame does)."""

    def __init__(self, n: int, known: frozenset[int]) -> None:
        self.n = n
        self.evaluations = 0
        self._seen = set(known)
        self.asked: list[int] = []

    def value(self, mask: int) -> float:
        if mask not in self._seen:
            self._seen.add(mask)
            self.asked.append(mask)
            self.evaluations += 1
        return 0.0


def evaluate_all(scorer: Any, adapters: Sequence[Adapter | None]) -> list[Any]:
    """Each adapter's evaluation, in one batch where the scorer takes batches (a pool of workers
    evaluates them at once), else one after another."""
    many = getattr(scorer, "evaluate_many", None)
    if many is not None:
        return list(many(adapters))
    return [scorer.evaluate(adapter) for adapter in adapters]


class RoundGame:
    """``v(S)``, each coalition evaluated once; ``evaluations`` counts the scorer calls made."""

    def __init__(
        self,
        players: Sequence[str],
        subsets: Subsets,
        scorer: Any,
        base: Adapter,
        round_number: int,
        base_loss: float,
        known: Mapping[int, float] | None = None,
    ) -> None:
        self.players = list(players)
        self.n = len(self.players)
        self.evaluations = 0
        self._subsets = subsets
        self._scorer = scorer
        self._base = base
        self._round = round_number
        self.base_loss = base_loss
        self._values: dict[int, float] = {0: 0.0, **(known or {})}
        self._ahead: dict[int, Any] = {}  # evaluated in a batch, not asked for yet

    @property
    def known(self) -> frozenset[int]:
        """The coalitions valued so far (the empty one, and the grand one when it was free)."""
        return frozenset(self._values)

    def value(self, mask: int) -> float:
        if mask not in self._values:
            # NOTE: counted when first asked for, evaluated ahead or not: estimators read
            # ``evaluations`` to size their sampling, so the count must not depend on batching.
            self.evaluations += 1
            result = self._ahead.pop(mask, None)
            if result is None:
                result = self._scorer.evaluate(self._adapter(mask))
            self._values[mask] = loss_value(self.base_loss, result.loss)
        return self._values[mask]

    def _adapter(self, mask: int) -> Adapter:
        return global_adapter(self._base, self._subsets.delta(mask), self._round, 0)

    def evaluate_ahead(self, estimate: Callable[[Any], object]) -> None:
        """Evaluate, in batches, every coalition ``estimate(game)`` will ask for (found by a
        :class:`DryRun`), so that a scorer with workers evaluates them at once; ``estimate`` then
        finds them ready. Without a batching scorer this does nothing (values stay lazy). A batch
        holds ``parallelism`` coalitions: never more aggregates in memory than workers."""
        batch = int(getattr(self._scorer, "parallelism", 0))
        if batch < 2:
            return
        dry = DryRun(self.n, self.known)
        estimate(dry)
        for start in range(0, len(dry.asked), batch):
            masks = dry.asked[start : start + batch]
            adapters: list[Adapter | None] = []
            for mask in masks:
                try:
                    adapters.append(self._adapter(mask))
                except Exception:
                    # A coalition the rule cannot aggregate (Multi-Krum): stop here; ``estimate``
                    # meets the same error at the same coalition, as without batching.
                    break
            self._ahead.update(zip(masks, evaluate_all(self._scorer, adapters), strict=False))
            if len(adapters) < len(masks):
                return


def round_seed(round_number: int, players: Sequence[str], previous_global_cid: str) -> bytes:
    """The sampling seed: a hash of what anyone re-running the round has and nobody picks alone
    (the round, its sorted players, the previous global model's CID)."""
    text = "\n".join(
        [
            "flb-contributions/1",
            str(round_number),
            ",".join(sorted(p.lower() for p in players)),
            previous_global_cid,
        ]
    )
    return hashlib.sha256(text.encode()).digest()


def build_game(run: RoundComputation, chosen: Sequence[Decision]) -> tuple[RoundGame, dict[str, str], bool]:
    """The round's game, the non-players with their reason, and whether coalitions are pre-noise."""
    base = run.base
    deltas = {d.client: LazyDelta(partial(run.load_update, d.cid), base) for d in chosen}
    excluded = non_players(chosen, deltas)
    playing = sorted((d for d in chosen if d.client not in excluded), key=lambda d: d.client)
    players = [d.client for d in playing]
    updates = [ClientUpdate(d.client, d.num_samples, deltas[d.client]) for d in playing]
    strategy = strategy_for(run)
    parts = strategy.linear_parts(updates, round=run.inputs.round) if updates else None
    subsets: Subsets = LinearSubsets(players, parts) if parts is not None else ExactSubsets(run, updates)
    pre_noise = parts is not None and not parts.noise_free
    evaluation = run.result("evaluate")
    base_loss = _loss(evaluation.before.loss)
    known: dict[int, float] = {}
    accepted = {d.client for d in run.result("validate").accepted}
    if players and set(players) == accepted and not pre_noise:
        # The round's global model is the grand coalition's aggregate: its loss is already known.
        known[(1 << len(players)) - 1] = loss_value(base_loss, evaluation.after.loss)
    game = RoundGame(players, subsets, run.scorer, base, run.inputs.round, base_loss, known)
    return game, excluded, pre_noise


def _loss(loss: float | None) -> float:
    return float("nan") if loss is None else float(loss)
