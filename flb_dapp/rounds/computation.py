"""The round computation: previous global adapter + the round's updates -> fetch -> validate ->
aggregate -> evaluate -> score -> report.

Deterministic given its inputs, and the one computation that the oracle, `flb-oracle verify` and
`flb simulate` all run. Each step returns a typed result (``results.py``); with a ``StepJournal``
a step that already has a recorded result is not run again, which is how the oracle resumes after
a crash. Pure layer: storage, codec, aggregation and rewards only, no chain code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, overload

from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import AdapterLimits, decode_adapter
from flb_dapp.report import RoundReport
from flb_dapp.rewards import RewardsOutcome, allocate
from flb_dapp.rounds.coalitions import evaluate_all
from flb_dapp.rounds.combining import aggregate_step
from flb_dapp.rounds.fetching import fetch_step, fetch_with_retry
from flb_dapp.rounds.inputs import RoundInputs
from flb_dapp.rounds.precision import round_scorer
from flb_dapp.rounds.reporting import build_report, report_step
from flb_dapp.rounds.results import (
    AggregateResult,
    EvaluateResult,
    FetchResult,
    ReportResult,
    ScoreResult,
    StepResult,
    ValidateResult,
)
from flb_dapp.rounds.scoring import score_step
from flb_dapp.rounds.settings import RoundSettings
from flb_dapp.rounds.validation import validate_step
from flb_dapp.storage.base import ContentStore


class Scorer(Protocol):
    """Evaluates adapters of the task's base model (``flb_dapp.evaluation.Evaluator``)."""

    def evaluate(self, adapter: Adapter | None = None) -> Any: ...


class StepJournal(Protocol):
    """Where step results are kept between runs (the oracle's SQLite journal), as JSON-able dicts."""

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


def evaluate_step(run: RoundComputation) -> EvaluateResult:
    aggregated = run.result("aggregate")
    before, after = evaluate_all(run.scorer, [run.base, run.load_global(aggregated.global_model_cid)])
    return EvaluateResult.model_validate({"before": before.to_dict(), "after": after.to_dict()})


R = TypeVar("R", bound=StepResult)


@dataclass(frozen=True)
class Step:
    """One entry of the step table: its function and the type of its journaled result."""

    run: Callable[[RoundComputation], StepResult]
    result: type[StepResult]


#: The steps in the order they run. A new step goes here, with its result type in results.py.
STEP_TABLE: dict[str, Step] = {
    "fetch": Step(fetch_step, FetchResult),
    "validate": Step(validate_step, ValidateResult),
    "aggregate": Step(aggregate_step, AggregateResult),
    "evaluate": Step(evaluate_step, EvaluateResult),
    "score": Step(score_step, ScoreResult),
    "report": Step(report_step, ReportResult),
}
STEPS = tuple(STEP_TABLE)


@dataclass
class RoundOutcome:
    """What the oracle writes on chain and what `verify` compares."""

    round: int
    global_model_cid: str
    report_cid: str
    report: RoundReport
    rewards: RewardsOutcome
    metric: float
    epsilon: float
    timings: dict[str, float]

    @property
    def accepted(self) -> list[str]:
        return self.report.accepted

    @property
    def rejected(self) -> dict[str, str]:
        return self.report.rejected


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
        self.settings = settings.for_round(inputs.noise, inputs.round)
        self.store = store
        self.cache = cache or store
        self.scorer = round_scorer(scorer, self.settings.score_dtype, self.settings.score_decimals)
        self.journal: StepJournal = journal or MemoryJournal()
        self.timings: dict[str, float] = {}
        self.limits = AdapterLimits(max_bytes=settings.max_update_bytes)
        self._base: Adapter | None = None
        self._results: dict[str, StepResult] = {}
        self._rewards: RewardsOutcome | None = None
        self._report: RoundReport | None = None

    # The previous global adapter is read in every step that needs it (cheap; verified by CID).
    @property
    def base(self) -> Adapter:
        if self._base is None:
            data = fetch_with_retry(self.store, self.inputs.previous_global_cid, self.settings)
            self._base = decode_adapter(data, self.limits)
        return self._base

    def load_update(self, cid: str) -> Adapter:
        return decode_adapter(self.cache.get_bytes(cid, max_size=self.settings.max_update_bytes), self.limits)

    def load_global(self, cid: str) -> Adapter:
        return decode_adapter(self.store.get_bytes(cid), self.limits)

    def step(self, name: str) -> dict[str, Any]:
        """Run one step (or take its recorded result), record it, and return its JSON form."""
        return self.result(name).model_dump()

    @overload
    def result(self, name: Literal["fetch"]) -> FetchResult: ...
    @overload
    def result(self, name: Literal["validate"]) -> ValidateResult: ...
    @overload
    def result(self, name: Literal["aggregate"]) -> AggregateResult: ...
    @overload
    def result(self, name: Literal["evaluate"]) -> EvaluateResult: ...
    @overload
    def result(self, name: Literal["score"]) -> ScoreResult: ...
    @overload
    def result(self, name: Literal["report"]) -> ReportResult: ...
    @overload
    def result(self, name: str) -> StepResult: ...

    def result(self, name: str) -> StepResult:
        """The typed result of step ``name``: recorded, or computed now and recorded."""
        if name in self._results:
            return self._results[name]
        step = STEP_TABLE[name]
        recorded = self.journal.load(name)
        if recorded is not None:
            result = step.result.model_validate(recorded)
        else:
            started = time.perf_counter()
            result = step.run(self)
            self.timings[name] = time.perf_counter() - started
            self.journal.save(name, result.model_dump())
            # NOTE: re-read what the journal holds, so a replayed journal's edits take effect.
            result = step.result.model_validate(self.journal.load(name) or result.model_dump())
        self._results[name] = result
        return result

    def run(self) -> RoundOutcome:
        for name in STEPS:
            self.result(name)
        return self.outcome()

    def remember_rewards(self, rewards: RewardsOutcome) -> None:
        self._rewards = rewards

    def rewards(self) -> RewardsOutcome:
        """The round's rewards and Merkle tree from the recorded contributions, built once."""
        if self._rewards is None:
            contributions = self.result("score").contributions
            self._rewards = allocate(contributions, self.inputs.budget, self.inputs.previous_cumulative)
        return self._rewards

    def report(self) -> RoundReport:
        """The round report; built once (the report step and the outcome both need it)."""
        if self._report is None:
            self._report = build_report(self)
        return self._report

    def outcome(self) -> RoundOutcome:
        aggregated = self.result("aggregate")
        return RoundOutcome(
            round=self.inputs.round,
            global_model_cid=aggregated.global_model_cid,
            report_cid=self.result("report").report_cid,
            report=self.report(),
            rewards=self.rewards(),
            metric=float(self.result("evaluate").after.accuracy),
            epsilon=float(aggregated.epsilon),
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
