"""The oracle's round pipeline: sync -> fetch -> validate -> aggregate -> evaluate -> score ->
report -> finalize, each step journaled before the next one starts."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flb_dapp.audit import read_round_inputs
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.noise import commit_round_noise, first_block_at, read_noise_binding
from flb_dapp.chain.settlement import RoundResult, Settlement
from flb_dapp.chain.settlement_errors import SettlementNoiseAlreadyCommitted, SettlementNoiseCommitClosed
from flb_dapp.chain.types import FinalizeRequest
from flb_dapp.config import FLBSettings, OracleConfig
from flb_dapp.exceptions import (
    ChainError,
    ChainUnavailableError,
    ConfigError,
    PrivacyBudgetExceededError,
    RoundError,
    StoreUnavailableError,
)
from flb_dapp.federation import Federation
from flb_dapp.rounds import STEPS, RoundComputation, RoundInputs, RoundOutcome, RoundSettings
from flb_dapp.storage.base import ContentStore
from flb_dapp.taskspec import make_evaluator
from oracle.journal import Journal, RoundJournal, journal_key

log = logging.getLogger("flb.oracle")
PIPELINE = ("sync", *STEPS, "finalize")


@dataclass
class ProcessedRound:
    """What one pass of the pipeline did for a round."""

    round: int
    global_model_cid: str
    report_cid: str
    rewards_root: str
    transaction_hash: str
    finalize_gas: int
    timings: dict[str, float] = field(default_factory=dict)
    outcome: RoundOutcome | None = None
    already_finalized: bool = False


def read_dp_seed(oracle: OracleConfig) -> int | None:
    """The operator's secret DP seed from a file or an environment variable; None: OS entropy."""
    if oracle.dp_seed_file and oracle.dp_seed_env:
        raise ConfigError("set oracle.dp_seed_file or oracle.dp_seed_env, not both")
    if oracle.dp_seed_file:
        where = f"the DP seed file {oracle.dp_seed_file}"
        try:
            text = Path(oracle.dp_seed_file).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read {where}: {exc}") from exc
    elif oracle.dp_seed_env:
        where = f"the environment variable {oracle.dp_seed_env}"
        if oracle.dp_seed_env not in os.environ:
            raise ConfigError(f"{where} (oracle.dp_seed_env) is not set")
        text = os.environ[oracle.dp_seed_env]
    else:
        return None
    try:
        seed = int(text.strip(), 0)
    except ValueError as exc:
        raise ConfigError(f"{where} must hold one integer") from exc
    if seed < 0:
        raise ConfigError(f"{where} must hold a non-negative integer")
    return seed


def finalize_request(outcome: RoundOutcome, submission_count: int) -> FinalizeRequest:
    """What finalizing (or proposing) ``outcome`` writes on chain."""
    return FinalizeRequest(
        round=outcome.round,
        global_model_cid=outcome.global_model_cid,
        report_cid=outcome.report_cid,
        rewards_root=outcome.rewards.tree.root,
        round_rewards=outcome.rewards.total,
        metric=outcome.metric,
        epsilon=outcome.epsilon,
        submission_count=submission_count,
    )


def settings_for_rounds(settings: FLBSettings) -> RoundSettings:
    """The round settings of the oracle's configuration: its round rules and the secret DP seed."""
    return RoundSettings.from_rules(settings.oracle, read_dp_seed(settings.oracle))


class Oracle:
    """Processes due rounds of one coordinator with one oracle account."""

    def __init__(
        self,
        settings: FLBSettings,
        *,
        account: Any,
        coordinator: Coordinator,
        store: ContentStore,
        journal: Journal,
        start_block: int = 0,
        scorer: Any = None,
        chain_id: int | None = None,
        settlement: Settlement | None = None,
    ) -> None:
        self.settings = settings
        # With a settlement the oracle is its bonded finalizer: a round's result is a proposal that
        # verifiers attest or challenge, and claims pay it once it is final.
        self.settlement = settlement
        self.round_settings = settings_for_rounds(settings)  # NOTE: a bad config fails here, at start
        # A settled oracle that adds DP noise commits to each round's noise secret beforehand.
        self.binds_noise = settlement is not None and self.round_settings.server_noise
        if self.binds_noise and self.round_settings.dp_seed is None:
            raise ConfigError(
                "a settled federation with server-side DP commits to each round's noise before the "
                "round: set oracle.dp_seed_file or oracle.dp_seed_env (the secret it derives from)"
            )
        self.account = account
        self.coordinator = coordinator
        self.store = store
        self.journal = journal
        self.start_block = start_block
        self._scorer = scorer
        if chain_id is None:
            from ape import chain

            chain_id = int(chain.chain_id)
        self.key = journal_key(chain_id, coordinator.address, start_block)
        self.last_error = ""
        self.step_running = ""

    @classmethod
    def for_federation(cls, federation: Federation, journal: str | Path | None = None) -> Oracle:
        """The oracle of a federation built by ``flb_dapp.federation`` (its account, store, scorer)."""
        return cls(
            federation.settings,
            account=federation.oracle_account,
            coordinator=federation.coordinator,
            store=federation.store,
            journal=Journal(journal or federation.settings.oracle.journal),
            start_block=federation.record.block,
            scorer=federation.scorer,
            settlement=federation.settlement,
        )

    @property
    def paused(self) -> bool:
        return self.journal.pause_reason(self.key) is not None

    @property
    def pause_reason(self) -> str:
        return self.journal.pause_reason(self.key) or ""

    def pause(self, reason: str) -> None:
        """Stop processing rounds until an operator resumes (kept across restarts)."""
        self.journal.set_paused(self.key, reason)
        log.error("paused: %s", reason)

    def resume(self) -> None:
        """Resume processing; the failure count starts again from zero."""
        self.journal.set_paused(self.key, None)
        self.journal.clear_failures(self.key)
        self.last_error = ""
        log.info("resumed")

    @property
    def scorer(self) -> Any:
        # NOTE: loaded on first use: the base model takes seconds, and most ticks have nothing due.
        if self._scorer is None:
            self._scorer = make_evaluator(
                self.settings.task,
                self.settings.cache_dir,
                self.settings.oracle.device,
                self.round_settings.score_dtype,
            )
        return self._scorer

    def due_round(self) -> int | None:
        """The open round if it may be finalized now, else None."""
        current = self.coordinator.current_round
        if not self.coordinator.round_is_due(current):
            return None
        if self.binds_noise and first_block_at(self.coordinator.round(current).deadline) is None:
            return None  # the block whose hash goes into the noise is not mined yet
        return current

    def commit_noise(self) -> None:
        """Commit to the open round's noise secret while its commit phase runs (once a round)."""
        if not self.binds_noise or self.settlement is None or self.round_settings.dp_seed is None:
            return
        current = self.coordinator.current_round
        if self.settlement.noise_commitment(current) != b"\x00" * 32:
            return
        deadline = self.coordinator.round(current).deadline
        if self.coordinator.now() >= deadline:
            log.warning(
                "round %d: its commit phase ended before the noise commitment; its noise is unbound", current
            )
            return
        try:
            commit_round_noise(self.settlement, self.account, current, self.round_settings.dp_seed)
        except (SettlementNoiseCommitClosed, SettlementNoiseAlreadyCommitted) as exc:
            # NOTE: a race with the last client's commit (or with a restart): nothing to retry.
            log.warning("round %d: no noise commitment made: %s", current, exc)
            return
        log.info("round %d: committed to its DP noise secret", current)

    def run_once(self) -> list[ProcessedRound]:
        """Finalize every round that is due now (normally zero or one); commit to the next
        round's noise (server-side DP on a settled federation)."""
        done: list[ProcessedRound] = []
        self.commit_noise()
        while not self.paused:
            round_number = self.due_round()
            if round_number is None:
                break
            done.append(self.process_round(round_number))
            self.commit_noise()
        return done

    def process_round(self, round_number: int, *, resync: bool = True) -> ProcessedRound:
        steps = RoundJournal(self.journal, self.key, round_number)
        started = time.perf_counter()
        self.step_running = "sync"
        inputs_json = steps.load("sync")
        sync_seconds = 0.0
        if inputs_json is None:
            start = self.journal.checkpoint(self.key) or self.start_block
            inputs = read_round_inputs(
                self.coordinator, self.store, round_number, self.settings.task, start_block=start
            )
            if self.binds_noise and self.settlement is not None:
                inputs = replace(
                    inputs, noise=read_noise_binding(self.coordinator, self.settlement, round_number)
                )
            inputs_json = inputs.to_json()
            steps.save("sync", inputs_json)
            sync_seconds = time.perf_counter() - started
        inputs = RoundInputs.from_json(inputs_json)
        on_chain = self.coordinator.round(round_number).submissions
        if on_chain != len(inputs.updates) and steps.load("finalize") is None:
            if not resync:
                raise RoundError(
                    f"round {round_number}: read {len(inputs.updates)} update event(s) but the contract "
                    f"counts {on_chain}; the node's event index may lag"
                )
            # The journaled read missed a submission (or saw one the chain no longer has): the
            # contract would refuse to finalize this set, so read and compute the round again.
            log.warning(
                "round %d: %d update(s) journaled, %d on chain: recomputing",
                round_number,
                len(inputs.updates),
                on_chain,
            )
            self.journal.discard(self.key, round_number)
            return self.process_round(round_number, resync=False)
        log.info("round %d: %d update(s) to process", round_number, len(inputs.updates))
        computation = RoundComputation(inputs, self.round_settings, self.store, self.scorer, journal=steps)
        for step in STEPS:
            self.step_running = step
            computation.result(step)
            log.info("round %d: %s done", round_number, step)
        outcome = computation.outcome()
        self.step_running = "finalize"
        timings = {"sync": sync_seconds, **computation.timings}
        finalized = steps.load("finalize") or self._finalize(outcome, steps, len(inputs.updates))
        timings["finalize"] = float(finalized.get("seconds", 0.0))
        timings["total"] = time.perf_counter() - started
        return ProcessedRound(
            round=round_number,
            global_model_cid=outcome.global_model_cid,
            report_cid=outcome.report_cid,
            rewards_root=outcome.rewards.tree.root_hex,
            transaction_hash=str(finalized["transaction_hash"]),
            finalize_gas=int(finalized["gas_used"]),
            timings=timings,
            outcome=outcome,
            already_finalized=bool(finalized.get("already_finalized")),
        )

    def _finalize(self, outcome: RoundOutcome, steps: RoundJournal, submission_count: int) -> dict[str, Any]:
        """Send finalizeRound unless the chain already has this round finalized.

        ``submission_count`` is the number of reveals read: the contract refuses any other count,
        so the round is closed on exactly the set this report describes.
        """
        started = time.perf_counter()
        info = self.coordinator.round(outcome.round)
        record: dict[str, Any]
        if info.finalized:
            # A crash after the transaction and before this record: the chain is the truth.
            if (info.global_model_cid, info.rewards_root) != (
                outcome.global_model_cid,
                outcome.rewards.tree.root_hex,
            ):
                raise ChainError(
                    f"round {outcome.round} was finalized with {info.global_model_cid}, "
                    f"not {outcome.global_model_cid}"
                )
            record = {
                "transaction_hash": "",
                "gas_used": 0,
                "block": 0,
                "already_finalized": True,
                "seconds": 0.0,
            }
        else:
            request = finalize_request(outcome, submission_count)
            if self.settlement is None:
                receipt = self.coordinator.finalize_round(self.account, request)
            else:
                result = RoundResult.from_request(request)
                receipt = self.settlement.propose(self.account, outcome.round, result, submission_count)
            record = {
                "transaction_hash": str(receipt.txn_hash),
                "gas_used": int(receipt.gas_used),
                "block": int(receipt.block_number),
                "seconds": time.perf_counter() - started,
            }
            log.info(
                "round %d finalized: %s (gas %d)", outcome.round, outcome.global_model_cid, record["gas_used"]
            )
        if record["block"]:
            self.journal.set_checkpoint(self.key, record["block"])
        steps.save("finalize", record)
        return record

    def tick(self) -> list[ProcessedRound]:
        """One scheduler tick: like run_once, but nothing is raised.

        A node or store outage is logged and retried at the next tick. Any other failure is
        deterministic until something changes: the same step failing the same way
        ``pause_after_failures`` times in a row pauses the oracle with the reason, so it never
        loops; an operator resumes it (control endpoint, API) once the cause is fixed.
        """
        try:
            done = self.run_once()
            self.last_error = ""
            self.journal.clear_failures(self.key)
            return done
        except (ChainUnavailableError, StoreUnavailableError) as exc:
            self.last_error = str(exc)
            log.warning("will retry at the next tick: %s", exc)
            return []
        except PrivacyBudgetExceededError as exc:
            # No round may run past the budget: stop processing until an operator resumes.
            self.last_error = str(exc)
            self.pause(f"privacy budget: {exc}")
            return []
        except Exception as exc:
            round_number = self.coordinator.current_round
            error = f"{type(exc).__name__}: {exc}"
            self.last_error = f"round {round_number}, step {self.step_running or '?'}: {error}"
            count = self.journal.record_failure(self.key, round_number, self.step_running, error)
            log.exception("round %d: step %s failed (%d in a row)", round_number, self.step_running, count)
            if count >= self.settings.oracle.pause_after_failures:
                self.pause(f"{self.last_error} (failed {count} times in a row)")
            return []
