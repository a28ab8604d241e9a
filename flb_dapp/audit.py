"""Reading a round's inputs from the chain and the store, and re-checking a finalized round.

`read_round_inputs` is what the oracle feeds the round computation; `verify_round` recomputes a
finalized round from the chain and the store alone (no oracle state) and compares the global model
CID and the rewards root with what the oracle wrote on chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.exceptions import RoundError
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.report import MAX_REPORT_BYTES, RoundReport, parse_report
from flb_dapp.rounds import (
    UNFETCHABLE_PREFIXES,
    MemoryJournal,
    RoundComputation,
    RoundInputs,
    RoundSettings,
    Scorer,
    UpdateRef,
    inputs_after,
)
from flb_dapp.storage.base import ContentStore
from flb_dapp.taskspec import TaskSpec


def load_report(store: ContentStore, cid: str) -> RoundReport:
    """A round report fetched by CID (verified) and parsed."""
    return parse_report(store.get_bytes(cid, max_size=MAX_REPORT_BYTES))


def read_round_inputs(
    coordinator: Coordinator,
    store: ContentStore,
    round_number: int,
    task: TaskSpec,
    *,
    start_block: int = 0,
    stop_block: int | None = None,
    budget: int | None = None,
) -> RoundInputs:
    """The inputs of ``round_number``: its updates (in commit order) up to ``stop_block`` (default:
    the head now, recorded in the inputs so that a verifier reads exactly as far), the clients
    banned at that block, the global model it trains from, and what it inherits from the previous
    round's report."""
    from ape import chain

    stop = int(chain.blocks.head.number) if stop_block is None else stop_block
    previous = coordinator.round(round_number - 1)
    if not previous.global_model_cid:
        raise RoundError(f"round {round_number - 1} has no global model on chain")
    inherited: dict[str, Any] = {}
    if round_number > 1:
        if not previous.report_cid:
            raise RoundError(
                f"round {round_number - 1} is not finalized; round {round_number} cannot be computed"
            )
        inherited = inputs_after(load_report(store, previous.report_cid))
    updates = [
        UpdateRef(u.client, u.cid, u.num_samples)
        for u in coordinator.updates(round_number=round_number, start_block=start_block, stop_block=stop)
    ]
    # NOTE: ordered by commit, not by reveal: of two equal updates the later one is the copy. A
    # copier sees a CID at the earliest when its owner publishes the bytes, which `flb submit` does
    # just before committing, while it could still send its reveal first.
    committed = coordinator.commits(round_number=round_number, start_block=start_block, stop_block=stop)
    position = {c.client: i for i, c in enumerate(committed)}
    updates.sort(key=lambda u: position.get(u.client, len(position)))
    status: dict[str, bool] = {}
    for change in coordinator.ban_changes(stop_block=stop):
        status[change.client] = change.banned
    submitters = {u.client for u in updates}
    return RoundInputs(
        contract=coordinator.address,
        chain_id=int(chain.chain_id),
        round=round_number,
        previous_global_cid=previous.global_model_cid,
        updates=updates,
        budget=coordinator.reward_per_round if budget is None else budget,
        task=task.to_dict(),
        block=stop,
        banned=tuple(sorted(c for c, banned in status.items() if banned and c in submitters)),
        cohort=coordinator.round_cohort(round_number),
        **inherited,
    )


@dataclass
class VerifyResult:
    """The outcome of re-computing a round: ``ok`` when every checked value matches."""

    round: int
    ok: bool
    exact: bool  # False when server-side noise made the model itself impossible to recompute
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "ok": self.ok,
            "exact": self.exact,
            "checks": self.checks,
            "notes": self.notes,
        }


def unfetchable_updates(report: RoundReport) -> dict[str, str]:
    """The updates the oracle's report says it could not fetch, with its reasons."""
    return {
        d.client: d.reason
        for d in report.inputs
        if not d.accepted and d.reason.startswith(UNFETCHABLE_PREFIXES)
    }


class ReplayJournal(MemoryJournal):
    """Keeps the oracle's record of which updates it could not fetch: a CID that appeared in the
    store later must not change the recomputed round."""

    def __init__(self, unfetchable: dict[str, str]) -> None:
        super().__init__()
        self.unfetchable = unfetchable

    def save(self, step: str, result: dict[str, Any]) -> None:
        if step == "fetch":
            for entry in result["updates"]:
                if entry["client"] in self.unfetchable:
                    entry.update(ok=False, reason=self.unfetchable[entry["client"]])
        super().save(step, result)


def verify_round(
    coordinator: Coordinator,
    store: ContentStore,
    round_number: int,
    scorer: Scorer | None = None,
    *,
    start_block: int = 0,
    scorer_for_task: Callable[[TaskSpec], Scorer] | None = None,
) -> VerifyResult:
    """Recompute ``round_number`` and compare it with the chain.

    Everything comes from the report and the chain, never from the verifier's own settings: the
    task the report records (``scorer_for_task`` builds the evaluator for it), its round settings,
    and the events up to the block the report names.
    """
    info = coordinator.round(round_number)
    if not info.finalized or not info.report_cid:
        raise RoundError(f"round {round_number} is not finalized yet")
    report = load_report(store, info.report_cid)
    settings = RoundSettings.from_description(report.settings)
    task = TaskSpec.from_dict(report.task)
    if scorer is None:
        if scorer_for_task is None:
            raise RoundError("verify_round needs a scorer or scorer_for_task")
        scorer = scorer_for_task(task)
    inputs = read_round_inputs(
        coordinator,
        store,
        round_number,
        task,
        start_block=start_block,
        stop_block=report.inputs_block or None,
        budget=report.rewards.budget,
    )
    unfetchable = unfetchable_updates(report)
    computation = RoundComputation(inputs, settings, store, scorer, ReplayJournal(unfetchable))
    result = VerifyResult(round=round_number, ok=False, exact=not report.privacy.server_noise)
    checks = result.checks
    checks["inputs"] = [(d.client, d.cid, d.num_samples) for d in report.inputs] == [
        (u.client, u.cid, u.num_samples) for u in inputs.updates
    ]
    decisions = computation.result("validate").decisions
    checks["decisions"] = [(d.client, d.accepted) for d in decisions] == [
        (d.client, d.accepted) for d in report.inputs
    ]
    checks["rewards_tree"] = build_rewards_tree(report.rewards.cumulative).root_hex == info.rewards_root
    checks["report_global_cid"] = report.global_model_cid == info.global_model_cid
    if result.exact:
        outcome = computation.run()
        checks["global_model_cid"] = outcome.global_model_cid == info.global_model_cid
        checks["rewards_root"] = outcome.rewards.tree.root_hex == info.rewards_root
        checks["metric"] = round(outcome.metric * 1_000_000) == round(info.metric * 1_000_000)
    else:
        result.notes.append(
            "server-side DP noise is seeded by a secret, so the global model and the rewards that depend "
            "on it cannot be recomputed: checked the inputs, the accept/reject decisions, the rewards tree "
            "against the report, and the published model's accuracy"
        )
        from flb_dapp.lora.codec import decode_adapter

        published = decode_adapter(store.get_bytes(info.global_model_cid))
        accuracy = float(scorer.evaluate(published).accuracy)
        checks["metric"] = round(accuracy * 1_000_000) == round(info.metric * 1_000_000)
    if unfetchable:
        result.notes.append(f"{len(unfetchable)} update(s) were unfetchable for the oracle; kept as rejected")
    result.ok = all(checks.values())
    return result
