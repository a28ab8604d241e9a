"""Who may register and what it costs: the coordinator's admission rules, registration bonds and
exits (``contracts/ClientAdmission.sol``), in the SDK.

A mixin of :class:`~flb_dapp.chain.coordinator.Coordinator`, which provides ``contract``,
``token`` and ``client``. The deployment fixes the rules once: ``open`` lets anyone register,
``allowlist`` only the addresses a registrar admitted; either may ask a bond in the reward token,
locked at registration and returned ``exit_delay`` seconds after a clean exit (a ban before then
forfeits it to the reward pool). Each transaction runs its pre-flight check first, raising the
class of the custom error the contract would revert with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from eth_utils import to_checksum_address

from flb_dapp.chain import preflight
from flb_dapp.chain.admission_errors import (
    BondBalanceTooLow,
    CoordinatorAdmissionOpen,
    CoordinatorBondLocked,
    CoordinatorNoBond,
    CoordinatorNotAdmitted,
    CoordinatorNotExited,
)
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.chain.roles import grant_role, has_role
from flb_dapp.exceptions import ConfigError

AdmissionMode = Literal["open", "allowlist"]
ADMISSION_MODES: tuple[AdmissionMode, ...] = ("open", "allowlist")
REGISTRAR_ROLE_NAME = "REGISTRAR_ROLE"
# NOTE: the delay lets the admin ban a client whose last update turns out malicious before its
# bond is back; a day covers a round plus its challenge window at the defaults.
DEFAULT_EXIT_DELAY = 86_400


@dataclass(frozen=True)
class AdmissionRules:
    """A deployment's admission rules (fixed at deployment)."""

    mode: AdmissionMode = "open"
    registration_bond: int = 0  # reward-token base units locked at registration; 0: free
    exit_delay: int = DEFAULT_EXIT_DELAY  # seconds between requestExit and withdrawBond

    def __post_init__(self) -> None:
        if self.mode not in ADMISSION_MODES:
            raise ConfigError(f"admission must be one of {', '.join(ADMISSION_MODES)}, got {self.mode!r}")
        if not 0 <= self.registration_bond < 2**128:
            raise ConfigError(f"the registration bond must be 0 .. 2^128-1, got {self.registration_bond}")
        if not 0 <= self.exit_delay < 2**32:
            raise ConfigError(f"the exit delay must be 0 .. 2^32-1 seconds, got {self.exit_delay}")

    def as_tuple(self) -> tuple[bool, int, int]:
        """The constructor's ``AdmissionRules`` argument."""
        return (self.mode == "allowlist", self.registration_bond, self.exit_delay)


@dataclass(frozen=True)
class Bond:
    """A client's registration bond: what it holds and when it is released (0 before an exit)."""

    amount: int
    released_at: int


class CoordinatorAdmission:
    """Admission reads and transactions over ``contract``."""

    contract: Any
    address: str

    @property
    def token(self) -> Any:  # pragma: no cover - Coordinator provides it
        raise NotImplementedError

    def client(self, address: str) -> Any:  # pragma: no cover - Coordinator provides it
        raise NotImplementedError

    def now(self) -> int:  # pragma: no cover - Coordinator provides it
        raise NotImplementedError

    # --- reads ----------------------------------------------------------------------------------
    @cached_property
    def admission_rules(self) -> AdmissionRules:
        """The deployment's rules (immutable in the contract: read once)."""
        allowlist, bond, delay = self.contract.admissionRules()
        return AdmissionRules("allowlist" if allowlist else "open", int(bond), int(delay))

    def is_admitted(self, address: str) -> bool:
        return bool(self.contract.isAdmitted(to_checksum_address(address)))

    def bond_of(self, address: str) -> Bond:
        amount, released_at = self.contract.bondOf(to_checksum_address(address))
        return Bond(int(amount), int(released_at))

    @property
    def bonds_held(self) -> int:
        return int(self.contract.bondsHeld())

    def is_registrar(self, address: str) -> bool:
        return has_role(self.contract, REGISTRAR_ROLE_NAME, address)

    # --- pre-flight checks ----------------------------------------------------------------------
    def check_admission(self, address: str) -> None:
        """What ``register`` needs beyond the dataset rules: an admission, the bond's tokens."""
        who = to_checksum_address(address)
        rules = self.admission_rules
        if rules.mode == "allowlist" and not self.is_admitted(who):
            raise CoordinatorNotAdmitted(
                f"{who} is not admitted: this federation registers only the addresses its "
                "registrar admitted (`flb admit ADDRESS`, by a registrar)",
                client=who,
            )
        balance = int(self.token.balanceOf(who))
        if balance < rules.registration_bond:
            raise BondBalanceTooLow(
                f"registering locks a bond of {rules.registration_bond} reward-token units; "
                f"{who} holds {balance}"
            )

    def check_can_exit(self, address: str) -> None:
        preflight.check_active(self, self.client(address), "exiting")  # type: ignore[arg-type]

    def check_can_withdraw_bond(self, address: str) -> None:
        info = self.client(address)
        who = info.address
        if not info.exited:
            raise CoordinatorNotExited(f"{who} has not exited; run `flb exit` first", client=who)
        bond = self.bond_of(who)
        if bond.amount == 0:
            raise CoordinatorNoBond(f"{who} holds no bond", client=who)
        now = self.now()
        if now < bond.released_at:
            raise CoordinatorBondLocked(
                f"{who}'s bond is locked until {bond.released_at} ({bond.released_at - now} s from now)",
                client=who,
                released_at=bond.released_at,
            )

    # --- transactions ---------------------------------------------------------------------------
    def lock_bond_allowance(self, account: Any) -> None:
        """Approve the registration bond (if any) so that ``register`` can lock it."""
        bond = self.admission_rules.registration_bond
        if bond and int(self.token.allowance(account.address, self.address)) < bond:
            with translate_reverts():
                self.token.approve(self.address, bond, sender=account)

    def set_admitted(self, account: Any, client: str, admitted: bool = True) -> Any:
        """Admit ``client`` (or revoke its admission): a registrar's, on an ``allowlist`` deployment."""
        if self.admission_rules.mode == "open":
            raise CoordinatorAdmissionOpen("this federation is open: anyone may register, nobody is admitted")
        with translate_reverts():
            return self.contract.setAdmitted(to_checksum_address(client), admitted, sender=account)

    def grant_registrar(self, account: Any, registrar: str) -> Any:
        return grant_role(self.contract, account, REGISTRAR_ROLE_NAME, registrar)

    def request_exit(self, account: Any) -> Any:
        self.check_can_exit(account.address)
        with translate_reverts():
            return self.contract.requestExit(sender=account)

    def withdraw_bond(self, account: Any) -> Any:
        self.check_can_withdraw_bond(account.address)
        with translate_reverts():
            return self.contract.withdrawBond(sender=account)
