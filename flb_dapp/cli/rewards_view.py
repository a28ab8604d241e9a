"""Reading what the latest round report says about a client: earned rewards, the Merkle proof, metrics.

The latest report is the one of the last finalized round (the open round minus one); its
``rewards.cumulative`` holds every client's total so far, so one claim pays every round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flb_dapp.cli.artifacts import fetch_verified
from flb_dapp.report import MAX_REPORT_BYTES, RoundReport, parse_report


@dataclass(frozen=True)
class LatestReport:
    """The last finalized round's report (None when no round was finalized yet)."""

    round: int
    cid: str
    report: RoundReport | None = None
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def earned(self, address: str) -> int:
        """Cumulative rewards of ``address`` over every round so far (0 if absent)."""
        return self.report.rewards.cumulative_of(address) if self.report else 0

    def proof(self, address: str) -> list[bytes]:
        proof = self.report.rewards.proof_of(address) if self.report else []
        return [bytes.fromhex(p[2:] if p.startswith("0x") else p) for p in proof]


def latest_report(coordinator: Any, store: Any, strict: bool = True) -> LatestReport | None:
    """Fetch and parse the latest report. ``strict=False`` records a failure instead of raising
    (``flb status`` still shows the chain's view when the store is down)."""
    # Claims pay confirmed rounds only: with a settlement, a proposed round's tree is not payable yet.
    last = coordinator.latest_confirmed_round
    if last < 1:
        return None
    cid = coordinator.round(last).report_cid
    try:
        report = parse_report(fetch_verified(store, cid, f"round {last} report", max_size=MAX_REPORT_BYTES))
    except Exception as exc:
        if strict:
            raise
        return LatestReport(round=last, cid=cid, error=str(exc))
    return LatestReport(round=last, cid=cid, report=report, metrics=report.metrics.model_dump())
