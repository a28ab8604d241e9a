"""A privacy accountant over FL rounds: RDP composition via Google's ``dp-accounting``.

The accountant keeps a plain list of events (JSON-able) and recomputes epsilon from the whole list
each time, so an oracle that persists :meth:`PrivacyAccountant.state` and restarts arrives at
exactly the same epsilon. Two kinds of event are recorded:

* ``server``: one round of server-side DP (a :class:`PrivacyEvent` from a DP strategy): a Gaussian
  mechanism with the round's noise multiplier, Poisson-subsampled when ``sampling_rate < 1``.
* ``local``: one round of client-side (local) DP given as an (epsilon, delta) Gaussian mechanism;
  it is converted to the noise multiplier that gives exactly that guarantee and composed like the
  rest. RDP then reports at least that epsilon for a single round (the RDP conversion is lossy).

Guarantees are client-level, under add/remove-one-client neighbouring (dp-accounting's default).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import dp_accounting
from dp_accounting import rdp

from flb_dapp.aggregation.types import PrivacyEvent
from flb_dapp.exceptions import AggregationError, PrivacyBudgetExceededError


def _check_delta(delta: float) -> float:
    if not 0 < delta < 1:
        raise AggregationError(f"delta must be in (0, 1), got {delta}")
    return float(delta)


def _server_event(event: PrivacyEvent) -> dict[str, Any]:
    return {"kind": "server", **event.to_dict()}


def local_noise_multiplier(epsilon: float, delta: float) -> float:
    """The Gaussian noise multiplier whose single application is exactly (epsilon, delta)-DP."""
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise AggregationError(f"local DP epsilon must be a finite number > 0, got {epsilon}")
    return float(dp_accounting.get_sigma_gaussian(epsilon, _check_delta(delta)))


def _to_dp_event(event: Mapping[str, Any]) -> dp_accounting.DpEvent:
    """One stored event as the dp-accounting event the RDP accountant composes."""
    gaussian = dp_accounting.GaussianDpEvent(float(event["noise_multiplier"]))
    rate = float(event.get("sampling_rate", 1.0))
    if rate < 1.0:
        return dp_accounting.PoissonSampledDpEvent(rate, gaussian)
    return gaussian


class PrivacyAccountant:
    """Composes per-round privacy events and reports the cumulative epsilon at ``delta``.

    Args:
        delta: the target delta of every reported epsilon (typically below 1 / number of clients).
        events: previously recorded events, as in :meth:`state` (for a restart).
    """

    def __init__(self, delta: float = 1e-5, events: Iterable[Mapping[str, Any]] = ()):
        self.delta = _check_delta(delta)
        self._events: list[dict[str, Any]] = []
        for event in events:
            self._append(dict(event))

    # --- recording -------------------------------------------------------------------------------
    def _append(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "server":
            # Round-trip through PrivacyEvent to validate the fields.
            event = _server_event(PrivacyEvent.from_dict(event))
        elif kind == "local":
            epsilon, delta = float(event["epsilon"]), float(event["delta"])
            event = {
                "kind": "local",
                "epsilon": epsilon,
                "delta": delta,
                # Stored, not only recomputed, so that a restart does not depend on the root finder.
                "noise_multiplier": float(
                    event.get("noise_multiplier", local_noise_multiplier(epsilon, delta))
                ),
                "sampling_rate": 1.0,
            }
        else:
            raise AggregationError(f"unknown privacy event kind {kind!r} (expected 'server' or 'local')")
        self._events.append(event)

    def record(self, event: PrivacyEvent) -> None:
        """Record one round of server-side DP (``AggregationResult.privacy``)."""
        self._append(_server_event(event))

    def record_local_dp(self, epsilon: float, delta: float | None = None) -> None:
        """Record one round in which clients applied an (epsilon, delta) Gaussian mechanism locally.

        Pass the (epsilon, delta) a client's ``PrivacySpent`` reports, not its ``noise_multiplier``:
        that one is relative to the clip norm, while the update's sensitivity is twice the clip norm.
        Exact for the Gaussian "update" mechanism; for DP-SGD's (epsilon, delta) it treats the round as
        the Gaussian mechanism with that guarantee, an approximation.
        """
        delta = self.delta if delta is None else delta
        self._append({"kind": "local", "epsilon": epsilon, "delta": delta})

    # --- reporting -------------------------------------------------------------------------------
    @property
    def events(self) -> list[dict[str, Any]]:
        """The recorded events, oldest first (copies)."""
        return [dict(e) for e in self._events]

    def epsilon(self, delta: float | None = None, extra: Iterable[PrivacyEvent] = ()) -> float:
        """Cumulative epsilon at ``delta`` (the accountant's by default) over all recorded events,
        plus ``extra`` not-yet-recorded ones; ``inf`` once any event had no noise."""
        events = self._events + [_server_event(e) for e in extra]
        if not events:
            return 0.0
        accountant = rdp.RdpAccountant()
        # RDP composes additively and in any order, so identical rounds are composed as one
        # self-composed event: the same numbers, in time independent of the number of rounds.
        groups = Counter((float(e["noise_multiplier"]), float(e.get("sampling_rate", 1.0))) for e in events)
        for (noise_multiplier, rate), count in sorted(groups.items()):
            event = _to_dp_event({"noise_multiplier": noise_multiplier, "sampling_rate": rate})
            accountant.compose(event, count)
        return float(accountant.get_epsilon(self.delta if delta is None else _check_delta(delta)))

    def would_exceed(self, budget_epsilon: float, next_event: PrivacyEvent | None = None) -> bool:
        """Whether recording ``next_event`` would take epsilon above ``budget_epsilon``."""
        extra = [] if next_event is None else [next_event]
        return self.epsilon(extra=extra) > budget_epsilon

    def check_budget(self, budget_epsilon: float, next_event: PrivacyEvent | None = None) -> None:
        """Raise ``PrivacyBudgetExceededError`` if ``next_event`` would overspend the budget."""
        if self.would_exceed(budget_epsilon, next_event):
            spent = self.epsilon()
            after = self.epsilon(extra=[] if next_event is None else [next_event])
            raise PrivacyBudgetExceededError(
                f"privacy budget epsilon={budget_epsilon:g} at delta={self.delta:g} would be exceeded: "
                f"{spent:.4g} spent over {len(self._events)} rounds, {after:.4g} after the next one; "
                "stop training or raise the budget"
            )

    # --- persistence -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-able state: the target delta and every event. ``from_state`` restores it."""
        return {"delta": self.delta, "events": self.events}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PrivacyAccountant:
        """Rebuild an accountant from :meth:`state`; its epsilon is identical."""
        return cls(delta=float(state["delta"]), events=state.get("events", ()))
