"""Verified downloads of the global models and the clients' updates, by CID."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from flb_api import crud
from flb_api.core.config import ApiSettings
from flb_api.core.db import Database
from flb_api.deps import ConnDep, DatabaseDep, DownloadSlotsDep, PageDep, SettingsDep, StoreDep
from flb_api.models import ModelsPublic
from flb_dapp.exceptions import CidMismatchError, ContentNotFoundError, ContentTooLargeError, StorageError
from flb_dapp.storage.base import ContentStore

router = APIRouter(prefix="/models", tags=["models"])

DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The adapter file (safetensors)"},
    304: {"description": "Not modified (the CID is the ETag)"},
    404: {"description": "No model or update with this CID is indexed, or the store lost it"},
    413: {"description": "Larger than api.max_download_bytes"},
    502: {"description": "The store returned bytes that do not match the CID"},
    503: {
        "description": "The store cannot be reached, the index has not synced yet, or "
        "api.max_concurrent_downloads downloads are already running (Retry-After says when to retry)"
    },
}


def _matches(if_none_match: str, cid: str) -> bool:
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
    return cid in tags or "*" in tags


def _send(
    db: Database,
    store: ContentStore,
    settings: ApiSettings,
    slots: threading.BoundedSemaphore,
    cid: str,
    if_none_match: str | None,
) -> Response:
    """Runs in the thread pool (hashing a model takes a while), on that thread's connection."""
    found = crud.find_content(db.reader(), cid)
    if found is None:
        raise HTTPException(404, f"Model {cid} not found")
    headers = {
        "ETag": f'"{cid}"',
        "X-Content-CID": cid,
        "X-FLB-Round": str(found["round"]),
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    if if_none_match and _matches(if_none_match, cid):
        return Response(status_code=304, headers=headers)
    if not slots.acquire(blocking=False):
        raise HTTPException(
            503,
            f"{settings.max_concurrent_downloads} downloads are already running; retry shortly",
            headers={"Retry-After": "1"},
        )
    folder = tempfile.mkdtemp(prefix="flb-api-download-")

    def finish() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        slots.release()

    try:
        # NOTE: the store verifies every byte against the CID before the file appears; nothing
        # unverified is ever sent, at the price of one local copy per download.
        path = store.get_file(cid, FsPath(folder) / "content", max_size=settings.max_download_bytes)
    except BaseException as exc:
        finish()
        if isinstance(exc, ContentTooLargeError):
            raise HTTPException(
                413, f"Model {cid} is larger than the download limit of {settings.max_download_bytes} bytes"
            ) from exc
        if isinstance(exc, ContentNotFoundError):
            raise HTTPException(404, f"Model {cid} is indexed but the store does not hold it") from exc
        if isinstance(exc, CidMismatchError):
            raise HTTPException(502, f"The store returned other bytes than {cid}; not sent") from exc
        if isinstance(exc, StorageError):
            raise HTTPException(503, f"The store cannot serve {cid} now: {exc}") from exc
        raise
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=found["filename"],
        headers=headers,
        background=BackgroundTask(finish),
    )


@router.get("", response_model=ModelsPublic)
async def read_models(conn: ConnDep, page: PageDep) -> dict[str, Any]:
    """The global models: the initial one and each finalized round's, newest first."""
    data, count = crud.list_models(conn, page.limit, page.offset)
    return {"data": data, "count": count}


@router.get("/latest", response_class=Response, responses=DOWNLOAD_RESPONSES)
def download_latest_model(
    db: DatabaseDep,
    store: StoreDep,
    settings: SettingsDep,
    slots: DownloadSlotsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Download the latest global model, verified against its CID."""
    state = crud.contract(db.reader())
    if state is None:
        raise HTTPException(503, "The index has not synced with the chain yet; retry in a few seconds")
    return _send(db, store, settings, slots, state["latest_global_model_cid"], if_none_match)


@router.get("/{cid}", response_class=Response, responses=DOWNLOAD_RESPONSES)
def download_model(
    db: DatabaseDep,
    store: StoreDep,
    settings: SettingsDep,
    slots: DownloadSlotsDep,
    cid: Annotated[str, Path(max_length=200, description="CIDv1 of a global model or a client update")],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Download a global model or a client update by CID, verified against it."""
    return _send(db, store, settings, slots, cid, if_none_match)
