"""The SQLite cache the indexer writes and the endpoints read.

One writer (the indexer, in transactions) and many readers (request threads, one connection each);
WAL mode lets readers see the last committed sync while the next one is written. Token amounts are
uint256: they are stored as decimal text, never as SQLite integers (at most 2^63 - 1).

The cache can always be rebuilt from the chain and the store, so a schema change simply drops it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = "2"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contract_state (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    deadline INTEGER NOT NULL,
    finalized_at INTEGER,
    submissions INTEGER NOT NULL,
    metric REAL,
    epsilon REAL,
    global_model_cid TEXT,
    report_cid TEXT,
    rewards_root TEXT,
    round_rewards TEXT,
    block_number INTEGER,
    transaction_hash TEXT
);
CREATE TABLE IF NOT EXISTS updates (
    round INTEGER NOT NULL,
    client TEXT NOT NULL,
    cid TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    block_number INTEGER,
    transaction_hash TEXT,
    log_index INTEGER,
    accepted INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    norm REAL,
    weight REAL,
    excluded TEXT NOT NULL DEFAULT '',
    contribution REAL,
    reward TEXT,
    PRIMARY KEY (round, client)
);
CREATE INDEX IF NOT EXISTS updates_by_client ON updates (client, round);
CREATE INDEX IF NOT EXISTS updates_by_cid ON updates (cid);
CREATE TABLE IF NOT EXISTS clients (
    address TEXT PRIMARY KEY,
    dataset_commitment TEXT NOT NULL,
    registered_round INTEGER NOT NULL,
    registered_block INTEGER NOT NULL,
    banned INTEGER NOT NULL DEFAULT 0,
    claimed TEXT NOT NULL DEFAULT '0',
    exited INTEGER NOT NULL DEFAULT 0,
    bond TEXT NOT NULL DEFAULT '0',
    bond_released_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS clients_by_registration ON clients (registered_block, address);
CREATE TABLE IF NOT EXISTS claims (
    id INTEGER PRIMARY KEY,
    block_number INTEGER NOT NULL,
    client TEXT NOT NULL,
    amount TEXT NOT NULL,
    cumulative_amount TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_by_client ON claims (client, block_number);
CREATE TABLE IF NOT EXISTS reports (
    round INTEGER PRIMARY KEY,
    cid TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    raw BLOB,
    previous_global_model_cid TEXT,
    strategy TEXT,
    metrics TEXT,
    privacy TEXT,
    accepted INTEGER,
    rejected INTEGER
);
CREATE TABLE IF NOT EXISTS rewards (
    round INTEGER NOT NULL,
    client TEXT NOT NULL,
    round_reward TEXT NOT NULL,
    cumulative TEXT NOT NULL,
    proof TEXT NOT NULL,
    rank INTEGER NOT NULL,
    PRIMARY KEY (round, client)
);
CREATE INDEX IF NOT EXISTS rewards_by_rank ON rewards (round, rank);
CREATE TABLE IF NOT EXISTS models (
    cid TEXT PRIMARY KEY,
    round INTEGER NOT NULL,
    kind TEXT NOT NULL
);
"""

DATA_TABLES = ("contract_state", "rounds", "updates", "clients", "claims", "reports", "rewards", "models")


class Database:
    """The cache file at ``path`` (created with its folder if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.generation = 0  # bumped by every commit: what the response cache checks
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self.connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        if self.get_meta("schema_version") not in (None, SCHEMA_VERSION):
            # NOTE: a cache of an older layout is rebuilt from the chain rather than migrated.
            self._writer.executescript(";".join(f"DROP TABLE IF EXISTS {t}" for t in (*DATA_TABLES, "meta")))
        self._writer.executescript(SCHEMA)
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one transaction: all of it commits, or none."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self.generation += 1

    def get_meta(self, key: str) -> str | None:
        try:
            row = self._writer.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no meta table yet
            return None
        return None if row is None else str(row[0])

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: object) -> None:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def clear(self, conn: sqlite3.Connection) -> None:
        """Forget everything indexed (inside the caller's transaction)."""
        for table in DATA_TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM meta WHERE key != 'schema_version'")

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()
