"""A typed SDK over the FLBCoordinator contract: read properties, one method per transaction,
event readers returning domain objects, and pre-flight checks that raise before any gas is spent.

Every service (oracle, API indexer, CLI) talks to the contract through this class, never through
raw ABI calls.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from flb_dapp.chain.artifacts import COORDINATOR, REWARD_TOKEN, contract_type
from flb_dapp.chain.types import (
    PPM,
    BanRecord,
    ClaimRecord,
    ClientInfo,
    CommitRecord,
    FinalizedRecord,
    FinalizeRequest,
    PendingReveal,
    RegistrationRecord,
    RoundInfo,
    UpdateRecord,
)
from flb_dapp.exceptions import ChainError, ChainUnavailableError, PreflightError
from flb_dapp.merkle import verify_proof
from flb_dapp.storage.cid import cid_from_bytes, cid_to_bytes

ORACLE_ROLE_NAME = "ORACLE_ROLE"


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _cid_text(raw: bytes) -> str:
    return cid_from_bytes(bytes(raw)) if raw else ""


def commitment_hash(client: str, round_number: int, cid: str, num_samples: int, salt: bytes) -> bytes:
    """The update commitment: ``keccak256(abi.encode(client, round, cid, numSamples, salt))``."""
    if len(salt) != 32:
        raise ValueError(f"the salt must be 32 bytes, got {len(salt)}")
    return keccak(
        abi_encode(
            ["address", "uint256", "bytes", "uint64", "bytes32"],
            [to_checksum_address(client), round_number, cid_to_bytes(cid), num_samples, salt],
        )
    )


def _describe_time(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


@contextmanager
def translate_reverts() -> Iterator[None]:
    """Turn Ape's revert and connection errors into FLB errors that name the custom error."""
    from ape.exceptions import ContractLogicError, ProviderNotConnectedError

    try:
        yield
    except ContractLogicError as exc:
        name = type(exc).__name__
        inputs = getattr(exc, "inputs", None) or {}
        detail = ", ".join(f"{k}={v}" for k, v in inputs.items())
        message = f"{name}({detail})" if name != "ContractLogicError" else str(exc)
        raise ChainError(f"transaction reverted: {message}") from exc
    except ProviderNotConnectedError as exc:
        raise ChainUnavailableError(f"not connected to a chain node: {exc}") from exc


class Coordinator:
    """The FLB coordinator at ``address`` on the connected Ape network.

    ``start_block`` (the deployment block, from the deployment record) is where event readers
    start by default: nothing of this contract happened before it, and scanning from block 0 costs
    time proportional to the whole chain (quadratic on the embedded chain).
    """

    def __init__(self, address: str, start_block: int = 0) -> None:
        from ape import Contract, chain

        self.address = to_checksum_address(address)
        self.start_block = start_block
        try:
            code = chain.provider.get_code(self.address)
        except Exception as exc:
            raise ChainUnavailableError(f"cannot reach the chain node: {exc}") from exc
        if not code:
            raise ChainError(f"no contract at {self.address} on chain {chain.chain_id}; deploy first")
        self.contract: Any = Contract(self.address, contract_type=contract_type(COORDINATOR))

    # --- reads ---------------------------------------------------------------------------------
    @property
    def current_round(self) -> int:
        return int(self.contract.currentRound())

    @property
    def round_duration(self) -> int:
        return int(self.contract.roundDuration())

    @property
    def reveal_duration(self) -> int:
        return int(self.contract.revealDuration())

    @property
    def pending_round_parameters(self) -> tuple[int, int, int]:
        """(round duration, reveal duration, reward per round) the next round opens with."""
        duration, reveal, reward = self.contract.pendingRoundParameters()
        return int(duration), int(reveal), int(reward)

    @property
    def reward_per_round(self) -> int:
        return int(self.contract.rewardPerRound())

    @property
    def active_clients(self) -> int:
        return int(self.contract.activeClients())

    @property
    def paused(self) -> bool:
        return bool(self.contract.paused())

    @property
    def reward_totals(self) -> tuple[int, int, int]:
        """(funded, allocated, claimed) reward tokens."""
        funded, allocated, claimed = self.contract.rewardTotals()
        return int(funded), int(allocated), int(claimed)

    @property
    def latest_global_model_cid(self) -> str:
        return _cid_text(self.contract.latestGlobalModelCid())

    @property
    def token(self) -> Any:
        from ape import Contract

        return Contract(self.contract.rewardToken(), contract_type=contract_type(REWARD_TOKEN))

    def token_balance(self, account: str) -> int:
        return int(self.token.balanceOf(to_checksum_address(account)))

    def round(self, number: int) -> RoundInfo:
        info = self.contract.roundInfo(number)
        return RoundInfo(
            round=int(info.round),
            deadline=int(info.deadline),
            finalized_at=int(info.finalizedAt),
            submissions=int(info.submissions),
            metric=int(info.metricPpm) / PPM,
            epsilon=int(info.epsilonMicros) / PPM,
            global_model_cid=_cid_text(info.globalModelCid),
            report_cid=_cid_text(info.reportCid),
            rewards_root=_hex(info.rewardsRoot),
            reveal_deadline=int(info.revealDeadline),
            pending_reveals=int(info.pendingReveals),
        )

    def client(self, address: str) -> ClientInfo:
        address = to_checksum_address(address)
        info = self.contract.clientInfo(address)
        return ClientInfo(
            address=address,
            registered=bool(info.registered),
            banned=bool(info.banned),
            last_submitted_round=int(info.lastSubmittedRound),
            submissions=int(info.submissions),
            claimed=int(info.claimed),
            dataset_commitment=_hex(info.datasetCommitment),
            committed_round=int(info.committedRound),
            commitment=_hex(info.commitment),
        )

    def is_oracle(self, address: str) -> bool:
        role = self.contract.ORACLE_ROLE()
        return bool(self.contract.hasRole(role, to_checksum_address(address)))

    def is_admin(self, address: str) -> bool:
        role = self.contract.DEFAULT_ADMIN_ROLE()
        return bool(self.contract.hasRole(role, to_checksum_address(address)))

    def now(self) -> int:
        """Timestamp of the latest block: what the contract compares deadlines with."""
        from ape import chain

        return int(chain.pending_timestamp)

    def round_phase(self, number: int) -> str:
        """``commit``, ``reveal``, ``due`` (the oracle may finalize) or ``finalized``."""
        info = self.round(number)
        if info.finalized:
            return "finalized"
        if number != self.current_round:
            return "not open"
        now = self.now()
        if now < info.deadline:
            return "commit"
        if info.pending_reveals > 0 and now < info.reveal_deadline:
            return "reveal"
        return "due"

    def round_is_due(self, number: int) -> bool:
        """Whether ``finalizeRound(number)`` would pass the timing rule now."""
        return self.round_phase(number) == "due"

    def commitment_for(
        self, client: str, round_number: int, cid: str, num_samples: int, salt: bytes
    ) -> bytes:
        """``keccak256(abi.encode(client, round, cid, numSamples, salt))``, as the contract computes it."""
        return commitment_hash(client, round_number, cid, num_samples, salt)

    def bound_commitment(self, client: str, manifest_digest: bytes) -> bytes:
        """The dataset commitment ``register(manifest_digest)`` stores for ``client``."""
        return keccak(abi_encode(["address", "bytes32"], [to_checksum_address(client), manifest_digest]))

    # --- pre-flight checks ----------------------------------------------------------------------
    def check_can_register(self, address: str, commitment: bytes) -> None:
        if self.paused:
            raise PreflightError("the coordinator is paused: registrations are stopped")
        if len(commitment) != 32 or commitment == b"\x00" * 32:
            raise PreflightError("the dataset commitment must be 32 non-zero bytes")
        if self.client(address).registered:
            raise PreflightError(f"{address} is already registered")
        bound = self.bound_commitment(address, commitment)
        owner = str(self.contract.ownerOfCommitment(bound))
        if int(owner, 16) != 0:
            raise PreflightError(f"dataset commitment {_hex(commitment)} is already registered by {owner}")

    def check_can_commit(self, address: str, round_number: int, num_samples: int) -> None:
        if self.paused:
            raise PreflightError("the coordinator is paused: submissions are stopped")
        current = self.current_round
        if round_number != current:
            raise PreflightError(f"round {round_number} is not open; the open round is {current}")
        # NOTE: what the client did comes first: "you already submitted" says more than "closed".
        client = self.client(address)
        if not client.registered:
            raise PreflightError(f"{client.address} is not registered; run `flb register` first")
        if client.banned:
            raise PreflightError(f"{client.address} is banned from submitting")
        if client.last_submitted_round == round_number:
            raise PreflightError(f"{client.address} already submitted an update in round {round_number}")
        if client.committed_round == round_number:
            raise PreflightError(f"{client.address} already committed an update in round {round_number}")
        info = self.round(round_number)
        if self.now() >= info.deadline:
            raise PreflightError(
                f"the commit phase of round {round_number} closed at {_describe_time(info.deadline)}; "
                "wait for the oracle to open the next round"
            )
        if num_samples <= 0:
            raise PreflightError(f"the sample count must be positive, got {num_samples}")

    def check_can_reveal(self, address: str, pending: PendingReveal) -> None:
        if self.paused:
            raise PreflightError("the coordinator is paused: reveals are stopped")
        current = self.current_round
        if pending.round != current:
            raise PreflightError(
                f"round {pending.round} is not open (the open round is {current}); an unrevealed "
                "commitment earns nothing"
            )
        info = self.round(pending.round)
        now = self.now()
        if now < info.deadline:
            raise PreflightError(
                f"round {pending.round} takes reveals from {_describe_time(info.deadline)} (when its "
                "commit phase closes, earlier once every active client committed)"
            )
        if now >= info.reveal_deadline:
            raise PreflightError(
                f"the reveal window of round {pending.round} closed at {_describe_time(info.reveal_deadline)}"
            )
        client = self.client(address)
        if client.banned:
            raise PreflightError(f"{client.address} is banned from submitting")
        if client.committed_round != pending.round:
            raise PreflightError(f"{client.address} did not commit in round {pending.round}")
        if client.last_submitted_round == pending.round:
            raise PreflightError(f"{client.address} already revealed its update in round {pending.round}")
        salt = bytes.fromhex(pending.salt.removeprefix("0x"))
        recomputed = self.commitment_for(address, pending.round, pending.cid, pending.num_samples, salt)
        if client.commitment != _hex(recomputed[:20]):
            raise PreflightError(
                f"this reveal does not match {client.address}'s commitment in round {pending.round}"
            )

    def check_can_finalize(self, address: str, request: FinalizeRequest) -> None:
        if not self.is_oracle(address):
            raise PreflightError(f"{address} does not hold the oracle role")
        current = self.current_round
        if request.round < current:
            raise PreflightError(f"round {request.round} is already finalized")
        if request.round != current:
            raise PreflightError(f"round {request.round} is not open; the open round is {current}")
        if not self.round_is_due(request.round):
            info = self.round(request.round)
            raise PreflightError(
                f"round {request.round} is not due: commits until {_describe_time(info.deadline)}, "
                f"reveals until {_describe_time(info.reveal_deadline)}, {info.pending_reveals} "
                "commitments not revealed yet"
            )
        if request.submission_count is not None:
            actual = self.round(request.round).submissions
            if request.submission_count != actual:
                raise PreflightError(
                    f"round {request.round} holds {actual} revealed updates, not the "
                    f"{request.submission_count} aggregated: re-read the round"
                )
        if request.round_rewards > self.reward_per_round:
            raise PreflightError(
                f"round rewards {request.round_rewards} exceed the budget of {self.reward_per_round}"
            )
        funded, allocated, _ = self.reward_totals
        if allocated + request.round_rewards > funded:
            raise PreflightError(
                f"the reward pool holds {funded - allocated} unallocated tokens, "
                f"{request.round_rewards} needed; fund it first"
            )

    def check_can_claim(self, address: str, cumulative_amount: int, proof: Sequence[bytes]) -> None:
        if self.paused:
            raise PreflightError("the coordinator is paused: claims are stopped")
        current = self.current_round
        root = bytes.fromhex(self.round(current - 1).rewards_root[2:])
        if not verify_proof(root, address, cumulative_amount, list(proof)):
            raise PreflightError(
                f"the proof for {cumulative_amount} does not match the rewards root of round {current - 1}"
            )
        claimed = self.client(address).claimed
        if cumulative_amount <= claimed:
            raise PreflightError(f"nothing to claim: {claimed} of {cumulative_amount} already paid")

    # --- transactions ---------------------------------------------------------------------------
    def register(self, account: Any, commitment: bytes) -> Any:
        self.check_can_register(account.address, commitment)
        with translate_reverts():
            return self.contract.register(commitment, sender=account)

    def commit_update(
        self, account: Any, round_number: int, cid: str, num_samples: int, salt: bytes | None = None
    ) -> tuple[PendingReveal, Any]:
        """Commit to an update; returns what to keep for the reveal, and the receipt.

        ``salt`` defaults to 32 bytes from the OS: the commitment must not be guessable from the
        CIDs an attacker can see in the store.
        """
        cid_to_bytes(cid)  # NOTE: a malformed CID fails here, before anything is sent
        self.check_can_commit(account.address, round_number, num_samples)
        salt = secrets.token_bytes(32) if salt is None else salt
        commitment = self.commitment_for(account.address, round_number, cid, num_samples, salt)
        pending = PendingReveal(
            round=round_number,
            client=to_checksum_address(account.address),
            cid=cid,
            num_samples=num_samples,
            salt=_hex(salt),
            commitment=_hex(commitment),
        )
        with translate_reverts():
            receipt = self.contract.commitUpdate(round_number, commitment, sender=account)
        return pending, receipt

    def submit_all(self, entries: Sequence[tuple[Any, int, str, int]]) -> list[Any]:
        """Commit every ``(account, round, cid, num_samples)``, then reveal each; returns the reveal
        receipts. The reveals need the commit phase closed: it closes as soon as every active client
        committed, so this suits a federation whose clients all submit (simulations, benches)."""
        pending = [(entry[0], self.commit_update(*entry)[0]) for entry in entries]
        return [self.reveal_update(account, reveal) for account, reveal in pending]

    def reveal_update(self, account: Any, pending: PendingReveal) -> Any:
        raw = cid_to_bytes(pending.cid)
        self.check_can_reveal(account.address, pending)
        with translate_reverts():
            return self.contract.revealUpdate(
                pending.round, raw, pending.num_samples, bytes.fromhex(pending.salt[2:]), sender=account
            )

    def finalize_round(self, account: Any, request: FinalizeRequest) -> Any:
        global_raw = cid_to_bytes(request.global_model_cid)
        report_raw = cid_to_bytes(request.report_cid)
        self.check_can_finalize(account.address, request)
        count = request.submission_count
        if count is None:
            count = self.round(request.round).submissions
        with translate_reverts():
            return self.contract.finalizeRound(
                request.round,
                count,
                global_raw,
                report_raw,
                request.rewards_root,
                request.round_rewards,
                request.metric_ppm,
                request.epsilon_micros,
                sender=account,
            )

    def claim(self, account: Any, cumulative_amount: int, proof: Sequence[bytes]) -> Any:
        self.check_can_claim(account.address, cumulative_amount, proof)
        with translate_reverts():
            return self.contract.claim(cumulative_amount, list(proof), sender=account)

    def fund_rewards(self, account: Any, amount: int) -> Any:
        with translate_reverts():
            self.token.approve(self.address, amount, sender=account)
            return self.contract.fundRewards(amount, sender=account)

    def set_round_parameters(
        self, account: Any, round_duration: int, reward_per_round: int, reveal_duration: int | None = None
    ) -> Any:
        """Set the parameters of the rounds opened from the next one on (the open one keeps its own)."""
        reveal = self.pending_round_parameters[1] if reveal_duration is None else reveal_duration
        with translate_reverts():
            return self.contract.setRoundParameters(round_duration, reveal, reward_per_round, sender=account)

    def set_client_banned(self, account: Any, client: str, banned: bool) -> Any:
        with translate_reverts():
            return self.contract.setClientBanned(to_checksum_address(client), banned, sender=account)

    def grant_oracle(self, account: Any, oracle: str) -> Any:
        with translate_reverts():
            role = self.contract.ORACLE_ROLE()
            return self.contract.grantRole(role, to_checksum_address(oracle), sender=account)

    def pause(self, account: Any) -> Any:
        with translate_reverts():
            return self.contract.pause(sender=account)

    def unpause(self, account: Any) -> Any:
        with translate_reverts():
            return self.contract.unpause(sender=account)

    # --- events ---------------------------------------------------------------------------------
    def _logs(self, event: str, start_block: int, stop_block: int | None, **topics: Any) -> list[Any]:
        from ape import chain

        # NOTE: blocks.height reads 0 when the node is down; head.number raises instead.
        start_block = max(start_block, self.start_block)
        stop = chain.blocks.head.number if stop_block is None else stop_block
        if stop < start_block:
            return []
        handler = getattr(self.contract, event)
        search = {k: v for k, v in topics.items() if v is not None}
        return list(handler.range(start_block, stop + 1, search_topics=search or None))

    def updates(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[UpdateRecord]:
        """``UpdateSubmitted`` events, in chain order."""
        return [
            UpdateRecord(
                round=int(log.round),
                client=to_checksum_address(log.client),
                cid=_cid_text(log.cid),
                num_samples=int(log.numSamples),
                block_number=int(log.block_number),
                transaction_hash=str(log.transaction_hash),
                log_index=int(log.log_index),
            )
            for log in self._logs("UpdateSubmitted", start_block, stop_block, round=round_number)
        ]

    def commits(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[CommitRecord]:
        """``UpdateCommitted`` events, in chain order."""
        return [
            CommitRecord(
                round=int(log.round),
                client=to_checksum_address(log.client),
                commitment=_hex(log.commitment),
                block_number=int(log.block_number),
                log_index=int(log.log_index),
            )
            for log in self._logs("UpdateCommitted", start_block, stop_block, round=round_number)
        ]

    def registrations(self, start_block: int = 0, stop_block: int | None = None) -> list[RegistrationRecord]:
        """``ClientRegistered`` events, in chain order."""
        return [
            RegistrationRecord(
                client=to_checksum_address(log.client),
                dataset_commitment=_hex(log.datasetCommitment),
                round=int(log.round),
                block_number=int(log.block_number),
            )
            for log in self._logs("ClientRegistered", start_block, stop_block)
        ]

    def finalizations(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[FinalizedRecord]:
        """``RoundFinalized`` events, in chain order."""
        return [
            FinalizedRecord(
                round=int(log.round),
                global_model_cid=_cid_text(log.globalModelCid),
                report_cid=_cid_text(log.reportCid),
                rewards_root=_hex(log.rewardsRoot),
                round_rewards=int(log.roundRewards),
                metric=int(log.metricPpm) / PPM,
                epsilon=int(log.epsilonMicros) / PPM,
                block_number=int(log.block_number),
                transaction_hash=str(log.transaction_hash),
            )
            for log in self._logs("RoundFinalized", start_block, stop_block, round=round_number)
        ]

    def ban_changes(self, start_block: int = 0, stop_block: int | None = None) -> list[BanRecord]:
        """``ClientBanStatusChanged`` events, in chain order."""
        return [
            BanRecord(
                client=to_checksum_address(log.client),
                banned=bool(log.banned),
                block_number=int(log.block_number),
            )
            for log in self._logs("ClientBanStatusChanged", start_block, stop_block)
        ]

    def claims(self, start_block: int = 0, stop_block: int | None = None) -> list[ClaimRecord]:
        """``RewardClaimed`` events, in chain order."""
        return [
            ClaimRecord(
                client=to_checksum_address(log.client),
                amount=int(log.amount),
                cumulative_amount=int(log.cumulativeAmount),
                block_number=int(log.block_number),
            )
            for log in self._logs("RewardClaimed", start_block, stop_block)
        ]
