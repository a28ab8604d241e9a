"""The rewards leaderboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from flb_api import crud
from flb_api.deps import ConnDep, PageDep
from flb_api.models import LeaderboardPublic

router = APIRouter(tags=["rewards"])


@router.get("/leaderboard", response_model=LeaderboardPublic)
async def read_leaderboard(conn: ConnDep, page: PageDep) -> dict[str, Any]:
    """Clients ranked by cumulative reward, as of the latest indexed round report."""
    round_number, data, count = crud.leaderboard(conn, page.limit, page.offset)
    return {"round": round_number, "data": data, "count": count}
