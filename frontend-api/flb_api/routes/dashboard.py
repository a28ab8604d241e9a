"""The dashboard: static files served by the app itself, and Chart.js from the npm install.

Nothing comes from a CDN. Chart.js is the file ``FLB_CHARTJS`` names, else the repository's
npm install (:data:`flb_dapp.node_tools.CHARTJS`), else ``node_modules`` in the working directory
(an installed package run from a checkout); without it the dashboard draws its own SVG charts, so
it never depends on the network.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from flb_dapp import node_tools

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def find_chartjs() -> Path | None:
    """Chart.js's UMD build: $FLB_CHARTJS, else the repository's node_modules, else the working dir's."""
    explicit = os.environ.get("FLB_CHARTJS")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(node_tools.CHARTJS)
    candidates.append(Path.cwd() / "node_modules" / node_tools.CHARTJS_IN_NODE_MODULES)
    return next((p for p in candidates if p.is_file()), None)


@router.get("/")
async def dashboard() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/vendor/chart.umd.min.js")
async def chartjs() -> FileResponse:
    """Chart.js, served from the local npm install."""
    path = find_chartjs()
    if path is None:
        raise HTTPException(404, "Chart.js is not installed (npm ci); the dashboard falls back to SVG charts")
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )
