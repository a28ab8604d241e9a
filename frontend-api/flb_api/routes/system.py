"""Liveness and the index's state, for people (/health) and for Prometheus (/metrics)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from flb_api import crud
from flb_api.core.metrics import render
from flb_api.deps import ConnDep, IndexerDep
from flb_api.models import HealthPublic
from flb_api.version import __version__

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthPublic)
async def read_health(conn: ConnDep, indexer: IndexerDep) -> dict[str, Any]:
    """Whether the index keeps up with the chain: indexed block, head, lag, last sync and last error."""
    status = indexer.status
    indexed = indexer.indexed_block
    lag = None if indexed is None or status.head is None else max(0, status.head - indexed)
    # "starting" until this process has synced once: a cache left by an earlier run may be stale.
    state = "degraded" if status.last_error else ("starting" if status.last_sync is None else "ok")
    return {
        "status": state,
        "version": __version__,
        "indexed_block": indexed,
        "chain_head": status.head,
        "lag_blocks": lag,
        "last_sync": status.last_sync,
        "last_error": status.last_error,
        "pending_reports": crud.counts(conn)["pending_reports"],
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def read_metrics(request: Request, conn: ConnDep, indexer: IndexerDep) -> PlainTextResponse:
    """Prometheus metrics: indexed block, chain head, rounds, clients, index errors, requests."""
    counts = crud.counts(conn)
    status = indexer.status
    samples: list[tuple[str, str, str, float | int | None]] = [
        ("flb_api_indexed_block", "gauge", "Last block the index holds", indexer.indexed_block),
        ("flb_api_chain_head_block", "gauge", "Chain head at the last sync attempt", status.head),
        (
            "flb_api_last_sync_timestamp_seconds",
            "gauge",
            "Unix time of the last successful sync",
            status.last_sync,
        ),
        ("flb_api_rounds_finalized", "gauge", "Finalized rounds indexed", counts["rounds_finalized"]),
        ("flb_api_clients", "gauge", "Registered clients indexed", counts["clients"]),
        ("flb_api_updates", "gauge", "Updates indexed", counts["updates"]),
        ("flb_api_claims", "gauge", "Reward claims indexed", counts["claims"]),
        (
            "flb_api_reports_pending",
            "gauge",
            "Finalized rounds whose report is not read yet",
            counts["pending_reports"],
        ),
        (
            "flb_api_reports_invalid",
            "gauge",
            "Reports that disagree with the chain",
            counts["invalid_reports"],
        ),
        ("flb_api_index_syncs_total", "counter", "Successful index syncs", status.syncs),
        ("flb_api_index_errors_total", "counter", "Failed index syncs", status.errors),
        ("flb_api_index_events_total", "counter", "Contract events indexed", status.events),
    ]
    body = render(samples, request.app.state.metrics)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
