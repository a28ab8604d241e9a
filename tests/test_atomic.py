"""All-or-nothing writes: parent folders created, the mode applied, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flb_dapp.atomic import (
    OWNER_ONLY,
    atomic_folder,
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    publish,
    staged_file,
)


class Boom(Exception):
    pass


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def umask() -> int:
    # NOTE: reading the umask means setting it; tests run in one thread, so this is safe here.
    current = os.umask(0)
    os.umask(current)
    return current


def test_bytes_and_text_land_in_new_parent_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"
    assert atomic_write_bytes(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    text = tmp_path / "c" / "note.txt"
    assert atomic_write_text(text, "grüß\n") == text
    assert text.read_bytes() == "grüß\n".encode()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["note.txt", "out.bin"]


def test_a_second_write_replaces_the_first(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_without_a_mode_the_umask_decides_like_open(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "plain", b"x")
    with open(tmp_path / "reference", "wb") as handle:
        handle.write(b"x")
    assert mode_of(tmp_path / "plain") == mode_of(tmp_path / "reference") == 0o666 & ~umask()


def test_the_mode_is_applied_exactly(tmp_path: Path) -> None:
    secret = atomic_write_text(tmp_path / "secrets" / "tokens.env", "KEY=1\n", mode=OWNER_ONLY)
    assert mode_of(secret) == 0o600
    previous = os.umask(0o077)
    try:
        # a mode wider than the umask allows is still what the caller asked for
        shared = atomic_write_bytes(tmp_path / "shared", b"x", mode=0o644)
    finally:
        os.umask(previous)
    assert mode_of(shared) == 0o644


def test_an_error_inside_the_writer_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(Boom), atomic_writer(target, mode=OWNER_ONLY) as out:
        out.write(b"half of the new")
        raise Boom
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_failed_first_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with pytest.raises(Boom), atomic_writer(target) as out:
        out.write(b"partial")
        raise Boom
    assert not target.exists()
    assert list((tmp_path / "sub").iterdir()) == []


def test_the_writer_reads_back_what_it_wrote(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "out.bin") as out:
        out.write(b"verify me")
        out.seek(0)
        assert out.read() == b"verify me"
    assert (tmp_path / "out.bin").read_bytes() == b"verify me"


def test_a_staged_file_is_kept_for_publish_and_removed_on_error(tmp_path: Path) -> None:
    with staged_file(tmp_path) as (out, staged):
        out.write(b"content")
    assert staged.read_bytes() == b"content" and staged.name.endswith(".part")
    final = publish(staged, tmp_path / "objects" / "ab" / "name")
    assert final.read_bytes() == b"content" and not staged.exists()
    with pytest.raises(Boom), staged_file(tmp_path) as (out, failed):
        out.write(b"x")
        raise Boom
    assert not failed.exists()


def test_publish_removes_the_temp_file_when_the_rename_fails(tmp_path: Path) -> None:
    with staged_file(tmp_path) as (out, staged):
        out.write(b"content")
    occupied = tmp_path / "folder"
    (occupied / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        publish(staged, occupied)  # a file cannot replace a non-empty folder
    assert not staged.exists() and (occupied / "inside").is_dir()


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_folder(target) as staged:
        (staged / "weights").write_text("v1")
    with pytest.raises(Boom), atomic_folder(target) as staged:
        (staged / "weights").write_text("v2, half")
        raise Boom
    assert (target / "weights").read_text() == "v1"
    with atomic_folder(target) as staged:
        (staged / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
