"""Bad updates are rejected with their reason, earn nothing, and the round still finalizes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

from flb_dapp.audit import load_report
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter, metadata_to_header
from flb_dapp.storage.cid import cid_of_bytes
from tests.fixtures.federation import Federation, build_federation

pytestmark = pytest.mark.slow


def with_client(adapter: Adapter, federation: Federation, index: int) -> Adapter:
    meta = adapter.metadata.with_(client=federation.clients[index].address)
    return Adapter({k: v.copy() for k, v in adapter.tensors.items()}, meta, dict(adapter.extra))


def raw_safetensors(adapter: Adapter) -> bytes:
    """Encoded without the codec's own checks, as a malicious client would."""
    return safetensors.numpy.save(adapter.tensors, metadata=metadata_to_header(adapter))


def test_each_bad_update_is_rejected_with_its_reason(tmp_path: Path, accounts: Any) -> None:
    federation = build_federation(tmp_path, accounts, n_clients=8, steps=10)
    sdk, store = federation.coordinator, federation.store
    honest = [federation.train(0), federation.train(1)]
    for i, adapter in enumerate(honest):
        federation.submit(i, adapter)
    base = federation.global_adapter()

    def submit_raw(index: int, data: bytes, store_it: bool = True) -> str:
        cid = store.put_bytes(data) if store_it else cid_of_bytes(data)
        federation.commit_cid(index, cid, 50)  # within the task's cap of 10 steps x 8
        return cid

    # 2: a CID that resolves nowhere
    submit_raw(2, b"never stored anywhere", store_it=False)
    # 3: bytes that do not match their CID (the stored object was altered)
    tampered = submit_raw(3, encode_adapter(with_client(honest[0], federation, 3)))
    store.path_of(tampered).write_bytes(encode_adapter(with_client(honest[1], federation, 3)))
    # 4: a pickle (named like an adapter, it still is no safetensors file)
    submit_raw(4, pickle.dumps({"lora_A": [1.0, 2.0]}))
    # 5: NaN weights
    nan = with_client(honest[0], federation, 5)
    first = sorted(nan.tensors)[0]
    nan.tensors[first][0, 0] = np.nan
    submit_raw(5, raw_safetensors(nan))
    # 6: wrong shapes
    wrong = with_client(honest[0], federation, 6)
    wrong.tensors[first] = np.zeros((wrong.tensors[first].shape[0], 3), dtype=np.float32)
    submit_raw(6, raw_safetensors(wrong))
    # 7: a delta 1000x the others
    huge = with_client(honest[1], federation, 7)
    huge.tensors = {k: base.tensors[k] + 1000 * (v - base.tensors[k]) for k, v in huge.tensors.items()}
    submit_raw(7, encode_adapter(huge))

    federation.reveal_all()  # NOTE: already done when the eighth commit closed the commit phase
    [processed] = federation.oracle().run_once()
    info = sdk.round(1)
    assert info.finalized and info.global_model_cid == processed.global_model_cid
    report = load_report(store, info.report_cid).model_dump()
    decisions = {d["client"]: d for d in report["inputs"]}
    clients = [c.address for c in federation.clients]
    assert [decisions[c]["accepted"] for c in clients] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    reasons = [decisions[c]["reason"] for c in clients[2:]]
    assert reasons[0].startswith("CID does not resolve")
    assert reasons[1].startswith("bytes do not match their CID")
    assert reasons[2].startswith("invalid adapter:") and "pickle" in reasons[2]
    assert reasons[3].startswith("invalid adapter:") and "NaN" in reasons[3]
    assert reasons[4].startswith("invalid adapter:") and first in reasons[4]
    assert reasons[5].startswith("update norm") and reasons[5].endswith("exceeds the task's bound of 100")
    for client in clients[2:]:
        assert decisions[client]["reward"] == 0
        assert report["rewards"]["cumulative"].get(client, 0) == 0
    assert set(report["rewards"]["round"]) <= set(clients)
    assert json.loads(json.dumps(report))["round"] == 1
