"""The CID calculator against the shared IPFS vectors, a reference layout, and the parsing rules."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flb_dapp.exceptions import InvalidCidError
from flb_dapp.storage import dagpb
from flb_dapp.storage.cid import (
    CODEC_DAG_PB,
    CODEC_RAW,
    Cid,
    UnixFSHasher,
    b58decode,
    b58encode,
    cid_from_bytes,
    cid_of_bytes,
    cid_of_chunks,
    cid_of_file,
    cid_to_bytes,
    is_cid,
    normalize_cid,
    parse_cid,
    verify_cid,
)
from tests.storage.conftest import load_vectors, vector_bytes

VECTORS = load_vectors()
SMALL = [case for case in VECTORS if int(case["size"]) <= 10_000_000]  # type: ignore[call-overload]
LARGE = [case for case in VECTORS if int(case["size"]) > 10_000_000]  # type: ignore[call-overload]


def _ids(cases: list[dict[str, object]]) -> list[str]:
    return [str(case["name"]) for case in cases]


# --- the shared vectors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", SMALL, ids=_ids(SMALL))
def test_vector_cids_both_columns(case: dict[str, object]) -> None:
    data = vector_bytes(str(case["name"]), int(case["size"]))  # type: ignore[call-overload]
    assert cid_of_bytes(data) == case["cid_v1_raw_leaves"]
    assert cid_of_bytes(data, cid_version=0) == case["cid_v0"]


@pytest.mark.slow
@pytest.mark.parametrize("case", LARGE, ids=_ids(LARGE))
def test_large_vector_cids_streamed_from_a_file(case: dict[str, object], tmp_path) -> None:
    data = vector_bytes(str(case["name"]), int(case["size"]))  # type: ignore[call-overload]
    assert cid_of_bytes(data) == case["cid_v1_raw_leaves"]
    assert cid_of_bytes(data, cid_version=0) == case["cid_v0"]
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    del data
    assert cid_of_file(path) == case["cid_v1_raw_leaves"]
    assert cid_of_file(path, cid_version=0) == case["cid_v0"]


def test_vectors_cover_every_tree_shape() -> None:
    sizes = {int(case["size"]) for case in VECTORS}  # type: ignore[call-overload]
    assert 0 in sizes  # empty file
    assert 262_144 in sizes  # exactly one chunk
    assert any(s > 174 * 262_144 for s in sizes)  # a two-level tree


def test_well_known_cids() -> None:
    assert cid_of_bytes(b"hello\n", cid_version=0) == "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
    assert cid_of_bytes(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


# --- streaming -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("piece", [1, 1000, 65_537, 262_143, 262_144, 262_145, 10**6])
def test_feeding_in_any_pieces_gives_the_same_cid(piece: int) -> None:
    data = vector_bytes("f5m", 5_242_880)[:1_300_000]
    expected = cid_of_bytes(data)
    assert cid_of_chunks(data[i : i + piece] for i in range(0, len(data), piece)) == expected


def test_file_object_and_path_agree(tmp_path) -> None:
    data = vector_bytes("f300k", 307_200)
    path = tmp_path / "f"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        assert (
            cid_of_file(handle)
            == cid_of_file(path)
            == "bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure"
        )


class _TrickleReader(io.RawIOBase):
    """A stream that returns at most 1000 bytes per read, like a pipe or a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), 1000, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def test_short_reads_still_cut_full_chunks() -> None:
    data = vector_bytes("f300k", 307_200)
    assert cid_of_file(_TrickleReader(data)) == "bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure"  # type: ignore[arg-type]


def test_blocks_handed_out_hash_to_their_cids() -> None:
    blocks: dict[Cid, bytes] = {}
    hasher = UnixFSHasher(0, on_block=lambda cid, block: blocks.__setitem__(cid, bytes(block)))
    hasher.update(vector_bytes("f300k", 307_200))
    root = hasher.finalize()
    assert str(root) == "QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY"
    assert len(blocks) == 3
    for cid, block in blocks.items():
        assert hashlib.sha256(block).digest() == cid.digest
    assert hasher.dag_size == sum(len(b) for b in blocks.values())


# --- a reference implementation of Kubo's balanced layout ------------------------------------------------
def _reference_cid(data: bytes, chunk: int, max_links: int, raw: bool) -> Cid:
    """Kubo's builder, transcribed as its recursion (grow the root one depth at a time, fill each
    new subtree depth-first), independent of the streaming level stack under test."""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    version = 1 if raw else 0
    queue = iter(chunks)
    remaining = [len(chunks)]

    def leaf() -> tuple[Cid, int, int]:
        piece = next(queue)
        remaining[0] -= 1
        if raw:
            return Cid(1, CODEC_RAW, hashlib.sha256(piece).digest()), len(piece), len(piece)
        block = dagpb.file_leaf_node(piece)
        return Cid(0, CODEC_DAG_PB, hashlib.sha256(block).digest()), len(block), len(piece)

    def node(children: list[tuple[Cid, int, int]]) -> tuple[Cid, int, int]:
        sizes = [c[2] for c in children]
        block = dagpb.encode_node(
            [(c[0].to_bytes(), c[1]) for c in children], dagpb.unixfs_file_data(sum(sizes), sizes)
        )
        return (
            Cid(version, CODEC_DAG_PB, hashlib.sha256(block).digest()),
            len(block) + sum(c[1] for c in children),
            sum(sizes),
        )

    def fill(depth: int, first: tuple[Cid, int, int] | None) -> tuple[Cid, int, int]:
        children = [first] if first else []
        while len(children) < max_links and remaining[0]:
            children.append(leaf() if depth == 1 else fill(depth - 1, None))
        return node(children)

    root = leaf()
    depth = 1
    while remaining[0]:
        root = fill(depth, root)
        depth += 1
    return root[0]


@pytest.mark.parametrize("raw", [True, False], ids=["raw-leaves", "dag-pb-leaves"])
def test_tree_shape_matches_the_reference_layout_at_every_size(raw: bool) -> None:
    # 3 links per node and 4-byte chunks reach depth 4 within 300 bytes: every partial-subtree case.
    data = bytes(range(256)) * 2
    for size in range(0, 300):
        hasher = UnixFSHasher(1 if raw else 0, chunk_size=4, max_links=3)
        hasher.update(data[:size])
        assert hasher.finalize() == _reference_cid(data[:size], 4, 3, raw), size


# --- parsing and the binary form ---------------------------------------------------------------------
def test_parse_cidv1_and_v0() -> None:
    v1 = parse_cid("bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure")
    assert (v1.version, v1.codec_name) == (1, "dag-pb")
    raw = parse_cid("bafkreiego4x62bhh5d5hrti7c6qhso7us7t52zyffkn3hqkpkqsn66b2zu")
    assert (raw.version, raw.codec_name) == (1, "raw")
    v0 = parse_cid("QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY")
    assert (v0.version, v0.codec, str(v0)) == (
        0,
        CODEC_DAG_PB,
        "QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY",
    )


def test_binary_cidv1_layout_and_round_trip() -> None:
    text = "bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure"
    binary = cid_to_bytes(text)
    assert binary[:4] == bytes([0x01, 0x70, 0x12, 0x20]) and len(binary) == 36
    assert binary[4:] == parse_cid(text).digest
    assert cid_from_bytes(binary) == text
    raw = cid_to_bytes("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    assert raw.hex() == "01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_v0_converts_to_the_v1_with_the_same_digest() -> None:
    v0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    binary = cid_to_bytes(v0)
    assert binary[:2] == b"\x01\x70" and binary[4:] == parse_cid(v0).digest
    assert cid_from_bytes(binary) == str(parse_cid(v0).to_v1())


def test_other_multibases_normalise_to_base32() -> None:
    text = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    binary = parse_cid(text).to_bytes()
    assert normalize_cid("B" + text[1:].upper()) == text
    assert normalize_cid("f" + binary.hex()) == text
    assert normalize_cid("z" + b58encode(binary)) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("hello", "not a CID"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk", "base32"),  # one char short
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquv", "digest"),  # 31-byte digest
        ("Qm" + "1" * 44, "CIDv0"),
        ("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "codec"),  # dag-cbor
        ("bafkrmihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "sha2-256"),  # other hash
        ("bafkReihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "mixed case"),
    ],
)
def test_invalid_cids_are_refused_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidCidError, match=fragment):
        parse_cid(text)
    assert not is_cid(text)


def test_invalid_binary_cids() -> None:
    with pytest.raises(InvalidCidError, match="version"):
        cid_from_bytes(b"\x02\x55\x12\x20" + b"\0" * 32)
    with pytest.raises(InvalidCidError, match="32 bytes"):
        cid_from_bytes(b"\x01\x55\x12\x20" + b"\0" * 31)
    with pytest.raises(InvalidCidError, match="truncated"):
        cid_from_bytes(b"\x01\x55")


def test_verify_cid() -> None:
    data = vector_bytes("f100", 100)
    assert verify_cid(data, "bafkreig4hyl5tz4dxsmcgxmyblzq7mh4o4s6bfaofczkqfftpceyfav6zy")
    assert verify_cid(data, "QmRYA5X8g63EoPqaLNiBC6QzyREG4LamUqj9CvmuoP3nWo")
    assert not verify_cid(data[:-1], "bafkreig4hyl5tz4dxsmcgxmyblzq7mh4o4s6bfaofczkqfftpceyfav6zy")


@pytest.mark.fuzzing
@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@pytest.mark.fuzzing
@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.sampled_from([CODEC_RAW, CODEC_DAG_PB]))
def test_text_and_binary_round_trip(digest: bytes, codec: int) -> None:
    cid = Cid(1, codec, digest)
    assert parse_cid(str(cid)) == cid
    assert Cid.from_bytes(cid.to_bytes()) == cid
    assert cid_from_bytes(cid_to_bytes(str(cid))) == str(cid)
