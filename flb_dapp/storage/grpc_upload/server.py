"""The gRPC upload service: accepts signed adapter uploads from registered clients into a store.

Checks run in the order that costs the least: the header (well-formed, this contract, a CIDv1),
the signature and registration, the declared size, all before a byte of content is read; then
the stream, counted against the size limit as it arrives and hashed on the way into a temp file.
Only content whose CID equals the signed one reaches the store, so a refused upload never leaves
anything behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import BinaryIO, NoReturn

import grpc
from eth_utils import is_address, to_checksum_address

from flb_dapp.exceptions import InvalidCidError
from flb_dapp.storage.base import ContentStore
from flb_dapp.storage.cid import UnixFSHasher, parse_cid
from flb_dapp.storage.grpc_upload import upload_pb2, upload_pb2_grpc
from flb_dapp.storage.grpc_upload.signing import recover_uploader

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 << 20  # one streamed piece; clients send 256 KiB


class _Refusal(Exception):
    """An upload refused with a gRPC status and a message for the client."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class AdapterUploadServicer(upload_pb2_grpc.AdapterUploadServicer):
    """The ``AdapterUpload`` service over one store, for one contract."""

    def __init__(
        self,
        store: ContentStore,
        is_registered: Callable[[str], bool],
        contract_address: str,
        max_size: int,
        tmp_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not is_address(contract_address):
            raise ValueError(f"{contract_address!r} is not an Ethereum address")
        self.store = store
        self.is_registered = is_registered
        self.contract_address = to_checksum_address(contract_address)
        self.max_size = max_size
        self.tmp_dir = tmp_dir

    def Upload(  # the RPC's name, as the generated base class spells it
        self, request_iterator: Iterator[upload_pb2.UploadChunk], context: grpc.ServicerContext
    ) -> upload_pb2.UploadReceipt:
        try:
            return self._upload(request_iterator)
        except _Refusal as refusal:
            log.info("upload refused (%s): %s", refusal.code.name, refusal)
            _abort(context, refusal.code, str(refusal))

    def _upload(self, requests: Iterator[upload_pb2.UploadChunk]) -> upload_pb2.UploadReceipt:
        first = next(requests, None)
        if first is None or first.WhichOneof("payload") != "header":
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the upload header")
        header = first.header
        cid = self._check_header(header)
        signer = self._check_signer(header, cid)
        if header.size > self.max_size:
            raise _Refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"declared size {header.size} bytes exceeds this server's limit of {self.max_size}",
            )
        fd, tmp_name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                received = self._receive(requests, header.size, cid, out)
            stored = self.store.put_file(tmp_name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        if stored != cid:  # pragma: no cover - the store computes the same CID as _receive did
            raise _Refusal(grpc.StatusCode.INTERNAL, f"store keyed the upload as {stored}, expected {cid}")
        log.info("stored %s (%d bytes) from %s", cid, received, signer)
        return upload_pb2.UploadReceipt(cid=cid, size=received, signer=signer)

    def _check_header(self, header: upload_pb2.UploadHeader) -> str:
        if not is_address(header.contract_address):
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT, f"contract address {header.contract_address!r} is malformed"
            )
        if to_checksum_address(header.contract_address) != self.contract_address:
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"upload is for contract {header.contract_address}; this server accepts uploads for "
                f"{self.contract_address}",
            )
        try:
            parsed = parse_cid(header.cid)
        except InvalidCidError as exc:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"header CID is invalid: {exc}") from exc
        if parsed.version != 1:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"header CID {header.cid} must be a CIDv1")
        return parsed.encode()

    def _check_signer(self, header: upload_pb2.UploadHeader, cid: str) -> str:
        if not header.signature:
            raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, "the upload header carries no signature")
        if not is_address(header.client_address):
            raise _Refusal(
                grpc.StatusCode.UNAUTHENTICATED, f"client address {header.client_address!r} is malformed"
            )
        claimed = to_checksum_address(header.client_address)
        try:
            signer = recover_uploader(header.signature, self.contract_address, header.round, cid, header.size)
        except Exception as exc:  # eth_keys raises several types for a malformed signature
            raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, f"the signature is malformed: {exc}") from exc
        if signer != claimed:
            raise _Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the signature is not {claimed}'s over this header (it recovers to {signer}): "
                "wrong key, or the contract, round, CID or size differ from what was signed",
            )
        try:
            registered = self.is_registered(signer)
        except Exception as exc:
            raise _Refusal(
                grpc.StatusCode.UNAVAILABLE, f"cannot check {signer}'s registration: {exc}"
            ) from exc
        if not registered:
            raise _Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{signer} is not a registered client of contract {self.contract_address}",
            )
        return signer

    def _receive(
        self, requests: Iterator[upload_pb2.UploadChunk], declared: int, cid: str, out: BinaryIO
    ) -> int:
        """Stream the content to ``out``, enforcing the limits; returns the byte count."""
        hasher = UnixFSHasher(1)
        received = 0
        for message in requests:
            if message.WhichOneof("payload") != "data":
                raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "only data may follow the header")
            received += len(message.data)
            if received > self.max_size:
                raise _Refusal(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"upload exceeds this server's limit of {self.max_size} bytes; stopped reading",
                )
            if received > declared:
                raise _Refusal(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"upload sends more than the {declared} bytes its header declared; stopped reading",
                )
            hasher.update(message.data)
            out.write(message.data)
        if received != declared:
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"stream ended after {received} bytes; header declared {declared}",
            )
        actual = hasher.finalize().encode()
        if actual != cid:
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"CID mismatch: the content hashes to {actual}, the signed header names {cid}",
            )
        return received


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def tls_server_credentials(certificate_chain: bytes, private_key: bytes) -> grpc.ServerCredentials:
    """Server TLS credentials from PEM bytes (no client certificates asked)."""
    return grpc.ssl_server_credentials([(private_key, certificate_chain)])


class UploadServer:
    """A running gRPC server with the upload service; ``with UploadServer(...) as server:``."""

    def __init__(
        self,
        store: ContentStore,
        is_registered: Callable[[str], bool],
        contract_address: str,
        max_size: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: grpc.ServerCredentials | None = None,
        tmp_dir: str | os.PathLike[str] | None = None,
        max_workers: int = 8,
    ) -> None:
        self.servicer = AdapterUploadServicer(store, is_registered, contract_address, max_size, tmp_dir)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flb-upload"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
        )
        upload_pb2_grpc.add_AdapterUploadServicer_to_server(self.servicer, self._server)
        address = f"{host}:{port}"
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
        return f"{self.host}:{self.port}"

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
