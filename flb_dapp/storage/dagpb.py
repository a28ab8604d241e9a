"""Hand-written protobuf for the two messages UnixFS files need: dag-pb ``PBNode`` and UnixFS ``Data``.

Only the subset that files use is written (no directories, no HAMT, no mode/mtime); the decoder
accepts any field it does not know by skipping it, so blocks written by other importers still
parse. Field numbers and the canonical order (dag-pb: ``Links`` before ``Data``; link fields
``Hash``, ``Name``, ``Tsize``) follow the dag-pb and UnixFS specs, because the bytes are hashed:
one byte out of place gives a different CID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# UnixFS Data.Type values (unixfs.proto).
UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2

# protobuf wire types
_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5


class ProtobufError(ValueError):
    """Bytes that are not a well-formed dag-pb / UnixFS message."""


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as protobuf and multiformats both use."""
    if value < 0:
        raise ValueError("varints are unsigned")
    if value < 0x80:  # NOTE: fast path: almost every varint in a CID or a tag is one byte
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Read one unsigned varint at ``pos``; returns (value, position after it)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 64 bits")


def _len_field(tag: int, payload: bytes | memoryview) -> bytes:
    return bytes((tag,)) + encode_varint(len(payload)) + bytes(payload)


# --- encoding ----------------------------------------------------------------------------------------
def unixfs_file_data(filesize: int, blocksizes: Sequence[int] = (), data: bytes | None = None) -> bytes:
    """UnixFS ``Data`` of a file node: Type=File, optional inline data, filesize, blocksizes."""
    out = bytearray(b"\x08\x02")  # field 1 (Type), varint 2 = File
    if data is not None:
        out += _len_field(0x12, data)  # field 2 (Data)
    out += b"\x18" + encode_varint(filesize)  # field 3 (filesize)
    for size in blocksizes:  # field 4 (blocksizes), proto2 repeated: not packed
        out += b"\x20" + encode_varint(size)
    return bytes(out)


def leaf_node_prefix(chunk_len: int) -> bytes:
    """The bytes of a dag-pb leaf node (CIDv0 style) that precede the chunk data.

    The leaf is ``PBNode{Data: UnixFS{Type=File, Data=chunk, filesize=len}}``; the chunk sits in the
    middle, so a hasher can be fed prefix, chunk, suffix without copying the chunk.
    """
    inner_len = 2 + 1 + len(encode_varint(chunk_len)) + chunk_len + 1 + len(encode_varint(chunk_len))
    return b"\x0a" + encode_varint(inner_len) + b"\x08\x02\x12" + encode_varint(chunk_len)


def leaf_node_suffix(chunk_len: int) -> bytes:
    """The bytes of a dag-pb leaf node that follow the chunk data (the filesize field)."""
    return b"\x18" + encode_varint(chunk_len)


def file_leaf_node(chunk: bytes | bytearray | memoryview) -> bytes:
    """The whole dag-pb leaf block (CIDv0 style) for one chunk.

    An empty file's single leaf carries no ``Data`` field at all (Kubo's ``0a 04 08 02 18 00``).
    """
    if len(chunk) == 0:
        return encode_node([], unixfs_file_data(0))
    return leaf_node_prefix(len(chunk)) + bytes(chunk) + leaf_node_suffix(len(chunk))


def encode_node(links: Sequence[tuple[bytes, int]], data: bytes) -> bytes:
    """A dag-pb ``PBNode``: links ``(cid bytes, tsize)`` with empty names, then ``Data``.

    Names are written even though empty (``12 00``), as Kubo and the JS importer do for file
    chunks; leaving them out would change every parent CID.
    """
    out = bytearray()
    for cid_bytes, tsize in links:
        link = _len_field(0x0A, cid_bytes) + b"\x12\x00" + b"\x18" + encode_varint(tsize)
        out += _len_field(0x12, link)
    out += _len_field(0x0A, data)
    return bytes(out)


# --- decoding ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PBLink:
    """One link of a dag-pb node."""

    hash: bytes
    name: str = ""
    tsize: int | None = None


@dataclass(frozen=True)
class PBNode:
    """A decoded dag-pb node."""

    links: tuple[PBLink, ...]
    data: bytes | None


@dataclass(frozen=True)
class UnixFSData:
    """A decoded UnixFS ``Data`` message (file fields only)."""

    type: int
    data: bytes = b""
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default_factory=tuple)


def _fields(buf: bytes | memoryview) -> list[tuple[int, int, int | memoryview]]:
    """Split a protobuf message into (field number, wire type, value) triples."""
    view = memoryview(buf)
    pos = 0
    out: list[tuple[int, int, int | memoryview]] = []
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == _VARINT:
            value, pos = decode_varint(view, pos)
            out.append((number, wire, value))
        elif wire == _LEN:
            length, pos = decode_varint(view, pos)
            if pos + length > len(view):
                raise ProtobufError("length-delimited field runs past the end")
            out.append((number, wire, view[pos : pos + length]))
            pos += length
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > len(view):
                raise ProtobufError("fixed-size field runs past the end")
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def decode_node(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block."""
    links: list[PBLink] = []
    data: bytes | None = None
    for number, wire, value in _fields(block):
        if number == 2 and wire == _LEN:
            assert isinstance(value, memoryview)
            links.append(_decode_link(value))
        elif number == 1 and wire == _LEN:
            assert isinstance(value, memoryview)
            data = bytes(value)
        else:
            raise ProtobufError(f"unexpected field {number} in a dag-pb node")
    return PBNode(tuple(links), data)


def _decode_link(buf: memoryview) -> PBLink:
    hash_: bytes | None = None
    name = ""
    tsize: int | None = None
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            assert isinstance(value, memoryview)
            hash_ = bytes(value)
        elif number == 2 and wire == _LEN:
            assert isinstance(value, memoryview)
            name = bytes(value).decode("utf-8", errors="strict")
        elif number == 3 and wire == _VARINT:
            assert isinstance(value, int)
            tsize = value
        else:
            raise ProtobufError(f"unexpected field {number} in a dag-pb link")
    if hash_ is None:
        raise ProtobufError("dag-pb link without a hash")
    return PBLink(hash_, name, tsize)


def decode_unixfs(buf: bytes | memoryview) -> UnixFSData:
    """Decode a UnixFS ``Data`` message; unknown fields (mode, mtime, ...) are skipped."""
    type_: int | None = None
    data = b""
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _VARINT:
            assert isinstance(value, int)
            type_ = value
        elif number == 2 and wire == _LEN:
            assert isinstance(value, memoryview)
            data = bytes(value)
        elif number == 3 and wire == _VARINT:
            assert isinstance(value, int)
            filesize = value
        elif number == 4 and wire == _VARINT:
            assert isinstance(value, int)
            blocksizes.append(value)
        elif number == 4 and wire == _LEN:  # a packed encoding is legal protobuf too
            assert isinstance(value, memoryview)
            pos = 0
            while pos < len(value):
                size, pos = decode_varint(value, pos)
                blocksizes.append(size)
    if type_ is None:
        raise ProtobufError("UnixFS data without a Type")
    return UnixFSData(type_, data, filesize, tuple(blocksizes))
