"""What a round depends on, all of it readable from the chain and the store, and its JSON form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flb_dapp.report import RoundReport
from flb_dapp.rounds.noise import NoiseBinding


@dataclass(frozen=True)
class UpdateRef:
    """One revealed submission: who submitted what."""

    client: str
    cid: str
    num_samples: int


@dataclass(frozen=True)
class RoundCohort:
    """The round's cohort: only ``members`` (``size`` drawn by ``seed`` from the first
    ``population`` registered clients) may submit. Rounds without one have no ``RoundCohort``."""

    seed: str  # 0x-hex, 32 bytes
    size: int
    population: int
    members: tuple[str, ...]  # checksum addresses, in registration order

    def includes(self, client: str) -> bool:
        lowered = client.lower()
        return any(m.lower() == lowered for m in self.members)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "size": self.size,
            "population": self.population,
            "members": list(self.members),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoundCohort:
        return cls(
            seed=str(data["seed"]),
            size=int(data["size"]),
            population=int(data["population"]),
            members=tuple(str(m) for m in data["members"]),
        )


@dataclass(frozen=True)
class RoundInputs:
    """Everything a round depends on."""

    contract: str
    chain_id: int
    round: int
    previous_global_cid: str
    updates: Sequence[UpdateRef]
    budget: int
    previous_cumulative: Mapping[str, int] = field(default_factory=dict)
    strategy_state: Mapping[str, Any] | None = None
    privacy_state: Mapping[str, Any] | None = None
    task: Mapping[str, Any] = field(default_factory=dict)
    block: int = 0  # the chain was read up to this block: a verifier reads exactly as far
    banned: Sequence[str] = ()  # clients banned at ``block``: their updates are rejected
    cohort: RoundCohort | None = None  # None: every registered client could submit
    noise: NoiseBinding | None = None  # the DP noise commitment, on a settled deployment

    def to_json(self) -> dict[str, Any]:
        """The JSON the oracle journals (amounts as decimal strings, exact in any JSON reader)."""
        document: dict[str, Any] = {
            "contract": self.contract,
            "chain_id": self.chain_id,
            "round": self.round,
            "previous_global_cid": self.previous_global_cid,
            "updates": [[u.client, u.cid, u.num_samples] for u in self.updates],
            "budget": str(self.budget),
            "previous_cumulative": {c: str(a) for c, a in self.previous_cumulative.items()},
            "strategy_state": self.strategy_state,
            "privacy_state": self.privacy_state,
            "task": dict(self.task),
            "block": self.block,
            "banned": list(self.banned),
        }
        if self.cohort is not None:  # NOTE: inputs without a cohort keep the JSON they always had
            document["cohort"] = self.cohort.to_json()
        if self.noise is not None:
            document["noise"] = self.noise.to_json()
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoundInputs:
        return cls(
            contract=data["contract"],
            chain_id=int(data["chain_id"]),
            round=int(data["round"]),
            previous_global_cid=data["previous_global_cid"],
            updates=[UpdateRef(c, cid, int(n)) for c, cid, n in data["updates"]],
            budget=int(data["budget"]),
            previous_cumulative={c: int(a) for c, a in data["previous_cumulative"].items()},
            strategy_state=data["strategy_state"],
            privacy_state=data["privacy_state"],
            task=data["task"],
            block=int(data.get("block", 0)),
            banned=tuple(data.get("banned", ())),
            cohort=RoundCohort.from_json(data["cohort"]) if data.get("cohort") else None,
            noise=NoiseBinding.from_json(data["noise"]) if data.get("noise") else None,
        )


def inputs_after(report: RoundReport) -> dict[str, Any]:
    """What the next round inherits from this round's report: cumulative rewards and DP state."""
    return {
        "previous_cumulative": dict(report.rewards.cumulative),
        "strategy_state": report.strategy_state,
        "privacy_state": report.privacy.state,
    }
