"""The oracle's crash-safe journal (SQLite).

Each pipeline step's result is committed before the next step starts, keyed by (contract, round),
so a restarted oracle resumes from the last completed step and computes exactly the same round.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    contract TEXT NOT NULL,
    round INTEGER NOT NULL,
    step TEXT NOT NULL,
    result TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (contract, round, step)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    contract TEXT PRIMARY KEY,
    last_block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    contract TEXT PRIMARY KEY,
    round INTEGER NOT NULL,
    step TEXT NOT NULL,
    error TEXT NOT NULL,
    count INTEGER NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pauses (
    contract TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
"""

# NOTE: the fault-injection hook the crash tests use: SIGKILL this process right after the named
# step is committed. Unset in production.
CRASH_AFTER_ENV = "FLB_ORACLE_CRASH_AFTER"


class Journal:
    """Step results and event-sync checkpoints, one SQLite file per oracle."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def load(self, contract: str, round_number: int, step: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT result FROM steps WHERE contract=? AND round=? AND step=?",
                (contract, round_number, step),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, contract: str, round_number: int, step: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?)",
                (contract, round_number, step, json.dumps(result, sort_keys=True), time.time()),
            )
        if os.environ.get(CRASH_AFTER_ENV) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def discard(self, contract: str, round_number: int) -> None:
        """Forget every step of a round (its inputs changed on chain: it is computed again)."""
        with self._lock:
            self._db.execute("DELETE FROM steps WHERE contract=? AND round=?", (contract, round_number))

    def steps(self, contract: str, round_number: int) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT step FROM steps WHERE contract=? AND round=? ORDER BY recorded_at",
                (contract, round_number),
            ).fetchall()
        return [r[0] for r in rows]

    def checkpoint(self, contract: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT last_block FROM checkpoints WHERE contract=?", (contract,)
            ).fetchone()
        return int(row[0]) if row else None

    def set_checkpoint(self, contract: str, block: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (contract, block))

    # --- failures and pauses: what stops a step that fails the same way from looping ----------
    def record_failure(self, contract: str, round_number: int, step: str, error: str) -> int:
        """Record that ``step`` failed with ``error``; returns how many times in a row it did."""
        with self._lock:
            row = self._db.execute(
                "SELECT round, step, error, count FROM failures WHERE contract=?", (contract,)
            ).fetchone()
            count = row[3] + 1 if row and tuple(row[:3]) == (round_number, step, error) else 1
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                (contract, round_number, step, error, count, time.time()),
            )
        return count

    def clear_failures(self, contract: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM failures WHERE contract=?", (contract,))

    def pause_reason(self, contract: str) -> str | None:
        """Why processing was paused (kept across restarts), or None when it is not."""
        with self._lock:
            row = self._db.execute("SELECT reason FROM pauses WHERE contract=?", (contract,)).fetchone()
        return str(row[0]) if row else None

    def set_paused(self, contract: str, reason: str | None) -> None:
        with self._lock:
            if reason is None:
                self._db.execute("DELETE FROM pauses WHERE contract=?", (contract,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO pauses VALUES (?, ?, ?)", (contract, reason, time.time())
                )


def journal_key(chain_id: int, contract: str, deployment_block: int) -> str:
    """What journal rows are keyed by: one deployment, on one chain (an address alone repeats
    across chains, and across redeployments on a devnet that restarted)."""
    return f"{chain_id}:{contract}:{deployment_block}"


class RoundJournal:
    """The ``StepJournal`` the round computation sees: one (contract, round) of a ``Journal``."""

    def __init__(self, journal: Journal, contract: str, round_number: int) -> None:
        self.journal, self.contract, self.round = journal, contract, round_number

    def load(self, step: str) -> dict[str, Any] | None:
        return self.journal.load(self.contract, self.round, step)

    def save(self, step: str, result: dict[str, Any]) -> None:
        self.journal.save(self.contract, self.round, step, result)
