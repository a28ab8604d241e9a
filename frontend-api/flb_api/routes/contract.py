"""The coordinator's parameters and state."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from flb_api import crud
from flb_api.deps import ConnDep
from flb_api.models import ContractPublic

router = APIRouter(tags=["contract"])


@router.get("/contract", response_model=ContractPublic)
async def read_contract(conn: ConnDep) -> dict[str, object]:
    """The coordinator: address, chain, token, round parameters, current round, clients, reward pool."""
    state = crud.contract(conn)
    if state is None:
        raise HTTPException(503, "The index has not synced with the chain yet; retry in a few seconds")
    return state
