"""A typed SDK over the FLBCoordinator contract: read properties, one method per transaction,
event readers returning domain objects (:mod:`flb_dapp.chain.events`), and pre-flight checks
(:mod:`flb_dapp.chain.preflight`) that raise before any gas is spent.

Every service (oracle, API indexer, CLI) talks to the contract through this class, never through
raw ABI calls. A refused rule raises the same exception class whether the pre-flight check or the
contract (:func:`translate_reverts`) refused it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from flb_dapp.chain import preflight
from flb_dapp.chain.admission import CoordinatorAdmission
from flb_dapp.chain.artifacts import COORDINATOR, REWARD_TOKEN, contract_type, deployed_contract
from flb_dapp.chain.cohort import Cohort
from flb_dapp.chain.events import CoordinatorEvents
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.chain.roles import grant_role, has_role
from flb_dapp.chain.types import (
    PPM,
    ClientInfo,
    FinalizeRequest,
    PendingReveal,
    RoundInfo,
    cid_text,
    hex_text,
)
from flb_dapp.storage.cid import cid_to_bytes

if TYPE_CHECKING:  # pragma: no cover
    from flb_dapp.rounds.inputs import RoundCohort

__all__ = ["ORACLE_ROLE_NAME", "Coordinator", "commitment_hash", "translate_reverts"]

ORACLE_ROLE_NAME = "ORACLE_ROLE"


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


# The gas limit every commitUpdate is sent with (see commit_update).
COMMIT_GAS_LIMIT = 150_000


class Coordinator(CoordinatorEvents, CoordinatorAdmission):
    """The FLB coordinator at ``address`` on the connected Ape network.

    ``start_block`` (the deployment block, from the deployment record) is where event readers
    start by default: nothing of this contract happened before it, and scanning from block 0 costs
    time proportional to the whole chain (quadratic on the embedded chain).
    """

    def __init__(self, address: str, start_block: int = 0) -> None:
        self.address = to_checksum_address(address)
        self.start_block = start_block
        self.contract: Any = deployed_contract(self.address, COORDINATOR)
        self._batch: dict[Any, Any] | None = None  # round-level reads memoized within a batch

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Within the block the round-level state the pre-flight checks read (paused, the open
        round, round info, the latest confirmed round) is read once, not once per transaction.

        For one party sending many transactions of one kind (a simulation's commits, then its
        reveals, then its claims). A read that went stale within the batch can only let a
        pre-flight check pass what the contract then refuses, with the same exception class
        (:func:`translate_reverts`): the contract stays the authority. Client reads stay fresh."""
        outer = self._batch
        self._batch = {} if outer is None else outer
        try:
            yield
        finally:
            self._batch = outer

    def _read_once(self, key: Any, read: Any) -> Any:
        if self._batch is None:
            return read()
        if key not in self._batch:
            self._batch[key] = read()
        return self._batch[key]

    # --- reads ---------------------------------------------------------------------------------
    @property
    def current_round(self) -> int:
        return int(self._read_once("currentRound", self.contract.currentRound))

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
    def registered_clients(self) -> int:
        """Clients that ever registered, banned ones included: the next cohort's population."""
        return int(self.contract.registeredClients())

    @property
    def pending_cohort_size(self) -> int:
        """The cohort size the next round opens with (0: every registered client trains)."""
        return int(self.contract.pendingCohortSize())

    @property
    def latest_confirmed_round(self) -> int:
        """The round whose rewards root claims check (the latest finalized without a settlement)."""
        return int(self._read_once("latestConfirmedRound", self.contract.latestConfirmedRound))

    @property
    def settlement_address(self) -> str:
        """The settlement contract that decides rounds; '' while the oracle role does."""
        address = to_checksum_address(self.contract.settlement())
        return "" if int(address, 16) == 0 else address

    @property
    def paused(self) -> bool:
        return bool(self._read_once("paused", self.contract.paused))

    @property
    def reward_totals(self) -> tuple[int, int, int]:
        """(funded, allocated, claimed) reward tokens."""
        funded, allocated, claimed = self.contract.rewardTotals()
        return int(funded), int(allocated), int(claimed)

    @property
    def latest_global_model_cid(self) -> str:
        return cid_text(self.contract.latestGlobalModelCid())

    @property
    def token(self) -> Any:
        from ape import Contract

        return Contract(self.contract.rewardToken(), contract_type=contract_type(REWARD_TOKEN))

    def token_balance(self, account: str) -> int:
        return int(self.token.balanceOf(to_checksum_address(account)))

    def round(self, number: int) -> RoundInfo:
        info = self._read_once(("roundInfo", number), lambda: self.contract.roundInfo(number))
        return RoundInfo(
            round=int(info.round),
            deadline=int(info.deadline),
            finalized_at=int(info.finalizedAt),
            submissions=int(info.submissions),
            metric=int(info.metricPpm) / PPM,
            epsilon=int(info.epsilonMicros) / PPM,
            global_model_cid=cid_text(info.globalModelCid),
            report_cid=cid_text(info.reportCid),
            rewards_root=hex_text(info.rewardsRoot),
            reveal_deadline=int(info.revealDeadline),
            pending_reveals=int(info.pendingReveals),
            cohort_seed=hex_text(info.cohortSeed) if int(info.cohortSize) else "",
            cohort_size=int(info.cohortSize),
            cohort_population=int(info.cohortPopulation),
            confirmed=bool(info.confirmed),
        )

    def cohort(self, number: int) -> Cohort:
        """The cohort draw of round ``number`` (size 0: every registered client may train)."""
        info = self.round(number)
        seed = int(info.cohort_seed, 16) if info.cohort_seed else 0
        return Cohort(number, seed, info.cohort_size, info.cohort_population)

    def is_cohort_member(self, number: int, address: str) -> bool:
        """The contract's ``isCohortMember``: may ``address`` train in round ``number``."""
        return bool(self.contract.isCohortMember(number, to_checksum_address(address)))

    def registration_order(self, stop_block: int | None = None) -> list[str]:
        """Every registered client, by registration index (``ClientRegistered`` in chain order)."""
        return [r.client for r in self.registrations(stop_block=stop_block)]

    def cohort_members(self, number: int) -> list[str]:
        """The addresses that may train in round ``number``, in registration order, re-derived
        from the round's seed off chain (one event scan, no call per client)."""
        return self.cohort(number).members(self.registration_order())

    def round_cohort(self, number: int) -> RoundCohort | None:
        """Round ``number``'s cohort as the round computation records it; None without one."""
        from flb_dapp.rounds.inputs import RoundCohort

        cohort = self.cohort(number)
        if not cohort.sampled:
            return None
        members = tuple(self.cohort_members(number))
        return RoundCohort(cohort.seed_hex, cohort.size, cohort.population, members)

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
            dataset_commitment=hex_text(info.datasetCommitment),
            committed_round=int(info.committedRound),
            commitment=hex_text(info.commitment),
            registration_index=int(info.registrationIndex),
            exited=bool(info.exited),
        )

    def is_oracle(self, address: str) -> bool:
        return has_role(self.contract, ORACLE_ROLE_NAME, address)

    def is_admin(self, address: str) -> bool:
        return has_role(self.contract, "DEFAULT_ADMIN_ROLE", address)

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

    # --- pre-flight checks: each raises the ContractRuleError the contract would revert with ---
    def check_can_register(self, address: str, commitment: bytes) -> None:
        preflight.check_can_register(self, address, commitment)

    def check_can_commit(self, address: str, round_number: int, num_samples: int) -> None:
        preflight.check_can_commit(self, address, round_number, num_samples)

    def check_can_reveal(self, address: str, pending: PendingReveal) -> None:
        preflight.check_can_reveal(self, address, pending)

    def check_can_finalize(self, address: str, request: FinalizeRequest) -> None:
        preflight.check_can_finalize(self, address, request)

    def check_can_claim(self, address: str, cumulative_amount: int, proof: Sequence[bytes]) -> None:
        preflight.check_can_claim(self, address, cumulative_amount, proof)

    # --- transactions ---------------------------------------------------------------------------
    def register(self, account: Any, commitment: bytes) -> Any:
        """Register with a dataset commitment; approves the registration bond first, if any."""
        self.check_can_register(account.address, commitment)
        self.check_admission(account.address)
        self.lock_bond_allowance(account)
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
            salt=hex_text(salt),
            commitment=hex_text(commitment),
        )
        with translate_reverts():
            # NOTE: a fixed limit, not an estimate: the commit that closes the commit phase costs
            # more (the deadline moves, an event is emitted), and estimated while another client's
            # commit is still pending, this one may become the closing commit when it lands and
            # run out of gas (measured on anvil with two clients committing at once, twice, also
            # with estimate + 15,000). A commit costs at most about 56,000 gas (cohort check and
            # closing included, bench/gas.py); only the gas used is paid.
            receipt = self.contract.commitUpdate(
                round_number, commitment, sender=account, gas=COMMIT_GAS_LIMIT
            )
        return pending, receipt

    def submit_all(self, entries: Sequence[tuple[Any, int, str, int]]) -> list[Any]:
        """Commit every ``(account, round, cid, num_samples)``, then reveal each; returns the reveal
        receipts. The reveals need the commit phase closed: it closes as soon as every active client
        (in a sampled round, every cohort member) committed, so this suits a federation whose
        eligible clients all submit (simulations, benches)."""
        with self.batch():
            pending = [(entry[0], self.commit_update(*entry)[0]) for entry in entries]
        with self.batch():  # after the commits: the phase they closed is read afresh
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

    def set_cohort_size(self, account: Any, cohort_size: int) -> Any:
        """Sample ``cohort_size`` clients in the rounds opened from the next one on (0: everyone)."""
        if not 0 <= cohort_size < 2**32:
            raise ValueError(f"the cohort size must be 0 .. 2^32-1, got {cohort_size}")
        with translate_reverts():
            return self.contract.setCohortSize(cohort_size, sender=account)

    def draw_cohort(self, account: Any) -> Any:
        """Draw the open round's cohort from the clients registered so far (the admin's; for a
        round that opened before enough clients registered and has no commitment yet)."""
        with translate_reverts():
            return self.contract.drawCohort(sender=account)

    def set_client_banned(self, account: Any, client: str, banned: bool) -> Any:
        with translate_reverts():
            return self.contract.setClientBanned(to_checksum_address(client), banned, sender=account)

    def grant_oracle(self, account: Any, oracle: str) -> Any:
        return grant_role(self.contract, account, ORACLE_ROLE_NAME, oracle)

    def pause(self, account: Any) -> Any:
        with translate_reverts():
            return self.contract.pause(sender=account)

    def unpause(self, account: Any) -> Any:
        with translate_reverts():
            return self.contract.unpause(sender=account)
