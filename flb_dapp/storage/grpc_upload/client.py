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

_REFUSALS = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
}


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
    tls: bool | None = None,
    timeout: float = 300.0,
) -> str:
    """Upload ``content`` (bytes or a file path) for ``round``; returns the CID the server stored.

    ``target`` is ``host:port``. TLS is used when ``root_certificates`` (PEM) are given or
    ``tls=True`` (system roots). Refusals raise UploadRefusedError (the gRPC status name leads the
    message), ContentTooLargeError for size refusals, StoreUnavailableError when unreachable.
    """
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

    use_tls = tls if tls is not None else root_certificates is not None
    channel = (
        grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root_certificates))
        if use_tls
        else grpc.insecure_channel(target)
    )
    try:
        receipt = upload_pb2_grpc.AdapterUploadStub(channel).Upload(messages(), timeout=timeout)
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
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
