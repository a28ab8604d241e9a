"""One exception class per custom error of the coordinator's admission rules
(``contracts/interfaces/IClientAdmission.sol``), in the :class:`ContractRuleError` scheme: the class
is named after the Solidity error and its annotations, in order, are the error's parameters in
snake_case. :mod:`flb_dapp.chain.reverts` imports this module, so a revert becomes its class.
"""

from __future__ import annotations

from flb_dapp.exceptions import ContractRuleError, PreflightError


class CoordinatorAdmissionOpen(ContractRuleError):
    """``setAdmitted`` on an ``open`` deployment, where anyone may register."""


class CoordinatorNotAdmitted(ContractRuleError):
    """``register`` on an ``allowlist`` deployment by an address no registrar admitted."""

    client: str


class CoordinatorClientExited(ContractRuleError):
    """The client asked to exit: it cannot commit, reveal or exit again."""

    client: str
    released_at: int


class CoordinatorNotExited(ContractRuleError):
    """``withdrawBond`` by a client that did not ask to exit (or is banned)."""

    client: str


class CoordinatorBondLocked(ContractRuleError):
    """``withdrawBond`` before the exit delay has passed."""

    client: str
    released_at: int


class CoordinatorNoBond(ContractRuleError):
    """``withdrawBond`` by a client holding no bond (none asked, returned already, or forfeited)."""

    client: str


class BondBalanceTooLow(PreflightError):
    """``register`` by an account holding less reward token than the registration bond (the token
    itself would refuse the transfer)."""
