"""The gRPC upload service: accepts signed adapter uploads from registered clients into a store.

Checks run in the order that costs the least: the header (well-formed, this contract, a CIDv1),
the signature, the round (the open one), the signer's standing (registered, not banned), the
declared size, the quota (one upload per signer and round), all before a byte of content is read;
then the stream, counted against the size limit as it arrives and hashed on the way into a temp
file. Only content whose CID equals the signed one reaches the store, so a refused upload never
leaves anything behind.

Hostile clients: the chain is read from a :class:`~flb_dapp.storage.grpc_upload.policy.ChainView`
that answers from memory (never waiting for a node or the oracle's round lock); every stream has a
total deadline and a minimum average rate (a client trickling bytes is aborted with
DEADLINE_EXCEEDED and its worker freed); the number of concurrent streams is bounded (more are
refused with RESOURCE_EXHAUSTED at once, never queued); and plaintext is served on loopback only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import NoReturn

import grpc
from eth_utils import is_address, to_checksum_address

from flb_dapp.exceptions import InvalidCidError
from flb_dapp.storage.base import ContentStore
from flb_dapp.storage.cid import parse_cid
from flb_dapp.storage.grpc_upload import upload_pb2, upload_pb2_grpc
from flb_dapp.storage.grpc_upload.policy import ChainView, ClientStatus, as_chain_view
from flb_dapp.storage.grpc_upload.signing import recover_uploader
from flb_dapp.storage.grpc_upload.stream import Refusal, StreamLimits, TimedStream, receive_content
from flb_dapp.storage.grpc_upload.tls import refuse_plaintext_listen, tls_server_credentials

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 << 20  # one streamed piece; clients send 256 KiB

__all__ = [
    "MAX_MESSAGE_BYTES",
    "AdapterUploadServicer",
    "StreamLimits",
    "UploadLedger",
    "UploadServer",
    "tls_server_credentials",
]


@dataclass(frozen=True)
class _Accepted:
    cid: str
    size: int


class UploadLedger:
    """One upload per signer and round: the accepted CID of each, and the uploads in progress.

    ``reserve`` is atomic, so two concurrent streams of one signer cannot both pass. Rounds older
    than the newest one seen are forgotten (their uploads are refused by the round check anyway).
    In memory: a restarted oracle accepts one more upload per signer for the open round.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[tuple[int, str], _Accepted] = {}
        self._pending: set[tuple[int, str]] = set()
        self._newest = 0

    def reserve(self, round: int, signer: str, cid: str, size: int, has: Callable[[str], bool]) -> str | None:
        """Reserve the slot for a new upload (returns None), or the accepted CID when this exact
        upload was already stored (``has(cid)`` still true); raises Refusal otherwise."""
        key = (round, signer)
        with self._lock:
            self._forget_before(round)
            accepted = self._accepted.get(key)
            if accepted is not None:
                if accepted.cid == cid and accepted.size == size and has(cid):
                    return cid
                if accepted.cid != cid or accepted.size != size:
                    raise Refusal(
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"{signer} already uploaded {accepted.cid} for round {round}; "
                        "one upload per client and round",
                    )
                del self._accepted[key]  # the same CID, lost by the store since: take it again
            if key in self._pending:
                raise Refusal(
                    grpc.StatusCode.ABORTED,
                    f"another upload by {signer} for round {round} is in progress",
                )
            self._pending.add(key)
            return None

    def accept(self, round: int, signer: str, cid: str, size: int) -> None:
        with self._lock:
            self._pending.discard((round, signer))
            self._accepted[(round, signer)] = _Accepted(cid, size)

    def release(self, round: int, signer: str) -> None:
        with self._lock:
            self._pending.discard((round, signer))

    def accepted(self, round: int, signer: str) -> str | None:
        with self._lock:
            entry = self._accepted.get((round, to_checksum_address(signer)))
            return entry.cid if entry else None

    def _forget_before(self, round: int) -> None:
        if round <= self._newest:
            return
        self._newest = round
        for key in [k for k in self._accepted if k[0] < round]:
            del self._accepted[key]


class AdapterUploadServicer(upload_pb2_grpc.AdapterUploadServicer):
    """The ``AdapterUpload`` service over one store, for one contract.

    ``chain`` is a :class:`ChainView` (the oracle passes a refreshed snapshot), or a bare
    ``is_registered(address)`` callable, which checks registration only (no round, no bans).
    """

    def __init__(
        self,
        store: ContentStore,
        chain: ChainView | Callable[[str], bool],
        contract_address: str,
        max_size: int,
        tmp_dir: str | os.PathLike[str] | None = None,
        *,
        limits: StreamLimits | None = None,
        ledger: UploadLedger | None = None,
    ) -> None:
        if not is_address(contract_address):
            raise ValueError(f"{contract_address!r} is not an Ethereum address")
        self.store = store
        self.chain = as_chain_view(chain)
        self.contract_address = to_checksum_address(contract_address)
        self.max_size = max_size
        self.tmp_dir = tmp_dir
        self.limits = limits or StreamLimits()
        self.ledger = ledger or UploadLedger()

    def Upload(  # the RPC's name, as the generated base class spells it
        self, request_iterator: Iterator[upload_pb2.UploadChunk], context: grpc.ServicerContext
    ) -> upload_pb2.UploadReceipt:
        stream = TimedStream(request_iterator, self.limits)
        try:
            return self._upload(stream)
        except Refusal as refusal:
            log.info("upload from %s refused (%s): %s", context.peer(), refusal.code.name, refusal)
            _abort(context, refusal.code, str(refusal))
        finally:
            stream.close()

    def _upload(self, stream: TimedStream) -> upload_pb2.UploadReceipt:
        first = stream.next(None)
        if first is None or first.WhichOneof("payload") != "header":
            raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the upload header")
        header = first.header
        cid = self._check_header(header)
        signer = self._check_signer(header, cid)
        self._check_round(header.round)
        self._check_standing(signer)
        if header.size > self.max_size:
            raise Refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"declared size {header.size} bytes exceeds this server's limit of {self.max_size}",
            )
        if self.ledger.reserve(header.round, signer, cid, header.size, self.store.has) is not None:
            log.info("upload of %s by %s for round %d: already stored", cid, signer, header.round)
            return upload_pb2.UploadReceipt(cid=cid, size=header.size, signer=signer)
        try:
            received = self._store(stream, header.size, cid)
        except BaseException:
            self.ledger.release(header.round, signer)
            raise
        self.ledger.accept(header.round, signer, cid, received)
        log.info("stored %s (%d bytes) from %s for round %d", cid, received, signer, header.round)
        return upload_pb2.UploadReceipt(cid=cid, size=received, signer=signer)

    def _store(self, stream: TimedStream, declared: int, cid: str) -> int:
        fd, tmp_name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                received = receive_content(stream, declared, cid, self.max_size, out)
            stored = self.store.put_file(tmp_name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        if stored != cid:  # pragma: no cover - the store computes the same CID as _receive did
            raise Refusal(grpc.StatusCode.INTERNAL, f"store keyed the upload as {stored}, expected {cid}")
        return received

    def _check_header(self, header: upload_pb2.UploadHeader) -> str:
        if not is_address(header.contract_address):
            raise Refusal(
                grpc.StatusCode.INVALID_ARGUMENT, f"contract address {header.contract_address!r} is malformed"
            )
        if to_checksum_address(header.contract_address) != self.contract_address:
            raise Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"upload is for contract {header.contract_address}; this server accepts uploads for "
                f"{self.contract_address}",
            )
        try:
            parsed = parse_cid(header.cid)
        except InvalidCidError as exc:
            raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"header CID is invalid: {exc}") from exc
        if parsed.version != 1:
            raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"header CID {header.cid} must be a CIDv1")
        return parsed.encode()

    def _check_signer(self, header: upload_pb2.UploadHeader, cid: str) -> str:
        if not header.signature:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "the upload header carries no signature")
        if not is_address(header.client_address):
            raise Refusal(
                grpc.StatusCode.UNAUTHENTICATED, f"client address {header.client_address!r} is malformed"
            )
        claimed = to_checksum_address(header.client_address)
        try:
            signer = recover_uploader(header.signature, self.contract_address, header.round, cid, header.size)
        except Exception as exc:  # eth_keys raises several types for a malformed signature
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, f"the signature is malformed: {exc}") from exc
        if signer != claimed:
            raise Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the signature is not {claimed}'s over this header (it recovers to {signer}): "
                "wrong key, or the contract, round, CID or size differ from what was signed",
            )
        return signer

    def _check_round(self, round: int) -> None:
        try:
            open_round = self.chain.open_round()
        except Exception as exc:
            raise Refusal(grpc.StatusCode.UNAVAILABLE, f"cannot tell the open round: {exc}") from exc
        if open_round is not None and round != open_round:
            raise Refusal(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"upload is signed for round {round}, but the open round is {open_round}",
            )

    def _check_standing(self, signer: str) -> None:
        try:
            status = self.chain.client_status(signer)
        except Exception as exc:
            raise Refusal(
                grpc.StatusCode.UNAVAILABLE, f"cannot check {signer}'s registration: {exc}"
            ) from exc
        if status is ClientStatus.BANNED:
            raise Refusal(
                grpc.StatusCode.PERMISSION_DENIED, f"{signer} is banned by contract {self.contract_address}"
            )
        if status is not ClientStatus.REGISTERED:
            raise Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{signer} is not a registered client of contract {self.contract_address}",
            )


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


class UploadServer:
    """A running gRPC server with the upload service; ``with UploadServer(...) as server:``.

    Without ``credentials`` it listens on loopback only (a ConfigError for any other ``host``,
    ``0.0.0.0`` included). ``limits.max_streams`` bounds the concurrent uploads: the pool has that
    many workers and gRPC refuses further calls with RESOURCE_EXHAUSTED instead of queueing them.
    """

    def __init__(
        self,
        store: ContentStore,
        chain: ChainView | Callable[[str], bool],
        contract_address: str,
        max_size: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: grpc.ServerCredentials | None = None,
        tmp_dir: str | os.PathLike[str] | None = None,
        limits: StreamLimits | None = None,
        ledger: UploadLedger | None = None,
    ) -> None:
        if credentials is None:
            refuse_plaintext_listen(host)
        self.limits = limits or StreamLimits()
        self.servicer = AdapterUploadServicer(
            store, chain, contract_address, max_size, tmp_dir, limits=self.limits, ledger=ledger
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.limits.max_streams, thread_name_prefix="flb-upload"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
            maximum_concurrent_rpcs=self.limits.max_streams,
        )
        upload_pb2_grpc.add_AdapterUploadServicer_to_server(self.servicer, self._server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bound = (
            self._server.add_secure_port(address, credentials)
            if credentials is not None
            else self._server.add_insecure_port(address)
        )
        if bound == 0:
            raise OSError(f"cannot listen on {address}")
        self.host = host
        self.port = bound
        self.tls = credentials is not None

    @property
    def target(self) -> str:
        """``host:port`` for clients."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> UploadServer:
        self._server.start()
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        self._server.stop(grace).wait()

    def wait(self) -> None:
        """Block until the server stops (for a foreground service)."""
        self._server.wait_for_termination()

    def __enter__(self) -> UploadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
