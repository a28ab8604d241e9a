"""Clients: registration, submissions, contributions, rewards and claim proofs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from flb_api import crud
from flb_api.deps import Address, ConnDep, PageDep, checksum
from flb_api.models import ClientDetailPublic, ClientsPublic, ProofPublic

router = APIRouter(prefix="/clients", tags=["clients"])


@router.get("", response_model=ClientsPublic)
async def read_clients(conn: ConnDep, page: PageDep) -> dict[str, Any]:
    """Registered clients in registration order, with their totals."""
    data, count = crud.list_clients(conn, page.limit, page.offset)
    return {"data": data, "count": count}


@router.get(
    "/{addr}", response_model=ClientDetailPublic, responses={404: {"description": "Not a registered client"}}
)
async def read_client(conn: ConnDep, addr: Address) -> dict[str, Any]:
    """One client: registration, each round's submission, contribution and reward, and what it claimed."""
    address = checksum(addr)
    found = crud.get_client(conn, address)
    if found is None:
        raise HTTPException(404, f"Client {address} not found")
    return found


@router.get(
    "/{addr}/proof",
    response_model=ProofPublic,
    responses={
        404: {"description": "No rewards for this client"},
        503: {"description": "Latest report not indexed yet"},
    },
)
async def read_client_proof(conn: ConnDep, addr: Address) -> dict[str, Any]:
    """The client's cumulative reward and Merkle proof against the latest round's root, for claim()."""
    address = checksum(addr)
    latest = crud.latest_finalized_round(conn)
    if latest is None:
        raise HTTPException(404, "No round has been finalized yet: there is nothing to claim")
    report = crud.report_bytes(conn, latest)
    if report is None or report["status"] != "indexed":
        status = report["status"] if report is not None else "pending"
        raise HTTPException(
            503,
            f"The report of round {latest} is {status}; proofs are not available yet",
            headers={"Retry-After": "5"},
        )
    proof = crud.reward_proof(conn, latest, address)
    if proof is None:
        raise HTTPException(404, f"Client {address} has no rewards in the tree of round {latest}")
    return proof
