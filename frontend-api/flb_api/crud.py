"""Read queries over the cache, returning plain dicts shaped like the response schemas."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

ROUND_COLUMNS = (
    "SELECT r.*, p.status AS report_status, p.error AS report_error, p.previous_global_model_cid,"
    " p.strategy, p.metrics, p.privacy, p.accepted, p.rejected FROM rounds r"
    " LEFT JOIN reports p ON p.round = r.round"
)
CLIENT_TOTALS = (
    "(SELECT COUNT(*) FROM updates u WHERE u.client = {c}) AS submissions,"
    " (SELECT COUNT(*) FROM updates u WHERE u.client = {c} AND u.accepted = 1) AS n_accepted,"
    " (SELECT COUNT(*) FROM updates u WHERE u.client = {c} AND u.accepted = 0) AS n_rejected,"
    " (SELECT COALESCE(SUM(u.contribution), 0.0) FROM updates u WHERE u.client = {c}) AS contribution_total"
)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def model_filename(cid: str, round_number: int, client: str | None = None) -> str:
    if client:
        return f"flb-update-round-{round_number}-{client}-{cid}.safetensors"
    return f"flb-global-round-{round_number}-{cid}.safetensors"


def _status(accepted: int | None) -> str:
    return "pending" if accepted is None else ("accepted" if accepted else "rejected")


def latest_report_round(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MAX(round) FROM reports WHERE status = 'indexed'").fetchone()
    return None if row[0] is None else int(row[0])


def latest_finalized_round(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MAX(round) FROM rounds WHERE finalized_at IS NOT NULL").fetchone()
    return None if row[0] is None else int(row[0])


# --- contract -----------------------------------------------------------------------------------------
def contract(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT data FROM contract_state WHERE id = 1").fetchone()
    if row is None:
        return None
    state = json.loads(row[0])
    latest = conn.execute(
        "SELECT r.epsilon FROM rounds r WHERE r.finalized_at IS NOT NULL ORDER BY r.round DESC LIMIT 1"
    ).fetchone()
    last_block = conn.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
    return {
        **state,
        "registered_clients": conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0],
        "finalized_rounds": conn.execute(
            "SELECT COUNT(*) FROM rounds WHERE finalized_at IS NOT NULL"
        ).fetchone()[0],
        "epsilon": None if latest is None else latest[0],
        "indexed_block": int(last_block[0]) if last_block else 0,
    }


# --- rounds ---------------------------------------------------------------------------------------------
def _settlement(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT data FROM contract_state WHERE id = 1").fetchone()
    return None if row is None else json.loads(row[0]).get("settlement")


def _round_settlement(number: int, settlement: dict[str, Any] | None) -> dict[str, Any] | None:
    """A finalized round's settlement state: "final" up to the settlement's final round, else what
    the indexer read at its last sync."""
    if settlement is None or number == 0:
        return None
    if number <= settlement["final_round"]:
        empty = dict.fromkeys(
            ("attestations", "window_end", "proposer", "result_hash", "challenger", "challenge_votes")
        )
        return {**empty, "state": "final", "quorum": settlement["quorum"]}
    for entry in settlement["rounds"]:
        if entry["round"] == number:
            return entry
    return None


def _round(row: sqlite3.Row, settlement: dict[str, Any] | None = None) -> dict[str, Any]:
    finalized = row["finalized_at"] is not None
    number = row["round"]
    return {
        "round": number,
        "status": "finalized" if finalized else "open",
        "deadline": row["deadline"],
        "finalized_at": row["finalized_at"],
        "submissions": row["submissions"],
        "accepted": row["accepted"],
        "rejected": row["rejected"],
        "metric": row["metric"],
        "epsilon": row["epsilon"],
        "global_model_cid": row["global_model_cid"],
        "previous_global_model_cid": row["previous_global_model_cid"],
        "report_cid": row["report_cid"],
        "report_status": row["report_status"],
        "report_error": row["report_error"] or None,
        "rewards_root": row["rewards_root"],
        "round_rewards": row["round_rewards"],
        "metrics": _json(row["metrics"]),
        "privacy": _json(row["privacy"]),
        "strategy": _json(row["strategy"]),
        "block_number": row["block_number"],
        "transaction_hash": row["transaction_hash"],
        "settlement": _round_settlement(number, settlement) if finalized else None,
        "links": {
            "report": f"/rounds/{number}/report" if finalized else None,
            "model": f"/models/{row['global_model_cid']}" if finalized else None,
        },
    }


def list_rounds(
    conn: sqlite3.Connection, limit: int, offset: int, newest_first: bool
) -> tuple[list[dict[str, Any]], int]:
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        f"{ROUND_COLUMNS} ORDER BY r.round {order} LIMIT ? OFFSET ?", (limit, offset)
    ).fetchall()
    count = conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
    settlement = _settlement(conn)
    return [_round(r, settlement) for r in rows], count


def get_round(conn: sqlite3.Connection, number: int) -> dict[str, Any] | None:
    row = conn.execute(f"{ROUND_COLUMNS} WHERE r.round = ?", (number,)).fetchone()
    return None if row is None else _round(row, _settlement(conn))


def report_bytes(conn: sqlite3.Connection, number: int) -> sqlite3.Row | None:
    return conn.execute("SELECT cid, status, error, raw FROM reports WHERE round = ?", (number,)).fetchone()


def cumulative_rewards(conn: sqlite3.Connection, number: int) -> dict[str, int]:
    """Every client's cumulative reward after round ``number``, as its indexed report says."""
    rows = conn.execute("SELECT client, cumulative FROM rewards WHERE round = ?", (number,)).fetchall()
    return {row["client"]: int(row["cumulative"]) for row in rows}


# --- updates --------------------------------------------------------------------------------------------
def _update(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "round": row["round"],
        "client": row["client"],
        "cid": row["cid"],
        "num_samples": row["num_samples"],
        "status": _status(row["accepted"]),
        "reason": row["reason"],
        "norm": row["norm"],
        "weight": row["weight"],
        "excluded": row["excluded"],
        "contribution": row["contribution"],
        "reward": row["reward"],
        "block_number": row["block_number"],
        "transaction_hash": row["transaction_hash"],
        "download": f"/models/{row['cid']}",
    }


def list_updates(
    conn: sqlite3.Connection, number: int, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    rows = conn.execute(
        "SELECT * FROM updates WHERE round = ? ORDER BY block_number, log_index, client LIMIT ? OFFSET ?",
        (number, limit, offset),
    ).fetchall()
    count = conn.execute("SELECT COUNT(*) FROM updates WHERE round = ?", (number,)).fetchone()[0]
    return [_update(r) for r in rows], count


def find_content(conn: sqlite3.Connection, cid: str) -> dict[str, Any] | None:
    """A global model or a client update indexed under ``cid``, with its download filename."""
    row = conn.execute("SELECT round, kind FROM models WHERE cid = ?", (cid,)).fetchone()
    if row is not None:
        return {
            "cid": cid,
            "round": row["round"],
            "kind": row["kind"],
            "filename": model_filename(cid, row["round"]),
        }
    row = conn.execute(
        "SELECT round, client FROM updates WHERE cid = ? ORDER BY round LIMIT 1", (cid,)
    ).fetchone()
    if row is not None:
        return {
            "cid": cid,
            "round": row["round"],
            "kind": "update",
            "filename": model_filename(cid, row["round"], row["client"]),
        }
    return None


def list_models(conn: sqlite3.Connection, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    rows = conn.execute(
        "SELECT * FROM models ORDER BY round DESC LIMIT ? OFFSET ?", (limit, offset)
    ).fetchall()
    count = conn.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    return [
        {
            "cid": r["cid"],
            "round": r["round"],
            "kind": r["kind"],
            "filename": model_filename(r["cid"], r["round"]),
            "download": f"/models/{r['cid']}",
        }
        for r in rows
    ], count


# --- clients --------------------------------------------------------------------------------------------
def _client(row: sqlite3.Row) -> dict[str, Any]:
    cumulative = int(row["cumulative"] or 0)
    claimed = int(row["claimed"])
    return {
        "address": row["address"],
        "dataset_commitment": row["dataset_commitment"],
        "registered_round": row["registered_round"],
        "registered_block": row["registered_block"],
        "banned": bool(row["banned"]),
        "exited": bool(row["exited"]),
        "bond": row["bond"],
        "bond_released_at": row["bond_released_at"],
        "submissions": row["submissions"],
        "accepted": row["n_accepted"],
        "rejected": row["n_rejected"],
        "contribution_total": row["contribution_total"],
        "cumulative_reward": str(cumulative),
        "claimed": str(claimed),
        "claimable": str(max(0, cumulative - claimed)),
    }


def _client_query(where: str) -> str:
    return (
        f"SELECT c.*, w.cumulative, {CLIENT_TOTALS.format(c='c.address')} FROM clients c"
        f" LEFT JOIN rewards w ON w.client = c.address AND w.round = ? {where}"
    )


def list_clients(conn: sqlite3.Connection, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    latest = latest_report_round(conn)
    rows = conn.execute(
        _client_query("ORDER BY c.registered_block, c.address LIMIT ? OFFSET ?"), (latest, limit, offset)
    ).fetchall()
    return [_client(r) for r in rows], conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0]


def get_client(conn: sqlite3.Connection, address: str) -> dict[str, Any] | None:
    row = conn.execute(_client_query("WHERE c.address = ?"), (latest_report_round(conn), address)).fetchone()
    if row is None:
        return None
    rounds = conn.execute(
        "SELECT u.*, w.cumulative FROM updates u"
        " LEFT JOIN rewards w ON w.round = u.round AND w.client = u.client"
        " WHERE u.client = ? ORDER BY u.round",
        (address,),
    ).fetchall()
    return {
        **_client(row),
        "rounds": [
            {
                "round": u["round"],
                "cid": u["cid"],
                "num_samples": u["num_samples"],
                "status": _status(u["accepted"]),
                "reason": u["reason"],
                "contribution": u["contribution"],
                "reward": u["reward"],
                "cumulative_reward": u["cumulative"],
                "download": f"/models/{u['cid']}",
            }
            for u in rounds
        ],
    }


# --- rewards --------------------------------------------------------------------------------------------
def leaderboard(
    conn: sqlite3.Connection, limit: int, offset: int
) -> tuple[int | None, list[dict[str, Any]], int]:
    latest = latest_report_round(conn)
    rows = conn.execute(
        f"SELECT w.*, COALESCE(c.claimed, '0') AS claimed, COALESCE(c.banned, 0) AS banned,"
        f" {CLIENT_TOTALS.format(c='w.client')} FROM rewards w LEFT JOIN clients c ON c.address = w.client"
        " WHERE w.round = ? ORDER BY w.rank LIMIT ? OFFSET ?",
        (latest, limit, offset),
    ).fetchall()
    count = conn.execute("SELECT COUNT(*) FROM rewards WHERE round = ?", (latest,)).fetchone()[0]
    entries = [
        {
            "rank": r["rank"],
            "client": r["client"],
            "cumulative_reward": r["cumulative"],
            "round_reward": r["round_reward"],
            "claimed": r["claimed"],
            "unclaimed": str(max(0, int(r["cumulative"]) - int(r["claimed"]))),
            "submissions": r["submissions"],
            "accepted": r["n_accepted"],
            "contribution_total": r["contribution_total"],
            "banned": bool(r["banned"]),
        }
        for r in rows
    ]
    return latest, entries, count


def reward_proof(conn: sqlite3.Connection, number: int, address: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT w.cumulative, w.proof, r.rewards_root, COALESCE(c.claimed, '0') AS claimed FROM rewards w"
        " JOIN rounds r ON r.round = w.round LEFT JOIN clients c ON c.address = w.client"
        " WHERE w.round = ? AND w.client = ?",
        (number, address),
    ).fetchone()
    if row is None or int(row["cumulative"]) == 0:
        return None
    cumulative, claimed = int(row["cumulative"]), int(row["claimed"])
    return {
        "client": address,
        "round": number,
        "rewards_root": row["rewards_root"],
        "cumulative_amount": str(cumulative),
        "claimed": str(claimed),
        "claimable": str(max(0, cumulative - claimed)),
        "proof": json.loads(row["proof"]),
    }


# --- health ---------------------------------------------------------------------------------------------
def counts(conn: sqlite3.Connection) -> dict[str, int]:
    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return {
        "rounds_finalized": one("SELECT COUNT(*) FROM rounds WHERE finalized_at IS NOT NULL"),
        "clients": one("SELECT COUNT(*) FROM clients"),
        "updates": one("SELECT COUNT(*) FROM updates"),
        "claims": one("SELECT COUNT(*) FROM claims"),
        "pending_reports": one("SELECT COUNT(*) FROM reports WHERE status = 'pending'"),
        "invalid_reports": one("SELECT COUNT(*) FROM reports WHERE status = 'invalid'"),
    }
