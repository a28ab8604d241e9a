"""A response cache for the read endpoints, valid until the index changes.

Explorers ask the same few questions over and over (the dashboard polls /contract, /rounds and
/leaderboard), while the answers only change when the indexer commits. Every commit bumps
``Database.generation``; a cached answer from an older generation is never served. The cache sits
in front of routing, so a hit costs a dictionary lookup. It holds 200 JSON answers only, bounded in
count and size; downloads, /health and /metrics are never cached.

NOTE: the generation lives in this process, with the indexer that writes the cache file. An
indexer in another process writing the same file would need the cache disabled (``entries=0``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from flb_api.core.db import Database

CACHED_PREFIXES = ("/contract", "/rounds", "/clients", "/leaderboard")
CACHED_PATHS = ("/models",)


@dataclass(frozen=True)
class _Entry:
    generation: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Any


def cacheable(path: str) -> bool:
    return path in CACHED_PATHS or any(path == p or path.startswith(p + "/") for p in CACHED_PREFIXES)


class ResponseCache:
    """Least-recently-used answers keyed by path and query string."""

    def __init__(self, db: Database, entries: int = 1024, max_body: int = 1 << 20) -> None:
        self.db = db
        self.entries = entries
        self.max_body = max_body
        self._data: OrderedDict[tuple[str, bytes], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, bytes]) -> _Entry | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry.generation != self.db.generation:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, bytes], entry: _Entry) -> None:
        if len(entry.body) > self.max_body or self.entries <= 0:
            return
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


class CacheMiddleware:
    """Serves cached answers of GET requests on the read endpoints; records fresh ones."""

    def __init__(self, app: Any, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not cacheable(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope.get("query_string", b""))
        entry = self.cache.get(key)
        if entry is not None:
            scope["route"] = entry.route  # for the request metrics around this middleware
            await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
            await send({"type": "http.response.body", "body": entry.body})
            return
        generation = self.cache.db.generation  # the answer may only be as new as the index it read
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, recording_send)
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
        is_json = any(k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers)
        if start.get("status") == 200 and is_json:
            self.cache.put(key, _Entry(generation, headers, b"".join(chunks), scope.get("route")))
