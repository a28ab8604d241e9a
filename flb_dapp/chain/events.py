"""Readers of the coordinator's events: each returns domain objects, in chain order.

A mixin of :class:`~flb_dapp.chain.coordinator.Coordinator`, which provides ``contract`` and
``start_block``.

Logs are fetched once: an :class:`EventIndex` holds every event of the contract up to a block (and
that block's hash), and a later read asks the node for the new blocks only, in one query. A round
reads registrations, bans, commits and reveals: without the index each read rescans the whole
history, which grows with every client and round (and costs time quadratic in the range on the
embedded chain, whose log filter looks each receipt up from the head). If the block the index
ends at is no longer on the chain (a reorganisation, or a test's snapshot revert), the index is
dropped and rebuilt from ``start_block``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from eth_utils import to_checksum_address

from flb_dapp.chain.embedded_logs import embedded_logs
from flb_dapp.chain.types import (
    PPM,
    BanRecord,
    ClaimRecord,
    CohortRecord,
    CommitRecord,
    FinalizedRecord,
    RegistrationRecord,
    UpdateRecord,
    cid_text,
    hex_text,
)


def compact(log: Any) -> SimpleNamespace:
    """What the readers use of an Ape ``ContractLog``: its arguments, its event's name and where it
    is. A tenth of the pydantic model's memory, which matters as the index holds every log."""
    return SimpleNamespace(
        **dict(log.event_arguments),
        event_name=str(log.event_name),
        block_number=int(log.block_number),
        transaction_hash=str(log.transaction_hash),
        log_index=int(log.log_index),
    )


@dataclass
class EventIndex:
    """A contract's logs (every event of its ABI) from ``first_block`` through ``scanned_to``,
    whose hash is ``scanned_hash``: one log query a read, whatever the event."""

    address: str
    events: list[Any]
    first_block: int
    scanned_to: int = -1
    scanned_hash: str = ""
    logs: list[Any] = field(default_factory=list)

    def still_on_chain(self, chain: Any, head: int) -> bool:
        if self.scanned_to < self.first_block:
            return True
        return self.scanned_to <= head and str(chain.blocks[self.scanned_to].hash) == self.scanned_hash

    def extend(self, chain: Any, stop: int) -> None:
        """Fetch the logs of the blocks after ``scanned_to`` through ``stop``."""
        from ape.types.events import LogFilter

        start = max(self.first_block, self.scanned_to + 1)
        if stop < start:
            return
        query = LogFilter(
            addresses=[to_checksum_address(self.address)],
            events=self.events,
            start_block=start,
            stop_block=stop,
        )
        logs = embedded_logs(chain.provider, self.address, self.events, start, stop)
        if logs is None:
            logs = list(chain.provider.get_contract_logs(query))
        self.logs.extend(compact(log) for log in logs)
        self.scanned_to, self.scanned_hash = stop, str(chain.blocks[stop].hash)


class ContractEvents:
    """The indexed log reader over ``contract`` (an Ape contract instance) from ``start_block`` on."""

    contract: Any
    start_block: int

    def _logs(self, event: str, start_block: int, stop_block: int | None, **topics: Any) -> list[Any]:
        """``event``'s logs in blocks ``[start_block, stop_block]`` whose indexed ``topics`` match."""
        from ape import chain

        # NOTE: blocks.height reads 0 when the node is down; head.number raises instead.
        head = chain.blocks.head.number
        start_block = max(start_block, self.start_block)
        stop = head if stop_block is None else min(stop_block, head)
        if stop < start_block:
            return []
        index: EventIndex | None = self.__dict__.get("_event_index")
        if index is None or index.first_block != self.start_block or not index.still_on_chain(chain, head):
            events = list(self.contract.contract_type.events)
            index = EventIndex(self.contract.address, events, self.start_block)
            self.__dict__["_event_index"] = index
        index.extend(chain, stop)
        search = {k: v for k, v in topics.items() if v is not None}
        return [
            log
            for log in index.logs
            if log.event_name == event
            and start_block <= log.block_number <= stop
            and all(getattr(log, k) == v for k, v in search.items())
        ]


class CoordinatorEvents(ContractEvents):
    """The coordinator's event readers."""

    def updates(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[UpdateRecord]:
        """``UpdateSubmitted`` events, in chain order."""
        return [
            UpdateRecord(
                round=int(log.round),
                client=to_checksum_address(log.client),
                cid=cid_text(log.cid),
                num_samples=int(log.numSamples),
                block_number=int(log.block_number),
                transaction_hash=str(log.transaction_hash),
                log_index=int(log.log_index),
            )
            for log in self._logs("UpdateSubmitted", start_block, stop_block, round=round_number)
        ]

    def commits(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[CommitRecord]:
        """``UpdateCommitted`` events, in chain order."""
        return [
            CommitRecord(
                round=int(log.round),
                client=to_checksum_address(log.client),
                commitment=hex_text(log.commitment),
                block_number=int(log.block_number),
                log_index=int(log.log_index),
            )
            for log in self._logs("UpdateCommitted", start_block, stop_block, round=round_number)
        ]

    def registrations(self, start_block: int = 0, stop_block: int | None = None) -> list[RegistrationRecord]:
        """``ClientRegistered`` events, in chain order."""
        return [
            RegistrationRecord(
                client=to_checksum_address(log.client),
                dataset_commitment=hex_text(log.datasetCommitment),
                round=int(log.round),
                block_number=int(log.block_number),
            )
            for log in self._logs("ClientRegistered", start_block, stop_block)
        ]

    def finalizations(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[FinalizedRecord]:
        """``RoundFinalized`` events, in chain order."""
        return [
            FinalizedRecord(
                round=int(log.round),
                global_model_cid=cid_text(log.globalModelCid),
                report_cid=cid_text(log.reportCid),
                rewards_root=hex_text(log.rewardsRoot),
                round_rewards=int(log.roundRewards),
                metric=int(log.metricPpm) / PPM,
                epsilon=int(log.epsilonMicros) / PPM,
                block_number=int(log.block_number),
                transaction_hash=str(log.transaction_hash),
            )
            for log in self._logs("RoundFinalized", start_block, stop_block, round=round_number)
        ]

    def cohort_draws(
        self, round_number: int | None = None, start_block: int = 0, stop_block: int | None = None
    ) -> list[CohortRecord]:
        """``CohortDrawn`` events, in chain order (rounds without a cohort have none)."""
        return [
            CohortRecord(
                round=int(log.round),
                seed=hex_text(log.seed),
                size=int(log.size),
                population=int(log.population),
                block_number=int(log.block_number),
            )
            for log in self._logs("CohortDrawn", start_block, stop_block, round=round_number)
        ]

    def ban_changes(self, start_block: int = 0, stop_block: int | None = None) -> list[BanRecord]:
        """``ClientBanStatusChanged`` events, in chain order."""
        return [
            BanRecord(
                client=to_checksum_address(log.client),
                banned=bool(log.banned),
                block_number=int(log.block_number),
            )
            for log in self._logs("ClientBanStatusChanged", start_block, stop_block)
        ]

    def claims(self, start_block: int = 0, stop_block: int | None = None) -> list[ClaimRecord]:
        """``RewardClaimed`` events, in chain order."""
        return [
            ClaimRecord(
                client=to_checksum_address(log.client),
                amount=int(log.amount),
                cumulative_amount=int(log.cumulativeAmount),
                block_number=int(log.block_number),
            )
            for log in self._logs("RewardClaimed", start_block, stop_block)
        ]

    def admission_changes(self, start_block: int = 0, stop_block: int | None = None) -> list[str]:
        """Clients whose bond or exit changed (``BondLocked``, ``ExitRequested``, ``BondReturned``,
        ``BondForfeited``) in the blocks, each once, in order of first change."""
        changed: dict[str, None] = {}
        logs = [
            log
            for name in ("BondLocked", "ExitRequested", "BondReturned", "BondForfeited")
            for log in self._logs(name, start_block, stop_block)
        ]
        for log in sorted(logs, key=lambda log: (int(log.block_number), int(log.log_index))):
            changed.setdefault(to_checksum_address(log.client), None)
        return list(changed)
