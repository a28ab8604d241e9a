"""Front-running a submission, and racing a finalization, on a real chain with the real oracle.

The first build published the CID in `submitUpdate`: a copier that saw it in the mempool or in the
event sent the same CID (or a re-encoding of the same tensors) first, and the oracle rejected the
victim as the duplicate. With commit-reveal only a hash is public until every commitment is in, a
reveal must match its sender's own commitment, and duplicates are resolved in commit order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ape
import pytest

from flb_dapp.audit import load_report, verify_round
from flb_dapp.chain.types import FinalizeRequest
from flb_dapp.exceptions import ChainError, PreflightError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.storage.cid import cid_to_bytes
from tests.fixtures.federation import build_federation

pytestmark = pytest.mark.slow


def reencoded(adapter: Adapter, client: str) -> Adapter:
    """The same tensors under another client's name: other bytes, other CID."""
    meta = adapter.metadata.__class__(**{**adapter.metadata.__dict__, "client": client})
    return Adapter({k: v.copy() for k, v in adapter.tensors.items()}, meta, {**adapter.extra, "note": "mine"})


def test_a_copier_cannot_take_a_revealed_cid_and_its_copy_earns_nothing(
    tmp_path: Path, accounts: Any
) -> None:
    federation = build_federation(tmp_path, accounts, n_clients=3, steps=10)
    sdk = federation.coordinator
    victim, copier, honest = federation.clients
    trained = federation.train(0)
    victim_cid = federation.store.put_bytes(encode_adapter(trained))
    victim_pending, _ = sdk.commit_update(victim, 1, victim_cid, trained.metadata.num_samples)
    # The copier sees only a hash; it must commit before anything is revealed. Its best guess is a
    # re-encoding of what it will see, which it cannot have yet: it commits to a placeholder.
    placeholder = federation.store.put_bytes(encode_adapter(reencoded(trained, copier.address)))
    copier_pending, _ = sdk.commit_update(copier, 1, placeholder, trained.metadata.num_samples)
    honest_update = federation.train(2)
    federation.commit_as(
        honest, federation.store.put_bytes(encode_adapter(honest_update)), honest_update.metadata.num_samples
    )
    assert sdk.round_phase(1) == "reveal"  # the third commit closed the commit phase
    sdk.reveal_update(victim, victim_pending)
    # The victim's reveal is public now; the copier tries to reveal its CID as its own.
    stolen = copier_pending.__class__(**{**copier_pending.__dict__, "cid": victim_cid})
    with pytest.raises(PreflightError, match=f"does not match {copier.address}'s commitment in round 1"):
        sdk.reveal_update(copier, stolen)
    with ape.reverts(sdk.contract.CoordinatorCommitmentMismatch, client=copier.address, round=1):
        sdk.contract.revealUpdate(
            1, cid_to_bytes(victim_cid), 100, bytes.fromhex(copier_pending.salt[2:]), sender=copier
        )
    assert victim_pending.cid == victim_cid and sdk.client(victim.address).last_submitted_round == 1
    sdk.reveal_update(copier, copier_pending)  # all it can reveal: what it committed to

    [processed] = federation.oracle().run_once()
    report = load_report(federation.store, processed.report_cid).model_dump()
    rows = {d["client"]: d for d in report["inputs"]}
    # The copier revealed its re-encoding of the victim's tensors: the later commit is the copy.
    assert rows[victim.address]["accepted"] and rows[honest.address]["accepted"]
    assert not rows[copier.address]["accepted"]
    assert rows[copier.address]["reason"] == f"duplicate of the update of {victim.address}"
    assert rows[copier.address]["reward"] == 0 and rows[victim.address]["reward"] >= 0
    assert verify_round(sdk, federation.store, 1, federation.scorer, start_block=federation.record.block).ok


def test_finalization_cannot_race_a_reveal(tmp_path: Path, accounts: Any) -> None:
    federation = build_federation(tmp_path, accounts, n_clients=3, steps=5)
    sdk = federation.coordinator
    for i in range(2):
        federation.submit(i, federation.train(i))
    # Client 2 never commits: the round waits for its commit deadline, then for the reveals.
    federation.reveal_all()
    assert sdk.round_phase(1) == "due"  # every commitment revealed: no reveal can land any more
    late = federation.train(2)
    with pytest.raises(PreflightError, match="the commit phase of round 1 closed"):
        sdk.commit_update(federation.clients[2], 1, federation.store.put_bytes(encode_adapter(late)), 50)
    # A finalization built on a stale read (one reveal fewer) is refused by the contract itself.
    stale = FinalizeRequest(
        1, sdk.latest_global_model_cid, sdk.latest_global_model_cid, b"\x00" * 32, 0, 0.5, 0.0, 1
    )
    with pytest.raises(ChainError, match="CoordinatorSubmissionCountMismatch"):
        _send_raw(sdk, federation.oracle_account, stale)  # past the SDK's pre-flight, as a racing oracle
    [processed] = federation.oracle().run_once()
    report = load_report(federation.store, processed.report_cid).model_dump()
    assert len(report["inputs"]) == 2 and report["inputs_block"] >= federation.record.block
    result = verify_round(sdk, federation.store, 1, federation.scorer, start_block=federation.record.block)
    assert result.ok and result.exact


def _send_raw(sdk: Any, oracle: Any, request: FinalizeRequest) -> None:
    from flb_dapp.chain.coordinator import translate_reverts

    with translate_reverts():
        sdk.contract.finalizeRound(
            request.round,
            request.submission_count,
            cid_to_bytes(request.global_model_cid),
            cid_to_bytes(request.report_cid),
            request.rewards_root,
            request.round_rewards,
            request.metric_ppm,
            request.epsilon_micros,
            sender=oracle,
        )
