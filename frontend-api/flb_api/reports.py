"""Turning a round report (``flb_dapp.report``) into the rows the API serves.

A report is indexed only when it agrees with the chain: same round, same global model CID, same
rewards root. Otherwise it is kept (its bytes are what the chain points to) but marked invalid,
and none of its numbers are shown as facts.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from flb_dapp.report import EvaluationSummary, ReportError, parse_report


def finite(value: Any) -> float | None:
    """A JSON-safe float: ``None`` for missing, non-numeric and non-finite values ("inf", NaN)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _sanitize(value: Any) -> Any:
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {str(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    return value


def _evaluation(result: EvaluationSummary) -> dict[str, Any]:
    out = {
        "accuracy": finite(result.accuracy),
        "loss": finite(result.loss),
        "n": result.n,
        "per_category": {
            name: {"accuracy": finite(c.accuracy), "n": c.n} for name, c in result.per_category.items()
        },
    }
    if result.accuracy_norm is not None:
        out["accuracy_norm"] = finite(result.accuracy_norm)
    return out


@dataclass(frozen=True)
class IndexedReport:
    """The rows one valid report contributes."""

    decisions: list[dict[str, Any]]
    rewards: list[tuple[str, str, str, str, int]]  # client, round reward, cumulative, proof JSON, rank
    previous_global_model_cid: str
    strategy: dict[str, Any]
    metrics: dict[str, Any]
    privacy: dict[str, Any]

    @property
    def accepted(self) -> int:
        return sum(1 for d in self.decisions if d["accepted"])

    @property
    def rejected(self) -> int:
        return len(self.decisions) - self.accepted

    def save(self, conn: sqlite3.Connection, number: int, raw: bytes) -> None:
        """Write the report's decisions, rewards and summary for round ``number``."""
        for d in self.decisions:
            values = (
                d["accepted"],
                d["reason"],
                d["norm"],
                d["weight"],
                d["excluded"],
                d["contribution"],
                d["reward"],
            )
            cursor = conn.execute(
                "UPDATE updates SET accepted = ?, reason = ?, norm = ?, weight = ?, excluded = ?,"
                " contribution = ?, reward = ? WHERE round = ? AND client = ?",
                (*values, number, d["client"]),
            )
            if cursor.rowcount == 0:  # in the report but not among the events (should never happen)
                conn.execute(
                    "INSERT INTO updates (accepted, reason, norm, weight, excluded, contribution, reward,"
                    " round, client, cid, num_samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, number, d["client"], d["cid"], d["num_samples"]),
                )
        conn.executemany(
            "INSERT OR REPLACE INTO rewards VALUES (?, ?, ?, ?, ?, ?)",
            [(number, *row) for row in self.rewards],
        )
        summary = (
            self.previous_global_model_cid,
            json.dumps(self.strategy),
            json.dumps(self.metrics),
            json.dumps(self.privacy),
            self.accepted,
            self.rejected,
        )
        conn.execute(
            "UPDATE reports SET status = 'indexed', error = '', raw = ?, previous_global_model_cid = ?,"
            " strategy = ?, metrics = ?, privacy = ?, accepted = ?, rejected = ? WHERE round = ?",
            (raw, *summary, number),
        )


def mark_unreadable(conn: sqlite3.Connection, number: int, error: str) -> None:
    """The store could not serve the report: keep it pending, say why."""
    conn.execute("UPDATE reports SET attempts = attempts + 1, error = ? WHERE round = ?", (error, number))


def mark_invalid(conn: sqlite3.Connection, number: int, error: str, raw: bytes) -> None:
    """The report contradicts the chain: keep its bytes (they are what the chain names), index nothing."""
    conn.execute(
        "UPDATE reports SET status = 'invalid', error = ?, raw = ? WHERE round = ?", (error, raw, number)
    )


def index_report(raw: bytes, round_number: int, global_model_cid: str, rewards_root: str) -> IndexedReport:
    """Parse ``raw`` and check it against the round's on-chain record. Raises ReportError."""
    report = parse_report(raw)
    if report.round != round_number:
        raise ReportError(f"the report is about round {report.round}, not round {round_number}")
    if report.global_model_cid != global_model_cid:
        raise ReportError(
            f"the report names global model {report.global_model_cid}, the chain {global_model_cid}"
        )
    rewards = report.rewards
    if rewards.root.lower() != rewards_root.lower():
        raise ReportError(f"the report's rewards root {rewards.root} differs from the chain's {rewards_root}")
    try:
        decisions = [
            {
                "client": str(to_checksum_address(d.client)),
                "cid": d.cid,
                "num_samples": d.num_samples,
                "accepted": d.accepted,
                "reason": d.reason,
                "norm": finite(d.norm),
                "weight": finite(d.weight),
                "excluded": d.excluded,
                "contribution": finite(d.contribution),
                "reward": str(d.reward),
            }
            for d in report.inputs
        ]
    except ValueError as exc:
        raise ReportError(f"malformed report inputs: {exc!r}") from exc
    round_rewards = {str(to_checksum_address(c)): a for c, a in rewards.round.items()}
    cumulative = {str(to_checksum_address(c)): a for c, a in rewards.cumulative.items()}
    proofs = {str(to_checksum_address(c)): v for c, v in rewards.proofs.items()}
    ranking = sorted(cumulative, key=lambda c: (-cumulative[c], c.lower()))
    reward_rows = [
        (c, str(round_rewards.get(c, 0)), str(cumulative[c]), json.dumps(proofs.get(c, [])), rank)
        for rank, c in enumerate(ranking, start=1)
    ]
    privacy = report.privacy
    event = privacy.round_event or {}
    return IndexedReport(
        decisions=decisions,
        rewards=reward_rows,
        previous_global_model_cid=report.previous_global_model_cid,
        strategy=_sanitize(report.strategy),
        metrics={"before": _evaluation(report.metrics.before), "after": _evaluation(report.metrics.after)},
        privacy={
            "epsilon": finite(privacy.epsilon),
            "unbounded": privacy.epsilon == float("inf"),
            "delta": finite(privacy.delta),
            "server_noise": privacy.server_noise,
            "noise_multiplier": finite(event.get("noise_multiplier")) if event else None,
        },
    )
