"""The embedded local store: put/get by CID, verification, atomicity, dedup, limits, pins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flb_dapp.exceptions import CidMismatchError, ConfigError, ContentNotFoundError, ContentTooLargeError
from flb_dapp.storage import open_store
from flb_dapp.storage.kubo import KuboStore
from flb_dapp.storage.local import LocalStore
from tests.storage.conftest import vector_bytes

F300K = "bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure"
F100 = "bafkreig4hyl5tz4dxsmcgxmyblzq7mh4o4s6bfaofczkqfftpceyfav6zy"


def _objects(store: LocalStore) -> list[str]:
    return sorted(store.cids())


def test_put_get_returns_ipfs_cid(store: LocalStore) -> None:
    data = vector_bytes("f300k", 307_200)
    assert store.put_bytes(data) == F300K
    assert store.get_bytes(F300K) == data
    assert store.has(F300K)
    assert store.path_of(F300K).read_bytes() == data


def test_put_file_streams_and_matches_put_bytes(store: LocalStore, tmp_path: Path) -> None:
    data = vector_bytes("f5m", 5_242_880)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    assert store.put_file(src) == "bafybeib7j7pyckxt6274gxdi5vaiqd7yjytet6s2ekpdon6vujkuzkoysy"
    assert store.put_bytes(data) == "bafybeib7j7pyckxt6274gxdi5vaiqd7yjytet6s2ekpdon6vujkuzkoysy"
    assert _objects(store) == ["bafybeib7j7pyckxt6274gxdi5vaiqd7yjytet6s2ekpdon6vujkuzkoysy"]  # dedup


def test_empty_content(store: LocalStore) -> None:
    cid = store.put_bytes(b"")
    assert cid == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert store.get_bytes(cid) == b""


def test_get_file_is_verified_and_atomic(store: LocalStore, tmp_path: Path) -> None:
    data = vector_bytes("f300k", 307_200)
    store.put_bytes(data)
    dest = tmp_path / "out" / "adapter.safetensors"
    assert store.get_file(F300K, dest) == dest
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["adapter.safetensors"]  # no temp file left


def test_cid_given_in_another_encoding_finds_the_object(store: LocalStore) -> None:
    store.put_bytes(vector_bytes("f100", 100))
    assert store.get_bytes("B" + F100[1:].upper()) == vector_bytes("f100", 100)


def test_missing_content(store: LocalStore) -> None:
    assert not store.has(F100)
    with pytest.raises(ContentNotFoundError, match="not in the local store"):
        store.get_bytes(F100)
    with pytest.raises(ContentNotFoundError):
        store.pin(F100)


def test_corrupted_object_is_refused_and_removed(store: LocalStore) -> None:
    data = vector_bytes("f300k", 307_200)
    store.put_bytes(data)
    path = store.path_of(F300K)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped on disk
    with pytest.raises(CidMismatchError, match=f"{F300K} is corrupted"):
        store.get_bytes(F300K)
    assert not path.exists() and not store.has(F300K)
    assert store.put_bytes(data) == F300K  # the good bytes can be stored again
    assert store.get_bytes(F300K) == data


def test_truncated_object_is_refused_on_get_file(store: LocalStore, tmp_path: Path) -> None:
    data = vector_bytes("f300k", 307_200)
    store.put_bytes(data)
    store.path_of(F300K).write_bytes(data[:200_000])
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"previous content")
    with pytest.raises(CidMismatchError, match=f"not to the requested {F300K}"):
        store.get_file(F300K, dest)
    assert dest.read_bytes() == b"previous content"  # the destination is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin", "store"]
    assert not store.has(F300K)


def test_wrong_cid_for_bytes_is_refused(store: LocalStore) -> None:
    # Bytes stored under another content's name: the object is refused whatever its name says.
    store.put_bytes(vector_bytes("f100", 100))
    other = store.path_of(F300K)
    other.parent.mkdir(exist_ok=True)
    other.write_bytes(vector_bytes("f100", 100))
    with pytest.raises(CidMismatchError, match=F100):
        store.get_bytes(F300K)
    assert _objects(store) == [F100]


def test_max_size_is_enforced_before_reading(store: LocalStore, tmp_path: Path) -> None:
    store.put_bytes(vector_bytes("f300k", 307_200))
    with pytest.raises(ContentTooLargeError, match="limit of 307199 bytes"):
        store.get_bytes(F300K, max_size=307_199)
    with pytest.raises(ContentTooLargeError):
        store.get_file(F300K, tmp_path / "x", max_size=1000)
    assert not (tmp_path / "x").exists()
    assert len(store.get_bytes(F300K, max_size=307_200)) == 307_200


def test_pin_marks_content(store: LocalStore) -> None:
    store.put_bytes(b"pin me")
    cid = store.put_bytes(b"pin me")
    assert not store.is_pinned(cid)
    store.pin(cid)
    assert store.is_pinned(cid)


def test_a_crash_leaves_no_partial_object(store: LocalStore) -> None:
    def pieces():
        yield b"x" * 300_000
        raise KeyboardInterrupt  # the process dies mid-write

    with pytest.raises(KeyboardInterrupt):
        store.put_stream(pieces())
    assert _objects(store) == []
    assert list((store.root / "tmp").iterdir()) == []


def test_stale_temp_files_are_swept_on_open(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    stale, fresh = store.root / "tmp" / "old.part", store.root / "tmp" / "new.part"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"in progress")
    os.utime(stale, (0, 0))
    LocalStore(tmp_path / "s")
    assert not stale.exists() and fresh.exists()


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "a"), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/b"), LocalStore)
    kubo = open_store("http://127.0.0.1:5001")
    assert isinstance(kubo, KuboStore) and kubo.url == "http://127.0.0.1:5001"
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'"):
        open_store("ftp://example/x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        open_store(tmp_path / "file")


def test_large_files_stream_without_being_held_in_memory(store: LocalStore, tmp_path: Path) -> None:
    import tracemalloc

    from flb_dapp.storage.cid import cid_of_file

    src = tmp_path / "big.bin"
    with open(src, "wb") as out:
        for i in range(40):  # 40 MB, written in pieces
            out.write(vector_bytes(f"piece{i}", 1_000_000))
    tracemalloc.start()
    try:
        cid = cid_of_file(src)
        assert store.put_file(src) == cid
        store.get_file(cid, tmp_path / "copy.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # a few read buffers, never the 40 MB file
    assert (tmp_path / "copy.bin").stat().st_size == 40_000_000
