"""Dependencies the routes declare with ``Annotated[..., Depends(...)]``."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Annotated

from eth_utils import is_hex_address, to_checksum_address
from fastapi import Depends, HTTPException, Path, Query, Request

from flb_api.core.config import MAX_SQL_INT, ApiSettings
from flb_api.core.db import Database
from flb_api.indexer import Indexer
from flb_dapp.storage.base import ContentStore

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_conn(request: Request) -> sqlite3.Connection:
    """The event loop's read connection to the cache.

    NOTE: reads of the index are sub-millisecond SQLite lookups by primary key or index, so the read
    endpoints are ``async`` and query on the loop's own connection: a hop to the thread pool costs
    more than the query. Anything slow (downloads) is a plain ``def`` route that opens its own.
    """
    return request.app.state.db.reader()


async def get_database(request: Request) -> Database:
    """The cache itself, for routes that run in the thread pool (``db.reader()`` per thread)."""
    db: Database = request.app.state.db
    return db


async def get_store(request: Request) -> ContentStore:
    store: ContentStore = request.app.state.store
    return store


async def get_download_slots(request: Request) -> threading.BoundedSemaphore:
    slots: threading.BoundedSemaphore = request.app.state.downloads
    return slots


async def get_indexer(request: Request) -> Indexer:
    indexer: Indexer = request.app.state.indexer
    return indexer


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def get_page(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_SQL_INT, description="Items per page (capped at api.max_page_size)")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT, description="Items to skip")] = 0,
) -> Page:
    """limit/offset, with the limit capped at the configured page size."""
    cap = await get_settings(request)
    cap_size = cap.max_page_size
    return Page(limit=cap_size if limit is None else min(limit, cap_size), offset=offset)


def checksum(address: str) -> str:
    """A path's address in checksum form (its case is free; the pattern already checked the hex)."""
    if not is_hex_address(address):  # pragma: no cover - the path pattern refuses these first
        raise HTTPException(422, f"{address!r} is not an Ethereum address")
    return str(to_checksum_address(address))


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
ConnDep = Annotated[sqlite3.Connection, Depends(get_conn)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[ContentStore, Depends(get_store)]
DownloadSlotsDep = Annotated[threading.BoundedSemaphore, Depends(get_download_slots)]
IndexerDep = Annotated[Indexer, Depends(get_indexer)]
PageDep = Annotated[Page, Depends(get_page)]
RoundNumber = Annotated[int, Path(ge=0, le=MAX_SQL_INT, description="Round number")]
Address = Annotated[str, Path(pattern=ADDRESS_PATTERN, description="Client address (0x + 40 hex digits)")]
