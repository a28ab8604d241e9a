"""The embedded default store: a content-addressed folder, same CIDs as IPFS, no server.

Layout under the root folder::

    objects/<last two CID chars>/<cid>   one file per content, named by its CIDv1 (or a v0 CID)
    pins/<cid>                           empty marker files
    tmp/                                 writes in progress, on the same file system

Every write goes to ``tmp/``, is fsynced, then renamed into ``objects/``: after a crash an object
is either whole or absent, never partial. Every read re-computes the CID; a file that no longer
hashes to its name is deleted and the read fails, so a bad object is never returned twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from flb_dapp.atomic import atomic_writer, publish, staged_file
from flb_dapp.exceptions import CidMismatchError, ContentNotFoundError, UnsupportedLayoutError
from flb_dapp.storage import car
from flb_dapp.storage.base import ContentStore, PathLike, check_size, write_verified
from flb_dapp.storage.cid import Cid, UnixFSHasher, cid_of_bytes, parse_cid, read_chunks

_STALE_TMP_SECONDS = 3600.0


class LocalStore(ContentStore):
    """Content-addressed files in a local folder (created if missing)."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self._objects = self.root / "objects"
        self._pins = self.root / "pins"
        self._tmp = self.root / "tmp"
        for folder in (self._objects, self._pins, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._sweep_tmp()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- paths ----------------------------------------------------------------------------------------
    def path_of(self, cid: str) -> Path:
        """Where the object of ``cid`` lives (whether or not it is there)."""
        key = parse_cid(cid).encode()
        return self._objects / key[-2:] / key

    def _sweep_tmp(self) -> None:
        # NOTE: only old leftovers go: another process may be writing into tmp/ right now.
        cutoff = time.time() - _STALE_TMP_SECONDS
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def _commit(self, tmp_path: Path, cid: str) -> str:
        """Rename a complete, fsynced temp file into place (or drop it if already stored)."""
        final = self.path_of(cid)
        if final.exists():
            tmp_path.unlink()
            return cid
        publish(tmp_path, final)
        return cid

    # -- writing --------------------------------------------------------------------------------------
    # NOTE: objects are staged in tmp/, not beside their final path: the name (the CID) is known
    # only once every byte went through the hasher.
    def put_bytes(self, data: bytes) -> str:
        cid = cid_of_bytes(data)
        if self.path_of(cid).exists():
            return cid
        with staged_file(self._tmp) as (out, tmp_path):
            out.write(data)
        return self._commit(tmp_path, cid)

    def put_file(self, path: PathLike) -> str:
        with open(path, "rb") as src:
            return self.put_stream(read_chunks(src))

    def put_stream(self, pieces: Iterable[bytes | memoryview]) -> str:
        """Store the concatenation of ``pieces`` in one pass (hashing while writing)."""
        return self._write_pieces(pieces)

    def _write_pieces(self, pieces: Iterable[bytes | memoryview]) -> str:
        hasher = UnixFSHasher(1)
        with staged_file(self._tmp) as (out, tmp_path):
            for piece in pieces:
                hasher.update(piece)
                out.write(piece)
            cid = hasher.finalize().encode()
        return self._commit(tmp_path, cid)

    # -- reading --------------------------------------------------------------------------------------
    def _open(self, cid: str, max_size: int | None) -> tuple[BinaryIO, Path]:
        path = self.path_of(cid)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise ContentNotFoundError(f"{cid} is not in the local store at {self.root}") from None
        check_size(cid, os.fstat(handle.fileno()).st_size, max_size)
        return handle, path

    def _quarantine(self, path: Path) -> None:
        # NOTE: a corrupted object is deleted rather than kept: the next put or CAR import can
        # restore it, while keeping it would fail every later read the same way.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def get_bytes(self, cid: str, max_size: int | None = None, deadline_s: float | None = None) -> bytes:
        # NOTE: a local read is bounded by max_size and the disk; there is no peer to stall it.
        handle, path = self._open(cid, max_size)
        with handle:
            data = handle.read()
        check_size(cid, len(data), max_size)
        expected = parse_cid(cid)
        hasher = UnixFSHasher(expected.version)
        hasher.update(data)
        actual = hasher.finalize()
        if actual != expected:
            self._quarantine(path)
            raise CidMismatchError(
                f"local object {expected} is corrupted (its {len(data)} bytes hash to {actual}); "
                "it was removed"
            )
        return data

    def get_file(
        self, cid: str, dest_path: PathLike, max_size: int | None = None, deadline_s: float | None = None
    ) -> Path:
        handle, path = self._open(cid, max_size)
        try:
            with handle:
                return write_verified(cid, read_chunks(handle), dest_path, max_size)
        except CidMismatchError:
            self._quarantine(path)
            raise

    def has(self, cid: str) -> bool:
        return self.path_of(cid).is_file()

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise ContentNotFoundError(f"cannot pin {cid}: it is not in the local store at {self.root}")
        key = parse_cid(cid).encode()
        (self._pins / key).touch()

    def is_pinned(self, cid: str) -> bool:
        return (self._pins / parse_cid(cid).encode()).exists()

    def cids(self) -> Iterator[str]:
        """Every CID stored (in no particular order)."""
        for shard in self._objects.iterdir():
            for obj in shard.iterdir():
                yield obj.name

    # -- CAR ------------------------------------------------------------------------------------------
    def export_car(self, cid: str, dest_path: PathLike) -> Path:
        """Write the CAR of ``cid``'s UnixFS DAG to ``dest_path`` (atomically)."""
        root = parse_cid(cid)
        handle, path = self._open(cid, None)
        with handle, atomic_writer(dest_path) as out:
            try:
                car.export_file_dag(handle, root, out)
            except CidMismatchError:
                self._quarantine(path)
                raise
        return Path(dest_path)

    def import_car(self, src: PathLike | BinaryIO, max_size: int | None = None) -> list[str]:
        """Store every root of a CAR; returns their CIDs.

        Every block's hash is checked, each root's file is reassembled and re-hashed with FLB's
        layout; nothing is stored unless every root passes (UnsupportedLayoutError when a root
        was built with another chunking or leaf type).
        """
        stream, owned = car.open_source(src)
        seekable = car.open_seekable(stream, self._tmp)
        staged: list[tuple[Path, str]] = []
        try:
            index = car.index_car(seekable)
            for root in index.roots:
                staged.append((self._reassemble(seekable, index, root, max_size), root.encode()))
            return [self._commit(tmp_path, cid) for tmp_path, cid in staged]
        except BaseException:
            for tmp_path, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    tmp_path.unlink()
            raise
        finally:
            if seekable is not stream:
                seekable.close()
            if owned:
                stream.close()

    def _reassemble(self, stream: BinaryIO, index: car.CarIndex, root: Cid, max_size: int | None) -> Path:
        hasher = UnixFSHasher(root.version)
        with staged_file(self._tmp) as (out, tmp_path):

            def sink(piece: bytes) -> None:
                hasher.update(piece)
                check_size(root.encode(), hasher.size, max_size)
                out.write(piece)

            car.walk_file(stream, index, root, sink, car.visit_budget(max_size))
            actual = hasher.finalize()
            if actual != root:
                raise UnsupportedLayoutError(
                    f"CAR root {root} holds {hasher.size} verified bytes, but FLB's layout (256 KiB "
                    f"chunks, 174 links, raw leaves for v1) gives {actual}: it was added with other "
                    "settings; re-add it with `ipfs add --cid-version=1`"
                )
        return tmp_path
