"""KuboStore against a node that misbehaves: wrong CIDs, truncated or altered content, errors.

A node that lies cannot be had for real, so these use httpx's mock transport to play one.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from flb_dapp.exceptions import CidMismatchError, ContentNotFoundError, StorageError
from flb_dapp.storage.kubo import KuboStore
from tests.storage.conftest import vector_bytes

F300K = "bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure"
F100 = "bafkreig4hyl5tz4dxsmcgxmyblzq7mh4o4s6bfaofczkqfftpceyfav6zy"


class FakeNode:
    """Answers the RPC calls from canned values and records the requests."""

    def __init__(self, add_hash: str = F300K, cat_body: bytes = b"") -> None:
        self.add_hash = add_hash
        self.cat_body = cat_body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        command = request.url.path.removeprefix("/api/v0/")
        if command == "add":
            request.read()
            return httpx.Response(
                200, text=json.dumps({"Name": "f", "Hash": self.add_hash, "Size": "1"}) + "\n"
            )
        if command == "cat":
            return httpx.Response(200, content=self.cat_body)
        if command == "pin/rm":
            return httpx.Response(200, json={"Pins": [request.url.params["arg"]]})
        return httpx.Response(500, json={"Message": "block was not found locally (offline)", "Code": 0})

    def store(self) -> KuboStore:
        return KuboStore("http://fake:5001", transport=httpx.MockTransport(self))


def test_add_sends_explicit_chunking_parameters() -> None:
    node = FakeNode(add_hash=F300K)
    assert node.store().put_bytes(vector_bytes("f300k", 307_200)) == F300K
    params = node.requests[0].url.params
    assert (params["cid-version"], params["raw-leaves"], params["chunker"], params["pin"]) == (
        "1",
        "true",
        "size-262144",
        "true",
    )


def test_node_answering_another_cid_is_refused_and_unpinned() -> None:
    node = FakeNode(add_hash="QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY")  # e.g. a CIDv0 default
    with pytest.raises(CidMismatchError, match=f"FLB computes {F300K}"):
        node.store().put_bytes(vector_bytes("f300k", 307_200))
    assert node.requests[-1].url.path == "/api/v0/pin/rm"


def test_truncated_content_is_refused() -> None:
    data = vector_bytes("f300k", 307_200)
    store = FakeNode(cat_body=data[:262_144]).store()
    with pytest.raises(CidMismatchError, match=f"not to the requested {F300K}"):
        store.get_bytes(F300K)


def test_other_bytes_under_a_cid_are_refused(tmp_path: Path) -> None:
    store = FakeNode(cat_body=b"not what was asked for").store()
    dest = tmp_path / "adapter.safetensors"
    with pytest.raises(CidMismatchError):
        store.get_file(F100, dest)
    assert list(tmp_path.iterdir()) == []  # no partial or unverified file


def test_node_errors_are_mapped() -> None:
    store = FakeNode().store()
    assert not store.has(F100)
    with pytest.raises(ContentNotFoundError, match="not found"):
        store.pin(F100)

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"Message": "repo is locked", "Code": 0, "Type": "error"})

    with pytest.raises(StorageError, match="repo is locked"):
        KuboStore("http://fake:5001", transport=httpx.MockTransport(broken)).put_bytes(b"x")
