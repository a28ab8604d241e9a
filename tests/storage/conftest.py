"""Fixtures for the storage tests: vector data, stores, and real IPFS nodes (Helia; Kubo if installed)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from flb_dapp.storage.helia_node import HeliaNode
from flb_dapp.storage.kubo import KuboStore
from flb_dapp.storage.local import LocalStore
from tests.fixtures.processes import require_helia

# NOTE: a copy of the project's shared IPFS vectors, kept in the repo: CI runs a bare clone.
VECTORS_FILE = Path(__file__).resolve().parent / "vectors" / "ipfs-cids.json"


def load_vectors() -> list[dict[str, object]]:
    """The shared IPFS CID vectors (a copy of shared/vectors/ipfs-cids.json)."""
    return list(json.loads(VECTORS_FILE.read_text())["cases"])


def vector_bytes(name: str, size: int) -> bytes:
    """The bytes of a vector case, as the vector file describes them."""
    return random.Random(zlib.crc32(name.encode())).randbytes(size)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture(scope="session")
def helia_node() -> Iterator[HeliaNode]:
    require_helia()
    with HeliaNode() as node:
        yield node


def _start_kubo(repo: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "IPFS_PATH": str(repo)}
    # NOTE: the `test` profile puts every listener on 127.0.0.1 port 0 and drops bootstrap peers.
    subprocess.run(["ipfs", "init", "--profile=test"], env=env, check=True, capture_output=True)
    daemon = subprocess.Popen(
        ["ipfs", "daemon", "--offline"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    api_file = repo / "api"
    deadline = time.monotonic() + 60
    while not api_file.exists():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            raise RuntimeError("Kubo daemon did not start")
        time.sleep(0.1)
    parts = api_file.read_text().strip().split("/")  # /ip4/127.0.0.1/tcp/PORT
    return daemon, f"http://{parts[2]}:{parts[4]}"


@pytest.fixture(scope="session")
def kubo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("ipfs") is None:
        # NOTE: the one IPFS node that may be absent: Kubo's `ipfs` is a Go binary that neither
        # npm nor pip provides here, so `make setup` cannot install it; Helia covers the same RPC.
        pytest.skip("Kubo (`ipfs`) is not on PATH: no package registry here provides it (Helia runs instead)")
    daemon, url = _start_kubo(tmp_path_factory.mktemp("kubo-repo"))
    try:
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


@pytest.fixture(params=["helia", "kubo"])
def ipfs_url(request: pytest.FixtureRequest) -> str:
    """The RPC URL of a real IPFS node: the Helia node, and a Kubo daemon when one is installed."""
    if request.param == "helia":
        return str(request.getfixturevalue("helia_node").url)
    return str(request.getfixturevalue("kubo_url"))


@pytest.fixture
def ipfs_store(ipfs_url: str) -> Iterator[KuboStore]:
    with KuboStore(ipfs_url, timeout=60) as kubo:
        yield kubo
