"""IPFS CIDs: the value type, parsing and formatting, and a streaming UnixFS CID calculator.

The calculator gives exactly what ``ipfs add`` gives with Kubo's defaults: 256 KiB fixed-size
chunks, a balanced DAG with at most 174 links per node, sha2-256. ``cid_version=1`` also means
raw leaves (``ipfs add --cid-version=1``: a chunk's CID is the hash of the chunk itself, codec
``raw``); ``cid_version=0`` wraps each chunk in a dag-pb/UnixFS leaf node (the old ``Qm...``).

It is stdlib only and streams: a file is read in fixed-size pieces and only one chunk plus one
pending list of at most 174 links per tree level is ever held, whatever the file size.

The contract stores CIDs in their binary CIDv1 form: ``0x01 <codec varint> 0x12 0x20 <digest>``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from flb_dapp.exceptions import InvalidCidError
from flb_dapp.storage import dagpb
from flb_dapp.storage.multibase import b32decode, b32encode, b58decode, b58encode  # b58*: re-exported

CHUNK_SIZE = 262_144  # Kubo's default chunker, size-262144
MAX_LINKS = 174  # Kubo's balanced layout: links per internal node
CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
MULTIHASH_SHA2_256 = 0x12
DIGEST_SIZE = 32

CODEC_NAMES = {CODEC_RAW: "raw", CODEC_DAG_PB: "dag-pb"}
_READ_SIZE = 4 * CHUNK_SIZE  # a multiple of the chunk size keeps reads aligned to chunks


# --- the CID value type ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cid:
    """A sha2-256 CID: version (0 or 1), codec (raw or dag-pb) and the 32-byte digest."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise InvalidCidError(f"CID version {self.version} is not supported (0 or 1)")
        if self.codec not in CODEC_NAMES:
            raise InvalidCidError(f"CID codec 0x{self.codec:x} is not supported (raw 0x55 or dag-pb 0x70)")
        if self.version == 0 and self.codec != CODEC_DAG_PB:
            raise InvalidCidError("a CIDv0 is always dag-pb")
        if len(self.digest) != DIGEST_SIZE:
            raise InvalidCidError(f"a sha2-256 digest has 32 bytes, got {len(self.digest)}")

    @property
    def codec_name(self) -> str:
        return CODEC_NAMES[self.codec]

    @property
    def multihash(self) -> bytes:
        return bytes((MULTIHASH_SHA2_256, DIGEST_SIZE)) + self.digest

    def to_bytes(self) -> bytes:
        """The binary CID: the bare multihash for v0, ``0x01 codec multihash`` for v1."""
        if self.version == 0:
            return self.multihash
        return b"\x01" + dagpb.encode_varint(self.codec) + self.multihash

    def to_v1(self) -> Cid:
        """The same content as a CIDv1 (a v0 becomes a v1 dag-pb with the same digest)."""
        return self if self.version == 1 else Cid(1, self.codec, self.digest)

    def encode(self) -> str:
        """The usual text form: base58btc ``Qm...`` for v0, base32 ``b...`` for v1."""
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + b32encode(self.to_bytes())

    def __str__(self) -> str:
        return self.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Cid:
        """Parse a binary CID (v0 multihash or v1); see :func:`cid_from_bytes`."""
        data = bytes(data)
        if len(data) == 34 and data[0] == MULTIHASH_SHA2_256 and data[1] == DIGEST_SIZE:
            return cls(0, CODEC_DAG_PB, data[2:])
        try:
            version, pos = dagpb.decode_varint(data, 0)
            if version != 1:
                raise InvalidCidError(
                    f"binary CID has version {version}; FLB accepts CIDv1 (or a v0 multihash)"
                )
            codec, pos = dagpb.decode_varint(data, pos)
            hash_code, pos = dagpb.decode_varint(data, pos)
            length, pos = dagpb.decode_varint(data, pos)
        except dagpb.ProtobufError as exc:
            raise InvalidCidError(f"binary CID is truncated: {data.hex()}") from exc
        if hash_code != MULTIHASH_SHA2_256:
            raise InvalidCidError(f"CID hash function 0x{hash_code:x} is not sha2-256 (0x12)")
        if length != DIGEST_SIZE or len(data) - pos != DIGEST_SIZE:
            raise InvalidCidError(
                f"CID digest must be 32 bytes; header says {length}, {len(data) - pos} bytes follow"
            )
        return cls(1, codec, data[pos:])

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID string; see :func:`parse_cid`."""
        if not isinstance(text, str):
            raise InvalidCidError(f"a CID string is expected, got {type(text).__name__}")
        text = text.strip()
        if not text:
            raise InvalidCidError("empty CID")
        try:
            if len(text) == 46 and text.startswith("Qm"):
                raw = b58decode(text)
                if len(raw) != 34 or raw[:2] != b"\x12\x20":
                    raise InvalidCidError(f"{text!r} is not a CIDv0 (a base58 sha2-256 multihash)")
                return cls.from_bytes(raw)
            prefix, body = text[0], text[1:]
            if prefix in "bB":
                if body not in (body.lower(), body.upper()):
                    raise ValueError("mixed case base32")
                try:
                    raw = b32decode(body)
                except ValueError as exc:
                    raise ValueError(f"not valid base32 ({exc})") from exc
            elif prefix == "z":
                raw = b58decode(body)
            elif prefix in "fF":
                raw = bytes.fromhex(body)
            else:
                raise InvalidCidError(
                    f"{text!r} is not a CID: expected 'Qm...' (v0) or a multibase prefix b/B/z/f"
                )
        except ValueError as exc:  # binascii.Error is a ValueError too
            if isinstance(exc, InvalidCidError):
                raise
            raise InvalidCidError(f"{text!r} is not a CID: {exc}") from exc
        cid = cls.from_bytes(raw)
        if cid.version == 0:
            raise InvalidCidError(f"{text!r}: a CIDv0 must be written in base58btc ('Qm...')")
        return cid


def parse_cid(text: str) -> Cid:
    """Parse ``Qm...`` (v0) or a multibase CIDv1 (``b``/``B`` base32, ``z`` base58btc, ``f`` hex).

    Only sha2-256 CIDs with codec raw or dag-pb are accepted (all that UnixFS files produce);
    anything else raises :class:`InvalidCidError` naming the problem.
    """
    return Cid.parse(text)


def normalize_cid(text: str) -> str:
    """The canonical text of a CID (base32 lower case for v1), for use as a key."""
    return parse_cid(text).encode()


def is_cid(text: str) -> bool:
    """Whether ``text`` parses as a CID FLB accepts."""
    try:
        parse_cid(text)
    except InvalidCidError:
        return False
    return True


def cid_to_bytes(cid_str: str) -> bytes:
    """The binary CIDv1 the contract stores: ``0x01 <codec varint> 0x12 0x20 <32-byte digest>``.

    A CIDv0 is converted to the equivalent CIDv1 (dag-pb, same digest) since the contract holds
    v1 only.
    """
    return parse_cid(cid_str).to_v1().to_bytes()


def cid_from_bytes(data: bytes) -> str:
    """The text form (base32 ``b...``) of a binary CIDv1 as read from the chain."""
    return Cid.from_bytes(data).encode()


# --- the streaming UnixFS importer -----------------------------------------------------------------------
BlockSink = Callable[[Cid, "bytes | bytearray | memoryview"], None]
"""Receives each block as it is made: (its CID, its bytes). The bytes may be a view into a reused
buffer: consume or copy them before returning."""


@dataclass(frozen=True)
class _Link:
    cid: Cid
    tsize: int  # cumulative size of the block and everything below it (dag-pb Tsize)
    filesize: int  # file bytes under it (UnixFS blocksizes)


class UnixFSHasher:
    """Computes a file's UnixFS CID from its bytes fed in any pieces, like a hashlib object.

    ``update()`` as often as needed, then ``finalize()`` once. With ``on_block`` every block of the
    DAG (leaves, then each parent once its children are done) is handed out as it is made, which
    is how the CAR writer reuses this code; ``emit_leaves=False`` hands out the parents only.
    """

    def __init__(
        self,
        cid_version: int = 1,
        *,
        on_block: BlockSink | None = None,
        emit_leaves: bool = True,
        chunk_size: int = CHUNK_SIZE,
        max_links: int = MAX_LINKS,
    ) -> None:
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        self.cid_version = cid_version
        self._raw_leaves = cid_version == 1  # what `ipfs add --cid-version=1` implies
        self._on_block = on_block
        self._emit_leaves = emit_leaves
        self._chunk_size = chunk_size
        self._max_links = max_links
        self._pending = bytearray()
        self._levels: list[list[_Link]] = [[]]
        self._leaves = 0
        self.size = 0  # file bytes seen so far
        self.dag_size = 0  # the root's cumulative size (Kubo's "Size"), set by finalize()
        self._result: Cid | None = None

    # -- feeding --------------------------------------------------------------------------------------
    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the file."""
        if self._result is not None:
            raise RuntimeError("finalize() was already called")
        view = memoryview(data).cast("B")
        self.size += len(view)
        offset = 0
        if self._pending:
            take = min(self._chunk_size - len(self._pending), len(view))
            self._pending += view[:take]
            offset = take
            if len(self._pending) < self._chunk_size:
                return
            self._leaf(self._pending)
            self._pending = bytearray()
        # NOTE: whole chunks are hashed straight from the caller's buffer, no copy; that is what
        # keeps the calculator close to plain sha256 speed.
        while len(view) - offset >= self._chunk_size:
            self._leaf(view[offset : offset + self._chunk_size])
            offset += self._chunk_size
        if offset < len(view):
            self._pending += view[offset:]

    def finalize(self) -> Cid:
        """The root CID. Calling it again returns the same CID."""
        if self._result is not None:
            return self._result
        if self._pending or self._leaves == 0:
            # NOTE: an empty file is one empty leaf, as in Kubo (raw: the hash of b"").
            self._leaf(self._pending)
            self._pending = bytearray()
        level = 0
        while True:
            links = self._levels[level]
            is_top = all(not above for above in self._levels[level + 1 :])
            if is_top and len(links) == 1:
                self._result = links[0].cid
                self.dag_size = links[0].tsize
                return self._result
            if links:
                self._flush(level)
            level += 1

    # -- building -------------------------------------------------------------------------------------
    def _leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if self._raw_leaves:
            cid = Cid(1, CODEC_RAW, hashlib.sha256(chunk).digest())
            if self._on_block is not None and self._emit_leaves:
                self._on_block(cid, chunk)
            tsize = n
        elif n == 0 or (self._on_block is not None and self._emit_leaves):
            block = dagpb.file_leaf_node(chunk)
            cid = Cid(0, CODEC_DAG_PB, hashlib.sha256(block).digest())
            if self._on_block is not None and self._emit_leaves:
                self._on_block(cid, block)
            tsize = len(block)
        else:
            # NOTE: hash prefix, chunk, suffix in turn rather than building the wrapped leaf: no copy.
            prefix, suffix = dagpb.leaf_node_prefix(n), dagpb.leaf_node_suffix(n)
            hasher = hashlib.sha256(prefix)
            hasher.update(chunk)
            hasher.update(suffix)
            cid = Cid(0, CODEC_DAG_PB, hasher.digest())
            tsize = len(prefix) + n + len(suffix)
        self._leaves += 1
        self._push(0, _Link(cid, tsize, n))

    def _push(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(link)
        # NOTE: a full node is closed at once; grouping leaves by 174, then those nodes by 174,
        # ... gives the same tree as Kubo's depth-first balanced builder.
        if len(self._levels[level]) == self._max_links:
            self._flush(level)

    def _flush(self, level: int) -> None:
        links = self._levels[level]
        self._levels[level] = []
        filesize = sum(link.filesize for link in links)
        data = dagpb.unixfs_file_data(filesize, [link.filesize for link in links])
        block = dagpb.encode_node([(link.cid.to_bytes(), link.tsize) for link in links], data)
        cid = Cid(self.cid_version, CODEC_DAG_PB, hashlib.sha256(block).digest())
        if self._on_block is not None:
            self._on_block(cid, block)
        self._push(level + 1, _Link(cid, len(block) + sum(link.tsize for link in links), filesize))


# --- one-call helpers --------------------------------------------------------------------------------------
def cid_of_bytes(data: bytes | bytearray | memoryview, cid_version: int = 1) -> str:
    """The CID ``ipfs add`` gives for these bytes (``--cid-version=1`` by default)."""
    hasher = UnixFSHasher(cid_version)
    hasher.update(data)
    return hasher.finalize().encode()


def cid_of_chunks(chunks: Iterable[bytes | bytearray | memoryview], cid_version: int = 1) -> str:
    """The CID of the concatenation of ``chunks`` (any sizes), without joining them."""
    hasher = UnixFSHasher(cid_version)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.finalize().encode()


def read_chunks(file: BinaryIO, size: int = _READ_SIZE) -> Iterable[memoryview]:
    """Yield views of successive pieces of ``file``, reusing one buffer (copy what you keep)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    while True:
        n = file.readinto(view)  # type: ignore[attr-defined]
        if not n:
            return
        yield view[:n]


def cid_of_file(
    file: str | os.PathLike[str] | BinaryIO, cid_version: int = 1, on_block: BlockSink | None = None
) -> str:
    """The CID of a file given by path or as a binary file object, read in 1 MiB pieces."""
    hasher = UnixFSHasher(cid_version, on_block=on_block)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as handle:
            for piece in read_chunks(handle):
                hasher.update(piece)
    else:
        for piece in read_chunks(file):
            hasher.update(piece)
    return hasher.finalize().encode()


def verify_cid(data: bytes | bytearray | memoryview, cid: str | Cid) -> bool:
    """Whether ``data`` is the content of ``cid`` under FLB's layout (same version as the CID)."""
    expected = cid if isinstance(cid, Cid) else parse_cid(cid)
    hasher = UnixFSHasher(expected.version)
    hasher.update(data)
    return hasher.finalize() == expected
