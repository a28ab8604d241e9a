"""The oracle's round pipeline: sync -> fetch -> validate -> aggregate -> evaluate -> score ->
report -> finalize, each step journaled before the next one starts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flb_dapp.audit import read_round_inputs
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.types import FinalizeRequest
from flb_dapp.config import FLBSettings
from flb_dapp.exceptions import (
    ChainError,
    ChainUnavailableError,
    PrivacyBudgetExceededError,
    StoreUnavailableError,
)
from flb_dapp.rounds import STEPS, RoundComputation, RoundInputs, RoundOutcome, RoundSettings, UpdateRef
from flb_dapp.storage.base import ContentStore
from flb_dapp.taskspec import make_evaluator
from oracle.journal import Journal, RoundJournal

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


def settings_for_rounds(settings: FLBSettings) -> RoundSettings:
    oracle = settings.oracle
    return RoundSettings(
        strategy=oracle.strategy,
        seed=oracle.seed,
        scoring=oracle.scoring,
        norm_factor=oracle.norm_factor,
        max_update_bytes=oracle.max_update_bytes,
        fetch_timeout_s=oracle.fetch_timeout_s,
        privacy_delta=oracle.privacy_delta,
        privacy_budget=oracle.privacy_budget,
    )


def _inputs_to_json(inputs: RoundInputs) -> dict[str, Any]:
    return {
        "contract": inputs.contract,
        "chain_id": inputs.chain_id,
        "round": inputs.round,
        "previous_global_cid": inputs.previous_global_cid,
        "updates": [[u.client, u.cid, u.num_samples] for u in inputs.updates],
        "budget": inputs.budget,
        "previous_cumulative": dict(inputs.previous_cumulative),
        "strategy_state": inputs.strategy_state,
        "privacy_state": inputs.privacy_state,
        "task": dict(inputs.task),
    }


def _inputs_from_json(data: dict[str, Any]) -> RoundInputs:
    return RoundInputs(
        contract=data["contract"],
        chain_id=int(data["chain_id"]),
        round=int(data["round"]),
        previous_global_cid=data["previous_global_cid"],
        updates=[UpdateRef(c, cid, int(n)) for c, cid, n in data["updates"]],
        budget=int(data["budget"]),
        previous_cumulative={c: int(a) for c, a in data["previous_cumulative"].items()},
        strategy_state=data["strategy_state"],
        privacy_state=data["privacy_state"],
        task=data["task"],
    )


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
    ) -> None:
        self.settings = settings
        self.account = account
        self.coordinator = coordinator
        self.store = store
        self.journal = journal
        self.start_block = start_block
        self._scorer = scorer
        self.paused = False
        self.last_error = ""

    @property
    def scorer(self) -> Any:
        # NOTE: loaded on first use: the base model takes seconds, and most ticks have nothing due.
        if self._scorer is None:
            self._scorer = make_evaluator(
                self.settings.task, self.settings.cache_dir, self.settings.oracle.device
            )
        return self._scorer

    def due_round(self) -> int | None:
        """The open round if it may be finalized now, else None."""
        current = self.coordinator.current_round
        return current if self.coordinator.round_is_due(current) else None

    def run_once(self) -> list[ProcessedRound]:
        """Finalize every round that is due now (normally zero or one)."""
        done: list[ProcessedRound] = []
        while not self.paused:
            round_number = self.due_round()
            if round_number is None:
                break
            done.append(self.process_round(round_number))
        return done

    def process_round(self, round_number: int) -> ProcessedRound:
        contract = self.coordinator.address
        steps = RoundJournal(self.journal, contract, round_number)
        started = time.perf_counter()
        inputs_json = steps.load("sync")
        if inputs_json is None:
            start = self.journal.checkpoint(contract) or self.start_block
            inputs = read_round_inputs(
                self.coordinator, self.store, round_number, self.settings.task, start_block=start
            )
            inputs_json = _inputs_to_json(inputs)
            steps.save("sync", inputs_json)
        inputs = _inputs_from_json(inputs_json)
        log.info("round %d: %d update(s) to process", round_number, len(inputs.updates))
        computation = RoundComputation(
            inputs, settings_for_rounds(self.settings), self.store, self.scorer, journal=steps
        )
        for step in STEPS:
            computation.step(step)
            log.info("round %d: %s done", round_number, step)
        outcome = computation.outcome()
        timings = {"sync": 0.0, **computation.timings}
        finalized = steps.load("finalize") or self._finalize(outcome, steps)
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

    def _finalize(self, outcome: RoundOutcome, steps: RoundJournal) -> dict[str, Any]:
        """Send finalizeRound unless the chain already has this round finalized."""
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
            request = FinalizeRequest(
                round=outcome.round,
                global_model_cid=outcome.global_model_cid,
                report_cid=outcome.report_cid,
                rewards_root=outcome.rewards.tree.root,
                round_rewards=outcome.rewards.total,
                metric=outcome.metric,
                epsilon=outcome.epsilon,
            )
            receipt = self.coordinator.finalize_round(self.account, request)
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
            self.journal.set_checkpoint(self.coordinator.address, record["block"])
        steps.save("finalize", record)
        return record

    def tick(self) -> list[ProcessedRound]:
        """One scheduler tick: like run_once, but a node or store outage is logged, not raised."""
        try:
            done = self.run_once()
            self.last_error = ""
            return done
        except (ChainUnavailableError, StoreUnavailableError) as exc:
            self.last_error = str(exc)
            log.warning("will retry at the next tick: %s", exc)
            return []
        except PrivacyBudgetExceededError as exc:
            # No round may run past the budget: stop processing until an operator resumes.
            self.last_error = str(exc)
            self.paused = True
            log.error("paused: %s", exc)
            return []
