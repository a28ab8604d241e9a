"""Uploading an adapter to an FLB gRPC upload service, signed with the client's key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
from eth_account.signers.local import LocalAccount

from flb_dapp.exceptions import (
    CidMismatchError,
    ContentTooLargeError,
    StoreUnavailableError,
    UploadRefusedError,
)
from flb_dapp.storage.cid import CHUNK_SIZE, cid_of_bytes, cid_of_file, read_chunks
from flb_dapp.storage.grpc_upload import upload_pb2, upload_pb2_grpc
from flb_dapp.storage.grpc_upload.signing import sign_upload
from flb_dapp.storage.grpc_upload.tls import read_pem, refuse_plaintext_send

_REFUSALS = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}
_BUSY = "Concurrent RPC limit exceeded"  # gRPC's own text when the server's stream limit is reached


def _pieces(content: bytes | Path) -> Iterator[bytes]:
    if isinstance(content, bytes):
        for start in range(0, len(content), CHUNK_SIZE):
            yield content[start : start + CHUNK_SIZE]
        return
    with open(content, "rb") as handle:
        for piece in read_chunks(handle, CHUNK_SIZE):
            yield bytes(piece)


def upload_adapter(
    target: str,
    account: LocalAccount,
    contract_address: str,
    round: int,
    content: bytes | str | os.PathLike[str],
    *,
    root_certificates: bytes | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    tls: bool | None = None,
    timeout: float = 300.0,
) -> str:
    """Upload ``content`` (bytes or a file path) for ``round``; returns the CID the server stored.

    ``target`` is ``host:port``. TLS is used when ``root_certificates`` (PEM bytes) or ``ca_file``
    (a PEM file) name the CA to trust, or with ``tls=True`` (the system's roots); the server's
    certificate is then verified against them and the target's name. Plaintext is refused (a
    ConfigError, before anything is sent) unless the target is a loopback address. Refusals raise
    UploadRefusedError (the gRPC status name leads the message), ContentTooLargeError for size
    refusals, StoreUnavailableError when unreachable, busy, or too slow for the server's deadline.
    """
    if ca_file is not None:
        if root_certificates is not None:
            raise ValueError("give root_certificates or ca_file, not both")
        root_certificates = read_pem(ca_file, "the upload service's CA certificate")
    use_tls = tls if tls is not None else root_certificates is not None
    if not use_tls:
        refuse_plaintext_send(target)
    data = content if isinstance(content, bytes) else Path(content)
    if isinstance(data, bytes):
        cid, size = cid_of_bytes(data), len(data)
    else:
        cid, size = cid_of_file(data), data.stat().st_size
    header = upload_pb2.UploadHeader(
        contract_address=contract_address,
        round=round,
        cid=cid,
        size=size,
        client_address=account.address,
        signature=sign_upload(account, contract_address, round, cid, size),
    )

    def messages() -> Iterator[upload_pb2.UploadChunk]:
        yield upload_pb2.UploadChunk(header=header)
        for piece in _pieces(data):
            yield upload_pb2.UploadChunk(data=piece)

    channel = (
        grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root_certificates))
        if use_tls
        else grpc.insecure_channel(target)
    )
    try:
        receipt = upload_pb2_grpc.AdapterUploadStub(channel).Upload(messages(), timeout=timeout)
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _BUSY in (details or ""):
            raise StoreUnavailableError(
                f"upload service at {target} is busy ({code.name}): {details}"
            ) from None
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise ContentTooLargeError(f"upload refused ({code.name}): {details}") from None
        if code in _REFUSALS:
            raise UploadRefusedError(f"upload refused ({code.name}): {details}") from None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise StoreUnavailableError(
                f"upload service at {target} unavailable ({code.name}): {details}"
            ) from None
        raise UploadRefusedError(f"upload failed ({code.name}): {details}") from None
    finally:
        channel.close()
    if receipt.cid != cid:
        raise CidMismatchError(f"upload service stored {receipt.cid}, but the content's CID is {cid}")
    return str(receipt.cid)
