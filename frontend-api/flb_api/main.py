"""The app factory: settings, cache, indexer, routes, middleware and the dashboard in one place."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from flb_api.core.cache import CacheMiddleware, ResponseCache
from flb_api.core.config import ApiSettings
from flb_api.core.db import Database
from flb_api.core.metrics import MetricsMiddleware, RequestMetrics
from flb_api.indexer import Indexer
from flb_api.routes import api_router
from flb_api.routes.dashboard import STATIC
from flb_api.version import __version__
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord
from flb_dapp.config import FLBSettings, load_settings
from flb_dapp.storage import open_store
from flb_dapp.storage.base import ContentStore

log = logging.getLogger("flb.api")

DESCRIPTION = """Read-only REST API over an FLB federation: the coordinator contract's rounds, clients,
updates and rewards, the round reports, and verified downloads of every model by CID. Everything is
served from a local index of the contract's events; nothing scans the chain per request.
Operator endpoints (bearer token) forward to the oracle's control server."""


def _indexer_for(
    api: ApiSettings,
    db: Database,
    store: ContentStore,
    coordinator: Coordinator | None,
    record: DeploymentRecord | None,
    start_block: int | None,
) -> Indexer:
    if coordinator is not None:
        block = start_block if start_block is not None else (record.block if record else 0)
        return Indexer(
            db,
            coordinator,
            store,
            start_block=block,
            deployment_block=record.block if record else None,
            network=record.network if record else api.network,
        )
    record = record or DeploymentRecord.load(api.deployment)
    address, deployed_at = record.coordinator, record.block
    # NOTE: the SDK object is built on the first sync, so the API starts (and serves its cache)
    # while the chain node is still down.
    return Indexer(
        db,
        lambda: Coordinator(address, deployed_at),
        store,
        address=address,
        network=record.network,
        start_block=record.block if start_block is None else start_block,
        deployment_block=record.block,
    )


def create_app(
    settings: FLBSettings | ApiSettings | None = None,
    coordinator: Coordinator | None = None,
    store: ContentStore | None = None,
    *,
    indexer: Indexer | None = None,
    record: DeploymentRecord | None = None,
    start_block: int | None = None,
    poll: bool = True,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The API app. Without ``coordinator``/``indexer`` it reads the deployment record the settings
    name (Ape must be connected to its network before the first sync). With ``poll`` the indexer
    syncs every ``api.poll_interval_s`` in a background thread while the app runs."""
    if isinstance(settings, ApiSettings):
        api = settings
    else:
        api = ApiSettings.from_settings(settings or load_settings(), environ)
    if indexer is None:
        store = store if store is not None else open_store(api.store)
        indexer = _indexer_for(api, Database(api.database), store, coordinator, record, start_block)
    if api.operator_token.value is None:
        log.warning("operator endpoints are disabled: %s", api.operator_token.problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if poll:
            indexer.start(api.poll_interval_s)
        try:
            yield
        finally:
            indexer.stop()

    app = FastAPI(title="FLB explorer API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = api
    app.state.indexer = indexer
    app.state.db = indexer.db
    app.state.store = indexer.store
    # NOTE: each download hashes the whole file before a byte is sent; the cap keeps a flood of
    # requests for the largest model from taking every worker thread and the disk.
    app.state.downloads = threading.BoundedSemaphore(api.max_concurrent_downloads)
    app.state.metrics = RequestMetrics()
    app.state.cache = ResponseCache(indexer.db, entries=api.response_cache_entries)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Middleware added last runs first: metrics around CORS around the response cache.
    app.add_middleware(CacheMiddleware, cache=app.state.cache)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(api.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "X-Content-CID", "X-FLB-Round", "Content-Disposition"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
