"""The signed gRPC upload service, on a real gRPC server on 127.0.0.1 (plain and TLS).

The attacks (wrong round, replays, tricklers, bans, plaintext) are in tests/adversarial/test_grpc_uploads.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from flb_dapp.exceptions import ConfigError, ContentTooLargeError, StoreUnavailableError, UploadRefusedError
from flb_dapp.storage.cid import cid_of_bytes
from flb_dapp.storage.grpc_upload import (
    ChainSnapshot,
    ClientStatus,
    SnapshotRefresher,
    StreamLimits,
    UploadLedger,
    UploadServer,
    is_loopback,
    recover_uploader,
    sign_upload,
    tls_server_credentials,
    tls_server_credentials_from_files,
    upload_adapter,
    upload_message,
    upload_pb2_grpc,
)
from flb_dapp.storage.grpc_upload import upload_pb2 as pb
from flb_dapp.storage.grpc_upload.tls import target_host
from flb_dapp.storage.local import LocalStore

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_CONTRACT = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
MAX_SIZE = 1_000_000
ALICE: LocalAccount = Account.from_key(b"\x11" * 32)  # registered
MALLORY: LocalAccount = Account.from_key(b"\x22" * 32)  # not registered
BOB: LocalAccount = Account.from_key(b"\x33" * 32)  # registered
CONTENT = bytes(range(256)) * 1200  # 307,200 bytes: two chunks
OPEN_ROUND = 3


def _snapshot() -> ChainSnapshot:
    return ChainSnapshot(
        OPEN_ROUND, {ALICE.address: ClientStatus.REGISTERED, BOB.address: ClientStatus.REGISTERED}
    )


@pytest.fixture
def uploads(tmp_path: Path) -> Iterator[tuple[UploadServer, LocalStore, Path]]:
    store = LocalStore(tmp_path / "store")
    spool = tmp_path / "spool"
    spool.mkdir()
    server = UploadServer(store, _snapshot(), CONTRACT, MAX_SIZE, tmp_dir=spool)
    with server:
        yield server, store, spool


def _header(
    account: LocalAccount = ALICE,
    *,
    data: bytes = CONTENT,
    round: int = 3,
    cid: str | None = None,
    size: int | None = None,
    contract: str = CONTRACT,
    client: str | None = None,
    signature: bytes | None = None,
) -> pb.UploadHeader:
    cid = cid or cid_of_bytes(data)
    size = len(data) if size is None else size
    return pb.UploadHeader(
        contract_address=contract,
        round=round,
        cid=cid,
        size=size,
        client_address=client or account.address,
        signature=sign_upload(account, contract, round, cid, size) if signature is None else signature,
    )


def _send(
    server: UploadServer, header: pb.UploadHeader | None, data: bytes = CONTENT, piece: int = 65_536
) -> pb.UploadReceipt:
    def messages() -> Iterator[pb.UploadChunk]:
        if header is not None:
            yield pb.UploadChunk(header=header)
        for start in range(0, len(data), piece):
            yield pb.UploadChunk(data=data[start : start + piece])

    with grpc.insecure_channel(server.target) as channel:
        return upload_pb2_grpc.AdapterUploadStub(channel).Upload(messages(), timeout=30)


def _refused(server: UploadServer, header: pb.UploadHeader | None, data: bytes = CONTENT) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        _send(server, header, data)
    return info.value


def _assert_nothing_stored(store: LocalStore, spool: Path) -> None:
    assert list(store.cids()) == []
    assert list(spool.iterdir()) == []


# --- signatures -------------------------------------------------------------------------------------------
def test_the_signed_text_is_canonical() -> None:
    cid = cid_of_bytes(CONTENT)
    assert upload_message(CONTRACT.lower(), 3, "B" + cid[1:].upper(), 307_200) == (
        f"FLB adapter upload\ncontract: {CONTRACT}\nround: 3\ncid: {cid}\nsize: 307200"
    )
    signature = sign_upload(ALICE, CONTRACT, 3, cid, 307_200)
    assert len(signature) == 65
    assert recover_uploader(signature, CONTRACT, 3, cid, 307_200) == ALICE.address
    assert recover_uploader(signature, CONTRACT, 4, cid, 307_200) != ALICE.address


# --- accepted ---------------------------------------------------------------------------------------------
def test_a_signed_upload_is_stored_under_its_cid(uploads) -> None:
    server, store, spool = uploads
    receipt = _send(server, _header())
    cid = cid_of_bytes(CONTENT)
    assert (receipt.cid, receipt.size, receipt.signer) == (cid, len(CONTENT), ALICE.address)
    assert store.get_bytes(cid) == CONTENT
    assert list(spool.iterdir()) == []


def test_client_function_uploads_bytes_and_files(uploads, tmp_path: Path) -> None:
    server, store, _ = uploads
    assert upload_adapter(server.target, ALICE, CONTRACT, 3, CONTENT) == cid_of_bytes(CONTENT)
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(b"another adapter")
    assert upload_adapter(server.target, BOB, CONTRACT, 3, path) == cid_of_bytes(b"another adapter")
    assert sorted(store.cids()) == sorted([cid_of_bytes(CONTENT), cid_of_bytes(b"another adapter")])


# --- refused ----------------------------------------------------------------------------------------------
def test_unsigned_upload_is_unauthenticated(uploads) -> None:
    server, store, spool = uploads
    error = _refused(server, _header(signature=b""))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "the upload header carries no signature"
    _assert_nothing_stored(store, spool)


def test_signature_by_another_key_is_unauthenticated(uploads) -> None:
    server, store, spool = uploads
    header = _header(MALLORY, client=ALICE.address)  # Mallory signs, claims to be Alice
    error = _refused(server, header)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details().startswith(f"the signature is not {ALICE.address}'s over this header")
    _assert_nothing_stored(store, spool)


def test_signature_over_another_round_is_unauthenticated(uploads) -> None:
    server, store, spool = uploads
    cid = cid_of_bytes(CONTENT)
    replayed = sign_upload(ALICE, CONTRACT, 2, cid, len(CONTENT))  # signed for round 2, sent for round 3
    error = _refused(server, _header(signature=replayed))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "differ from what was signed" in error.details()
    _assert_nothing_stored(store, spool)


def test_malformed_signature_is_unauthenticated(uploads) -> None:
    server, store, spool = uploads
    error = _refused(server, _header(signature=b"\x01" * 10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details().startswith("the signature is malformed")
    _assert_nothing_stored(store, spool)


def test_unregistered_signer_is_permission_denied(uploads) -> None:
    server, store, spool = uploads
    error = _refused(server, _header(MALLORY))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == f"{MALLORY.address} is not a registered client of contract {CONTRACT}"
    _assert_nothing_stored(store, spool)
    with pytest.raises(UploadRefusedError, match="PERMISSION_DENIED"):
        upload_adapter(server.target, MALLORY, CONTRACT, 3, CONTENT)


def test_declared_oversize_is_refused_before_reading(uploads) -> None:
    server, store, spool = uploads
    big = bytes(MAX_SIZE + 1)
    error = _refused(server, _header(data=big), big)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == f"declared size {MAX_SIZE + 1} bytes exceeds this server's limit of {MAX_SIZE}"
    _assert_nothing_stored(store, spool)
    with pytest.raises(ContentTooLargeError, match="RESOURCE_EXHAUSTED"):
        upload_adapter(server.target, ALICE, CONTRACT, 3, big)


def test_oversize_stream_is_cut_off_as_soon_as_it_exceeds(uploads) -> None:
    server, store, spool = uploads
    sent = []

    def endless() -> Iterator[pb.UploadChunk]:
        yield pb.UploadChunk(header=_header())  # declares 307,200 bytes, then keeps sending
        for _ in range(400):  # 100 MB if the server kept reading
            sent.append(1)
            yield pb.UploadChunk(data=bytes(262_144))

    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as info:
        upload_pb2_grpc.AdapterUploadStub(channel).Upload(endless(), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than the 307200 bytes its header declared" in info.value.details()
    assert len(sent) < 40  # stopped after a few chunks (5 here), not after 400
    _assert_nothing_stored(store, spool)


def test_content_not_matching_the_signed_cid_is_invalid(uploads) -> None:
    server, store, spool = uploads
    tampered = CONTENT[:-1] + b"\x00"
    error = _refused(server, _header(cid=cid_of_bytes(CONTENT)), tampered)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        f"CID mismatch: the content hashes to {cid_of_bytes(tampered)}, "
        f"the signed header names {cid_of_bytes(CONTENT)}"
    )
    _assert_nothing_stored(store, spool)


def test_stream_shorter_than_declared_is_invalid(uploads) -> None:
    server, store, spool = uploads
    error = _refused(server, _header(), CONTENT[:1000])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "stream ended after 1000 bytes; header declared 307200"
    _assert_nothing_stored(store, spool)


@pytest.mark.parametrize(
    ("header", "details"),
    [
        (None, "the first message must be the upload header"),
        (_header(contract=OTHER_CONTRACT), f"upload is for contract {OTHER_CONTRACT}; this server accepts"),
        (_header(cid="not-a-cid", signature=b"\x01" * 65), "header CID is invalid"),
        (_header(cid="QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY"), "must be a CIDv1"),
        (_header(contract="0x1234", signature=b"\x01" * 65), "contract address '0x1234' is malformed"),
    ],
    ids=["no-header", "other-contract", "bad-cid", "cidv0", "bad-contract"],
)
def test_malformed_headers_are_invalid(uploads, header: pb.UploadHeader | None, details: str) -> None:
    server, store, spool = uploads
    error = _refused(server, header)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in error.details()
    _assert_nothing_stored(store, spool)


def test_unreachable_service() -> None:
    with pytest.raises(StoreUnavailableError, match="UNAVAILABLE"):
        upload_adapter("127.0.0.1:9", ALICE, CONTRACT, 3, b"x", timeout=5)


# --- TLS ----------------------------------------------------------------------------------------------------
def _self_signed() -> tuple[bytes, bytes]:
    """A self-signed certificate for 127.0.0.1 / localhost, made now."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_upload_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed()
    store = LocalStore(tmp_path / "store")
    credentials = tls_server_credentials(cert, key)
    with UploadServer(
        store, lambda a: a == ALICE.address, CONTRACT, MAX_SIZE, credentials=credentials
    ) as server:
        assert server.tls
        cid = upload_adapter(server.target, ALICE, CONTRACT, 3, CONTENT, root_certificates=cert)
        assert store.get_bytes(cid) == CONTENT
        # a plaintext client cannot talk to it
        with pytest.raises(StoreUnavailableError):
            upload_adapter(server.target, ALICE, CONTRACT, 3, b"plain", timeout=5)
    assert list(store.cids()) == [cid]


def test_tls_credentials_from_files(tmp_path: Path) -> None:
    cert, key = _self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    store = LocalStore(tmp_path / "store")
    credentials = tls_server_credentials_from_files(tmp_path / "cert.pem", tmp_path / "key.pem")
    with UploadServer(store, _snapshot(), CONTRACT, MAX_SIZE, credentials=credentials) as server:
        cid = upload_adapter(server.target, ALICE, CONTRACT, 3, CONTENT, ca_file=tmp_path / "cert.pem")
    assert store.get_bytes(cid) == CONTENT
    with pytest.raises(ConfigError, match=r"^cannot read the TLS private key .*missing\.pem"):
        tls_server_credentials_from_files(tmp_path / "cert.pem", tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match=r"^the TLS certificate .*junk\.pem is not a PEM file$"):
        tls_server_credentials_from_files(tmp_path / "junk.pem", tmp_path / "key.pem")
    with pytest.raises(ConfigError, match=r"^cannot read the upload service's CA certificate"):
        upload_adapter("127.0.0.1:9", ALICE, CONTRACT, 3, CONTENT, ca_file=tmp_path / "missing.pem")


# --- the chain view, the quota, the limits -----------------------------------------------------------------
def test_an_unloaded_chain_view_is_unavailable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with UploadServer(store, ChainSnapshot(), CONTRACT, MAX_SIZE) as server:
        error = _refused(server, _header())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == (
        "cannot tell the open round: the oracle has not read the chain yet; retry in a few seconds"
    )
    assert list(store.cids()) == []


def test_a_failing_chain_view_is_unavailable(tmp_path: Path) -> None:
    class Broken:
        def open_round(self) -> int:
            return OPEN_ROUND

        def client_status(self, address: str) -> ClientStatus:
            raise RuntimeError("node down")

    with UploadServer(LocalStore(tmp_path / "store"), Broken(), CONTRACT, MAX_SIZE) as server:
        error = _refused(server, _header())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == f"cannot check {ALICE.address}'s registration: node down"


def test_a_bare_callable_checks_registration_only(tmp_path: Path) -> None:
    """The former interface (``is_registered``) still works: no round check, no bans."""
    store = LocalStore(tmp_path / "store")
    with UploadServer(store, lambda a: a == ALICE.address, CONTRACT, MAX_SIZE) as server:
        assert _send(server, _header(round=17)).cid == cid_of_bytes(CONTENT)
        assert _refused(server, _header(MALLORY)).code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_snapshot_updates_and_replaces() -> None:
    snapshot = ChainSnapshot()
    snapshot.update(4, {ALICE.address.lower(): ClientStatus.REGISTERED}, block=10)
    assert (snapshot.open_round(), snapshot.block) == (4, 10)
    assert snapshot.client_status(ALICE.address) is ClientStatus.REGISTERED
    snapshot.set_client(ALICE.address, ClientStatus.BANNED)
    assert snapshot.client_status(ALICE.address.lower()) is ClientStatus.BANNED
    snapshot.update(5, {BOB.address: ClientStatus.REGISTERED}, replace=True)
    assert snapshot.client_status(ALICE.address) is ClientStatus.UNREGISTERED
    assert snapshot.client_status(BOB.address) is ClientStatus.REGISTERED


def test_the_refresher_survives_failures_and_stops() -> None:
    calls: list[float] = []

    def refresh() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("node down")

    refresher = SnapshotRefresher(refresh, 0.05).start()  # returns after the first (failed) attempt
    assert (refresher.failures, refresher.last_error) == (1, "RuntimeError: node down")
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    refresher.stop()
    assert len(calls) >= 3 and refresher.failures == 0
    done = len(calls)
    time.sleep(0.15)
    assert len(calls) == done
    with pytest.raises(ValueError, match="positive"):
        SnapshotRefresher(refresh, 0)


def test_the_ledger_keeps_one_upload_per_signer_and_round() -> None:
    ledger = UploadLedger()
    has = {"cid-a"}.__contains__
    assert ledger.reserve(3, ALICE.address, "cid-a", 10, has) is None
    with pytest.raises(Exception, match=f"another upload by {ALICE.address} for round 3 is in progress"):
        ledger.reserve(3, ALICE.address, "cid-a", 10, has)
    assert ledger.reserve(3, BOB.address, "cid-b", 10, has) is None  # another signer: its own slot
    ledger.release(3, BOB.address)  # failed: the slot is free again
    assert ledger.reserve(3, BOB.address, "cid-b", 10, has) is None
    ledger.accept(3, ALICE.address, "cid-a", 10)
    assert ledger.accepted(3, ALICE.address) == "cid-a"
    assert ledger.reserve(3, ALICE.address, "cid-a", 10, has) == "cid-a"  # the same: idempotent
    with pytest.raises(Exception, match=f"{ALICE.address} already uploaded cid-a for round 3"):
        ledger.reserve(3, ALICE.address, "cid-c", 12, has)
    assert ledger.reserve(4, ALICE.address, "cid-c", 12, has) is None  # a new round: a new slot
    assert ledger.accepted(3, ALICE.address) is None  # and older rounds are forgotten


def test_the_same_cid_lost_by_the_store_may_be_sent_again() -> None:
    ledger = UploadLedger()
    assert ledger.reserve(3, ALICE.address, "cid-a", 10, lambda cid: False) is None
    ledger.accept(3, ALICE.address, "cid-a", 10)
    assert ledger.reserve(3, ALICE.address, "cid-a", 10, lambda cid: False) is None


def test_stream_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="invalid stream limits"):
        StreamLimits(deadline_s=0)
    with pytest.raises(ValueError, match="invalid stream limits"):
        StreamLimits(max_streams=0)


def test_a_client_cancelling_mid_stream_frees_the_slot(uploads) -> None:
    server, store, spool = uploads
    release = threading.Event()

    def half() -> Iterator[pb.UploadChunk]:
        yield pb.UploadChunk(header=_header())
        yield pb.UploadChunk(data=CONTENT[:1000])
        release.wait(5)

    with grpc.insecure_channel(server.target) as channel:
        call = upload_pb2_grpc.AdapterUploadStub(channel).Upload.future(half(), timeout=30)
        time.sleep(0.3)
        call.cancel()
    release.set()
    _assert_nothing_stored(store, spool) if _wait_for_empty(spool) else pytest.fail("spool not cleaned")
    assert _send(server, _header()).cid == cid_of_bytes(CONTENT)  # the slot was released


def _wait_for_empty(folder: Path, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(folder.iterdir()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("oracle.example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("127.0.0.1:50051", "127.0.0.1"),
        ("[::1]:50051", "::1"),
        ("dns:///oracle.example.org:443", "oracle.example.org"),
        ("ipv4:10.0.0.5:50051", "10.0.0.5"),
        ("unix:/run/flb.sock", "localhost"),
        ("oracle.example.org", "oracle.example.org"),
    ],
)
def test_target_hosts(target: str, host: str) -> None:
    assert target_host(target) == host
