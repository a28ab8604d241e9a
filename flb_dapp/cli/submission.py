"""Publishing an update: check, store (local folder, IPFS node or the oracle's gRPC upload), commit,
and reveal once the commit phase closed.

The order is chosen so that a refusal costs nothing: the contract's rules are checked first
(round open, registered, not yet committed), then the adapter itself (its round, its client, its
base model), then the account is unlocked; only then is anything stored, and the SDK checks the
rules once more right before it sends. The commitment hides the CID until every commit is in, so
nobody can copy it first; what the reveal needs (CID, count, salt) is kept in a file beside the
update until then.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from eth_utils import to_checksum_address

from flb_dapp.chain.types import PendingReveal
from flb_dapp.cli.output import Output
from flb_dapp.cli.session import ChainSession, check_gas_funds, send
from flb_dapp.exceptions import AdapterMismatchError, CoordinatorInvalidSampleCount, PreflightError
from flb_dapp.lora.adapter import Adapter


@dataclass(frozen=True)
class Submitted:
    round: int
    cid: str
    num_samples: int
    transaction: str  # the commit; the reveal's, when it went out at once, is in ``reveal_transaction``
    block: int
    stored_via: str
    revealed: bool = False
    reveal_transaction: str = ""


def pending_reveal_path(settings: Any, round_number: int, address: str) -> Path:
    """Where a commitment's reveal data waits: beside the update `flb train` saved."""
    name = f"round-{round_number}-{to_checksum_address(address)}.reveal.json"
    return Path(settings.cache_dir).expanduser().parent / "updates" / name


def save_pending_reveal(settings: Any, pending: PendingReveal) -> Path:
    from flb_dapp.atomic import OWNER_ONLY, atomic_write_text

    path = pending_reveal_path(settings, pending.round, pending.client)
    # NOTE: until the reveal, the CID and salt are what the commitment hides: owner-only.
    return atomic_write_text(path, json.dumps(pending.to_dict(), indent=2) + "\n", mode=OWNER_ONLY)


def load_pending_reveal(settings: Any, round_number: int, address: str) -> PendingReveal:
    path = pending_reveal_path(settings, round_number, address)
    if not path.is_file():
        raise PreflightError(
            f"no commitment of {address} for round {round_number} was saved here ({path}); an "
            "update can only be revealed from the machine that committed it"
        )
    return PendingReveal.from_dict(json.loads(path.read_text()))


def reveal_saved(
    out: Output, settings: Any, session: ChainSession, address: str, unlock: Callable[[], Any]
) -> tuple[PendingReveal, str]:
    """Reveal the commitment saved for the open round: pre-flight, then ``unlock()`` and send.
    Returns what was revealed and the transaction hash."""
    coordinator = session.coordinator
    pending = load_pending_reveal(settings, coordinator.current_round, address)
    coordinator.check_can_reveal(address, pending)
    check_gas_funds(session, address)
    return pending, reveal_pending(out, session, unlock(), pending)


def reveal_pending(out: Output, session: ChainSession, account: Any, pending: PendingReveal) -> str:
    """Reveal a saved commitment; returns the transaction hash."""
    receipt = send(
        out,
        session,
        account,
        f"revealUpdate(round {pending.round})",
        lambda: session.coordinator.reveal_update(account, pending),
    )
    return str(receipt.txn_hash)


def already_submitted(session: ChainSession, address: str) -> int | None:
    """The open round if ``address`` already submitted in it, else None."""
    current = session.coordinator.current_round
    client = session.coordinator.client(address)
    return current if client.last_submitted_round == current else None


def check_adapter(adapter: Adapter, address: str, round_number: int, global_base_model: str) -> None:
    """What the oracle would reject, refused before anything is stored or sent."""
    meta = adapter.metadata
    if meta.round != round_number:
        raise AdapterMismatchError(
            f"this adapter was trained for round {meta.round}, but the open round is {round_number}; "
            "train again with `flb train` (or use `flb participate`)"
        )
    if meta.client.lower() != address.lower():
        raise AdapterMismatchError(
            f"this adapter names client {meta.client or 'nobody'}, not {address}; train it with this account"
        )
    if meta.base_model != global_base_model:
        raise AdapterMismatchError(
            f"this adapter is for base model {meta.base_model!r}; the federation trains {global_base_model!r}"
        )
    if meta.num_samples <= 0:
        raise CoordinatorInvalidSampleCount(
            "this adapter records no training samples; the contract needs a positive count",
            num_samples=meta.num_samples,
        )


def store_update(
    out: Output, settings: Any, session: ChainSession, account: Any, round_number: int, data: bytes
) -> tuple[str, str]:
    """Store the adapter bytes; returns (CID, where). gRPC upload when configured, else the store.

    The gRPC upload uses TLS, verifying the service against ``upload_tls_ca``, when that is set;
    without it, only a loopback target is allowed (the client refuses plaintext elsewhere).
    """
    from flb_dapp.storage.cid import cid_of_bytes

    expected = cid_of_bytes(data)
    if settings.upload_grpc:
        from flb_dapp.storage.grpc_upload import upload_adapter

        ca_file = getattr(settings, "upload_tls_ca", None)
        with out.status(f"Uploading {len(data):,} bytes to {settings.upload_grpc} ..."):
            signer = cast(Any, _UploadSigner(account))  # duck-typed LocalAccount: address + sign_message
            cid = upload_adapter(
                settings.upload_grpc, signer, session.record.coordinator, round_number, data, ca_file=ca_file
            )
        return cid, f"gRPC upload {settings.upload_grpc}" + (" (TLS)" if ca_file else "")
    from flb_dapp.cli.artifacts import location_of, open_store

    store = open_store(settings.store)
    with out.status(f"Storing {len(data):,} bytes in {location_of(store)} ..."):
        cid = store.put_bytes(data)
    if cid != expected:  # NOTE: stores compute CIDs themselves; a disagreement means a misconfigured node
        raise PreflightError(f"the store answered CID {cid}, but the adapter's CID is {expected}")
    return cid, f"store {location_of(store)}"


def submit_adapter(
    out: Output, settings: Any, session: ChainSession, account: Any, adapter: Adapter, data: bytes
) -> Submitted:
    """Pre-flight, store, commit; reveal at once if that commit closed the commit phase.
    ``account`` is already unlocked."""
    address = str(account.address)
    coordinator = session.coordinator
    round_number = coordinator.current_round
    coordinator.check_can_commit(address, round_number, adapter.metadata.num_samples)
    check_gas_funds(session, address)
    cid, where = store_update(out, settings, session, account, round_number, data)
    out.note(f"Stored the update as {cid} ({where})")
    committed: list[PendingReveal] = []

    def commit() -> Any:
        pending, receipt = coordinator.commit_update(account, round_number, cid, adapter.metadata.num_samples)
        committed.append(pending)
        return receipt

    receipt = send(out, session, account, f"commitUpdate(round {round_number})", commit)
    saved = save_pending_reveal(settings, committed[0])
    done = Submitted(
        round_number,
        cid,
        adapter.metadata.num_samples,
        str(receipt.txn_hash),
        int(receipt.block_number),
        where,
    )
    if coordinator.round_phase(round_number) != "reveal":
        info = coordinator.round(round_number)
        out.note(
            f"Committed; the reveal data is in {saved}. Reveal with `flb reveal` (or `flb participate`) "
            f"once the commit phase closes (at the latest at block time {info.deadline})"
        )
        return done
    reveal = reveal_pending(out, session, account, committed[0])
    return replace(done, revealed=True, reveal_transaction=reveal)


class _UploadSigner:
    """What the gRPC client needs from a signer (``address``, ``sign_message``), over an Ape account,
    so keystore accounts sign uploads without their key ever leaving Ape."""

    def __init__(self, account: Any) -> None:
        self.account = account
        self.address = str(account.address)

    def sign_message(self, message: Any) -> Any:
        signature = self.account.sign_message(message)
        if signature is None:
            raise PreflightError("the account refused to sign the upload")
        return _Signed(signature.encode_rsv())


@dataclass(frozen=True)
class _Signed:
    signature: bytes
