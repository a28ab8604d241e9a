"""KuboStore against real IPFS nodes: the Helia node from npm, and a Kubo daemon when installed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flb_dapp.exceptions import ContentNotFoundError, ContentTooLargeError, StoreUnavailableError
from flb_dapp.storage.cid import UnixFSHasher
from flb_dapp.storage.kubo import KuboStore
from flb_dapp.storage.local import LocalStore
from tests.storage.conftest import load_vectors, vector_bytes

pytestmark = pytest.mark.ipfs

VECTORS = [case for case in load_vectors() if int(case["size"]) <= 10_000_000]  # type: ignore[call-overload]
F5M = "bafybeib7j7pyckxt6274gxdi5vaiqd7yjytet6s2ekpdon6vujkuzkoysy"


@pytest.mark.parametrize("case", VECTORS, ids=[str(c["name"]) for c in VECTORS])
def test_node_gives_the_vector_cids(ipfs_url: str, ipfs_store: KuboStore, case: dict[str, object]) -> None:
    data = vector_bytes(str(case["name"]), int(case["size"]))  # type: ignore[call-overload]
    assert ipfs_store.put_bytes(data) == case["cid_v1_raw_leaves"]  # KuboStore also checks it itself
    # Kubo's defaults (no parameters): CIDv0, dag-pb leaves
    answer = httpx.post(f"{ipfs_url}/api/v0/add", files={"file": ("f", data)}, timeout=60).json()
    assert answer["Hash"] == case["cid_v0"]


def test_add_cat_pin_round_trip(ipfs_store: KuboStore, tmp_path: Path) -> None:
    data = vector_bytes("f5m", 5_242_880)
    src = tmp_path / "f5m.bin"
    src.write_bytes(data)
    assert ipfs_store.put_file(src) == F5M
    assert ipfs_store.has(F5M)
    ipfs_store.pin(F5M)
    assert ipfs_store.get_bytes(F5M) == data
    dest = ipfs_store.get_file(F5M, tmp_path / "out.bin")
    assert dest.read_bytes() == data


def test_missing_content_and_limits(ipfs_store: KuboStore, tmp_path: Path) -> None:
    absent = "bafkreifwqvs46vuze47wuimepm76irzgg5gl23b37xecsut7dwzkaucdie"  # b"never stored", never stored
    assert not ipfs_store.has(absent)
    with pytest.raises(ContentNotFoundError):
        ipfs_store.get_bytes(absent)
    cid = ipfs_store.put_bytes(vector_bytes("f300k", 307_200))
    with pytest.raises(ContentTooLargeError):
        ipfs_store.get_bytes(cid, max_size=300_000)
    with pytest.raises(ContentTooLargeError):
        ipfs_store.get_file(cid, tmp_path / "x", max_size=1000)
    assert not (tmp_path / "x").exists()


def test_car_from_the_node_into_the_local_store(ipfs_store: KuboStore, tmp_path: Path) -> None:
    data = vector_bytes("f5m", 5_242_880)
    cid = ipfs_store.put_bytes(data)
    car_path = ipfs_store.export_car(cid, tmp_path / "from-node.car")
    local = LocalStore(tmp_path / "local")
    assert local.import_car(car_path) == [cid]
    assert local.get_bytes(cid) == data
    # the local store writes the very same CAR, byte for byte
    assert local.export_car(cid, tmp_path / "from-local.car").read_bytes() == car_path.read_bytes()


def test_car_from_the_local_store_into_the_node(ipfs_store: KuboStore, tmp_path: Path) -> None:
    data = b"content the node has never seen " + vector_bytes("f300k", 307_200)
    local = LocalStore(tmp_path / "local")
    cid = local.put_bytes(data)
    assert not ipfs_store.has(cid)
    assert ipfs_store.import_car(local.export_car(cid, tmp_path / "x.car")) == [cid]
    assert ipfs_store.get_bytes(cid) == data


def test_node_export_into_a_folder_that_does_not_exist_yet(ipfs_store: KuboStore, tmp_path: Path) -> None:
    cid = ipfs_store.put_bytes(b"exported into a new folder")
    car_path = ipfs_store.export_car(cid, tmp_path / "exports" / "x.car")
    assert [p.name for p in car_path.parent.iterdir()] == ["x.car"]
    assert LocalStore(tmp_path / "local").import_car(car_path) == [cid]


def test_deep_tree_agrees_with_the_node(ipfs_url: str) -> None:
    # 64-byte chunks give a three-level tree (> 174 * 174 leaves) from 2 MB: the one shape the
    # vectors do not reach without a 7.9 GB file.
    data = vector_bytes("deep", 64 * (174 * 174 + 175) + 10)
    hasher = UnixFSHasher(1, chunk_size=64)
    hasher.update(data)
    params = {"cid-version": "1", "raw-leaves": "true", "chunker": "size-64", "pin": "false"}
    answer = httpx.post(
        f"{ipfs_url}/api/v0/add", params=params, files={"file": ("f", data)}, timeout=120
    ).json()
    assert answer["Hash"] == str(hasher.finalize())
    assert int(answer["Size"]) == hasher.dag_size


def test_unreachable_node_is_reported_clearly() -> None:
    store = KuboStore("http://127.0.0.1:9", retries=1, backoff=0.01, connect_timeout=1)
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        store.put_bytes(b"x")
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        store.get_bytes(F5M)
