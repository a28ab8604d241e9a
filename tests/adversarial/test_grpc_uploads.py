"""Attacks on the gRPC upload service, on a real gRPC server on 127.0.0.1.

The first build checked only the signature and the registration: an upload signed for any round
was stored, a client could upload as often as it liked, a banned client was served, a stream had
no deadline (a trickler held a worker forever), and the service ran in plaintext on any address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from flb_dapp.exceptions import ConfigError
from flb_dapp.storage.cid import cid_of_bytes
from flb_dapp.storage.grpc_upload import (
    ChainSnapshot,
    ClientStatus,
    StreamLimits,
    UploadServer,
    upload_adapter,
    upload_pb2_grpc,
)
from flb_dapp.storage.grpc_upload import upload_pb2 as pb
from flb_dapp.storage.local import LocalStore
from tests.storage.test_grpc_upload import (
    ALICE,
    BOB,
    CONTENT,
    CONTRACT,
    MAX_SIZE,
    OPEN_ROUND,
    _assert_nothing_stored,
    _header,
    _refused,
    _send,
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[UploadServer, LocalStore, Path]]:
    store = LocalStore(tmp_path / "store")
    spool = tmp_path / "spool"
    spool.mkdir()
    snapshot = ChainSnapshot(
        OPEN_ROUND, {ALICE.address: ClientStatus.REGISTERED, BOB.address: ClientStatus.BANNED}
    )
    limits = StreamLimits(deadline_s=2.0, min_rate=64 << 10, max_streams=4)
    with UploadServer(store, snapshot, CONTRACT, MAX_SIZE, tmp_dir=spool, limits=limits) as server:
        yield server, store, spool


def test_an_upload_signed_for_another_round_is_refused(service) -> None:  # type: ignore[no-untyped-def]
    server, store, spool = service
    for other in (OPEN_ROUND - 1, OPEN_ROUND + 1):
        error = _refused(server, _header(round=other))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
        assert error.details() == f"upload is signed for round {other}, but the open round is {OPEN_ROUND}"
    _assert_nothing_stored(store, spool)


def test_one_upload_per_signer_and_round(service) -> None:  # type: ignore[no-untyped-def]
    server, store, _ = service
    assert _send(server, _header()).cid == cid_of_bytes(CONTENT)
    other = CONTENT[::-1]
    error = _refused(server, _header(data=other), other)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == (
        f"{ALICE.address} already uploaded {cid_of_bytes(CONTENT)} for round {OPEN_ROUND}; "
        "one upload per client and round"
    )
    assert list(store.cids()) == [cid_of_bytes(CONTENT)]


def test_a_banned_client_is_refused(service) -> None:  # type: ignore[no-untyped-def]
    server, store, spool = service
    error = _refused(server, _header(BOB))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "banned" in error.details()
    _assert_nothing_stored(store, spool)


def test_a_trickling_stream_is_cut_off_at_its_deadline(service) -> None:  # type: ignore[no-untyped-def]
    server, store, spool = service

    def trickle() -> Iterator[pb.UploadChunk]:
        yield pb.UploadChunk(header=_header())
        for start in range(0, len(CONTENT), 100):  # 100 bytes every 0.1 s: 1 KB/s
            time.sleep(0.1)
            yield pb.UploadChunk(data=CONTENT[start : start + 100])

    started = time.monotonic()
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as info:
        upload_pb2_grpc.AdapterUploadStub(channel).Upload(trickle(), timeout=60)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, info.value.details()
    assert time.monotonic() - started < 10  # the service's deadline, not the client's 60 s
    _assert_nothing_stored(store, spool)
    assert _send(server, _header()).cid == cid_of_bytes(CONTENT)  # the worker was freed


def test_plaintext_is_refused_off_loopback(tmp_path: Path) -> None:
    snapshot = ChainSnapshot(OPEN_ROUND, {})
    with pytest.raises(ConfigError, match=r"^refusing to serve gRPC uploads in plaintext on 0\.0\.0\.0"):
        UploadServer(LocalStore(tmp_path / "s"), snapshot, CONTRACT, MAX_SIZE, host="0.0.0.0", port=0)
    with pytest.raises(ConfigError, match="plaintext"):
        upload_adapter("oracle.example.org:50051", ALICE, CONTRACT, OPEN_ROUND, CONTENT)
