"""Deploying the FLB contracts and the deployment record the services read.

The record (JSON) names the network, chain id, addresses, block and ABI hash. Services refuse a
record whose ABI hash differs from the contracts they ship, and `deploy_system` refuses to deploy
twice on a chain where the recorded coordinator still exists.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from flb_dapp.atomic import atomic_write_text
from flb_dapp.chain.admission import AdmissionRules
from flb_dapp.chain.artifacts import COORDINATOR, REWARD_TOKEN, abi_hash, contract_type
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.chain.settlement import SettlementParameters, deploy_settlement
from flb_dapp.exceptions import ChainError, ConfigError, DeploymentNotFoundError
from flb_dapp.storage.cid import cid_to_bytes

DEFAULT_RECORD_DIR = Path("deployments")
TOKEN_DECIMALS = 10**18


@dataclass(frozen=True)
class DeploymentRecord:
    """Where FLB lives on one chain."""

    network: str
    chain_id: int
    coordinator: str
    token: str
    block: int
    abi_hash: str
    deployer: str
    oracle: str
    initial_model_cid: str
    round_duration: int
    reward_per_round: int
    deployed_at: int
    reveal_duration: int = 0
    cohort_size: int = 0  # clients sampled per round from round 1 on; 0: every registered client
    settlement: str = ""  # the FLBSettlement deciding rounds; '' while the oracle role does
    admission: str = "open"  # 'open' (anyone registers) or 'allowlist' (a registrar admits)
    registration_bond: int = 0  # reward-token units a client locks at registration
    client_exit_delay: int = 0  # seconds between a client's exit and its bond's return

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DeploymentRecord:
        path = Path(path)
        if not path.is_file():
            raise DeploymentNotFoundError(f"no deployment record at {path}; run `ape run deploy` first")
        data = json.loads(path.read_text())
        record = cls(**data)
        if record.abi_hash != abi_hash(COORDINATOR):
            raise ConfigError(
                f"deployment {path} was built from another contract ABI ({record.abi_hash}); redeploy"
            )
        return record


# NOTE: the reveal window follows the commit phase; clients that committed must be online within it
# (`flb participate` reveals on its next run), so it is long enough for a cron job every few minutes.
DEFAULT_REVEAL_DURATION = 600


def _network_choice(provider: Any) -> str:
    """How to reach this network again: the node's URI for a custom network, else Ape's choice."""
    if provider.network.name == "custom":
        try:
            return str(provider.uri)
        except Exception:
            pass
    return str(provider.network.choice)


def record_path(chain_id: int, directory: str | Path = DEFAULT_RECORD_DIR) -> Path:
    return Path(directory) / f"{chain_id}.json"


def existing_deployment(path: str | Path) -> DeploymentRecord | None:
    """The record at ``path`` if its coordinator still has code on the connected chain."""
    from ape import chain

    try:
        record = DeploymentRecord.load(path)
    except (DeploymentNotFoundError, ConfigError, json.JSONDecodeError, TypeError):
        return None
    if record.chain_id != chain.chain_id or not chain.provider.get_code(record.coordinator):
        return None
    return record


def _check_uint32(round_duration: int, reveal_duration: int, cohort_size: int) -> None:
    """The constructor's uint32 parameters, refused before any gas is spent."""
    if round_duration <= 0 or round_duration >= 2**32:
        raise ConfigError(f"round duration must be 1 .. 2^32-1 seconds, got {round_duration}")
    if reveal_duration <= 0 or reveal_duration >= 2**32:
        raise ConfigError(f"reveal duration must be 1 .. 2^32-1 seconds, got {reveal_duration}")
    if not 0 <= cohort_size < 2**32:
        raise ConfigError(f"cohort size must be 0 .. 2^32-1 clients, got {cohort_size}")


def deploy_system(
    deployer: Any,
    *,
    initial_model_cid: str,
    oracle: str | None = None,
    round_duration: int = 3600,
    reveal_duration: int = DEFAULT_REVEAL_DURATION,
    reward_per_round: int = 1_000 * TOKEN_DECIMALS,
    token_supply: int = 1_000_000 * TOKEN_DECIMALS,
    fund_amount: int | None = None,
    network_name: str = "",
    cohort_size: int = 0,
    settlement: SettlementParameters | None = None,
    admission: AdmissionRules | None = None,
) -> DeploymentRecord:
    """Deploy the reward token and the coordinator, grant the oracle role, fund the pool.

    ``cohort_size`` K > 0 samples exactly K clients per round once more than K are registered
    (rounds opened with at most K registered let everyone train); 0 lets every client train.
    With ``settlement`` rules, an FLBSettlement is deployed and set on the coordinator, and the
    oracle gets its finalizer role: it must then bond (``Settlement.deposit_bond``) to propose.
    ``admission`` (default: open, free) decides who may register and the bond it locks."""
    from ape import chain
    from ape.contracts import ContractContainer

    _check_uint32(round_duration, reveal_duration, cohort_size)
    admission = admission or AdmissionRules()
    initial_raw = cid_to_bytes(initial_model_cid)
    oracle_address = to_checksum_address(oracle) if oracle else deployer.address
    funding = fund_amount if fund_amount is not None else min(token_supply, reward_per_round * 100)
    if funding > token_supply:
        raise ConfigError(f"cannot fund {funding} from a supply of {token_supply}")
    with translate_reverts():
        token = deployer.deploy(
            ContractContainer(contract_type(REWARD_TOKEN)), deployer.address, token_supply
        )
        coordinator = deployer.deploy(
            ContractContainer(contract_type(COORDINATOR)),
            token.address,
            deployer.address,
            oracle_address,
            initial_raw,
            round_duration,
            reveal_duration,
            reward_per_round,
            cohort_size,
            admission.as_tuple(),
        )
    block = int(chain.get_receipt(coordinator.txn_hash).block_number)
    sdk = Coordinator(coordinator.address, block)
    if funding:
        sdk.fund_rewards(deployer, funding)
    if sdk.reward_totals[0] != funding:
        raise ChainError("funding the reward pool did not take effect")
    settlement_address = ""
    if settlement is not None:
        settlement_address = deploy_settlement(deployer, coordinator.address, settlement, oracle_address)
    return DeploymentRecord(
        network=network_name or _network_choice(chain.provider),
        chain_id=int(chain.chain_id),
        coordinator=coordinator.address,
        token=token.address,
        block=block,
        abi_hash=abi_hash(COORDINATOR),
        deployer=deployer.address,
        oracle=oracle_address,
        initial_model_cid=initial_model_cid,
        round_duration=round_duration,
        reward_per_round=reward_per_round,
        deployed_at=int(time.time()),
        reveal_duration=reveal_duration,
        cohort_size=cohort_size,
        settlement=settlement_address,
        admission=admission.mode,
        registration_bond=admission.registration_bond,
        client_exit_delay=admission.exit_delay,
    )
