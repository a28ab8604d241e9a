"""Turning what Ape raises for a failed transaction into FLB errors.

A revert with one of the coordinator's or the settlement's custom errors (a settlement
transaction may revert with the coordinator's, which it calls) becomes the
:class:`ContractRuleError` subclass of the same name, the class the pre-flight checks raise for
the same rule, with the decoded arguments as attributes. Any other revert is a plain
:class:`ChainError` naming it; a lost node is a :class:`ChainUnavailableError`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import is_address, keccak, to_checksum_address

# NOTE: importing the error modules defines their classes, which RULE_ERRORS collects.
from flb_dapp.chain import admission_errors, settlement_errors  # noqa: F401
from flb_dapp.chain.artifacts import COORDINATOR, SETTLEMENT, artifact_json
from flb_dapp.exceptions import ChainError, ChainUnavailableError, ContractRuleError

#: Solidity error name -> the FLB exception that mirrors it, for both contracts.
RULE_ERRORS: dict[str, type[ContractRuleError]] = {
    cls.__name__: cls for cls in ContractRuleError.__subclasses__()
}
#: FLBSettlement's own errors.
SETTLEMENT_ERRORS: dict[str, type[ContractRuleError]] = {
    name: RULE_ERRORS[name] for name in settlement_errors.settlement_error_names()
}
#: The coordinator's errors (and the OpenZeppelin ones both contracts inherit).
CONTRACT_ERRORS: dict[str, type[ContractRuleError]] = {
    name: cls for name, cls in RULE_ERRORS.items() if name not in SETTLEMENT_ERRORS
}


def snake_case(name: str) -> str:
    """``cumulativeAmount`` -> ``cumulative_amount``: a Solidity parameter as an attribute name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _as_attribute(value: Any) -> Any:
    """A decoded ABI value as the exceptions carry it: bytes as ``bytes``, addresses checksummed."""
    if isinstance(value, bytes | bytearray):  # HexBytes too
        return bytes(value)
    if isinstance(value, str) and is_address(value):
        return to_checksum_address(value)
    return value


@cache
def _contract_errors() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Selector -> (error name, parameter names, parameter types), from the shipped ABIs."""
    errors = {}
    for contract in (COORDINATOR, SETTLEMENT):
        for entry in artifact_json(contract)["abi"]:
            if entry["type"] == "error":
                names = tuple(i["name"] for i in entry["inputs"])
                types = tuple(i["type"] for i in entry["inputs"])
                errors[keccak(text=f"{entry['name']}({','.join(types)})")[:4]] = (entry["name"], names, types)
    return errors


def decode_revert_data(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) of a coordinator or settlement custom error from raw revert data; None if
    it is none."""
    found = _contract_errors().get(bytes(data[:4]))
    if found is None:
        return None
    name, names, types = found
    try:
        values = abi_decode(list(types), bytes(data[4:]))
    except Exception:  # eth_abi raises several kinds for short or malformed data
        return None
    return name, {key: _as_attribute(value) for key, value in zip(names, values, strict=True)}


def _raw_revert_data(message: str) -> bytes | None:
    """Revert data Ape left undecoded in the message, as bytes (None when the message is text)."""
    # NOTE: a coordinator error bubbling up through a settlement call is not in the settlement's
    # ABI, which is all Ape decodes with: it reports the data as 0x-hex.
    if re.fullmatch(r"0x(?:[0-9a-fA-F]{2}){4,}", message):
        return bytes.fromhex(message[2:])
    # NOTE: Ape's embedded chain reports revert data as a Python bytes literal and decodes only the
    # single-quoted form; data holding a ' byte (e.g. CoordinatorAlreadyRegistered's selector
    # 0xac8a27ef) comes as b"..." and would otherwise reach callers as an opaque ChainError.
    if not re.fullmatch(r"""b(['"]).*\1""", message, re.DOTALL):
        return None
    try:
        value = ast.literal_eval(message)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None


def _custom_error(exc: Exception) -> tuple[str, Mapping[str, Any]]:
    """The name and arguments of the custom error a revert carries (``ContractLogicError`` and no
    arguments for a revert without one)."""
    name, inputs = type(exc).__name__, getattr(exc, "inputs", None) or {}
    if name == "ContractLogicError":
        data = _raw_revert_data(str(getattr(exc, "revert_message", "") or ""))
        decoded = decode_revert_data(data) if data else None
        if decoded is not None:
            return decoded
    return name, inputs


def revert_error(name: str, inputs: Mapping[str, Any], message: str) -> ChainError:
    """The FLB error for a revert with the custom error ``name`` and its decoded ``inputs``."""
    cls = RULE_ERRORS.get(name)
    arguments = {snake_case(key): _as_attribute(value) for key, value in inputs.items()}
    # NOTE: an error whose parameters drifted from its mirror (tests/chain/test_reverts.py checks
    # the ABI) still reports the revert, as a plain ChainError, rather than a TypeError.
    if cls is None or set(arguments) != set(cls.arguments):
        return ChainError(message)
    return cls(message, **arguments)


@contextmanager
def translate_reverts() -> Iterator[None]:
    """Turn Ape's revert and connection errors into FLB errors that name the custom error."""
    from ape.exceptions import ContractLogicError, ProviderNotConnectedError

    try:
        yield
    except ContractLogicError as exc:
        name, inputs = _custom_error(exc)
        detail = ", ".join(f"{k}={v}" for k, v in inputs.items())
        message = f"{name}({detail})" if name != "ContractLogicError" else str(exc)
        raise revert_error(name, inputs, f"transaction reverted: {message}") from exc
    except ProviderNotConnectedError as exc:
        raise ChainUnavailableError(f"not connected to a chain node: {exc}") from exc
