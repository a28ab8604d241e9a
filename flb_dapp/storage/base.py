"""The interface every content store implements, and the verifying copy both backends share.

A store keeps bytes under their IPFS CID. Reads are always verified: bytes that do not hash to
the CID they were asked for are never returned (:class:`CidMismatchError`), so callers can treat
whatever a store hands back as authentic, whoever runs the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from flb_dapp.atomic import PathLike, atomic_writer
from flb_dapp.exceptions import CidMismatchError, ContentTooLargeError
from flb_dapp.storage.cid import Cid, UnixFSHasher, parse_cid


class ContentStore(ABC):
    """Bytes stored and fetched by CID (CIDv1, raw leaves, 256 KiB chunks: ``ipfs add`` defaults)."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; returns its CID. Storing the same bytes twice is a no-op."""

    @abstractmethod
    def put_file(self, path: PathLike) -> str:
        """Store a file's content, streamed; returns its CID."""

    @abstractmethod
    def get_bytes(self, cid: str, max_size: int | None = None, deadline_s: float | None = None) -> bytes:
        """The content of ``cid``, verified against it, within ``deadline_s`` seconds in total.

        Raises ContentNotFoundError, ContentTooLargeError (more than ``max_size`` bytes),
        CidMismatchError (the store returned other bytes than the CID names), ContentTimeoutError
        (not all of it arrived in time) or StoreUnavailableError (the store cannot be reached).
        """

    @abstractmethod
    def get_file(
        self, cid: str, dest_path: PathLike, max_size: int | None = None, deadline_s: float | None = None
    ) -> Path:
        """Write the verified content of ``cid`` to ``dest_path`` atomically (all or nothing)."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the store holds ``cid`` without fetching it from elsewhere."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` from being garbage-collected. Raises ContentNotFoundError if absent."""

    @abstractmethod
    def export_car(self, cid: str, dest_path: PathLike) -> Path:
        """Write ``cid``'s whole UnixFS DAG as a CARv1 file (what ``ipfs dag export`` gives)."""

    @abstractmethod
    def import_car(self, src: PathLike | BinaryIO, max_size: int | None = None) -> list[str]:
        """Store the content of every root of a CARv1 after checking every block; returns the roots."""


def check_size(cid: str, size: int, max_size: int | None) -> None:
    """Raise ContentTooLargeError when ``size`` exceeds ``max_size``."""
    if max_size is not None and size > max_size:
        raise ContentTooLargeError(f"content {cid} is larger than the limit of {max_size} bytes")


def collect_verified(cid: str, pieces: Iterable[bytes | memoryview], max_size: int | None) -> bytes:
    """Join ``pieces`` into bytes while checking the size limit and, at the end, the CID."""
    expected = parse_cid(cid)
    hasher = UnixFSHasher(expected.version)
    out = bytearray()
    for piece in pieces:
        hasher.update(piece)
        out += piece
        check_size(cid, len(out), max_size)
    _check_cid(expected, hasher.finalize(), len(out))
    return bytes(out)


def write_verified(
    cid: str, pieces: Iterable[bytes | memoryview], dest_path: PathLike, max_size: int | None
) -> Path:
    """Stream ``pieces`` into ``dest_path`` all or nothing, checking the size limit and the CID.

    Content that is too large or does not hash to ``cid`` never reaches ``dest_path``: a reader
    never sees a partial or unverified file there (see :mod:`flb_dapp.atomic`).
    """
    expected = parse_cid(cid)
    hasher = UnixFSHasher(expected.version)
    written = 0
    with atomic_writer(dest_path) as out:
        for piece in pieces:
            written += len(piece)
            check_size(cid, written, max_size)
            hasher.update(piece)
            out.write(piece)
        _check_cid(expected, hasher.finalize(), written)
    return Path(dest_path)


def _check_cid(expected: Cid, actual: Cid, size: int) -> None:
    if actual != expected:
        raise CidMismatchError(f"content of {size} bytes hashes to {actual}, not to the requested {expected}")
