"""The IPFS backend: a Kubo daemon (or anything speaking the same RPC subset) over plain HTTP.

Kubo's RPC is ``POST /api/v0/<command>?arg=...``; errors come back as HTTP 500 with
``{"Message": ..., "Code": ..., "Type": "error"}``. The node is never trusted: ``add`` must
answer the CID computed here (so a node with other chunking settings is caught at once), and
every read is re-hashed before it is returned.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from flb_dapp.atomic import atomic_writer
from flb_dapp.exceptions import (
    CarFormatError,
    CidMismatchError,
    ContentNotFoundError,
    ContentTimeoutError,
    ContentTooLargeError,
    StorageError,
    StoreUnavailableError,
)
from flb_dapp.storage import car
from flb_dapp.storage.base import ContentStore, PathLike, collect_verified, write_verified
from flb_dapp.storage.cid import CHUNK_SIZE, UnixFSHasher, normalize_cid, read_chunks

# NOTE: every parameter that decides the CID is explicit, so a node whose config changed the
# defaults (Import.CidVersion, Import.UnixFSChunker, ...) still gives FLB's CIDs.
ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": f"size-{CHUNK_SIZE}",
    "hash": "sha2-256",
    "trickle": "false",
    "pin": "true",
    "progress": "false",
}
_NOT_FOUND_HINTS = ("not found", "could not find", "no link named", "block was not found")
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class KuboStore(ContentStore):
    """A :class:`ContentStore` over a Kubo RPC endpoint such as ``http://127.0.0.1:5001``."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:5001",
        *,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._retries = retries
        self._backoff = backoff
        self._client = httpx.Client(
            base_url=f"{self.url}/api/v0",
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"KuboStore({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _call(
        self,
        command: str,
        params: dict[str, str] | None = None,
        body: Callable[[], tuple[Iterable[bytes], str]] | None = None,
        deadline: float | None = None,
    ) -> Iterator[httpx.Response]:
        """POST ``command``; yields the streaming response once the node answered 200.

        With a ``deadline`` (a ``time.monotonic()`` instant) every wait is cut to the time left,
        and running out raises ContentTimeoutError: the node is up but this content is not
        arriving (nobody serves the CID, or a peer drips it), which is about the content.
        """
        response = self._open(command, params, body, deadline)
        try:
            yield response
        except httpx.TimeoutException as exc:
            if deadline is not None:
                raise ContentTimeoutError(
                    f"{command} {(params or {}).get('arg', '')} did not complete before its deadline"
                ) from exc
            raise StoreUnavailableError(
                f"the IPFS node at {self.url} stalled during {command} ({exc})"
            ) from exc
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"the IPFS node at {self.url} broke off {command}: {exc}") from exc
        finally:
            response.close()

    def _open(
        self,
        command: str,
        params: dict[str, str] | None,
        body: Callable[[], tuple[Iterable[bytes], str]] | None,
        deadline: float | None = None,
    ) -> httpx.Response:
        """Send the request, retrying with backoff while the node cannot be reached.

        ``body`` makes fresh (chunks, content type) per attempt, so an upload can be re-sent.
        Only failures before the node answered are retried (refused, reset): a node that answers
        an error is not asked again.
        """
        attempt = 0
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            content: Iterable[bytes] | None = None
            if body is not None:
                content, headers["Content-Type"] = body()
            request = self._client.build_request(
                "POST",
                f"/{command}",
                params=params,
                content=content,
                headers=headers,
                timeout=self._timeout_until(deadline),
            )
            try:
                response = self._client.send(request, stream=True)
            except _RETRYABLE as exc:
                if attempt > self._retries:
                    raise StoreUnavailableError(
                        f"the IPFS node at {self.url} cannot be reached ({type(exc).__name__}: {exc}); "
                        "is it running (`ipfs daemon`) and is the RPC address right?"
                    ) from exc
                time.sleep(self._backoff * 2 ** (attempt - 1))
                continue
            except httpx.TimeoutException as exc:
                if deadline is not None:
                    raise ContentTimeoutError(
                        f"{command} {(params or {}).get('arg', '')}: nothing arrived before the deadline"
                    ) from exc
                raise StoreUnavailableError(
                    f"the IPFS node at {self.url} did not answer {command} in time ({exc})"
                ) from exc
            except httpx.HTTPError as exc:
                raise StoreUnavailableError(f"talking to the IPFS node at {self.url} failed: {exc}") from exc
            if response.status_code != 200:
                try:
                    response.read()
                finally:
                    response.close()
                raise self._error(command, params, response)
            return response

    def _timeout_until(self, deadline: float | None) -> Any:
        if deadline is None:
            return httpx.USE_CLIENT_DEFAULT
        left = max(deadline - time.monotonic(), 0.001)
        configured = self._client.timeout
        return httpx.Timeout(
            min(configured.read or left, left), connect=min(configured.connect or left, left)
        )

    def _error(self, command: str, params: dict[str, str] | None, response: httpx.Response) -> StorageError:
        try:
            message = str(response.json().get("Message", response.text))
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            message = response.text[:500]
        arg = (params or {}).get("arg", "")
        text = f"IPFS node {self.url} refused {command} {arg}: {message} (HTTP {response.status_code})"
        if response.status_code == 404 and "page not found" in message.lower():
            return StoreUnavailableError(f"{self.url} is not a Kubo RPC endpoint: {command} unknown")
        if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
            return ContentNotFoundError(text)
        return StorageError(text)

    def _json_lines(
        self,
        command: str,
        params: dict[str, str] | None = None,
        body: Callable[[], tuple[Iterable[bytes], str]] | None = None,
    ) -> list[dict[str, object]]:
        with self._call(command, params, body) as response:
            text = response.read().decode("utf-8")
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise StorageError(
                f"IPFS node {self.url} answered {command} with non-JSON: {text[:200]!r}"
            ) from exc

    # -- writing --------------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        return self._add(lambda: [data], "data")

    def put_file(self, path: PathLike) -> str:
        def pieces() -> Iterator[bytes]:
            with open(path, "rb") as src:
                for piece in read_chunks(src):
                    yield bytes(piece)

        return self._add(pieces, Path(path).name)

    def _add(self, open_pieces: Callable[[], Iterable[bytes | memoryview]], name: str) -> str:
        """Upload as multipart while hashing the same bytes, in one pass; compare the CIDs."""
        hashers: list[UnixFSHasher] = []

        def body() -> tuple[Iterable[bytes], str]:
            hasher = UnixFSHasher(1)
            hashers.append(hasher)
            return _multipart(open_pieces(), hasher, name, "file")

        lines = self._json_lines("add", ADD_PARAMS, body)
        answered = next((line for line in reversed(lines) if "Hash" in line), None)
        if answered is None:
            raise StorageError(f"IPFS node {self.url} answered add without a Hash: {lines!r}")
        expected = hashers[-1].finalize().encode()
        got = normalize_cid(str(answered["Hash"]))
        if got != expected:
            # NOTE: the node has already pinned it under its own CID: undo that, best effort.
            with contextlib.suppress(StorageError):
                self._json_lines("pin/rm", {"arg": got})
            raise CidMismatchError(
                f"IPFS node {self.url} stored the content as {got} but FLB computes {expected}: the "
                "node does not honour chunker=size-262144/raw-leaves/cid-version=1"
            )
        return expected

    # -- reading --------------------------------------------------------------------------------------
    def _cat(self, cid: str, max_size: int | None, deadline_s: float | None = None) -> Iterator[bytes]:
        params = {"arg": cid}
        if max_size is not None:
            params["length"] = str(max_size + 1)  # one byte more than allowed shows it is too large
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        with self._call("cat", params, deadline=deadline) as response:
            # NOTE: httpx's read timeout is per read, so a peer sending a byte a second would never
            # trip it; the deadline is checked after every read (no chunk_size: httpx would wait
            # for 256 KiB before yielding).
            for piece in response.iter_bytes():
                if deadline is not None and time.monotonic() > deadline:
                    raise ContentTimeoutError(f"{cid} did not arrive in full within {deadline_s:.3g} s")
                yield piece

    def get_bytes(self, cid: str, max_size: int | None = None, deadline_s: float | None = None) -> bytes:
        return collect_verified(normalize_cid(cid), self._cat(cid, max_size, deadline_s), max_size)

    def get_file(
        self, cid: str, dest_path: PathLike, max_size: int | None = None, deadline_s: float | None = None
    ) -> Path:
        pieces = self._cat(cid, max_size, deadline_s)
        return write_verified(normalize_cid(cid), pieces, dest_path, max_size)

    def has(self, cid: str) -> bool:
        # NOTE: offline=true asks the node what it holds, instead of searching the network.
        try:
            self._json_lines("block/stat", {"arg": normalize_cid(cid), "offline": "true"})
        except ContentNotFoundError:
            return False
        return True

    def pin(self, cid: str) -> None:
        self._json_lines("pin/add", {"arg": normalize_cid(cid)})

    # -- CAR ------------------------------------------------------------------------------------------
    def export_car(self, cid: str, dest_path: PathLike) -> Path:
        with atomic_writer(dest_path) as out:
            with self._call("dag/export", {"arg": normalize_cid(cid)}) as response:
                for piece in response.iter_bytes(CHUNK_SIZE):
                    out.write(piece)
            out.seek(0)
            index = car.index_car(out)  # every block hash checked before the file is kept
            if [str(root) for root in index.roots] != [normalize_cid(cid)]:
                raise CarFormatError(f"IPFS node exported a CAR for {index.roots}, not for {cid}")
        return Path(dest_path)

    def import_car(self, src: PathLike | BinaryIO, max_size: int | None = None) -> list[str]:
        # NOTE: the CAR is checked here first (every block hash, the size) so a bad file is
        # refused before the node stores any of it.
        stream, owned = car.open_source(src)
        try:
            seekable = car.open_seekable(stream)
            index = car.index_car(seekable)
            if max_size is not None and index.total_bytes > max_size + max_size // 500 + 65536:
                raise ContentTooLargeError(
                    f"CAR holds {index.total_bytes} bytes of blocks, over the limit of {max_size} bytes"
                )

            def body() -> tuple[Iterable[bytes], str]:
                seekable.seek(0)
                return _multipart(_iter_stream(seekable), None, "import.car", "file")

            lines = self._json_lines("dag/import", {"pin-roots": "true"}, body)
        finally:
            if owned:
                stream.close()
        roots: list[str] = []
        for line in lines:
            root = line.get("Root")
            if not isinstance(root, dict):
                continue
            cid = normalize_cid(str(root["Cid"]["/"]))
            if root.get("PinErrorMsg"):
                raise CarFormatError(f"IPFS node could not pin CAR root {cid}: {root['PinErrorMsg']}")
            roots.append(cid)
        if not roots:
            raise CarFormatError(f"IPFS node imported no root from the CAR: {lines!r}")
        return roots

    def version(self) -> dict[str, object]:
        """The node's ``/api/v0/version`` answer; a cheap health check."""
        lines = self._json_lines("version")
        return lines[0] if lines else {}


def _iter_stream(handle: BinaryIO) -> Iterator[bytes]:
    for piece in read_chunks(handle):
        yield bytes(piece)


def _multipart(
    pieces: Iterable[bytes | memoryview], hasher: UnixFSHasher | None, filename: str, field: str
) -> tuple[Iterator[bytes], str]:
    """A streaming multipart/form-data body with one file part, hashing the file on the way."""
    boundary = uuid.uuid4().hex
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")

    def chunks() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{safe_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for piece in pieces:
            if hasher is not None:
                hasher.update(piece)
            yield bytes(piece)
        yield f"\r\n--{boundary}--\r\n".encode()

    return chunks(), f"multipart/form-data; boundary={boundary}"
