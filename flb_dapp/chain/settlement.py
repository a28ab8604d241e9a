"""A typed SDK over the FLBSettlement contract: optimistic round settlement with a bonded finalizer,
bonded verifiers, challenges and slashing.

The finalizer (the oracle) calls :meth:`Settlement.propose` instead of the coordinator's
``finalizeRound``; verifiers recompute the round and :meth:`Settlement.attest` its
:func:`result_hash`, or :meth:`Settlement.challenge` it with the result they computed; anyone
calls :meth:`Settlement.finalize_ready` to confirm rounds whose window passed. A refused rule
raises its :mod:`flb_dapp.chain.settlement_errors` class (or the coordinator's, for a
``finalizeRound`` rule a proposal broke), exactly as :mod:`flb_dapp.chain.coordinator` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from flb_dapp.chain.artifacts import SETTLEMENT, contract_type, deployed_contract
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.chain.roles import grant_role
from flb_dapp.chain.types import FinalizeRequest, hex_text
from flb_dapp.storage.cid import cid_from_bytes, cid_to_bytes

__all__ = [
    "PART_GLOBAL_MODEL",
    "PART_METRICS",
    "PART_REPORT",
    "PART_REWARDS",
    "SETTLEMENT",
    "BondInfo",
    "ChallengeInfo",
    "ProposalInfo",
    "RoundResult",
    "Settlement",
    "SettlementParameters",
    "deploy_settlement",
    "differing_parts",
    "result_hash",
]


PART_GLOBAL_MODEL, PART_REPORT, PART_REWARDS, PART_METRICS = 1, 2, 4, 8
ZERO_HASH = b"\x00" * 32
RESULT_TYPE = "(bytes,bytes,bytes32,uint256,uint32,uint64)"


@dataclass(frozen=True)
class RoundResult:
    """What a round produced, as the settlement hashes it. CIDs are text (base32 CIDv1)."""

    global_model_cid: str
    report_cid: str
    rewards_root: bytes
    round_rewards: int
    metric_ppm: int
    epsilon_micros: int = 0

    @classmethod
    def from_request(cls, request: FinalizeRequest) -> RoundResult:
        """The result an oracle's finalize request declares."""
        return cls(
            global_model_cid=request.global_model_cid,
            report_cid=request.report_cid,
            rewards_root=bytes(request.rewards_root),
            round_rewards=request.round_rewards,
            metric_ppm=request.metric_ppm,
            epsilon_micros=request.epsilon_micros,
        )

    def as_tuple(self) -> tuple[bytes, bytes, bytes, int, int, int]:
        """The ``RoundResult`` struct as the ABI takes it."""
        return (
            cid_to_bytes(self.global_model_cid),
            cid_to_bytes(self.report_cid),
            bytes(self.rewards_root),
            self.round_rewards,
            self.metric_ppm,
            self.epsilon_micros,
        )

    @classmethod
    def from_struct(cls, value: Any) -> RoundResult:
        global_cid, report_cid, root, rewards, metric, epsilon = tuple(value)
        return cls(
            global_model_cid=cid_from_bytes(bytes(global_cid)) if global_cid else "",
            report_cid=cid_from_bytes(bytes(report_cid)) if report_cid else "",
            rewards_root=bytes(root),
            round_rewards=int(rewards),
            metric_ppm=int(metric),
            epsilon_micros=int(epsilon),
        )


def result_hash(round_number: int, parent_hash: bytes, result: RoundResult) -> bytes:
    """``keccak256(abi.encode(round, parentHash, result))``: what verifiers attest."""
    return keccak(
        abi_encode(["uint256", "bytes32", RESULT_TYPE], [round_number, parent_hash, result.as_tuple()])
    )


def differing_parts(proposed: RoundResult, alternative: RoundResult) -> int:
    """The PART_* bits of the fields in which two results differ (a challenge's ``parts``)."""
    parts = 0
    if proposed.global_model_cid != alternative.global_model_cid:
        parts |= PART_GLOBAL_MODEL
    if proposed.report_cid != alternative.report_cid:
        parts |= PART_REPORT
    if (
        proposed.rewards_root != alternative.rewards_root
        or proposed.round_rewards != alternative.round_rewards
    ):
        parts |= PART_REWARDS
    if proposed.metric_ppm != alternative.metric_ppm or proposed.epsilon_micros != alternative.epsilon_micros:
        parts |= PART_METRICS
    return parts


@dataclass(frozen=True)
class SettlementParameters:
    """The settlement's rules (``Parameters`` in the contract)."""

    min_finalizer_bond: int
    min_verifier_bond: int
    challenge_bond: int
    challenge_window: int  # seconds
    resolution_period: int  # seconds
    exit_delay: int  # seconds
    quorum: int  # k: attestations that decide a round
    slash_share_bps: int  # part of a slashed total paid to the winner

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.min_finalizer_bond,
            self.min_verifier_bond,
            self.challenge_bond,
            self.challenge_window,
            self.resolution_period,
            self.exit_delay,
            self.quorum,
            self.slash_share_bps,
        )


@dataclass(frozen=True)
class ProposalInfo:
    """One round's proposal; all zero when it has none."""

    round: int
    proposer: str
    window_end: int
    decided: bool
    final: bool
    stale: bool
    result_hash: bytes
    parent_hash: bytes
    round_rewards: int
    attestations: int
    challenge_votes: int

    @property
    def proposed(self) -> bool:
        return self.result_hash != ZERO_HASH


@dataclass(frozen=True)
class ChallengeInfo:
    """One round's challenge (the open one, or the last)."""

    round: int
    challenger: str
    open: bool
    parts: int
    resolve_by: int
    bond: int
    result_hash: bytes


@dataclass(frozen=True)
class BondInfo:
    """A finalizer's or a verifier's bond."""

    address: str
    amount: int
    locked_until_round: int
    exit_available_at: int
    verifier: bool
    verifier_index: int


def deploy_settlement(
    deployer: Any, coordinator: str, parameters: SettlementParameters, finalizer: str
) -> str:
    """Deploy an FLBSettlement for ``coordinator`` (its admin: the deployer, who must be the
    coordinator's admin too), set it on the coordinator and grant ``finalizer`` the finalizer role;
    returns its address. From then on only the settlement finalizes rounds."""
    from ape import Contract
    from ape.contracts import ContractContainer

    from flb_dapp.chain.artifacts import COORDINATOR

    with translate_reverts():
        settlement = deployer.deploy(
            ContractContainer(contract_type(SETTLEMENT)), coordinator, deployer.address, parameters.as_tuple()
        )
        hooks = Contract(to_checksum_address(coordinator), contract_type=contract_type(COORDINATOR))
        hooks.setSettlement(settlement.address, sender=deployer)
        role = settlement.FINALIZER_ROLE()
        settlement.grantRole(role, to_checksum_address(finalizer), sender=deployer)
    return str(settlement.address)


class Settlement:
    """The FLB settlement at ``address`` on the connected Ape network."""

    def __init__(self, address: str, start_block: int = 0) -> None:
        self.address = to_checksum_address(address)
        self.start_block = start_block
        self.contract: Any = deployed_contract(self.address, SETTLEMENT)

    # --- reads ---------------------------------------------------------------------------------
    @property
    def coordinator_address(self) -> str:
        return to_checksum_address(self.contract.coordinator())

    @property
    def final_round(self) -> int:
        """The latest final round: claims pay its rewards root."""
        return int(self.contract.finalRound())

    @property
    def parameters(self) -> SettlementParameters:
        return SettlementParameters(*(int(value) for value in tuple(self.contract.parameters())))

    def proposal(self, round_number: int) -> ProposalInfo:
        info = self.contract.proposalInfo(round_number)
        return ProposalInfo(
            round=round_number,
            proposer=to_checksum_address(info.proposer),
            window_end=int(info.windowEnd),
            decided=bool(info.decided),
            final=bool(info.isFinal),
            stale=bool(info.stale),
            result_hash=bytes(info.resultHash),
            parent_hash=bytes(info.parentHash),
            round_rewards=int(info.roundRewards),
            attestations=int(info.attestations),
            challenge_votes=int(info.challengeVotes),
        )

    def challenge_info(self, round_number: int) -> ChallengeInfo:
        info = self.contract.challengeInfo(round_number)
        return ChallengeInfo(
            round=round_number,
            challenger=to_checksum_address(info.challenger),
            open=bool(info.open),
            parts=int(info.parts),
            resolve_by=int(info.resolveBy),
            bond=int(info.bond),
            result_hash=bytes(info.resultHash),
        )

    def challenge_result(self, round_number: int) -> RoundResult:
        """The alternative result of the round's open (or last) challenge."""
        return RoundResult.from_struct(self.contract.challengeResult(round_number))

    def bond(self, address: str) -> BondInfo:
        address = to_checksum_address(address)
        info = self.contract.bondInfo(address)
        return BondInfo(
            address=address,
            amount=int(info.amount),
            locked_until_round=int(info.lockedUntilRound),
            exit_available_at=int(info.exitAvailableAt),
            verifier=bool(info.verifier),
            verifier_index=int(info.verifierIndex),
        )

    def parent_hash(self, round_number: int) -> bytes:
        """The parent hash a proposal of ``round_number`` is built on now."""
        first = int(self.contract.firstRound())
        if first == 0 or round_number <= first:
            return ZERO_HASH
        return self.proposal(round_number - 1).result_hash

    def hash_of(self, round_number: int, result: RoundResult) -> bytes:
        """The hash a verifier attests for ``result`` of ``round_number`` on today's chain."""
        return result_hash(round_number, self.parent_hash(round_number), result)

    def finalizable(self, round_number: int, now: int) -> bool:
        """Whether ``finalize(round_number)`` would pass now."""
        proposal = self.proposal(round_number)
        if not proposal.proposed or proposal.final or proposal.stale:
            return False
        if round_number != self.final_round + 1 or self.challenge_info(round_number).open:
            return False
        return proposal.decided or now >= proposal.window_end

    # --- transactions ---------------------------------------------------------------------------
    def _approve(self, account: Any, amount: int) -> None:
        from ape import Contract

        from flb_dapp.chain.artifacts import REWARD_TOKEN

        token = Contract(self.contract.rewardToken(), contract_type=contract_type(REWARD_TOKEN))
        token.approve(self.address, amount, sender=account)

    def deposit_bond(self, account: Any, amount: int) -> Any:
        with translate_reverts():
            self._approve(account, amount)
            return self.contract.depositBond(amount, sender=account)

    def register_verifier(self, account: Any, amount: int) -> Any:
        with translate_reverts():
            if amount:
                self._approve(account, amount)
            return self.contract.registerVerifier(amount, sender=account)

    def request_exit(self, account: Any) -> Any:
        with translate_reverts():
            return self.contract.requestExit(sender=account)

    def withdraw_bond(self, account: Any) -> Any:
        with translate_reverts():
            return self.contract.withdrawBond(sender=account)

    def noise_commitment(self, round_number: int) -> bytes:
        """The finalizer's commitment to ``round_number``'s DP noise secret (32 zero bytes if none)."""
        return bytes(self.contract.noiseCommitment(round_number))

    def commit_noise(self, account: Any, round_number: int, commitment: bytes) -> Any:
        """Commit to the open round's DP noise secret (before its commit phase ends)."""
        with translate_reverts():
            return self.contract.commitNoise(round_number, commitment, sender=account)

    def propose(self, account: Any, round_number: int, result: RoundResult, submission_count: int) -> Any:
        """Propose the open round's result, or a stale round's again."""
        with translate_reverts():
            return self.contract.propose(round_number, submission_count, result.as_tuple(), sender=account)

    def attest(self, account: Any, round_number: int, hash_value: bytes) -> Any:
        with translate_reverts():
            return self.contract.attest(round_number, hash_value, sender=account)

    def challenge(self, account: Any, round_number: int, alternative: RoundResult, parts: int) -> Any:
        """Challenge a proposal, posting the challenge bond (approved here)."""
        with translate_reverts():
            self._approve(account, self.parameters.challenge_bond)
            return self.contract.challenge(round_number, alternative.as_tuple(), parts, sender=account)

    def finalize(self, account: Any, round_number: int) -> Any:
        with translate_reverts():
            return self.contract.finalize(round_number, sender=account)

    def finalize_ready(self, account: Any, now: int) -> list[int]:
        """Finalize every round that may be finalized now, in order; returns their numbers."""
        done: list[int] = []
        while self.finalizable(self.final_round + 1, now):
            self.finalize(account, self.final_round + 1)
            done.append(self.final_round)
        return done

    def resolve_stalled(self, account: Any, round_number: int, challenger_wins: bool) -> Any:
        with translate_reverts():
            return self.contract.resolveStalled(round_number, challenger_wins, sender=account)

    def set_parameters(self, account: Any, parameters: SettlementParameters) -> Any:
        with translate_reverts():
            return self.contract.setParameters(parameters.as_tuple(), sender=account)

    def grant(self, account: Any, role_name: str, grantee: str) -> Any:
        """Grant ``FINALIZER_ROLE`` or ``VERIFIER_ROLE`` (the admin only)."""
        if role_name not in ("FINALIZER_ROLE", "VERIFIER_ROLE"):
            raise ValueError(f"unknown settlement role {role_name!r}")
        return grant_role(self.contract, account, role_name, grantee)

    def describe(self, round_number: int) -> str:
        """A one-line summary of a round's settlement state (for logs and the CLI)."""
        proposal = self.proposal(round_number)
        flags = {"final": proposal.final, "stale": proposal.stale, "decided": proposal.decided}
        state = next((name for name, on in flags.items() if on), "pending")
        return (
            f"round {round_number}: {hex_text(proposal.result_hash)} {state}, "
            f"{proposal.attestations} attestation(s), window until {proposal.window_end}"
        )
