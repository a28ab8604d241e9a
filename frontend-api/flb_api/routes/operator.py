"""Operator actions, forwarded to the oracle's control server. The API itself holds no chain keys."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, HTTPException

from flb_api.core.security import OperatorDep
from flb_api.deps import SettingsDep
from flb_api.models import OracleActionPublic

router = APIRouter(
    prefix="/operator/oracle",
    tags=["operator"],
    dependencies=[OperatorDep],
    responses={
        401: {"description": "No bearer token"},
        403: {"description": "Wrong bearer token"},
        502: {"description": "The oracle control server failed or refused the API"},
        503: {"description": "Operator endpoints or the oracle control URL are not configured"},
    },
)

FORWARD_TIMEOUT_S = 30.0


async def forward(settings: SettingsDep, action: str, method: str = "POST") -> dict[str, Any]:
    """``method /{action}`` on the oracle control server with the oracle's token."""
    if not settings.oracle_control_url:
        raise HTTPException(503, "No oracle control URL is configured (api.oracle_control_url)")
    if settings.oracle_token.value is None:
        raise HTTPException(
            503, f"The API cannot authenticate to the oracle: {settings.oracle_token.problem}"
        )
    url = f"{settings.oracle_control_url}/{action}"
    headers = {"Authorization": f"Bearer {settings.oracle_token.value}"}
    try:
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S) as client:
            reply = await client.request(method, url, headers=headers)
    except httpx.HTTPError as exc:
        raise HTTPException(
            502,
            f"The oracle control server at {settings.oracle_control_url} is unreachable: "
            f"{type(exc).__name__}",
        ) from exc
    try:
        body = reply.json()
    except ValueError:
        body = {"detail": reply.text[:500]}
    if reply.status_code in (401, 403):
        raise HTTPException(
            502,
            f"The oracle refused the API's token ({reply.status_code}); check {settings.oracle_token.env}",
        )
    if reply.status_code != 200:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        raise HTTPException(502, f"The oracle answered {reply.status_code}: {detail}")
    return {"action": action, "oracle": body if isinstance(body, dict) else {"result": body}}


@router.get("/status", response_model=OracleActionPublic)
async def oracle_status(settings: SettingsDep) -> dict[str, Any]:
    """The oracle's state: running or paused, and why it paused (a privacy budget, a step that
    failed the same way twice, an operator), its last error and the last round it processed."""
    return await forward(settings, "health", method="GET")


@router.post("/trigger", response_model=OracleActionPublic)
async def trigger_oracle(settings: SettingsDep) -> dict[str, Any]:
    """Ask the oracle to process a due round now."""
    return await forward(settings, "trigger")


@router.post("/pause", response_model=OracleActionPublic)
async def pause_oracle(settings: SettingsDep) -> dict[str, Any]:
    """Stop the oracle from processing rounds (the contract itself is not paused)."""
    return await forward(settings, "pause")


@router.post("/resume", response_model=OracleActionPublic)
async def resume_oracle(settings: SettingsDep) -> dict[str, Any]:
    """Let the oracle process rounds again."""
    return await forward(settings, "resume")
