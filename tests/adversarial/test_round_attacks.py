"""Attacks on the round computation by registered participants, each shown against the first build's
behaviour and then with the defences on: the round completes, the attacker is rejected with its
reason or paid nothing, and the honest clients are accepted and paid."""

from __future__ import annotations

import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from flb_dapp.aggregation import FedAvg
from flb_dapp.aggregation.types import ClientUpdate
from flb_dapp.devnet import free_port
from flb_dapp.exceptions import StoreUnavailableError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.rounds import MemoryJournal, RoundComputation, RoundSettings, UpdateRef
from flb_dapp.storage.cid import cid_of_bytes
from flb_dapp.storage.kubo import KuboStore
from flb_dapp.storage.local import LocalStore
from flb_dapp.training.local_dp import LocalDPConfig, privatize_update
from tests.adversarial.lab import ATTACKERS, HONEST, RoundLab, decisions

pytestmark = pytest.mark.slow

#: The screening of the first build: FedAvg by claimed samples, the relative norm rule at 20x the
#: median, exact duplicates only.
FIRST_BUILD = RoundSettings(strategy={"name": "fedavg"}, norm_factor=20.0, duplicate_cosine=1.0)


def honest_refs(lab: RoundLab, indices: tuple[int, ...] = (0, 1, 2)) -> list[UpdateRef]:
    return [lab.ref(lab.honest[i]) for i in indices]


def assert_honest_paid(outcome, clients: list[str]) -> None:  # type: ignore[no-untyped-def]
    rows = decisions(outcome)
    assert all(rows[c]["accepted"] for c in clients), {c: rows[c]["reason"] for c in clients}
    assert sum(rows[c]["reward"] for c in clients) == outcome.rewards.total > 0


def safetensors_file(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def test_crafted_headers_reject_only_their_sender(lab: RoundLab) -> None:
    nested = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge_int = b'{"w":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,4]}}'
    # The first build handed these headers to json.loads, whose errors its validate step did not
    # catch (in a process whose recursion limit a library raised, as pytest's is, the nested one
    # crashes the interpreter instead): shown in a plain interpreter of its own.
    for header, error in ((nested, b"RecursionError"), (huge_int, b"Exceeds the limit (4300 digits)")):
        first_build = subprocess.run(
            [sys.executable, "-c", "import json, sys; json.loads(sys.stdin.buffer.read())"],
            input=header,
            capture_output=True,
            timeout=60,
        )
        assert first_build.returncode == 1 and error in first_build.stderr
    refs = [
        *honest_refs(lab),
        UpdateRef(ATTACKERS[0], lab.put(safetensors_file(nested)), 100),
        UpdateRef(ATTACKERS[1], lab.put(safetensors_file(huge_int, b"\x00" * 4)), 100),
    ]
    outcome = lab.run(refs)
    rows = decisions(outcome)
    for attacker in ATTACKERS[:2]:
        assert not rows[attacker]["accepted"] and rows[attacker]["reward"] == 0
        assert rows[attacker]["reason"].startswith("invalid adapter: ")
    assert_honest_paid(outcome, HONEST)


def test_a_sample_count_of_2_64_minus_1_is_rejected(lab: RoundLab) -> None:
    lie = 2**64 - 1
    liar = lab.adapter(ATTACKERS[0], lab.delta(lab.honest[0]), samples=lie)
    # The first build weighted FedAvg by the claim: the liar took all of the weight.
    updates = [ClientUpdate(ATTACKERS[0], lie, lab.delta(liar))] + [
        ClientUpdate(a.metadata.client, a.metadata.num_samples, lab.delta(a)) for a in lab.honest[1:]
    ]
    assert FedAvg().client_weights(updates)[0][ATTACKERS[0]] > 1 - 1e-15
    outcome = lab.run([lab.ref(liar), *honest_refs(lab, (1, 2))])
    rows = decisions(outcome)
    assert not rows[ATTACKERS[0]]["accepted"] and rows[ATTACKERS[0]]["reward"] == 0
    assert rows[ATTACKERS[0]]["reason"] == (
        f"claims {lie} samples, over the task's maximum of {lab.spec.sample_cap} "
        "(steps x batch_size unless the task sets max_samples)"
    )
    assert_honest_paid(outcome, HONEST[1:])


def sybil_refs(lab: RoundLab, scale: float) -> list[UpdateRef]:
    rng = np.random.default_rng(7)
    honest_norm = float(np.mean([d["norm"] for d in decisions(lab.run(honest_refs(lab))).values()]))
    refs = []
    for sybil in ATTACKERS[:3]:
        direction = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in lab.base.tensors.items()}
        length = float(np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in direction.values())))
        refs.append(
            lab.ref(lab.adapter(sybil, {k: v * (scale * honest_norm / length) for k, v in direction.items()}))
        )
    return refs


def test_three_sybils_cannot_get_two_honest_clients_rejected(lab: RoundLab) -> None:
    refs = honest_refs(lab, (1, 2)) + sybil_refs(lab, 1 / 30)
    first = decisions(lab.run(refs, FIRST_BUILD))
    assert [first[c]["accepted"] for c in HONEST[1:]] == [False, False]
    assert "x the median norm" in first[HONEST[1]]["reason"]
    outcome = lab.run(refs)
    assert_honest_paid(outcome, HONEST[1:])
    assert all(decisions(outcome)[s]["reward"] == 0 for s in ATTACKERS[:3])


def test_sybils_that_send_the_global_model_back_are_free_riders(lab: RoundLab) -> None:
    zero = {k: np.zeros_like(v) for k, v in lab.base.tensors.items()}
    refs = honest_refs(lab, (1, 2)) + [lab.ref(lab.adapter(s, zero)) for s in ATTACKERS[:3]]
    outcome = lab.run(refs)
    rows = decisions(outcome)
    for sybil in ATTACKERS[:3]:
        assert not rows[sybil]["accepted"]
        assert rows[sybil]["reason"] == "update norm 0 is below the task's minimum of 0.001 (no training)"
    assert_honest_paid(outcome, HONEST[1:])


def test_an_exact_re_encoding_is_rejected_as_the_later_duplicate(lab: RoundLab) -> None:
    victim = lab.honest[0]
    # The same tensors under the copier's own address and sample count: another file, another CID.
    copy = Adapter(dict(victim.tensors), victim.metadata.with_(client=ATTACKERS[0], num_samples=7))
    assert encode_adapter(copy) != encode_adapter(victim)
    outcome = lab.run([*honest_refs(lab), lab.ref(copy)])
    rows = decisions(outcome)
    assert rows[ATTACKERS[0]]["reason"] == f"duplicate of the update of {HONEST[0]}"
    assert rows[ATTACKERS[0]]["reward"] == 0
    assert_honest_paid(outcome, HONEST)


def test_a_noisy_copy_is_rejected_and_earns_nothing(lab: RoundLab) -> None:
    victim = lab.delta(lab.honest[0])
    rng = np.random.default_rng(3)
    size = sum(v.size for v in victim.values())
    norm = float(np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in victim.values())))
    noisy = {
        k: v + rng.normal(0, 0.1 * norm / np.sqrt(size), v.shape).astype(np.float32)
        for k, v in victim.items()
    }
    refs = [*honest_refs(lab), lab.ref(lab.adapter(ATTACKERS[0], noisy))]
    assert decisions(lab.run(refs, FIRST_BUILD))[ATTACKERS[0]]["accepted"]  # the first build took it
    outcome = lab.run(refs)
    row = decisions(outcome)[ATTACKERS[0]]
    assert not row["accepted"] and row["reward"] == 0
    assert row["reason"].startswith(f"near-duplicate of the update of {HONEST[0]} (cosine 0.99")
    assert_honest_paid(outcome, HONEST)


def test_multi_krum_with_three_clients_completes_the_round(lab: RoundLab) -> None:
    settings = RoundSettings(strategy={"name": "multi-krum", "num_malicious": 0})
    outcome = lab.run(honest_refs(lab), settings)
    # Shapley (the default) cannot aggregate the coalitions of one or two updates, nor can
    # leave-one-out: the rule's own weights pay, and the note says why.
    note = outcome.report.rewards.note
    assert note.startswith("shapley impossible (") and "; leave-one-out impossible (" in note
    assert_honest_paid(outcome, [d.client for d in outcome.report.inputs if d.weight > 0])


def test_an_outage_of_the_oracle_store_is_retried_not_turned_into_rejections(lab: RoundLab) -> None:
    refs = honest_refs(lab)
    down = KuboStore(f"http://127.0.0.1:{free_port()}")  # nothing listens there: connection refused
    settings = RoundSettings(fetch_timeout_s=0.5, fetch_retry_s=0.1)
    journal = MemoryJournal()
    computation = RoundComputation(lab.inputs(refs), settings, down, lab.scorer, journal)
    with pytest.raises(StoreUnavailableError):
        computation.step("fetch")
    assert journal.load("fetch") is None  # nothing recorded: no update was rejected
    outcome = RoundComputation(lab.inputs(refs), settings, lab.store, lab.scorer, journal).run()
    assert_honest_paid(outcome, HONEST)


def test_server_dp_noise_differs_between_two_runs_with_the_default_config(lab: RoundLab) -> None:
    dp = {"name": "fedavg", "weighting": "uniform", "dp": "fixed", "clip_norm": 1.0, "noise_multiplier": 1.0}
    first, second = (lab.run(honest_refs(lab), RoundSettings(strategy=dp)) for _ in range(2))
    assert first.global_model_cid != second.global_model_cid
    assert [d.accepted for d in first.report.inputs] == [d.accepted for d in second.report.inputs]
    assert first.report.privacy.server_noise and "dp_seed" not in first.report.settings
    seeded = [
        lab.run(honest_refs(lab), RoundSettings(strategy=dp, dp_seed=11)).global_model_cid for _ in range(2)
    ]
    assert seeded[0] == seeded[1]  # an operator's secret seed makes the noise reproducible for itself


def test_local_dp_declared_by_clients_is_accounted(lab: RoundLab) -> None:
    dp = LocalDPConfig(epsilon=2.0, delta=1e-5, clip_norm=1.0)
    private = []
    for adapter in lab.honest:
        released, spent = privatize_update(lab.base, adapter, dp)
        released.extra.update(spent.as_metadata())  # as the trainer records it
        private.append(released)
    outcome = lab.run([lab.ref(adapter) for adapter in private])
    # NOTE: the local noise is fresh on every run, so whether the round gains accuracy (and pays)
    # is not fixed; that the updates are accepted and their epsilon accounted is.
    rows = decisions(outcome)
    assert all(rows[c]["accepted"] for c in HONEST), {c: rows[c]["reason"] for c in HONEST}
    local = outcome.report.privacy.local_dp
    assert local["epsilon"] == 2.0 and local["delta"] == 1e-5 and local["clients_without"] == []
    assert outcome.epsilon >= 2.0 and outcome.report.privacy.epsilon == outcome.epsilon


class _DripperRoutedStore(LocalStore):
    """The lab's store, except that one CID is served by a peer that drips a byte every 50 ms
    (a real HTTP server on loopback speaking the Kubo RPC), as an IPFS node fetching it would."""

    def __init__(self, inner: LocalStore, dripped: str, node_url: str) -> None:
        super().__init__(inner.root)
        self.dripped = dripped
        self.node = KuboStore(node_url, timeout=30.0)

    def get_bytes(self, cid: str, max_size: int | None = None, deadline_s: float | None = None) -> bytes:
        if cid == self.dripped:
            return self.node.get_bytes(cid, max_size, deadline_s)
        return super().get_bytes(cid, max_size, deadline_s)


def test_a_dripping_peer_costs_one_fetch_deadline_and_only_its_update(lab: RoundLab) -> None:
    # The first build bounded each read, not the fetch: one byte every ~2 minutes held the
    # oracle's lock for a day. Now the fetch of that update ends at its deadline, as its rejection.
    import threading
    from http.server import ThreadingHTTPServer

    from tests.storage.test_kubo_stalls import _StallingNode

    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Dripper", (_StallingNode,), {"mode": "drip"}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dripped = cid_of_bytes(b"an adapter that never arrives")
        dripper = "0x00000000000000000000000000000000000000D1"
        refs = [*honest_refs(lab), UpdateRef(dripper, dripped, 50)]
        store = _DripperRoutedStore(lab.store, dripped, f"http://127.0.0.1:{server.server_address[1]}")
        started = time.monotonic()
        outcome = lab.run(refs, RoundSettings(fetch_timeout_s=1.0), store=store)
        assert time.monotonic() - started < 60
    finally:
        server.shutdown()
        server.server_close()
    rows = decisions(outcome)
    assert (
        rows[dripper]["reason"]
        == f"could not be fetched within 1 s: {dripped} did not arrive in full within 1 s"
    ), rows[dripper]["reason"]
    assert not rows[dripper]["accepted"] and rows[dripper]["reward"] == 0
    assert_honest_paid(outcome, HONEST)
