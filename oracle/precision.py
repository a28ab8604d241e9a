"""Agreement to a declared precision: a verifier on another CPU kernel set computes the same global
model (aggregation sums in a fixed order, in numpy) and the same accuracies, but losses that differ
in their 7th digit, so contributions, rewards, the rewards root and the report's bytes differ.

``agrees_within_precision`` accepts a proposed report whose every field equals the verifier's own
report except its losses and contributions, which may each differ by ``score_tolerance`` (the round
rule the report records), and whose rewards are exactly what FLB's allocation gives for the
reported contributions. The proposer can move a contribution by at most the tolerance: at 1e-5 on
contributions of order 0.01 to 1, a share of the budget by at most about 0.1 %.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from flb_dapp.report import RoundReport
from flb_dapp.rewards import allocate

# Report fields that follow from the losses: compared within the tolerance or recomputed.
REWARD_FIELDS = ("cumulative", "proofs", "root", "round", "round_total", "tree_cid")


def _masked(document: dict[str, Any]) -> dict[str, Any]:
    """The report without the fields that depend on the losses' last digits."""
    masked = copy.deepcopy(document)
    for entry in masked.get("inputs", []):
        entry.pop("contribution", None)
        entry.pop("reward", None)
    for side in ("before", "after"):
        masked.get("metrics", {}).get(side, {}).pop("loss", None)
    for key in REWARD_FIELDS:
        masked.get("rewards", {}).pop(key, None)
    return masked


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """The path of the first value that differs between two JSON documents ('' if none)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return ""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}[len]"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return ""
    return "" if a == b else path or "."


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= tolerance


def disagreement(
    ours: RoundReport,
    scored: Mapping[str, float],
    previous_cumulative: Mapping[str, int],
    theirs: RoundReport,
    proposal: tuple[str, int],
) -> str:
    """'' when ``theirs`` (the proposed report; ``proposal`` is the (rewards root, round rewards)
    the proposal put on chain) agrees with ``ours`` to the precision the round rules declare; else
    what differs. ``scored``: the verifier's own contributions, as the score step gave them."""
    tolerance = float(ours.settings.get("score_tolerance", 0.0))
    where = first_difference(_masked(theirs.to_dict()), _masked(ours.to_dict()))
    if where:
        return f"the report differs beyond losses and contributions, at {where}"
    for side in ("before", "after"):
        if not _close(getattr(theirs.metrics, side).loss, getattr(ours.metrics, side).loss, tolerance):
            return f"the {side} loss differs by more than {tolerance}"
    reported = {d.client: d.contribution for d in theirs.inputs}
    for client, value in scored.items():
        if not _close(reported.get(client), value, tolerance):
            return f"{client}'s contribution differs by more than {tolerance}"
    expected = allocate({c: float(reported[c]) for c in scored}, theirs.rewards.budget, previous_cumulative)
    if (expected.tree.root_hex, expected.total) != proposal:
        return "the proposed rewards are not the allocation of the reported contributions"
    paid = {d.client: int(d.reward) for d in theirs.inputs}
    wrong = any(paid.get(c, 0) != a for c, a in expected.round_rewards.items())
    if wrong or sum(paid.values()) != expected.total:
        return "the report's per-client rewards are not the allocation of its contributions"
    if theirs.rewards.root != expected.tree.root_hex:
        return "the report's rewards root is not the proposal's"
    return ""
