"""CAR v1 (Content-Addressable aRchive): write a file's UnixFS DAG, read and verify one back.

A CAR is how blocks move between IPFS nodes and FLB's local store: ``ipfs dag export`` /
``dag import`` speak it. Layout: ``varint(len) dag-cbor{roots, version: 1}`` then, per block,
``varint(len(cid) + len(data)) cid data``.

Export writes the blocks depth-first, parents before children, each block once: the order of
``ipfs dag export``, so a CAR made here is byte-identical to the node's. Import accepts any
order: it indexes the file (checking every block's hash), then walks the DAG from each root.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from flb_dapp.exceptions import CarFormatError, CidMismatchError, InvalidCidError, UnsupportedLayoutError
from flb_dapp.storage import dagpb
from flb_dapp.storage.cid import CHUNK_SIZE, CODEC_RAW, Cid, UnixFSHasher, read_chunks

MAX_HEADER_SIZE = 1 << 20
MAX_BLOCK_SIZE = 4 << 20  # Kubo refuses blocks over 2 MiB; anything bigger is not a real block


# --- the header: a two-key dag-cbor map ------------------------------------------------------------
def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes((major << 5 | value,))
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes((major << 5 | info,)) + value.to_bytes(width, "big")
    raise ValueError("CBOR value too large")


def encode_header(roots: Sequence[Cid]) -> bytes:
    """dag-cbor ``{"roots": [CID...], "version": 1}`` (keys in dag-cbor's length-first order)."""
    out = bytearray(b"\xa2")  # map of 2
    out += _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for root in roots:
        link = b"\x00" + root.to_bytes()  # tag 42: a CID is bytes with a leading multibase 0x00
        out += b"\xd8\x2a" + _cbor_head(2, len(link)) + link
    out += _cbor_head(3, 7) + b"version" + b"\x01"
    return bytes(out)


def _cbor_decode(buf: bytes, pos: int, depth: int = 0) -> tuple[object, int]:
    """Decode the small CBOR subset a CAR header uses (definite lengths only)."""
    if depth > 8 or pos >= len(buf):
        raise CarFormatError("CAR header is not valid CBOR")
    initial = buf[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info <= 27:
        width = 1 << (info - 24)
        if pos + width > len(buf):
            raise CarFormatError("CAR header is truncated")
        arg = int.from_bytes(buf[pos : pos + width], "big")
        pos += width
    else:
        raise CarFormatError("CAR header uses indefinite-length CBOR")
    if major == 0:
        return arg, pos
    if major in (2, 3):
        if pos + arg > len(buf):
            raise CarFormatError("CAR header is truncated")
        raw = buf[pos : pos + arg]
        return (raw if major == 2 else raw.decode("utf-8")), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, pos = _cbor_decode(buf, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        mapping: dict[object, object] = {}
        for _ in range(arg):
            key, pos = _cbor_decode(buf, pos, depth + 1)
            mapping[key], pos = _cbor_decode(buf, pos, depth + 1)
        return mapping, pos
    if major == 6 and arg == 42:
        link, pos = _cbor_decode(buf, pos, depth + 1)
        if not isinstance(link, bytes) or not link.startswith(b"\x00"):
            raise CarFormatError("CAR header holds a malformed CID link")
        return Cid.from_bytes(link[1:]), pos
    if major == 7 and info in (20, 21, 22):
        return {20: False, 21: True, 22: None}[info], pos
    raise CarFormatError(f"CAR header uses an unsupported CBOR item (major type {major})")


def decode_header(buf: bytes) -> list[Cid]:
    """The roots of a CARv1 header; raises CarFormatError for anything else (CARv2 included)."""
    try:
        header, end = _cbor_decode(buf, 0)
    except InvalidCidError as exc:
        raise CarFormatError(f"CAR header root is not a CID FLB accepts: {exc}") from exc
    if end != len(buf) or not isinstance(header, dict):
        raise CarFormatError("CAR header is not a single CBOR map")
    if header.get("version") != 1:
        raise CarFormatError(f"CAR version {header.get('version')!r} is not supported; export a CARv1")
    roots = header.get("roots")
    if not isinstance(roots, list) or not roots or not all(isinstance(r, Cid) for r in roots):
        raise CarFormatError("CAR header has no roots")
    return list(roots)  # type: ignore[arg-type]


# --- writing ------------------------------------------------------------------------------------------
class CarWriter:
    """Appends a CARv1 header and then blocks to a binary stream."""

    def __init__(self, out: BinaryIO, roots: Sequence[Cid]) -> None:
        self._out = out
        header = encode_header(roots)
        out.write(dagpb.encode_varint(len(header)) + header)
        self.blocks = 0

    def add(self, cid: Cid, block: bytes | memoryview) -> None:
        cid_bytes = cid.to_bytes()
        self._out.write(dagpb.encode_varint(len(cid_bytes) + len(block)) + cid_bytes)
        self._out.write(block)
        self.blocks += 1


def export_file_dag(content: BinaryIO, root: Cid, out: BinaryIO) -> int:
    """Write the CAR of the UnixFS DAG of ``content`` (a seekable file) whose CID is ``root``.

    Two passes: the first rebuilds the parent nodes (a few KiB per 44 MB) and checks the content
    still hashes to ``root``; the second writes parents before children in depth-first order,
    re-reading each leaf from the file. Returns the number of blocks written.
    """
    nodes: dict[Cid, bytes] = {}

    def keep(cid: Cid, block: bytes | bytearray | memoryview) -> None:
        nodes[cid] = bytes(block)

    hasher = UnixFSHasher(root.version, on_block=keep, emit_leaves=False)
    content.seek(0)
    for piece in read_chunks(content):
        hasher.update(piece)
    actual = hasher.finalize()
    if actual != root:
        raise CidMismatchError(f"stored content hashes to {actual}, not to {root}")

    writer = CarWriter(out, [root])
    seen: set[Cid] = set()
    content.seek(0)

    def emit(cid: Cid, filesize: int) -> None:
        if cid in seen:  # NOTE: each block once, as `ipfs dag export`; skip its bytes in the file
            content.seek(filesize, io.SEEK_CUR)
            return
        seen.add(cid)
        block = nodes.get(cid)
        if block is not None:
            writer.add(cid, block)
            node = dagpb.decode_node(block)
            sizes = dagpb.decode_unixfs(node.data or b"").blocksizes
            for link, size in zip(node.links, sizes, strict=True):
                emit(Cid.from_bytes(link.hash), size)
            return
        chunk = _read_exact(content, filesize)
        leaf = chunk if cid.codec == CODEC_RAW else dagpb.file_leaf_node(chunk)
        if hashlib.sha256(leaf).digest() != cid.digest:
            raise CidMismatchError(f"content changed while exporting {root}")
        writer.add(cid, leaf)

    emit(root, hasher.size)
    return writer.blocks


# --- reading ------------------------------------------------------------------------------------------
@dataclass
class CarIndex:
    """Where each verified block of a CAR file lies: CID -> (offset of its data, length)."""

    roots: list[Cid]
    blocks: dict[Cid, tuple[int, int]] = field(default_factory=dict)
    total_bytes: int = 0


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise CarFormatError(f"CAR is truncated: expected {n} bytes, got {len(data)}")
    return data


def _read_varint(stream: BinaryIO) -> int | None:
    """A varint from a stream; None at a clean end of file."""
    result = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift == 0:
                return None
            raise CarFormatError("CAR is truncated inside a length prefix")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise CarFormatError("CAR length prefix is too long")


def _split_cid(section: bytes) -> tuple[Cid, int]:
    """The CID at the start of a block section and where the block data begins."""
    if section[:2] == b"\x12\x20":
        return Cid.from_bytes(section[:34]), 34
    pos = 0
    for _ in range(4):  # version, codec, multihash code, digest length
        _, pos = dagpb.decode_varint(section, pos)
    return Cid.from_bytes(section[: pos + 32]), pos + 32


def index_car(stream: BinaryIO) -> CarIndex:
    """Read a whole CAR from a seekable stream, verifying each block's hash, and index it."""
    header_len = _read_varint(stream)
    if header_len is None or header_len == 0:
        raise CarFormatError("empty file: not a CAR")
    if header_len > MAX_HEADER_SIZE:
        raise CarFormatError(f"CAR header claims {header_len} bytes; not a CAR")
    index = CarIndex(decode_header(_read_exact(stream, header_len)))
    while True:
        section_len = _read_varint(stream)
        if section_len is None:
            return index
        if section_len > MAX_BLOCK_SIZE + 64:
            raise CarFormatError(f"CAR block of {section_len} bytes exceeds the {MAX_BLOCK_SIZE}-byte limit")
        start = stream.tell()
        section = _read_exact(stream, section_len)
        try:
            cid, data_start = _split_cid(section)
        except (InvalidCidError, dagpb.ProtobufError) as exc:
            raise CarFormatError(f"CAR block at byte {start} has no valid CID: {exc}") from exc
        data = memoryview(section)[data_start:]
        if hashlib.sha256(data).digest() != cid.digest:
            raise CidMismatchError(f"CAR block {cid} does not hash to its CID")
        index.blocks[cid] = (start + data_start, len(data))
        index.total_bytes += len(data)


def _read_block(stream: BinaryIO, index: CarIndex, cid: Cid, root: Cid) -> bytes:
    where = index.blocks.get(cid)
    if where is None:
        raise CarFormatError(f"CAR is incomplete: block {cid} of {root} is missing")
    stream.seek(where[0])
    return _read_exact(stream, where[1])


UNLIMITED_FILE_BYTES = 1 << 34  # the file size the visit budget assumes when the caller set no limit


def visit_budget(max_size: int | None) -> int:
    """Most blocks a walk may visit for a file of at most ``max_size`` bytes in FLB's layout.

    A DAG may link one block many times (that is how a file of zeros stays small), so the walk's
    cost is not bounded by the CAR's size: a node linking the same empty leaf 174 times, ten levels
    deep, would mean 174^10 visits that write nothing and so never trip the size limit. FLB's
    layout needs one visit per 256 KiB leaf plus under 1% more for the nodes above them.
    """
    size = UNLIMITED_FILE_BYTES if max_size is None else max_size
    leaves = -(-size // CHUNK_SIZE) + 1
    return 2 * leaves + 2


def walk_file(
    stream: BinaryIO,
    index: CarIndex,
    root: Cid,
    sink: Callable[[bytes], None],
    max_visits: int | None = None,
) -> None:
    """Hand the file content under ``root`` to ``sink`` piece by piece, in order.

    Raises CarFormatError after ``max_visits`` blocks (see :func:`visit_budget`).
    """
    visits = 0

    def visit(cid: Cid, depth: int) -> None:
        nonlocal visits
        if depth > 64:
            raise CarFormatError(f"the DAG of {root} is deeper than any UnixFS file")
        visits += 1
        if max_visits is not None and visits > max_visits:
            raise CarFormatError(
                f"the DAG of {root} needs more than {max_visits} block visits, more than any file "
                "within the size limit in FLB's layout (it links blocks over and over)"
            )
        block = _read_block(stream, index, cid, root)
        if cid.codec == CODEC_RAW:
            sink(block)
            return
        try:
            node = dagpb.decode_node(block)
            unixfs = dagpb.decode_unixfs(node.data or b"")
        except dagpb.ProtobufError as exc:
            raise CarFormatError(f"block {cid} is not a UnixFS node: {exc}") from exc
        if unixfs.type not in (dagpb.UNIXFS_FILE, dagpb.UNIXFS_RAW):
            raise UnsupportedLayoutError(
                f"{root} is not a file (UnixFS type {unixfs.type}); FLB stores files only"
            )
        if unixfs.data:
            sink(unixfs.data)
        for link in node.links:
            try:
                child = Cid.from_bytes(link.hash)
            except InvalidCidError as exc:
                raise CarFormatError(f"block {cid} links to an unsupported CID: {exc}") from exc
            visit(child, depth + 1)

    visit(root, 0)


def open_source(src: str | os.PathLike[str] | BinaryIO) -> tuple[BinaryIO, bool]:
    """A binary stream for a path or a stream; the flag says whether the caller must close it."""
    if isinstance(src, (str, os.PathLike)):
        return open(src, "rb"), True  # closed by the caller, as the flag says
    return src, False


def open_seekable(src: BinaryIO, spool_dir: str | os.PathLike[str] | None = None) -> BinaryIO:
    """``src`` itself when seekable, else a temp file holding a copy of it (closed by the caller)."""
    if src.seekable():
        return src
    spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - returned open to the caller
    for piece in read_chunks(src, CHUNK_SIZE):
        spool.write(piece)
    spool.seek(0)
    return spool  # type: ignore[return-value]
