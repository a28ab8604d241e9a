"""All-or-nothing writes: a reader sees the old file (or folder) or the whole new one, never a part.

The bytes go to a temp file beside the destination (the same file system, so the rename is
atomic); it is flushed and fsynced, then renamed over the destination, and the folder is fsynced so
that the rename itself survives a crash. On any error the temp file is removed and the destination
is left as it was. Missing parent folders are created.

Permissions: without ``mode`` a file gets what ``open(path, "w")`` gives (0o666 less the umask).
With ``mode`` (:data:`OWNER_ONLY` for secrets) the temp file is created with it, so its content is
never readable by anyone else, not even between creation and a later chmod.

Nothing here imports FLB code: every layer (storage, the CLI, the chain records) may use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

PathLike = str | os.PathLike[str]

OWNER_ONLY = 0o600
"""``mode`` for files only their owner may read: keys, passwords, what a commitment hides."""

TEMP_SUFFIX = ".part"
_OPEN_MODE = 0o666  # what open() asks the kernel for; the umask narrows it
_NAME_ATTEMPTS = 100


def fsync_dir(path: PathLike) -> None:
    """fsync a folder so that a rename into it survives a crash (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(folder: Path, prefix: str, mode: int | None) -> tuple[int, Path]:
    """A new, empty file in ``folder`` with a random name; its descriptor is open read-write."""
    # NOTE: not tempfile.mkstemp: it always creates 0o600, so every file written through it came
    # out owner-only whatever the caller wanted.
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_NAME_ATTEMPTS):
        path = folder / f"{prefix}{secrets.token_hex(6)}{TEMP_SUFFIX}"
        try:
            fd = os.open(path, flags, _OPEN_MODE if mode is None else mode)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.fchmod(fd, mode)  # exactly ``mode``: the umask may have taken bits away
            except BaseException:
                os.close(fd)
                path.unlink()
                raise
        return fd, path
    raise FileExistsError(f"no free temp file name in {folder} after {_NAME_ATTEMPTS} attempts")


@contextmanager
def staged_file(
    folder: PathLike, prefix: str = "", mode: int | None = None
) -> Iterator[tuple[BinaryIO, Path]]:
    """A new temp file in ``folder``, open for writing and reading back, and its path.

    When the block ends normally the file is flushed, fsynced, closed and kept: the caller renames
    it into place with :func:`publish` (for when the final name is known only after writing, such
    as a content address). When the block raises, the file is removed.
    """
    fd, path = _create_temp(Path(folder), prefix, mode)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield cast(BinaryIO, handle), path
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


def publish(temp: PathLike, dest: PathLike) -> Path:
    """Rename the complete file ``temp`` over ``dest`` (creating its folder) and fsync the folder.

    On failure ``temp`` is removed and ``dest`` is left as it was.
    """
    target = Path(dest)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(target.parent)
    return target


@contextmanager
def atomic_writer(path: PathLike, mode: int | None = None) -> Iterator[BinaryIO]:
    """Stream into ``path`` all or nothing: ``with atomic_writer(p) as out: out.write(...)``.

    The handle can also read back what was written (seek first). Raise inside the block, e.g.
    when what was written does not verify, to leave ``path`` untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(dest.parent, prefix=f".{dest.name}.", mode=mode) as (handle, temp):
        yield handle
    publish(temp, dest)


def atomic_write_bytes(path: PathLike, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` all or nothing; returns the path."""
    with atomic_writer(path, mode) as out:
        out.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, mode: int | None = None, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` all or nothing; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding), mode)


@contextmanager
def atomic_folder(dest: PathLike) -> Iterator[Path]:
    """Yield a temp folder beside ``dest`` to fill; when the block ends normally it replaces
    ``dest`` (any old one is moved aside first, then deleted), when it raises it goes away."""
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent))
    try:
        yield temp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(temp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_dir(target.parent)
