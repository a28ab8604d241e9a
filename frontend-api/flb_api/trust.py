"""What the explorer shows about who may act and what backs them: the admission rules and
registration bonds, and on a settled deployment each unfinal round's settlement state, the
finalizer's and verifiers' bonds, and every slash (``flb_dapp.chain.settlement_view``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.settlement import Settlement
from flb_dapp.chain.settlement_view import SettlementLogs, bonds, round_settlement


def admission_state(coordinator: Coordinator) -> dict[str, Any]:
    rules = coordinator.admission_rules
    return {
        "mode": rules.mode,
        "registration_bond": str(rules.registration_bond),
        "exit_delay": rules.exit_delay,
        "bonds_held": str(coordinator.bonds_held),
    }


def client_bonds(coordinator: Coordinator, start: int, stop: int) -> list[tuple[str, bool, int, int]]:
    """(address, exited, bond, bond released at) now, of each client whose bond or exit changed in
    blocks ``[start, stop]``."""
    changed = []
    for address in coordinator.admission_changes(start_block=start, stop_block=stop):
        bond = coordinator.bond_of(address)
        changed.append((address, coordinator.client(address).exited, bond.amount, bond.released_at))
    return changed


class SettlementReader:
    """Reads the coordinator's settlement, keeping one log index across syncs."""

    def __init__(self) -> None:
        self._cached: tuple[Settlement, SettlementLogs] | None = None

    def state(self, coordinator: Coordinator, current_round: int) -> dict[str, Any] | None:
        """The settlement's state as ``ContractPublic.settlement``; None without a settlement."""
        address = coordinator.settlement_address
        if not address:
            return None
        if self._cached is None or self._cached[0].address != address:
            settlement = Settlement(address, coordinator.start_block)
            self._cached = (settlement, SettlementLogs(settlement))
        settlement, logs = self._cached
        parameters = settlement.parameters
        final = settlement.final_round
        return {
            "address": address,
            "quorum": parameters.quorum,
            "challenge_window": parameters.challenge_window,
            "final_round": final,
            # NOTE: final rounds need no call each: their state is "final" (crud fills it in).
            "rounds": [
                asdict(round_settlement(settlement, number, final, parameters.quorum))
                for number in range(final + 1, current_round)
            ],
            "bonds": [
                {
                    "account": bond.address,
                    "role": "verifier" if bond.verifier else "finalizer",
                    "amount": str(bond.amount),
                    "exit_available_at": bond.exit_available_at,
                }
                for bond in bonds(settlement, logs)
            ],
            "slashes": [
                {
                    "account": s.account,
                    "round": s.round,
                    "amount": str(s.amount),
                    "block_number": s.block_number,
                }
                for s in logs.slashes()
            ],
        }
