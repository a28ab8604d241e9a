"""The dashboard: static files served by the app itself, and Chart.js from the npm install.

Nothing comes from a CDN. Chart.js is found in ``node_modules`` (the repository's, or the one
``FLB_CHARTJS`` or the working directory points to); without it the dashboard draws its own SVG
charts, so it never depends on the network.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parents[1] / "static"
CHARTJS = Path("node_modules") / "chart.js" / "dist" / "chart.umd.min.js"

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def find_chartjs() -> Path | None:
    """Chart.js's UMD build: $FLB_CHARTJS, else node_modules above this package or the working dir."""
    explicit = os.environ.get("FLB_CHARTJS")
    candidates = [Path(explicit)] if explicit else []
    candidates += [parent / CHARTJS for parent in Path(__file__).resolve().parents]
    candidates.append(Path.cwd() / CHARTJS)
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
