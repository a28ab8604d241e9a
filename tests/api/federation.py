"""The federation the API tests read: the shared real federation (`tests/fixtures/federation.py`:
tiny model trained with trl, the real oracle pipeline) driven through a story with every case an
explorer must see: a rejected update, claims, a client that joins late and gets banned, and an open
round with a pending update. Built once per session (training the tiny model takes seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord
from flb_dapp.rounds import RoundOutcome
from flb_dapp.storage.base import ContentStore
from tests.fixtures import federation as shared

STEPS = 6
# Server-side DP so the reports carry a finite, growing epsilon.
STRATEGY = {"name": "fedavg", "dp": "fixed", "clip_norm": 5.0, "noise_multiplier": 0.02}


@dataclass
class Federation:
    """What the tests compare the API with."""

    record: DeploymentRecord
    coordinator: Coordinator
    store: ContentStore
    clients: list[Any]  # train honestly in every round
    latecomer: Any  # registers in round 2, submits garbage, is banned after round 2
    outsider: Any  # never registers
    outcomes: dict[int, RoundOutcome] = field(default_factory=dict)
    claims: list[tuple[str, int]] = field(default_factory=list)
    pending_cid: str = ""  # submitted in the open round 3


def _claim_best(fed: Federation, outcome: RoundOutcome) -> None:
    """The best-rewarded client claims everything it is owed so far."""
    cumulative = outcome.rewards.cumulative
    if not cumulative or max(cumulative.values()) == 0:
        return
    winner = max(cumulative, key=lambda c: (cumulative[c], c))
    if fed.coordinator.client(winner).claimed < cumulative[winner]:
        account = next(c for c in fed.clients if c.address == winner)
        fed.coordinator.claim(account, cumulative[winner], outcome.rewards.tree.proofs[winner])
        fed.claims.append((winner, cumulative[winner]))


def build_federation(
    accounts: Any, workdir: Path, *, after_round: Callable[[Federation, int], None] | None = None
) -> Federation:
    """Two finalized rounds and an open third one; ``after_round(fed, n)`` runs after round n."""
    base = shared.build_federation(workdir, accounts, n_clients=3, steps=STEPS, strategy=STRATEGY)
    fed = Federation(
        base.record, base.coordinator, base.store, base.clients, latecomer=accounts[5], outsider=accounts[8]
    )
    sdk = fed.coordinator
    for number in (1, 2):
        if number == 2:
            sdk.register(fed.latecomer, b"\x09" * 32)
        for i in range(len(fed.clients)):
            base.submit(i, base.train(i, STEPS))
        if number == 2:  # the fourth active client's commit closes the commit phase: all reveal
            base.commit_as(fed.latecomer, fed.store.put_bytes(b"not an adapter"), 5)
        [processed] = base.oracle().run_once()
        assert processed.round == number and processed.outcome is not None
        fed.outcomes[number] = processed.outcome
        _claim_best(fed, processed.outcome)
        if after_round is not None:
            after_round(fed, number)
    sdk.set_client_banned(base.operator, fed.latecomer.address, True)
    fed.pending_cid = fed.store.put_bytes(b"round 3, work in progress")
    base.commit_cid(0, fed.pending_cid, 42)
    base.reveal_all()  # moves the chain past round 3's commit deadline, then reveals
    return fed
