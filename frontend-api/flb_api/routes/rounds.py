"""Rounds, their updates and their reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from flb_api import crud
from flb_api.deps import ConnDep, PageDep, RoundNumber
from flb_api.models import RoundPublic, RoundsPublic, UpdatesPublic
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.report import canonical_json
from flb_dapp.storage.cid import cid_of_bytes

router = APIRouter(prefix="/rounds", tags=["rounds"])


def _round_or_404(conn: ConnDep, n: int) -> dict[str, Any]:
    found = crud.get_round(conn, n)
    if found is None:
        raise HTTPException(404, f"Round {n} not found")
    return found


@router.get("", response_model=RoundsPublic)
async def read_rounds(
    conn: ConnDep,
    page: PageDep,
    order: Annotated[Literal["asc", "desc"], Query(description="By round number")] = "desc",
) -> dict[str, Any]:
    """Every round from 1 to the open one, newest first by default."""
    data, count = crud.list_rounds(conn, page.limit, page.offset, newest_first=order == "desc")
    return {"data": data, "count": count}


@router.get("/{n}", response_model=RoundPublic, responses={404: {"description": "No such round"}})
async def read_round(conn: ConnDep, n: RoundNumber) -> dict[str, Any]:
    """One round: global model and report CIDs, metrics, privacy spent, submissions, finalization."""
    return _round_or_404(conn, n)


@router.get("/{n}/updates", response_model=UpdatesPublic, responses={404: {"description": "No such round"}})
async def read_round_updates(conn: ConnDep, n: RoundNumber, page: PageDep) -> dict[str, Any]:
    """The round's submitted updates: client, CID, samples, accepted or rejected and why, reward."""
    _round_or_404(conn, n)
    data, count = crud.list_updates(conn, n, page.limit, page.offset)
    return {"data": data, "count": count}


@router.get(
    "/{n}/report",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "The report's exact bytes (they hash to the report CID)",
        },
        404: {"description": "No such round, or the round is still open"},
        503: {"description": "The report has not been read from the store yet"},
    },
)
async def read_round_report(conn: ConnDep, n: RoundNumber) -> Response:
    """The round report JSON, byte for byte as stored under the CID on chain."""
    found = _round_or_404(conn, n)
    if found["status"] != "finalized":
        raise HTTPException(404, f"Round {n} is still open; it has no report yet")
    row = crud.report_bytes(conn, n)
    if row is None or row["raw"] is None:
        detail = row["error"] if row is not None and row["error"] else "not read yet"
        raise HTTPException(
            503, f"The report of round {n} is not in the index yet: {detail}", headers={"Retry-After": "5"}
        )
    headers = {
        "ETag": f'"{row["cid"]}"',
        "X-Content-CID": row["cid"],
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    return Response(bytes(row["raw"]), media_type="application/json", headers=headers)


@router.get(
    "/{n}/rewards-tree",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "OpenZeppelin StandardMerkleTree dump (standard-v1) of the cumulative rewards",
        },
        404: {"description": "No such round, the round is still open, or nobody has earned anything"},
        503: {"description": "The round's report is not indexed (yet, or it contradicts the chain)"},
    },
)
async def read_rewards_tree(conn: ConnDep, n: RoundNumber) -> Response:
    """The rewards tree after round ``n`` as `StandardMerkleTree.load` (npm `@openzeppelin/merkle-tree`)
    opens it: claim front ends take a proof from it. Its bytes hash to the report's `rewards.tree_cid`."""
    found = _round_or_404(conn, n)
    if found["status"] != "finalized":
        raise HTTPException(404, f"Round {n} is still open; it has no rewards tree yet")
    if found["report_status"] != "indexed":
        raise HTTPException(
            503,
            f"The report of round {n} is {found['report_status']}; no rewards tree",
            headers={"Retry-After": "5"},
        )
    tree = build_rewards_tree(crud.cumulative_rewards(conn, n))
    if not tree.amounts:
        raise HTTPException(404, f"Nobody has earned anything by round {n}: the tree is empty")
    if tree.root_hex.lower() != str(found["rewards_root"]).lower():  # the index agrees with the chain
        raise HTTPException(503, f"The indexed rewards of round {n} do not give the on-chain root")
    body = canonical_json(tree.standard_dump())
    headers = {"X-Content-CID": cid_of_bytes(body), "Cache-Control": "public, max-age=31536000, immutable"}
    return Response(body, media_type="application/json", headers=headers)
