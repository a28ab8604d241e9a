"""The compiled contracts shipped inside the package (see tools/export_artifacts.py)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "compiled"
COORDINATOR = "FLBCoordinator"
REWARD_TOKEN = "FLBRewardToken"
SETTLEMENT = "FLBSettlement"


@cache
def artifact_json(name: str) -> dict[str, Any]:
    """The raw contract-type JSON of a shipped contract."""
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def contract_type(name: str) -> Any:
    """An ``ethpm_types.ContractType`` for a shipped contract (imported lazily: Ape is heavy)."""
    from ethpm_types import ContractType

    return ContractType.model_validate(artifact_json(name))


def deployed_contract(address: str, name: str) -> Any:
    """The shipped contract ``name`` bound at ``address`` on the connected network; a clear error
    when the node is unreachable or nothing is deployed there."""
    from ape import Contract, chain
    from eth_utils import to_checksum_address

    from flb_dapp.exceptions import ChainError, ChainUnavailableError

    address = to_checksum_address(address)
    try:
        code = chain.provider.get_code(address)
    except Exception as exc:
        raise ChainUnavailableError(f"cannot reach the chain node: {exc}") from exc
    if not code:
        raise ChainError(f"no contract at {address} on chain {chain.chain_id}; deploy first")
    return Contract(address, contract_type=contract_type(name))


def abi_hash(name: str = COORDINATOR) -> str:
    """sha256 of the canonical ABI JSON: services refuse a deployment built from another ABI."""
    abi = json.dumps(artifact_json(name)["abi"], sort_keys=True, separators=(",", ":"))
    return "0x" + hashlib.sha256(abi.encode()).hexdigest()
