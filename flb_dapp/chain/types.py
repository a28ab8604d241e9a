"""Domain objects the chain SDK hands to its callers instead of raw tuples and logs, and the text
forms of the raw values in them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flb_dapp.storage.cid import cid_from_bytes

PPM = 1_000_000
UINT64_MAX = 2**64 - 1


def hex_text(value: bytes) -> str:
    """``0x``-hex of raw bytes (a ``bytes32`` or ``bytes20`` the contract returned)."""
    return "0x" + bytes(value).hex()


def cid_text(raw: bytes) -> str:
    """A binary CID the contract stores, as text (base32 CIDv1); '' for an unset one."""
    return cid_from_bytes(bytes(raw)) if raw else ""


@dataclass(frozen=True)
class RoundInfo:
    """One round as the contract records it. CIDs are text (base32 CIDv1); '' when unset."""

    round: int
    deadline: int
    finalized_at: int
    submissions: int
    metric: float  # held-out accuracy, 0..1
    epsilon: float  # cumulative privacy spent after the round
    global_model_cid: str
    report_cid: str
    rewards_root: str  # 0x-hex
    reveal_deadline: int = 0  # end of the reveal window; the contract knows it for the open round only
    pending_reveals: int = 0  # commitments of non-banned clients not revealed yet
    cohort_seed: str = ""  # 0x-hex of the cohort seed; '' when every client may commit
    cohort_size: int = 0  # clients drawn; 0 when every client may commit
    cohort_population: int = 0  # registered clients (indices below it) the cohort was drawn from
    # NOTE: claims pay a round's root once it is confirmed: at finalization without a settlement,
    # when the settlement makes it final with one (a finalized round is only proposed then).
    confirmed: bool = False

    @property
    def finalized(self) -> bool:
        return self.finalized_at != 0

    @property
    def sampled(self) -> bool:
        """Whether only a drawn cohort may commit in this round."""
        return self.cohort_size != 0


@dataclass(frozen=True)
class ClientInfo:
    """One client's on-chain record."""

    address: str
    registered: bool
    banned: bool
    last_submitted_round: int
    submissions: int
    claimed: int
    dataset_commitment: str  # 0x-hex: keccak256(abi.encode(address, manifest digest))
    committed_round: int = 0  # latest round the client committed in
    commitment: str = ""  # 0x-hex, the first 20 bytes of that commitment
    registration_index: int = 0  # 0 for the first client registered (meaningful when registered)
    exited: bool = False  # asked to leave (requestExit): never active again


@dataclass(frozen=True)
class PendingReveal:
    """What a client must keep between its commit and its reveal (the salt is what makes the
    commitment hide the CID; without it the update cannot be revealed and earns nothing)."""

    round: int
    client: str
    cid: str
    num_samples: int
    salt: str  # 0x-hex, 32 bytes
    commitment: str  # 0x-hex, 32 bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "round": self.round,
            "client": self.client,
            "cid": self.cid,
            "num_samples": self.num_samples,
            "salt": self.salt,
            "commitment": self.commitment,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PendingReveal:
        return cls(
            round=int(str(data["round"])),
            client=str(data["client"]),
            cid=str(data["cid"]),
            num_samples=int(str(data["num_samples"])),
            salt=str(data["salt"]),
            commitment=str(data["commitment"]),
        )


@dataclass(frozen=True)
class UpdateRecord:
    """An ``UpdateSubmitted`` event."""

    round: int
    client: str
    cid: str
    num_samples: int
    block_number: int
    transaction_hash: str
    log_index: int


@dataclass(frozen=True)
class CommitRecord:
    """An ``UpdateCommitted`` event."""

    round: int
    client: str
    commitment: str  # 0x-hex
    block_number: int
    log_index: int


@dataclass(frozen=True)
class RegistrationRecord:
    """A ``ClientRegistered`` event."""

    client: str
    dataset_commitment: str
    round: int
    block_number: int


@dataclass(frozen=True)
class FinalizedRecord:
    """A ``RoundFinalized`` event."""

    round: int
    global_model_cid: str
    report_cid: str
    rewards_root: str
    round_rewards: int
    metric: float
    epsilon: float
    block_number: int
    transaction_hash: str


@dataclass(frozen=True)
class CohortRecord:
    """A ``CohortDrawn`` event."""

    round: int
    seed: str  # 0x-hex, 32 bytes (a 192-bit value)
    size: int
    population: int
    block_number: int


@dataclass(frozen=True)
class BanRecord:
    """A ``ClientBanStatusChanged`` event."""

    client: str
    banned: bool
    block_number: int


@dataclass(frozen=True)
class ClaimRecord:
    """A ``RewardClaimed`` event."""

    client: str
    amount: int
    cumulative_amount: int
    block_number: int


@dataclass(frozen=True)
class FinalizeRequest:
    """What the oracle sends to close a round."""

    round: int
    global_model_cid: str
    report_cid: str
    rewards_root: bytes
    round_rewards: int
    metric: float
    epsilon: float = 0.0
    # NOTE: the number of reveals aggregated; the contract reverts unless it equals the round's
    # count, so a reveal that lands after the oracle read the round cannot be silently left out.
    # None reads the count on chain when sending (tools and tests; the oracle always sets it).
    submission_count: int | None = None

    @property
    def metric_ppm(self) -> int:
        return round(self.metric * PPM)

    @property
    def epsilon_micros(self) -> int:
        # NOTE: an unbounded epsilon (a round without noise after DP rounds) is recorded as uint64's
        # maximum, which the API and explorers show as "unbounded".
        if not math.isfinite(self.epsilon) or self.epsilon * PPM >= UINT64_MAX:
            return UINT64_MAX
        return round(self.epsilon * PPM)
