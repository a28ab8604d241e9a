"""The one way FLB stands up a federation: the initial adapter in the store, the contracts deployed
and funded, the deployment record saved, the clients registered with their dataset commitments,
and the settings every service reads.

`flb simulate`, `flb devnet`, the test fixtures and the benches all build through here; wiring an
oracle to the result is `oracle.pipeline.Oracle.for_federation` (services live above this layer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import TOKEN_DECIMALS, DeploymentRecord, deploy_system
from flb_dapp.chain.settlement import Settlement, SettlementParameters
from flb_dapp.chain.types import PendingReveal
from flb_dapp.config import FLBSettings, OracleConfig
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import decode_adapter, encode_adapter
from flb_dapp.storage.base import ContentStore
from flb_dapp.storage.factory import open_store
from flb_dapp.taskspec import TaskSpec, initial_adapter

REWARD_PER_ROUND = 1_000 * TOKEN_DECIMALS
TOKEN_SUPPLY = 1_000_000 * TOKEN_DECIMALS


@dataclass(frozen=True)
class FederationPlan:
    """What to stand up. Defaults: the tiny model, 10-minute rounds, 1,000 tokens a round, every
    client in every round (``cohort_size`` K > 0 samples exactly K of them per round once more than
    K are registered)."""

    spec: TaskSpec = field(default_factory=lambda: TaskSpec(model="tiny"))
    round_duration: int = 600
    reward_per_round: int = REWARD_PER_ROUND
    token_supply: int = TOKEN_SUPPLY
    fund_amount: int = 100 * REWARD_PER_ROUND
    network: str = "ethereum:local:test"
    store_url: str | None = None  # a folder or an IPFS RPC URL; default ``root/store``
    deployment_path: Path | None = None  # default ``root/deployments/<chain id>.json``
    # The oracle's section of the settings (round rules, journal, threads ...); the journal
    # defaults to ``root/oracle.sqlite``.
    oracle: dict[str, Any] = field(default_factory=dict)
    account: str | None = None  # the account the written settings name
    cohort_size: int = 0  # clients sampled per round; 0: every registered client trains
    # With settlement rules the oracle proposes rounds to an FLBSettlement (bonded with the
    # minimum finalizer bond, which the operator sends it) and verifiers attest or challenge them.
    settlement: SettlementParameters | None = None


def dataset_digest(share: Sequence[MCQuestion]) -> bytes:
    """A client's dataset commitment: the SHA-256 of its questions' canonical records."""
    manifest = json.dumps([q.to_record() for q in share], sort_keys=True).encode()
    return hashlib.sha256(manifest).digest()


@dataclass
class Federation:
    """A deployed federation and its registered clients; the train/submit helpers are the ones
    every client uses (the same SDK, store and trainer as `flb participate`)."""

    root: Path
    spec: TaskSpec
    settings: FLBSettings
    record: DeploymentRecord
    coordinator: Coordinator
    store: ContentStore
    operator: Any
    oracle_account: Any
    clients: list[Any]
    shares: list[list[MCQuestion]]
    scorer: Any = None
    pending: list[tuple[Any, PendingReveal]] = field(default_factory=list)

    @property
    def settlement(self) -> Settlement | None:
        """The settlement that decides rounds, when the deployment has one."""
        if not self.record.settlement:
            return None
        return Settlement(self.record.settlement, self.record.block)

    def global_adapter(self, cid: str | None = None) -> Adapter:
        """The global adapter, verified against its on-chain CID."""
        return decode_adapter(self.store.get_bytes(cid or self.coordinator.latest_global_model_cid))

    def cohort(self, round_number: int) -> list[int]:
        """Indices (into ``clients``), ascending, of the clients that may train in ``round_number``:
        the round's cohort as the contract drew it, or every client when the round has none."""
        if not self.coordinator.round(round_number).sampled:
            return list(range(len(self.clients)))
        members = {m.lower() for m in self.coordinator.cohort_members(round_number)}
        return [i for i, c in enumerate(self.clients) if c.address.lower() in members]

    def train(self, index: int, steps: int | None = None, seed: int | None = None) -> Adapter:
        from flb_dapp.taskspec import train_config
        from flb_dapp.training.trainer import train_client

        seed = index if seed is None else seed
        config = train_config(self.spec, self.settings.cache_dir, steps=steps, seed=seed)
        result = train_client(
            config,
            self.shares[index],
            self.global_adapter(),
            client=self.clients[index].address,
            round=self.coordinator.current_round,
        )
        return result.adapter

    def submit(self, index: int, adapter: Adapter) -> str:
        """Store and commit; once every active client or cohort member committed (the commit phase
        closed), reveal all."""
        cid = self.store.put_bytes(encode_adapter(adapter))
        self.commit_as(self.clients[index], cid, adapter.metadata.num_samples)
        return cid

    def commit_cid(self, index: int, cid: str, num_samples: int) -> None:
        self.commit_as(self.clients[index], cid, num_samples)

    def commit_as(self, client: Any, cid: str, num_samples: int) -> None:
        """Commit for any registered account; reveals every pending commitment once the phase closed
        (in a sampled round that is when the whole cohort committed)."""
        pending, _ = self.coordinator.commit_update(client, self.coordinator.current_round, cid, num_samples)
        self.pending.append((client, pending))
        if self.coordinator.round_phase(pending.round) == "reveal":
            self.reveal_all()

    def reveal_all(self) -> None:
        """Reveal every pending commitment, first moving a local chain past the commit deadline."""
        from ape import chain

        if not self.pending:
            return
        deadline = self.coordinator.round(self.pending[0][1].round).deadline
        if chain.pending_timestamp < deadline:
            chain.mine(deltatime=deadline - chain.pending_timestamp)
        for client, pending in self.pending:
            self.coordinator.reveal_update(client, pending)
        self.pending.clear()


def deploy_federation(
    root: Path,
    operator: Any,
    oracle_account: Any,
    plan: FederationPlan,
    *,
    cache_dir: Path | None = None,
    initial: Adapter | None = None,
) -> tuple[DeploymentRecord, FLBSettings, ContentStore]:
    """Store the initial adapter (``initial``, or built here from the task), deploy and fund, save
    the record; the settings name all of it."""
    root.mkdir(parents=True, exist_ok=True)
    cache = cache_dir or root / "cache"
    store_url = plan.store_url or str(root / "store")
    store = open_store(store_url)
    if initial is None:
        initial = initial_adapter(plan.spec, cache)
    initial_cid = store.put_bytes(encode_adapter(initial))
    record = deploy_system(
        operator,
        initial_model_cid=initial_cid,
        oracle=oracle_account.address,
        round_duration=plan.round_duration,
        reward_per_round=plan.reward_per_round,
        token_supply=plan.token_supply,
        fund_amount=plan.fund_amount,
        cohort_size=plan.cohort_size,
        settlement=plan.settlement,
    )
    if plan.settlement is not None:
        bond = plan.settlement.min_finalizer_bond
        Coordinator(record.coordinator, record.block).token.transfer(
            oracle_account.address, bond, sender=operator
        )
        Settlement(record.settlement, record.block).deposit_bond(oracle_account, bond)
    deployment = record.save(plan.deployment_path or root / "deployments" / f"{record.chain_id}.json")
    settings = FLBSettings(
        network=plan.network,
        deployment=str(deployment),
        store=store_url,
        cache_dir=str(cache),
        account=plan.account,
        task=plan.spec,
        oracle=OracleConfig(**{"journal": str(root / "oracle.sqlite"), **plan.oracle}),
    )
    return record, settings, store


def build_federation(
    root: Path,
    operator: Any,
    oracle_account: Any,
    clients: Sequence[Any],
    shares: Sequence[list[MCQuestion]],
    plan: FederationPlan,
    *,
    cache_dir: Path | None = None,
    scorer: Any = None,
    initial: Adapter | None = None,
) -> Federation:
    """Deploy (see :func:`deploy_federation`) and register each client with its share's digest."""
    record, settings, store = deploy_federation(
        root, operator, oracle_account, plan, cache_dir=cache_dir, initial=initial
    )
    coordinator = Coordinator(record.coordinator, record.block)
    for client, share in zip(clients, shares, strict=True):
        coordinator.register(client, dataset_digest(share))
    if 0 < plan.cohort_size < len(clients):
        # Round 1 opened at deploy, before anyone registered: it samples its cohort now.
        coordinator.draw_cohort(operator)
    return Federation(
        root=root,
        spec=plan.spec,
        settings=settings,
        record=record,
        coordinator=coordinator,
        store=store,
        operator=operator,
        oracle_account=oracle_account,
        clients=list(clients),
        shares=[list(s) for s in shares],
        scorer=scorer,
    )
