"""What an explorer shows of a settled deployment: each round's settlement state, the bonds that
back the finalizer and the verifiers, and every slash.

A round the oracle proposed is ``proposed`` until a verifier attests, ``attested`` (k of the
quorum n) until the quorum is reached, ``challenged`` while a challenge is open, ``decided`` once a
quorum (or the admin, for a stalled challenge) decided it, and ``final`` once the settlement
confirmed it on the coordinator: only final rounds pay claims. ``stale`` marks a proposal whose
parent was replaced (the oracle proposes it again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eth_utils import to_checksum_address

from flb_dapp.chain.events import ContractEvents
from flb_dapp.chain.settlement import BondInfo, Settlement
from flb_dapp.chain.types import hex_text

SettlementState = Literal["unproposed", "proposed", "attested", "challenged", "decided", "final", "stale"]


@dataclass(frozen=True)
class RoundSettlement:
    round: int
    state: SettlementState
    attestations: int
    quorum: int
    window_end: int  # the challenge window's end (0 without a proposal)
    proposer: str
    result_hash: str
    challenger: str  # '' without a challenge
    challenge_votes: int


@dataclass(frozen=True)
class SlashRecord:
    account: str
    round: int
    amount: int
    block_number: int


class SettlementLogs(ContractEvents):
    """The settlement's events, through the same indexed reader as the coordinator's."""

    def __init__(self, settlement: Settlement) -> None:
        self.contract = settlement.contract
        self.start_block = settlement.start_block

    def bonded_accounts(self, stop_block: int | None = None) -> list[str]:
        """Every account that ever deposited a bond, in order of its first deposit."""
        seen: dict[str, None] = {}
        for log in self._logs("BondDeposited", 0, stop_block):
            seen.setdefault(to_checksum_address(log.account), None)
        return list(seen)

    def slashes(self, stop_block: int | None = None) -> list[SlashRecord]:
        """``BondSlashed`` events, in chain order."""
        return [
            SlashRecord(
                account=to_checksum_address(log.account),
                round=int(log.round),
                amount=int(log.amount),
                block_number=int(log.block_number),
            )
            for log in self._logs("BondSlashed", 0, stop_block)
        ]


def round_settlement(
    settlement: Settlement, round_number: int, final_round: int, quorum: int
) -> RoundSettlement:
    """One round's settlement state (see the module's docstring)."""
    proposal = settlement.proposal(round_number)
    challenge = settlement.challenge_info(round_number)
    state: SettlementState
    if round_number <= final_round:
        state = "final"
    elif not proposal.proposed:
        state = "unproposed"
    elif proposal.stale:
        state = "stale"
    elif challenge.open:
        state = "challenged"
    elif proposal.decided:
        state = "decided"
    else:
        state = "attested" if proposal.attestations else "proposed"
    challenged = int(challenge.challenger, 16) != 0
    return RoundSettlement(
        round=round_number,
        state=state,
        attestations=proposal.attestations,
        quorum=quorum,
        window_end=proposal.window_end,
        proposer=proposal.proposer if proposal.proposed else "",
        result_hash=hex_text(proposal.result_hash),
        challenger=challenge.challenger if challenged else "",
        challenge_votes=proposal.challenge_votes,
    )


def bonds(settlement: Settlement, logs: SettlementLogs) -> list[BondInfo]:
    """The bond of every account that ever deposited one (slashed and withdrawn ones read 0)."""
    return [settlement.bond(account) for account in logs.bonded_accounts()]
