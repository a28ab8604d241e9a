"""The verifier: recomputes each proposed round with the round computation and the federation's
published rules, attests the proposal when its result hash matches, and challenges it with the
recomputed result, naming the parts that differ, when it does not.

A verifier never trusts the proposer's settings: the round rules and the task are its own
configuration (the federation's published ``oracle`` section), the inputs are the chain's events.
From the proposer's report it takes only what it cannot re-derive on its own: the block the inputs
were read at (bounded: the update count must equal the contract's), the round's budget (capped by
the contract), and which updates the oracle could not fetch in time.

DP rounds with server-side noise are checked in everything but the noise, which comes from the
oracle's secret (``oracle/noised_rounds.py``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from flb_dapp.audit import ReplayJournal, load_report, read_round_inputs, unfetchable_updates
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.settlement import RoundResult, Settlement, differing_parts, result_hash
from flb_dapp.chain.settlement_errors import SettlementAlreadyAttested, SettlementRoundDecided
from flb_dapp.chain.types import PPM, UINT64_MAX, hex_text
from flb_dapp.config import FLBSettings
from flb_dapp.exceptions import ChainUnavailableError, ReportError, StorageError, StoreUnavailableError
from flb_dapp.report import RoundReport
from flb_dapp.rounds import RoundComputation, RoundSettings
from flb_dapp.rounds.noise import NoiseBinding
from flb_dapp.storage.base import ContentStore
from flb_dapp.taskspec import make_evaluator
from oracle.noised_rounds import check_noised
from oracle.pipeline import finalize_request
from oracle.precision import disagreement

log = logging.getLogger("flb.verifier")
FAILURES_BEFORE_SKIP = 3
WITHIN_PRECISION = "agrees within the declared score_tolerance (another CPU kernel set)"


@dataclass(frozen=True)
class Recomputed:
    """A round as a verifier computed it: its result, its report, its contributions (the score
    step's) and the cumulative rewards it started from."""

    result: RoundResult
    report: RoundReport
    scored: dict[str, float]
    previous_cumulative: dict[str, int]
    computation: RoundComputation | None = None
    proposed_report: RoundReport | None = None  # the proposer's report the recomputation read


@dataclass(frozen=True)
class VerifierAction:
    """What the verifier did about one round."""

    round: int
    action: str  # "attest", "challenge" or "none"
    result_hash: str  # the hash the verifier computed ('' when it computed none)
    parts: int = 0  # for a challenge: the PART_* bits that differ from the proposal
    reason: str = ""
    transaction_hash: str = ""


def proposed_result(coordinator: Coordinator, round_number: int, round_rewards: int) -> RoundResult:
    """The result a proposal wrote into the coordinator (``round_rewards`` from the proposal)."""
    info = coordinator.round(round_number)
    epsilon = UINT64_MAX if not math.isfinite(info.epsilon) else round(info.epsilon * PPM)
    return RoundResult(
        global_model_cid=info.global_model_cid,
        report_cid=info.report_cid,
        rewards_root=bytes.fromhex(info.rewards_root.removeprefix("0x")),
        round_rewards=round_rewards,
        metric_ppm=round(info.metric * PPM),
        epsilon_micros=min(epsilon, UINT64_MAX),
    )


class Verifier:
    """Checks the proposals of one settlement with one bonded verifier account."""

    def __init__(
        self,
        settings: FLBSettings,
        *,
        account: Any,
        coordinator: Coordinator,
        settlement: Settlement,
        store: ContentStore,
        start_block: int = 0,
        scorer: Any = None,
    ) -> None:
        self.settings = settings
        # NOTE: no DP seed: a verifier never holds the oracle's secret.
        self.round_settings = RoundSettings.from_rules(settings.oracle, None)
        self.account = account
        self.coordinator = coordinator
        self.settlement = settlement
        self.store = store
        self.start_block = start_block
        self._scorer = scorer
        self._computed: dict[tuple[int, str], Recomputed] = {}
        self._acted: set[tuple[int, str, str]] = set()
        self._failures: dict[tuple[int, str, str], int] = {}
        self.last_error = ""

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            self._scorer = make_evaluator(
                self.settings.task,
                self.settings.cache_dir,
                self.settings.oracle.device,
                self.round_settings.score_dtype,
            )
        return self._scorer

    def open_rounds(self) -> list[int]:
        """Proposed rounds that no quorum decided, not final or stale, still open to a vote (within
        the challenge window, or with a challenge open), oldest first."""
        rounds = []
        now = self.coordinator.now()
        for number in range(self.settlement.final_round + 1, self.coordinator.current_round):
            proposal = self.settlement.proposal(number)
            if not proposal.proposed or proposal.decided or proposal.final or proposal.stale:
                continue
            if now < proposal.window_end or self.settlement.challenge_info(number).open:
                rounds.append(number)
        return rounds

    def _report(self, round_number: int) -> RoundReport | None:
        """The proposer's report of a round (None when it cannot be read)."""
        return self._load_report(self.coordinator.round(round_number).report_cid)

    def _load_report(self, cid: str) -> RoundReport | None:
        try:
            return load_report(self.store, cid) if cid else None
        except (ReportError, StorageError) as exc:
            if isinstance(exc, StoreUnavailableError):
                raise
            log.warning("the report %s is unusable: %s", cid, exc)
            return None

    def recompute(self, round_number: int, noise: NoiseBinding | None = None) -> Recomputed:
        """The round as this verifier computes it (with the round's noise binding, if any)."""
        report = self._report(round_number)
        task = self.settings.task
        submissions = self.coordinator.round(round_number).submissions
        inputs = read_round_inputs(
            self.coordinator,
            self.store,
            round_number,
            task,
            start_block=self.start_block,
            stop_block=(report.inputs_block or None) if report else None,
            budget=report.rewards.budget if report else None,
        )
        if len(inputs.updates) != submissions:  # the report's block misses reveals: read them all
            inputs = read_round_inputs(
                self.coordinator, self.store, round_number, task, start_block=self.start_block
            )
        replay = ReplayJournal(unfetchable_updates(report) if report else {})
        inputs = replace(inputs, noise=noise)
        computation = RoundComputation(inputs, self.round_settings, self.store, self.scorer, replay)
        outcome = computation.run()
        return Recomputed(
            result=RoundResult.from_request(finalize_request(outcome, len(inputs.updates))),
            report=outcome.report,
            scored=dict(computation.result("score").contributions),
            previous_cumulative=dict(inputs.previous_cumulative),
            computation=computation,
            proposed_report=report,
        )

    def agrees(self, ours: Recomputed, proposed: RoundResult) -> str:
        """'' when a proposed (or challenging) result equals ours to the declared precision
        (``oracle/precision.py``); else what differs."""
        same = (proposed.global_model_cid, proposed.metric_ppm, proposed.epsilon_micros) == (
            ours.result.global_model_cid,
            ours.result.metric_ppm,
            ours.result.epsilon_micros,
        )
        if not same:
            return "the global model, the metric or the privacy spent differs"
        theirs = self._load_report(proposed.report_cid)
        if theirs is None:
            return f"the report {proposed.report_cid} cannot be read"
        root = "0x" + proposed.rewards_root.hex()
        return disagreement(
            ours.report, ours.scored, ours.previous_cumulative, theirs, (root, proposed.round_rewards)
        )

    def check(self, round_number: int) -> VerifierAction:
        """Attest, challenge, or leave ``round_number`` as it is; the transaction is sent here."""
        proposal = self.settlement.proposal(round_number)
        me = self.account.address
        if proposal.proposer == me:
            return VerifierAction(round_number, "none", "", reason="this account proposed the round")
        if self.round_settings.server_noise:
            return check_noised(self, round_number)
        key = (round_number, hex_text(proposal.result_hash))
        if key not in self._computed:
            self._computed[key] = self.recompute(round_number)
        ours = self._computed[key]
        ours_hash = result_hash(round_number, proposal.parent_hash, ours.result)
        proposed = proposed_result(self.coordinator, round_number, proposal.round_rewards)
        exact = ours_hash == proposal.result_hash
        differs = "" if exact else self.agrees(ours, proposed)
        challenge = self.settlement.challenge_info(round_number)
        if challenge.open and differs:
            alternative = self.settlement.challenge_result(round_number)
            if ours_hash == challenge.result_hash:
                return self.attest(round_number, ours_hash)
            if not self.agrees(ours, alternative):
                action = self.attest(round_number, challenge.result_hash)
                return replace(action, reason=WITHIN_PRECISION)
        if exact or not differs:
            action = self.attest(round_number, proposal.result_hash)
            return action if exact else replace(action, reason=WITHIN_PRECISION)
        if challenge.open:
            return VerifierAction(
                round_number, "none", hex_text(ours_hash), reason=f"neither result matches: {differs}"
            )
        return self.challenge_with(round_number, ours.result, proposed, differs)

    def challenge_with(
        self, round_number: int, alternative: RoundResult, proposed: RoundResult, differs: str
    ) -> VerifierAction:
        """Challenge the proposal with ``alternative`` (naming the parts that differ) and vote for it."""
        parts = differing_parts(proposed, alternative)
        receipt = self.settlement.challenge(self.account, round_number, alternative, parts)
        log.warning("round %d: challenged the proposal (parts %d): %s", round_number, parts, differs)
        ours_hash = result_hash(round_number, self.settlement.proposal(round_number).parent_hash, alternative)
        # NOTE: a challenge is not a vote: the challenger votes for its result like any verifier.
        self.attest(round_number, ours_hash)
        return VerifierAction(
            round_number,
            "challenge",
            hex_text(ours_hash),
            parts=parts,
            reason=differs,
            transaction_hash=str(receipt.txn_hash),
        )

    def attest(self, round_number: int, hash_value: bytes) -> VerifierAction:
        try:
            receipt = self.settlement.attest(self.account, round_number, hash_value)
        except SettlementAlreadyAttested:
            return VerifierAction(round_number, "none", hex_text(hash_value), reason="voted already")
        except SettlementRoundDecided:
            return VerifierAction(round_number, "none", hex_text(hash_value), reason="decided already")
        return VerifierAction(
            round_number, "attest", hex_text(hash_value), transaction_hash=str(receipt.txn_hash)
        )

    def _state(self, round_number: int) -> tuple[int, str, str]:
        """What a vote is about: the round, its proposal and its open challenge (if any)."""
        challenge = self.settlement.challenge_info(round_number)
        proposal = self.settlement.proposal(round_number)
        return (
            round_number,
            hex_text(proposal.result_hash),
            hex_text(challenge.result_hash) if challenge.open else "",
        )

    def run_once(self) -> list[VerifierAction]:
        """Check every open round whose proposal or challenge this verifier has not acted on yet,
        then finalize the rounds that are ready."""
        actions = []
        for number in self.open_rounds():
            state = self._state(number)
            if state in self._acted:
                continue
            action = self.check(number)
            self._acted.update((state, self._state(number)))
            log.info("round %d: %s %s", number, action.action, action.reason or action.result_hash)
            actions.append(action)
        self.settlement.finalize_ready(self.account, self.coordinator.now())
        return actions

    def tick(self) -> list[VerifierAction]:
        """One scheduler tick, nothing raised: node and store outages are retried at the next one;
        a round whose check fails the same way ``FAILURES_BEFORE_SKIP`` times is left alone, with
        the reason logged, so one bad round never loops."""
        try:
            actions = self.run_once()
            self.last_error = ""
            return actions
        except (ChainUnavailableError, StoreUnavailableError) as exc:
            self.last_error = str(exc)
            log.warning("will retry at the next tick: %s", exc)
            return []
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            open_rounds = self.open_rounds()
            state = self._state(open_rounds[0]) if open_rounds else (0, "", "")
            self._failures[state] = self._failures.get(state, 0) + 1
            log.exception("verifier tick failed (%d in a row for %s)", self._failures[state], state)
            if self._failures[state] >= FAILURES_BEFORE_SKIP:
                log.error(
                    "round %d: skipped after %d failures: %s", state[0], FAILURES_BEFORE_SKIP, self.last_error
                )
                self._acted.add(state)
            return []
