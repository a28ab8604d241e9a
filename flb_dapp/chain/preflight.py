"""The coordinator's rules, checked against the chain's current state before a transaction is sent.

Each broken rule raises the :class:`~flb_dapp.exceptions.ContractRuleError` subclass named after the
custom error the contract would revert with, carrying that error's arguments, so a caller can tell
a closed round from a duplicate submission and get the same class whether the check or the
contract refused. The messages say what to do. :class:`~flb_dapp.chain.coordinator.Coordinator`
calls these from its ``check_can_*`` methods and before every transaction it sends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from flb_dapp.chain.admission_errors import CoordinatorClientExited
from flb_dapp.chain.types import ClientInfo, FinalizeRequest, PendingReveal, hex_text
from flb_dapp.exceptions import (
    AccessControlUnauthorizedAccount,
    CoordinatorAlreadyCommitted,
    CoordinatorAlreadyRegistered,
    CoordinatorAlreadySubmitted,
    CoordinatorClientBanned,
    CoordinatorCommitmentMismatch,
    CoordinatorCommitmentTaken,
    CoordinatorInvalidCommitment,
    CoordinatorInvalidProof,
    CoordinatorInvalidSampleCount,
    CoordinatorNotCommitted,
    CoordinatorNothingToClaim,
    CoordinatorNotInCohort,
    CoordinatorNotRegistered,
    CoordinatorPoolUnderfunded,
    CoordinatorRevealClosed,
    CoordinatorRevealNotOpen,
    CoordinatorRewardsExceedBudget,
    CoordinatorRoundAlreadyFinalized,
    CoordinatorRoundClosed,
    CoordinatorRoundNotDue,
    CoordinatorSubmissionCountMismatch,
    CoordinatorWrongRound,
    EnforcedPause,
)
from flb_dapp.merkle import verify_proof

if TYPE_CHECKING:  # pragma: no cover
    from flb_dapp.chain.coordinator import Coordinator


def describe_time(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def check_not_paused(sdk: Coordinator, what: str) -> None:
    if sdk.paused:
        raise EnforcedPause(f"the coordinator is paused: {what} are stopped")


def check_not_exited(sdk: Coordinator, client: ClientInfo, action: str) -> None:
    """An exited client can do nothing but claim and withdraw its bond."""
    if client.exited:
        released = sdk.bond_of(client.address).released_at
        raise CoordinatorClientExited(
            f"{client.address} exited already (bond released at {released}); no more {action}",
            client=client.address,
            released_at=released,
        )


def check_active(sdk: Coordinator, client: ClientInfo, action: str) -> None:
    """The contract's ``_requireActive``: registered, not banned, not exited, in that order."""
    who = client.address
    if not client.registered:
        raise CoordinatorNotRegistered(f"{who} is not registered; run `flb register` first", client=who)
    if client.banned:
        raise CoordinatorClientBanned(f"{who} is banned from {action}", client=who)
    check_not_exited(sdk, client, action)


def check_can_register(sdk: Coordinator, address: str, commitment: bytes) -> None:
    check_not_paused(sdk, "registrations")
    if len(commitment) != 32 or commitment == b"\x00" * 32:
        raise CoordinatorInvalidCommitment("the dataset commitment must be 32 non-zero bytes")
    if sdk.client(address).registered:
        raise CoordinatorAlreadyRegistered(
            f"{address} is already registered", client=to_checksum_address(address)
        )
    bound = sdk.bound_commitment(address, commitment)
    owner = str(sdk.contract.ownerOfCommitment(bound))
    if int(owner, 16) != 0:
        raise CoordinatorCommitmentTaken(
            f"dataset commitment {hex_text(commitment)} is already registered by {owner}",
            dataset_commitment=bound,
            owner=to_checksum_address(owner),
        )


def check_can_commit(sdk: Coordinator, address: str, round_number: int, num_samples: int) -> None:
    check_not_paused(sdk, "submissions")
    current = sdk.current_round
    if round_number != current:
        raise CoordinatorWrongRound(
            f"round {round_number} is not open; the open round is {current}",
            given=round_number,
            current=current,
        )
    # NOTE: what the client did comes first: "you already submitted" says more than "closed".
    client = sdk.client(address)
    who = client.address
    check_active(sdk, client, "submitting")
    info = sdk.round(round_number)
    if info.sampled and not sdk.cohort(round_number).includes(client.registration_index):
        raise CoordinatorNotInCohort(
            f"{who} is not in the cohort of round {round_number} ({info.cohort_size} of "
            f"{info.cohort_population} clients drawn); wait for a round that draws it",
            client=who,
            round=round_number,
            cohort_size=info.cohort_size,
            population=info.cohort_population,
        )
    # NOTE: the contract would say "already committed" here (a reveal needs a commit first); the
    # class says what happened, as the message does.
    if client.last_submitted_round == round_number:
        raise CoordinatorAlreadySubmitted(
            f"{who} already submitted an update in round {round_number}", client=who, round=round_number
        )
    if client.committed_round == round_number:
        raise CoordinatorAlreadyCommitted(
            f"{who} already committed an update in round {round_number}", client=who, round=round_number
        )
    if sdk.now() >= info.deadline:
        raise CoordinatorRoundClosed(
            f"the commit phase of round {round_number} closed at {describe_time(info.deadline)}; "
            "wait for the oracle to open the next round",
            round=round_number,
            deadline=info.deadline,
        )
    if num_samples <= 0:
        raise CoordinatorInvalidSampleCount(
            f"the sample count must be positive, got {num_samples}", num_samples=num_samples
        )


def check_can_reveal(sdk: Coordinator, address: str, pending: PendingReveal) -> None:
    check_not_paused(sdk, "reveals")
    current, number = sdk.current_round, pending.round
    if number != current:
        raise CoordinatorWrongRound(
            f"round {number} is not open (the open round is {current}); an unrevealed "
            "commitment earns nothing",
            given=number,
            current=current,
        )
    info = sdk.round(number)
    now = sdk.now()
    if now < info.deadline:
        raise CoordinatorRevealNotOpen(
            f"round {number} takes reveals from {describe_time(info.deadline)} (when its "
            "commit phase closes, earlier once every active client or cohort member committed)",
            round=number,
            opens_at=info.deadline,
        )
    if now >= info.reveal_deadline:
        raise CoordinatorRevealClosed(
            f"the reveal window of round {number} closed at {describe_time(info.reveal_deadline)}",
            round=number,
            closed_at=info.reveal_deadline,
        )
    client = sdk.client(address)
    who = client.address
    if client.banned:
        raise CoordinatorClientBanned(f"{who} is banned from submitting", client=who)
    check_not_exited(sdk, client, "submitting")
    if client.committed_round != number:
        raise CoordinatorNotCommitted(f"{who} did not commit in round {number}", client=who, round=number)
    if client.last_submitted_round == number:
        raise CoordinatorAlreadySubmitted(
            f"{who} already revealed its update in round {number}", client=who, round=number
        )
    salt = bytes.fromhex(pending.salt.removeprefix("0x"))
    recomputed = sdk.commitment_for(address, number, pending.cid, pending.num_samples, salt)
    if client.commitment != hex_text(recomputed[:20]):
        raise CoordinatorCommitmentMismatch(
            f"this reveal does not match {who}'s commitment in round {number}", client=who, round=number
        )


def check_can_finalize(sdk: Coordinator, address: str, request: FinalizeRequest) -> None:
    settlement = sdk.settlement_address
    if settlement and address.lower() != settlement.lower():
        raise AccessControlUnauthorizedAccount(
            f"rounds are decided by the settlement {settlement}: propose through it, not the coordinator",
            account=to_checksum_address(address),
            needed_role=bytes(sdk.contract.SETTLEMENT_ROLE()),
        )
    if not settlement and not sdk.is_oracle(address):
        raise AccessControlUnauthorizedAccount(
            f"{address} does not hold the oracle role",
            account=to_checksum_address(address),
            needed_role=bytes(sdk.contract.ORACLE_ROLE()),
        )
    current, number = sdk.current_round, request.round
    if number < current:
        raise CoordinatorRoundAlreadyFinalized(f"round {number} is already finalized", round=number)
    if number != current:
        raise CoordinatorWrongRound(
            f"round {number} is not open; the open round is {current}", given=number, current=current
        )
    if not sdk.round_is_due(number):
        info = sdk.round(number)
        raise CoordinatorRoundNotDue(
            f"round {number} is not due: commits until {describe_time(info.deadline)}, "
            f"reveals until {describe_time(info.reveal_deadline)}, {info.pending_reveals} "
            "commitments not revealed yet",
            round=number,
            deadline=info.deadline,
            reveal_deadline=info.reveal_deadline,
            pending_reveals=info.pending_reveals,
        )
    _check_finalize_amounts(sdk, request)


def _check_finalize_amounts(sdk: Coordinator, request: FinalizeRequest) -> None:
    """The submission count and the rewards, once the round itself may be finalized."""
    number, rewards = request.round, request.round_rewards
    if request.submission_count is not None:
        actual = sdk.round(number).submissions
        if request.submission_count != actual:
            raise CoordinatorSubmissionCountMismatch(
                f"round {number} holds {actual} revealed updates, not the "
                f"{request.submission_count} aggregated: re-read the round",
                round=number,
                given=request.submission_count,
                actual=actual,
            )
    budget = sdk.reward_per_round
    if rewards > budget:
        raise CoordinatorRewardsExceedBudget(
            f"round rewards {rewards} exceed the budget of {budget}",
            round_rewards=rewards,
            reward_per_round=budget,
        )
    funded, allocated, _ = sdk.reward_totals
    if allocated + rewards > funded:
        raise CoordinatorPoolUnderfunded(
            f"the reward pool holds {funded - allocated} unallocated tokens, {rewards} needed; fund it first",
            round_rewards=rewards,
            available=funded - allocated,
        )


def check_can_claim(sdk: Coordinator, address: str, cumulative_amount: int, proof: Sequence[bytes]) -> None:
    check_not_paused(sdk, "claims")
    client = to_checksum_address(address)
    latest = sdk.latest_confirmed_round  # claims pay confirmed rounds only (a settlement's final)
    root = bytes.fromhex(sdk.round(latest).rewards_root[2:])
    if not verify_proof(root, address, cumulative_amount, list(proof)):
        raise CoordinatorInvalidProof(
            f"the proof for {cumulative_amount} does not match the rewards root of round {latest}",
            client=client,
            cumulative_amount=cumulative_amount,
        )
    claimed = sdk.client(address).claimed
    if cumulative_amount <= claimed:
        raise CoordinatorNothingToClaim(
            f"nothing to claim: {claimed} of {cumulative_amount} already paid",
            client=client,
            cumulative_amount=cumulative_amount,
            claimed=claimed,
        )
