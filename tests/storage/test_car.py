"""CAR v1 export and import through the local store, and the refusals of a bad CAR."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from flb_dapp.exceptions import CarFormatError, CidMismatchError, ContentTooLargeError, UnsupportedLayoutError
from flb_dapp.storage import car, dagpb
from flb_dapp.storage.cid import CODEC_DAG_PB, CODEC_RAW, Cid, UnixFSHasher, parse_cid
from flb_dapp.storage.local import LocalStore
from tests.storage.conftest import vector_bytes

F5M = "bafybeib7j7pyckxt6274gxdi5vaiqd7yjytet6s2ekpdon6vujkuzkoysy"


def _blocks(path: Path) -> list[tuple[Cid, bytes]]:
    with open(path, "rb") as handle:
        index = car.index_car(handle)
        out = []
        for cid, (offset, length) in index.blocks.items():
            handle.seek(offset)
            out.append((cid, handle.read(length)))
    return out


def test_header_is_canonical_dag_cbor() -> None:
    root = parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    header = car.encode_header([root])
    # {"roots": [CID], "version": 1}: map(2), "roots", array(1), tag 42, bytes(37) 0x00 + CID
    assert header.hex() == (
        "a265726f6f747381d82a5825000155122"
        "0e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        "6776657273696f6e01"
    )
    assert car.decode_header(header) == [root]


@pytest.mark.parametrize(("name", "size"), [("f0", 0), ("f100", 100), ("f5m", 5_242_880)])
def test_export_import_round_trip(name: str, size: int, tmp_path: Path) -> None:
    data = vector_bytes(name, size)
    source = LocalStore(tmp_path / "a")
    cid = source.put_bytes(data)
    car_path = source.export_car(cid, tmp_path / "x.car")
    target = LocalStore(tmp_path / "b")
    assert target.import_car(car_path) == [cid]
    assert target.get_bytes(cid) == data


def test_export_into_a_folder_that_does_not_exist_yet(store: LocalStore, tmp_path: Path) -> None:
    cid = store.put_bytes(vector_bytes("f300k", 307_200))
    car_path = store.export_car(cid, tmp_path / "exports" / "round-1" / "x.car")
    assert car_path == tmp_path / "exports" / "round-1" / "x.car"
    assert [p.name for p in car_path.parent.iterdir()] == ["x.car"]  # no temp file left beside it
    assert LocalStore(tmp_path / "b").import_car(car_path) == [cid]


def test_export_writes_each_block_once_parents_first(store: LocalStore, tmp_path: Path) -> None:
    store.put_bytes(vector_bytes("f5m", 5_242_880))
    blocks = _blocks(store.export_car(F5M, tmp_path / "x.car"))
    assert str(blocks[0][0]) == F5M  # the root first, as `ipfs dag export` writes it
    assert len(blocks) == 1 + 20 and len({cid for cid, _ in blocks}) == 21
    assert all(cid.codec == CODEC_RAW for cid, _ in blocks[1:])


def test_identical_chunks_are_written_once(store: LocalStore, tmp_path: Path) -> None:
    data = bytes(262_144 * 3)  # three identical zero chunks
    cid = store.put_bytes(data)
    car_path = store.export_car(cid, tmp_path / "zeros.car")
    assert len(_blocks(car_path)) == 2  # root + one leaf
    other = LocalStore(tmp_path / "other")
    assert other.import_car(car_path) == [cid]
    assert other.get_bytes(cid) == data


def test_v0_content_round_trips_under_its_v0_cid(tmp_path: Path) -> None:
    data = vector_bytes("f300k", 307_200)
    blocks: list[tuple[Cid, bytes]] = []
    hasher = UnixFSHasher(0, on_block=lambda c, b: blocks.append((c, bytes(b))))
    hasher.update(data)
    root = hasher.finalize()
    assert str(root) == "QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY"
    buffer = io.BytesIO()
    writer = car.CarWriter(buffer, [root])
    for cid, block in blocks:  # children before the root: import must not care about the order
        writer.add(cid, block)
    buffer.seek(0)
    store = LocalStore(tmp_path / "s")
    assert store.import_car(buffer) == [str(root)]
    assert store.get_bytes(str(root)) == data
    exported = _blocks(store.export_car(str(root), tmp_path / "v0.car"))
    assert [cid for cid, _ in exported] == [root, blocks[0][0], blocks[1][0]]  # parents first
    assert sorted(exported, key=lambda b: b[1]) == sorted(blocks, key=lambda b: b[1])


def _write_car(path: Path, roots: list[Cid], blocks: list[tuple[Cid, bytes]]) -> Path:
    with open(path, "wb") as out:
        writer = car.CarWriter(out, roots)
        for cid, block in blocks:
            writer.add(cid, block)
    return path


def test_a_tampered_block_is_refused_and_nothing_stored(store: LocalStore, tmp_path: Path) -> None:
    source = LocalStore(tmp_path / "src")
    source.put_bytes(vector_bytes("f5m", 5_242_880))
    blocks = _blocks(source.export_car(F5M, tmp_path / "good.car"))
    cid, block = blocks[5]
    blocks[5] = (cid, block[:-1] + bytes([block[-1] ^ 0xFF]))
    bad = _write_car(tmp_path / "bad.car", [parse_cid(F5M)], blocks)
    with pytest.raises(CidMismatchError, match=f"CAR block {cid} does not hash to its CID"):
        store.import_car(bad)
    assert list(store.cids()) == [] and list((store.root / "tmp").iterdir()) == []


def test_a_missing_block_is_refused(store: LocalStore, tmp_path: Path) -> None:
    source = LocalStore(tmp_path / "src")
    source.put_bytes(vector_bytes("f5m", 5_242_880))
    blocks = _blocks(source.export_car(F5M, tmp_path / "good.car"))
    missing = blocks.pop(3)[0]
    incomplete = _write_car(tmp_path / "incomplete.car", [parse_cid(F5M)], blocks)
    with pytest.raises(CarFormatError, match=f"block {missing} of {F5M} is missing"):
        store.import_car(incomplete)
    assert list(store.cids()) == []


def test_a_truncated_car_is_refused(store: LocalStore, tmp_path: Path) -> None:
    source = LocalStore(tmp_path / "src")
    source.put_bytes(vector_bytes("f5m", 5_242_880))
    data = source.export_car(F5M, tmp_path / "good.car").read_bytes()
    (tmp_path / "cut.car").write_bytes(data[: len(data) // 2])
    with pytest.raises(CarFormatError, match="truncated"):
        store.import_car(tmp_path / "cut.car")
    assert list(store.cids()) == []


def test_not_a_car(store: LocalStore, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"\x05hello")
    with pytest.raises(CarFormatError, match="CAR header is truncated"):
        store.import_car(tmp_path / "x")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CarFormatError, match="empty file"):
        store.import_car(tmp_path / "empty")


def test_a_dag_built_with_another_chunker_is_refused_by_name(store: LocalStore, tmp_path: Path) -> None:
    # Helia's own default (1 MiB chunks) or any non-Kubo layout: authentic blocks, foreign CID.
    blocks: list[tuple[Cid, bytes]] = []
    hasher = UnixFSHasher(1, on_block=lambda c, b: blocks.append((c, bytes(b))), chunk_size=1 << 20)
    hasher.update(vector_bytes("f5m", 5_242_880))
    root = hasher.finalize()
    foreign = _write_car(tmp_path / "foreign.car", [root], blocks)
    with pytest.raises(UnsupportedLayoutError, match=f"gives {F5M}"):
        store.import_car(foreign)
    assert list(store.cids()) == []


def test_import_honours_max_size(store: LocalStore, tmp_path: Path) -> None:
    source = LocalStore(tmp_path / "src")
    source.put_bytes(vector_bytes("f5m", 5_242_880))
    with pytest.raises(ContentTooLargeError):
        store.import_car(source.export_car(F5M, tmp_path / "x.car"), max_size=1_000_000)
    assert list(store.cids()) == []


def test_a_directory_root_is_refused(store: LocalStore, tmp_path: Path) -> None:
    data = b"\x08\x01"  # UnixFS Directory, no links
    block = dagpb.encode_node([], data)
    root = Cid(1, CODEC_DAG_PB, hashlib.sha256(block).digest())
    path = _write_car(tmp_path / "dir.car", [root], [(root, block)])
    with pytest.raises(UnsupportedLayoutError, match="not a file"):
        store.import_car(path)


class _Pipe(io.RawIOBase):
    """A read-only, non-seekable stream, like an HTTP response body."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._source.readinto(buffer)


def test_import_from_a_non_seekable_stream(store: LocalStore, tmp_path: Path) -> None:
    source = LocalStore(tmp_path / "src")
    data = vector_bytes("f5m", 5_242_880)
    source.put_bytes(data)
    car_bytes = source.export_car(F5M, tmp_path / "x.car").read_bytes()
    assert store.import_car(_Pipe(car_bytes)) == [F5M]  # type: ignore[arg-type]
    assert store.get_bytes(F5M) == data
    assert list((store.root / "tmp").iterdir()) == []


def test_a_dag_that_links_one_empty_leaf_over_and_over_is_refused(store: LocalStore, tmp_path: Path) -> None:
    # 174 links to the same block per level, 8 levels: 174^8 (about 8e17) visits of a leaf that
    # writes nothing, in a CAR of 9 blocks. Without a visit budget this never ends.
    leaf = b""
    child = Cid(1, CODEC_RAW, hashlib.sha256(leaf).digest())
    blocks: list[tuple[Cid, bytes]] = [(child, leaf)]
    for _ in range(8):
        node = dagpb.encode_node([(child.to_bytes(), 0)] * 174, dagpb.unixfs_file_data(0, [0] * 174))
        child = Cid(1, CODEC_DAG_PB, hashlib.sha256(node).digest())
        blocks.append((child, node))
    path = _write_car(tmp_path / "bomb.car", [child], blocks)
    with pytest.raises(CarFormatError, match=r"needs more than 12 block visits"):
        store.import_car(path, max_size=1_000_000)
    assert list(store.cids()) == []
    assert car.visit_budget(1_000_000) == 12  # ceil(1e6 / 256 KiB) = 4 leaves, +1, doubled, +2
