"""The dataset commitment a client registers: a hash that binds it to its local data without revealing it.

The commitment is ``sha256`` over a canonical manifest of the data: for a single file, one entry
named by the file's base name; for a folder, every regular file under it (hidden files and folders,
whose names start with ``.``, are skipped: editors and tools leave them behind), each with its
relative POSIX path, its size and the sha256 of its bytes. Entries are sorted by path and the
manifest is compact JSON with sorted keys, so the same data gives the same commitment on every
machine, and renaming, adding, removing or changing any data file changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flb_dapp.exceptions import DataNotFoundError

MANIFEST_FORMAT = "flb-dataset-manifest/1"
_BLOCK = 1 << 20

# (bytes hashed so far, total bytes) while hashing; lets the CLI show a progress bar on big data.
HashProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class ManifestEntry:
    """One data file: its path relative to the dataset root, its size and its sha256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetCommitment:
    """The manifest of a dataset and the 32-byte commitment registered on chain."""

    root: Path
    entries: tuple[ManifestEntry, ...]

    @property
    def manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.entries],
        }

    @property
    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.manifest_bytes).digest()

    @property
    def hex(self) -> str:
        return "0x" + self.digest.hex()

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)


def data_files(path: str | os.PathLike[str]) -> tuple[Path, list[tuple[str, Path]]]:
    """(root, [(relative POSIX path, file)]) of the data at ``path``, sorted by relative path.

    Raises DataNotFoundError when nothing is there or a folder holds no data file.
    """
    root = Path(path).expanduser()
    if root.is_file():
        return root, [(root.name, root)]
    if not root.is_dir():
        raise DataNotFoundError(
            f"no data at {root}: give a data file or folder with --data (or set `data:` in flb.yaml)"
        )
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root):
        # NOTE: sorting in place makes the walk order (hence error messages) deterministic too.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            full = Path(folder) / name
            if name.startswith(".") or not full.is_file():
                continue
            found.append((full.relative_to(root).as_posix(), full))
    if not found:
        raise DataNotFoundError(f"no data files in {root} (hidden files are ignored)")
    found.sort(key=lambda item: item[0])
    return root, found


def _sha256_file(path: Path, progress: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            progress(len(block))
    return digest.hexdigest()


def commit_dataset(path: str | os.PathLike[str], progress: HashProgress | None = None) -> DatasetCommitment:
    """Hash every data file at ``path`` and build the manifest and its commitment."""
    root, files = data_files(path)
    total = sum(full.stat().st_size for _, full in files)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    entries = []
    for relative, full in files:
        size = full.stat().st_size
        entries.append(ManifestEntry(relative, size, _sha256_file(full, advance)))
    return DatasetCommitment(root=root, entries=tuple(entries))
