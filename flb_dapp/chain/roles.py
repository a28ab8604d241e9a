"""OpenZeppelin ``AccessControl`` roles of FLB's contracts, by name (``ORACLE_ROLE``, ...)."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from flb_dapp.chain.reverts import translate_reverts


def has_role(contract: Any, role_name: str, address: str) -> bool:
    role = getattr(contract, role_name)()
    return bool(contract.hasRole(role, to_checksum_address(address)))


def grant_role(contract: Any, account: Any, role_name: str, grantee: str) -> Any:
    """Grant ``role_name`` to ``grantee`` (sent by ``account``, which must hold the role's admin)."""
    with translate_reverts():
        role = getattr(contract, role_name)()
        return contract.grantRole(role, to_checksum_address(grantee), sender=account)
