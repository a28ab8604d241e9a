"""Follows the coordinator's events into the SQLite cache, so no request ever scans the chain.

``sync()`` indexes from the last checkpoint to the chain head in block ranges, one transaction per
range (events + checkpoint), so an interrupted catch-up resumes where it stopped. Then it refreshes
the contract-wide state (one set of view calls per new head) and reads each finalized round's report
from the store, once. A node outage or restart is an exception in one sync: the background loop logs
it and retries with back-off; the read endpoints keep serving the last committed state. A checkpoint
whose block hash changed (a reorg, or a dev node restarted from scratch) makes the index start over.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flb_api import reports
from flb_api.core.db import Database
from flb_api.trust import SettlementReader, admission_state, client_bonds
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.types import ClaimRecord, FinalizedRecord, RegistrationRecord, RoundInfo, UpdateRecord
from flb_dapp.exceptions import ChainError, StorageError
from flb_dapp.report import MAX_REPORT_BYTES, ReportError
from flb_dapp.storage.base import ContentStore

log = logging.getLogger("flb.api.indexer")


class ChainHead:
    """The chain reads that are not about the coordinator (head, block hashes, time)."""

    def height(self) -> int:
        from ape import chain

        # NOTE: not chain.blocks.height: Ape answers 0 there when the node is unreachable, which
        # would look like a chain restarted from scratch; reading the head block raises instead.
        return int(chain.blocks.head.number or 0)

    def block(self, number: int) -> tuple[str, int]:
        """(hash, timestamp) of block ``number``."""
        from ape import chain

        block = chain.blocks[number]
        return "0x" + bytes(block.hash or b"").hex(), int(block.timestamp)

    def chain_id(self) -> int:
        from ape import chain

        return int(chain.chain_id)

    def has_code(self, address: str) -> bool:
        from ape import chain

        return bool(chain.provider.get_code(address))


@dataclass
class SyncResult:
    """What one ``sync()`` did."""

    from_block: int
    to_block: int
    head: int
    ranges: int = 0
    events: int = 0
    reports: int = 0
    rebuilt: bool = False


@dataclass
class IndexerStatus:
    """For /health and /metrics."""

    head: int | None = None
    last_sync: float | None = None
    last_error: str | None = None
    failures: int = 0
    syncs: int = 0
    errors: int = 0
    events: int = 0
    reports: int = 0


@dataclass
class _Batch:
    """Everything read from the chain for one block range, written in one transaction."""

    registrations: list[RegistrationRecord] = field(default_factory=list)
    bans: list[tuple[str, bool]] = field(default_factory=list)
    updates: list[UpdateRecord] = field(default_factory=list)
    finalized: list[tuple[FinalizedRecord, RoundInfo]] = field(default_factory=list)
    claims: list[ClaimRecord] = field(default_factory=list)
    # Clients whose bond or exit changed: (address, exited, bond, bond released at), read from views.
    admission: list[tuple[str, bool, int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        parts: tuple[list[Any], ...] = (
            self.registrations,
            self.bans,
            self.updates,
            self.finalized,
            self.claims,
            self.admission,
        )
        return sum(len(part) for part in parts)


class Indexer:
    """Indexes one coordinator (given, or built on first use so the API starts while the node is down)."""

    def __init__(
        self,
        db: Database,
        coordinator: Coordinator | Callable[[], Coordinator],
        store: ContentStore,
        *,
        address: str | None = None,
        start_block: int = 0,
        deployment_block: int | None = None,
        network: str = "",
        batch_blocks: int = 2_000,
        confirmations: int = 0,
        head: ChainHead | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.start_block = start_block
        self.deployment_block = start_block if deployment_block is None else deployment_block
        self.network = network
        self.batch_blocks = max(1, batch_blocks)
        self.confirmations = max(0, confirmations)
        self.chain = head or ChainHead()
        self.status = IndexerStatus()
        self._coordinator = coordinator if isinstance(coordinator, Coordinator) else None
        self._factory = None if isinstance(coordinator, Coordinator) else coordinator
        self.address = address or (self._coordinator.address if self._coordinator else "")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._settlement = SettlementReader()
        if self.address and db.get_meta("coordinator") not in (None, self.address):
            log.warning("the cache at %s indexes another coordinator; starting over", db.path)
            with db.transaction() as conn:
                db.clear(conn)

    @property
    def coordinator(self) -> Coordinator:
        if self._coordinator is None:
            assert self._factory is not None
            self._coordinator = self._factory()
            self.address = self._coordinator.address
        return self._coordinator

    @property
    def indexed_block(self) -> int | None:
        value = self.db.get_meta("last_block")
        return None if value is None else int(value)

    # --- one pass ---------------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        """Index up to the chain head now. Raises on chain or database failures (nothing half-written)."""
        with self._lock:
            try:
                result = self._sync()
            except Exception as exc:
                self.status.errors += 1
                self.status.failures += 1
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                raise
            self.status.syncs += 1
            self.status.failures = 0
            self.status.last_error = None
            self.status.last_sync = time.time()
            self.status.events += result.events
            self.status.reports += result.reports
            return result

    def _sync(self) -> SyncResult:
        coordinator = self.coordinator
        head = self.chain.height()
        self.status.head = head
        rebuilt = self._check_continuity(head)
        last = self.indexed_block
        if last is None and not self.chain.has_code(coordinator.address):
            raise ChainError(
                f"no contract at {coordinator.address} on this chain (yet); is the deployment record current?"
            )
        start = self.start_block if last is None else last + 1
        target = head - self.confirmations
        result = SyncResult(from_block=start, to_block=max(start - 1, target), head=head, rebuilt=rebuilt)
        while start <= target:
            stop = min(start + self.batch_blocks - 1, target)
            batch = self._read_range(coordinator, start, stop)
            block_hash, _ = self.chain.block(stop)
            self._write_range(batch, stop, block_hash)
            result.ranges += 1
            result.events += len(batch)
            start = stop + 1
        if result.ranges or self.db.get_meta("state_block") != str(head):
            self._refresh_state(coordinator, head)
        result.reports = self._index_reports()
        return result

    def _check_continuity(self, head: int) -> bool:
        """Start over when the checkpoint's block is gone or different (reorg, restarted dev node)."""
        last, known = self.indexed_block, self.db.get_meta("last_block_hash")
        if last is None or known is None:
            return False
        if head >= last and self.chain.block(last)[0] == known:
            return False
        log.warning("block %d changed under the index (reorg or a restarted node); re-indexing", last)
        with self.db.transaction() as conn:
            self.db.clear(conn)
        return True

    def _read_range(self, coordinator: Coordinator, start: int, stop: int) -> _Batch:
        batch = _Batch(
            registrations=coordinator.registrations(start_block=start, stop_block=stop),
            bans=[(c.client, c.banned) for c in coordinator.ban_changes(start_block=start, stop_block=stop)],
            updates=coordinator.updates(start_block=start, stop_block=stop),
            claims=coordinator.claims(start_block=start, stop_block=stop),
        )
        for event in coordinator.finalizations(start_block=start, stop_block=stop):
            batch.finalized.append((event, coordinator.round(event.round)))
        batch.admission = client_bonds(coordinator, start, stop)
        return batch

    def _write_range(self, batch: _Batch, stop: int, block_hash: str) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO clients"
                " (address, dataset_commitment, registered_round, registered_block) VALUES (?, ?, ?, ?)",
                [(r.client, r.dataset_commitment, r.round, r.block_number) for r in batch.registrations],
            )
            conn.executemany(
                "UPDATE clients SET banned = ? WHERE address = ?", [(int(b), c) for c, b in batch.bans]
            )
            conn.executemany(
                "INSERT OR IGNORE INTO updates"
                " (round, client, cid, num_samples, block_number, transaction_hash, log_index)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (u.round, u.client, u.cid, u.num_samples, u.block_number, u.transaction_hash, u.log_index)
                    for u in batch.updates
                ],
            )
            for event, info in batch.finalized:
                conn.execute(
                    "INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.round,
                        info.deadline,
                        info.finalized_at,
                        info.submissions,
                        event.metric,
                        event.epsilon,
                        event.global_model_cid,
                        event.report_cid,
                        event.rewards_root,
                        str(event.round_rewards),
                        event.block_number,
                        event.transaction_hash,
                    ),
                )
                conn.execute(
                    "INSERT OR IGNORE INTO models VALUES (?, ?, 'global')",
                    (event.global_model_cid, event.round),
                )
                conn.execute(
                    "INSERT OR IGNORE INTO reports (round, cid, status) VALUES (?, ?, 'pending')",
                    (event.round, event.report_cid),
                )
            for claim in batch.claims:
                conn.execute(
                    "INSERT INTO claims (block_number, client, amount, cumulative_amount)"
                    " VALUES (?, ?, ?, ?)",
                    (claim.block_number, claim.client, str(claim.amount), str(claim.cumulative_amount)),
                )
                conn.execute(
                    "UPDATE clients SET claimed = ? WHERE address = ?",
                    (str(claim.cumulative_amount), claim.client),
                )
            conn.executemany(
                "UPDATE clients SET exited = ?, bond = ?, bond_released_at = ? WHERE address = ?",
                [(int(exited), str(bond), released, c) for c, exited, bond, released in batch.admission],
            )
            Database.set_meta(conn, "coordinator", self.address)
            Database.set_meta(conn, "last_block", stop)
            Database.set_meta(conn, "last_block_hash", block_hash)

    def _refresh_state(self, coordinator: Coordinator, head: int) -> None:
        """Contract-wide values and the open round, read from views once per new head."""
        current = coordinator.current_round
        open_round = coordinator.round(current)
        funded, allocated, claimed = coordinator.reward_totals
        known = self.db.get_meta("token")
        token = json.loads(known) if known else self._token_facts(coordinator)
        initial = self.db.get_meta("initial_model_cid") or coordinator.round(0).global_model_cid
        _, chain_time = self.chain.block(head)
        state = {
            "address": coordinator.address,
            "chain_id": self.chain.chain_id(),
            "network": self.network,
            "deployment_block": self.deployment_block,
            **token,
            "round_duration": coordinator.round_duration,
            "reward_per_round": str(coordinator.reward_per_round),
            "current_round": current,
            "current_round_deadline": open_round.deadline,
            "active_clients": coordinator.active_clients,
            "paused": coordinator.paused,
            "rewards": {"funded": str(funded), "allocated": str(allocated), "claimed": str(claimed)},
            "admission": admission_state(coordinator),
            "settlement": self._settlement.state(coordinator, current),
            "initial_model_cid": initial,
            "latest_global_model_cid": coordinator.latest_global_model_cid,
            "chain_time": chain_time,
        }
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO contract_state VALUES (1, ?)", (json.dumps(state),))
            conn.execute("DELETE FROM rounds WHERE finalized_at IS NULL")
            if not open_round.finalized:
                conn.execute(
                    "INSERT OR IGNORE INTO rounds (round, deadline, submissions) VALUES (?, ?, ?)",
                    (current, open_round.deadline, open_round.submissions),
                )
            conn.execute("INSERT OR IGNORE INTO models VALUES (?, 0, 'initial')", (initial,))
            Database.set_meta(conn, "token", json.dumps(token))
            Database.set_meta(conn, "initial_model_cid", initial)
            Database.set_meta(conn, "state_block", head)

    @staticmethod
    def _token_facts(coordinator: Coordinator) -> dict[str, Any]:
        token = coordinator.token
        return {
            "token": str(token.address),
            "token_symbol": str(token.symbol()),
            "token_decimals": int(token.decimals()),
        }

    def _index_reports(self) -> int:
        """Read every finalized round's report not indexed yet; a store failure is retried next sync."""
        pending = self.db.reader().execute(
            "SELECT r.round, r.global_model_cid, r.rewards_root, p.cid, p.attempts FROM reports p"
            " JOIN rounds r ON r.round = p.round WHERE p.status = 'pending' ORDER BY p.round"
        )
        done = 0
        for number, global_cid, root, cid, attempts in pending.fetchall():
            try:
                raw = self.store.get_bytes(cid, max_size=MAX_REPORT_BYTES)
            except (StorageError, OSError) as exc:
                report = log.warning if attempts == 0 else log.debug
                report("report of round %d (%s) not readable: %s", number, cid, exc)
                with self.db.transaction() as conn:
                    reports.mark_unreadable(conn, number, str(exc))
                continue
            try:
                indexed = reports.index_report(raw, number, global_cid, root)
            except ReportError as exc:
                log.error("report of round %d (%s) is invalid: %s", number, cid, exc)
                with self.db.transaction() as conn:
                    reports.mark_invalid(conn, number, str(exc), raw)
                continue
            with self.db.transaction() as conn:
                indexed.save(conn, number, raw)
            done += 1
        return done

    # --- the background loop ------------------------------------------------------------------------
    def run(self, interval: float, stop: threading.Event | None = None) -> None:
        """Sync every ``interval`` seconds until ``stop`` is set; errors are logged, never raised."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                self.sync()
                wait = interval
            except Exception as exc:  # an outage must never end the loop
                wait = min(interval * 2 ** min(self.status.failures, 5), 30.0)
                log.warning("index sync failed (%s); retrying in %.1f s", exc, wait)
            stop.wait(wait)

    def start(self, interval: float) -> threading.Thread:
        """Run the loop in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(interval,), name="flb-api-indexer", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
