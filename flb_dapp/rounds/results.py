"""Typed results of the round's steps, as the journal records them (JSON-able dumps).

Each step's result is a model here; the computation keeps the typed object and the journal keeps
``model_dump()``, which is what a crash-recovered oracle or a verifier reads back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from flb_dapp.report import Amount, EvaluationSummary, Real


class StepResult(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FetchedUpdate(StepResult):
    """One update after the fetch step: in the cache (``ok``), or why not."""

    client: str
    cid: str
    num_samples: int
    ok: bool = True
    reason: str = ""


class FetchResult(StepResult):
    updates: list[FetchedUpdate]


class Decision(StepResult):
    """The validate step's verdict on one update."""

    client: str
    cid: str
    num_samples: int
    accepted: bool = False
    reason: str = ""
    norm: Real | None = None
    local_dp: dict[str, Real] | None = None


class ValidateResult(StepResult):
    decisions: list[Decision]

    @property
    def accepted(self) -> list[Decision]:
        return [d for d in self.decisions if d.accepted]


class LocalDpSpent(StepResult):
    """The round's local DP: the weakest guarantee an included client declared, and who has none."""

    epsilon: Real
    delta: Real
    clients: list[str]
    clients_without: list[str]


class AggregateResult(StepResult):
    global_model_cid: str
    weights: dict[str, Real]
    excluded: dict[str, str]
    metrics: dict[str, Real]
    privacy_event: dict[str, Any] | None
    local_dp: LocalDpSpent | None
    privacy_state: dict[str, Any]
    epsilon: Real
    strategy_state: dict[str, Any] | None


class EvaluateResult(StepResult):
    before: EvaluationSummary
    after: EvaluationSummary


class ScoreResult(StepResult):
    contributions: dict[str, Real]
    round_rewards: dict[str, Amount]
    cumulative: dict[str, Amount]
    rewards_root: str
    note: str = ""
    # Optional (journals written before they existed read with these defaults):
    rule: str = ""  # the rule that produced the contributions, e.g. "shapley-exact"
    evaluations: int = 0  # scorer evaluations the rule spent (beyond the evaluate step's two)
    seed: str = ""  # hex seed of sampled permutations ("" when nothing was sampled)
    zeroed: dict[str, str] = {}  # included clients scored 0 by rule (copies, zero deltas): why


class ReportResult(StepResult):
    report_cid: str
