"""One exception class per custom error of FLBSettlement (``contracts/interfaces/IFLBSettlement.sol``)
and of the coordinator's settlement hooks, in the :class:`ContractRuleError` scheme: the class is
named after the Solidity error and its annotations, in order, are the error's parameters in
snake_case. :mod:`flb_dapp.chain.reverts` imports this module, so a revert of either contract
becomes its class.
"""

from __future__ import annotations

from flb_dapp.exceptions import ContractRuleError


# --- the coordinator's settlement hooks -------------------------------------------------------------
class CoordinatorInvalidSettlement(ContractRuleError):
    """``setSettlement`` with the zero address, or when a settlement is set already (``current``)."""

    given: str
    current: str


class CoordinatorRoundNotPending(ContractRuleError):
    """The round is not finalized-and-unconfirmed (``confirmRound``: not the next to confirm)."""

    round: int
    latest_confirmed: int
    current_round: int


# --- FLBSettlement ----------------------------------------------------------------------------------
class SettlementInvalidParameters(ContractRuleError):
    """A zero bond minimum, challenge bond, window or resolution period; a quorum of 0 or above
    64; a slash share above 10,000 basis points."""


class SettlementZeroAmount(ContractRuleError):
    """A bond deposit of zero."""


class SettlementBondTooLow(ContractRuleError):
    """The caller's bond is below what its role needs (a slashed bond is zero)."""

    account: str
    bond: int
    minimum: int


class SettlementAlreadyVerifier(ContractRuleError):
    """The caller is a registered verifier already."""

    account: str


class SettlementVerifierSetFull(ContractRuleError):
    """All verifier indices are taken."""

    max_verifiers: int


class SettlementNotVerifier(ContractRuleError):
    """The caller is not a registered verifier holding the verifier role."""

    account: str


class SettlementExiting(ContractRuleError):
    """The caller asked to leave: it may no longer propose, attest or deposit."""

    account: str


class SettlementExitNotRequested(ContractRuleError):
    """Withdrawing without asking to leave first."""

    account: str


class SettlementExitDelayRunning(ContractRuleError):
    """The exit delay has not passed; the bond can be withdrawn from ``available_at``."""

    account: str
    available_at: int


class SettlementBondLocked(ContractRuleError):
    """A round the caller proposed or voted in is not final yet."""

    account: str
    locked_until_round: int
    final_round: int


class SettlementAlreadyProposed(ContractRuleError):
    """The round has a live proposal, or was final before the settlement took over."""

    round: int


class SettlementRoundNotProposed(ContractRuleError):
    """The round has no proposal."""

    round: int


class SettlementStaleProposal(ContractRuleError):
    """The proposal was built on a parent result that was replaced since: propose it again."""

    round: int
    parent_hash: bytes
    current_parent_hash: bytes


class SettlementProposerCannotAttest(ContractRuleError):
    """The caller proposed this round itself."""

    round: int
    account: str


class SettlementRoundDecided(ContractRuleError):
    """A quorum (or the admin) decided the round already."""

    round: int


class SettlementAlreadyAttested(ContractRuleError):
    """The verifier attested or voted in this proposal before."""

    round: int
    verifier: str


class SettlementUnknownResult(ContractRuleError):
    """The hash is neither the proposal's nor the open challenge's."""

    round: int
    result_hash: bytes
    proposal_hash: bytes


class SettlementChallengeWindowClosed(ContractRuleError):
    """The proposal's challenge window is over."""

    round: int
    window_end: int


class SettlementChallengeOpen(ContractRuleError):
    """The round has an open challenge."""

    round: int


class SettlementNothingChallenged(ContractRuleError):
    """No (or an unknown) part named, or the alternative equals the proposal."""

    round: int
    result_hash: bytes
    parts: int


class SettlementInvalidAlternative(ContractRuleError):
    """The alternative could not replace the round (``invalid_parts``: the PART_* bits)."""

    round: int
    invalid_parts: int


class SettlementChallengeWindowOpen(ContractRuleError):
    """The proposal's challenge window is still running and no quorum decided it."""

    round: int
    window_end: int


class SettlementAlreadyFinal(ContractRuleError):
    """The round is final already."""

    round: int


class SettlementRoundsOutOfOrder(ContractRuleError):
    """An earlier round (``next_round``) must become final first."""

    round: int
    next_round: int


class SettlementNoOpenChallenge(ContractRuleError):
    """The round has no open challenge."""

    round: int


class SettlementResolutionPending(ContractRuleError):
    """The challenge's resolution period is still running (until ``resolve_by``)."""

    round: int
    resolve_by: int


class SettlementInvalidNoiseCommitment(ContractRuleError):
    """``commitNoise`` with a zero commitment."""


class SettlementNoiseCommitClosed(ContractRuleError):
    """``commitNoise`` for a round that is not open, or once its commit phase ended (``deadline``)."""

    round: int
    open_round: int
    deadline: int


class SettlementNoiseAlreadyCommitted(ContractRuleError):
    """``commitNoise`` for a round that has a commitment (``commitment``) already."""

    round: int
    commitment: bytes


def settlement_error_names() -> frozenset[str]:
    """The FLBSettlement error classes' names (those the coordinator's ABI does not carry)."""
    return frozenset(
        cls.__name__ for cls in ContractRuleError.__subclasses__() if cls.__name__.startswith("Settlement")
    )
