"""Response schemas, one family per resource: ``XPublic`` for one item, ``XsPublic`` for a page
(``data`` + ``count``, the total number of items across all pages).

Token amounts are uint256 in the token's smallest unit, written as decimal strings: JSON numbers
lose precision past 2^53 in most clients. Times are Unix seconds (the chain's clock).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Amount = str
RoundStatus = Literal["open", "finalized"]
ReportStatus = Literal["pending", "indexed", "invalid"]
UpdateStatus = Literal["pending", "accepted", "rejected"]


class RewardTotalsPublic(BaseModel):
    funded: Amount = Field(description="Tokens ever put into the reward pool")
    allocated: Amount = Field(description="Tokens finalized rounds allocated to clients")
    claimed: Amount = Field(description="Tokens clients have claimed")


class AdmissionPublic(BaseModel):
    mode: Literal["open", "allowlist"] = Field(
        description="open: anyone registers; allowlist: only addresses a registrar admitted"
    )
    registration_bond: Amount = Field(description="Tokens a client locks when it registers")
    exit_delay: int = Field(description="Seconds between a client's exit and its bond's return")
    bonds_held: Amount = Field(description="Registration bonds locked now (not part of the pool)")


SettlementState = Literal["unproposed", "proposed", "attested", "challenged", "decided", "final", "stale"]


class RoundSettlementPublic(BaseModel):
    state: SettlementState = Field(
        description="proposed, attested (k of the quorum), challenged, decided, final (claims pay it), "
        "stale (its parent was replaced: proposed again), unproposed"
    )
    attestations: int | None = Field(description="Verifiers who attested the proposal (None once final)")
    quorum: int
    window_end: int | None = Field(description="End of the challenge window")
    proposer: str | None
    result_hash: str | None
    challenger: str | None = Field(description="Who challenged the proposal ('' if nobody)")
    challenge_votes: int | None


class BondPublic(BaseModel):
    account: str
    role: Literal["finalizer", "verifier"]
    amount: Amount = Field(description="Tokens bonded now (0 once slashed or withdrawn)")
    exit_available_at: int


class SlashPublic(BaseModel):
    account: str
    round: int
    amount: Amount
    block_number: int


class SettlementPublic(BaseModel):
    address: str
    quorum: int = Field(description="Attestations that decide a round before its window ends")
    challenge_window: int = Field(description="Seconds a proposal may be challenged")
    final_round: int = Field(description="Latest round whose rewards are claimable")
    bonds: list[BondPublic]
    slashes: list[SlashPublic]


class ContractPublic(BaseModel):
    address: str
    chain_id: int
    network: str
    deployment_block: int
    token: str
    token_symbol: str
    token_decimals: int
    round_duration: int = Field(description="Seconds each round stays open")
    reward_per_round: Amount
    current_round: int
    current_round_deadline: int
    active_clients: int
    registered_clients: int
    finalized_rounds: int
    paused: bool
    rewards: RewardTotalsPublic
    admission: AdmissionPublic
    settlement: SettlementPublic | None = Field(description="None while the oracle finalizes rounds alone")
    initial_model_cid: str
    latest_global_model_cid: str
    epsilon: float | None = Field(description="Cumulative privacy spent after the latest finalized round")
    chain_time: int = Field(description="Timestamp of the chain head at the last sync")
    indexed_block: int


class CategoryPublic(BaseModel):
    accuracy: float | None
    n: int


class EvaluationPublic(BaseModel):
    accuracy: float | None
    loss: float | None
    n: int
    per_category: dict[str, CategoryPublic]


class RoundMetricsPublic(BaseModel):
    before: EvaluationPublic | None
    after: EvaluationPublic | None


class PrivacyPublic(BaseModel):
    epsilon: float | None = Field(description="Cumulative epsilon after the round (null if unbounded)")
    unbounded: bool = Field(description="True once a round ran without noise: no formal guarantee")
    delta: float | None
    server_noise: bool
    noise_multiplier: float | None


class RoundLinks(BaseModel):
    report: str | None
    model: str | None


class RoundPublic(BaseModel):
    round: int
    status: RoundStatus
    deadline: int
    finalized_at: int | None
    submissions: int
    accepted: int | None
    rejected: int | None
    metric: float | None = Field(description="Held-out accuracy the oracle wrote on chain")
    epsilon: float | None = Field(description="Cumulative epsilon the oracle wrote on chain")
    global_model_cid: str | None
    previous_global_model_cid: str | None
    report_cid: str | None
    report_status: ReportStatus | None
    report_error: str | None
    rewards_root: str | None
    round_rewards: Amount | None
    metrics: RoundMetricsPublic | None
    privacy: PrivacyPublic | None
    strategy: dict[str, Any] | None
    block_number: int | None
    transaction_hash: str | None
    settlement: RoundSettlementPublic | None = Field(description="None without a settlement")
    links: RoundLinks


class RoundsPublic(BaseModel):
    data: list[RoundPublic]
    count: int


class UpdatePublic(BaseModel):
    round: int
    client: str
    cid: str
    num_samples: int
    status: UpdateStatus = Field(description="pending until the round's report is indexed")
    reason: str = Field(description="Why the oracle rejected the update ('' if accepted)")
    norm: float | None
    weight: float | None
    excluded: str = Field(description="Why a robust rule left an accepted update out ('' if used)")
    contribution: float | None
    reward: Amount | None
    block_number: int | None
    transaction_hash: str | None
    download: str


class UpdatesPublic(BaseModel):
    data: list[UpdatePublic]
    count: int


class ClientPublic(BaseModel):
    address: str
    dataset_commitment: str
    registered_round: int
    registered_block: int
    banned: bool
    exited: bool = Field(description="Asked to leave: never trains again")
    bond: Amount = Field(description="Registration bond the client holds now")
    bond_released_at: int = Field(description="When an exited client's bond is released (0 before an exit)")
    submissions: int
    accepted: int
    rejected: int
    contribution_total: float
    cumulative_reward: Amount = Field(description="Earned so far, per the latest indexed report")
    claimed: Amount
    claimable: Amount


class ClientRoundPublic(BaseModel):
    round: int
    cid: str
    num_samples: int
    status: UpdateStatus
    reason: str
    contribution: float | None
    reward: Amount | None
    cumulative_reward: Amount | None
    download: str


class ClientDetailPublic(ClientPublic):
    rounds: list[ClientRoundPublic]


class ClientsPublic(BaseModel):
    data: list[ClientPublic]
    count: int


class LeaderboardEntryPublic(BaseModel):
    rank: int
    client: str
    cumulative_reward: Amount
    round_reward: Amount = Field(description="Earned in the leaderboard's round")
    claimed: Amount
    unclaimed: Amount
    submissions: int
    accepted: int
    contribution_total: float
    banned: bool


class LeaderboardPublic(BaseModel):
    round: int | None = Field(description="The round whose report the ranking comes from")
    data: list[LeaderboardEntryPublic]
    count: int


class ProofPublic(BaseModel):
    client: str
    round: int
    rewards_root: str
    cumulative_amount: Amount = Field(description="Pass this and `proof` to the contract's claim()")
    claimed: Amount
    claimable: Amount
    proof: list[str]


class ModelPublic(BaseModel):
    cid: str
    round: int
    kind: Literal["initial", "global"]
    filename: str
    download: str


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "starting"]
    version: str
    indexed_block: int | None
    chain_head: int | None
    lag_blocks: int | None
    last_sync: float | None
    last_error: str | None
    pending_reports: int


class OracleActionPublic(BaseModel):
    action: str
    oracle: dict[str, Any] = Field(description="The oracle control server's answer")
