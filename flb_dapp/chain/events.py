"""Readers of the coordinator's events: each returns domain objects, in chain order.

A mixin of :class:`~flb_dapp.chain.coordinator.Coordinator`, which provides ``contract`` and
``start_block``.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

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


class CoordinatorEvents:
    """Event readers over ``contract`` (an Ape contract instance) from ``start_block`` on."""

    contract: Any
    start_block: int

    def _logs(self, event: str, start_block: int, stop_block: int | None, **topics: Any) -> list[Any]:
        from ape import chain

        # NOTE: blocks.height reads 0 when the node is down; head.number raises instead.
        start_block = max(start_block, self.start_block)
        stop = chain.blocks.head.number if stop_block is None else stop_block
        if stop < start_block:
            return []
        handler = getattr(self.contract, event)
        search = {k: v for k, v in topics.items() if v is not None}
        return list(handler.range(start_block, stop + 1, search_topics=search or None))

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
