"""Publishing an update: check, store (local folder, IPFS node or the oracle's gRPC upload), submit.

The order is chosen so that a refusal costs nothing: the contract's rules are checked first
(round open, registered, not yet submitted), then the adapter itself (its round, its client, its
base model), then the account is unlocked; only then is anything stored, and the SDK checks the
rules once more right before it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flb_dapp.cli.output import Output
from flb_dapp.cli.session import ChainSession, check_gas_funds, send
from flb_dapp.exceptions import AdapterMismatchError, PreflightError
from flb_dapp.lora.adapter import Adapter


@dataclass(frozen=True)
class Submitted:
    round: int
    cid: str
    num_samples: int
    transaction: str
    block: int
    stored_via: str


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
        raise PreflightError("this adapter records no training samples; the contract needs a positive count")


def store_update(
    out: Output, settings: Any, session: ChainSession, account: Any, round_number: int, data: bytes
) -> tuple[str, str]:
    """Store the adapter bytes; returns (CID, where). gRPC upload when configured, else the store."""
    from flb_dapp.storage.cid import cid_of_bytes

    expected = cid_of_bytes(data)
    if settings.upload_grpc:
        from flb_dapp.storage.grpc_upload import upload_adapter

        with out.status(f"Uploading {len(data):,} bytes to {settings.upload_grpc} ..."):
            signer = cast(Any, _UploadSigner(account))  # duck-typed LocalAccount: address + sign_message
            cid = upload_adapter(settings.upload_grpc, signer, session.record.coordinator, round_number, data)
        return cid, f"gRPC upload {settings.upload_grpc}"
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
    """Pre-flight, store, submit. ``account`` is already unlocked."""
    address = str(account.address)
    coordinator = session.coordinator
    round_number = coordinator.current_round
    coordinator.check_can_submit(address, round_number, adapter.metadata.num_samples)
    check_gas_funds(session, address)
    cid, where = store_update(out, settings, session, account, round_number, data)
    out.note(f"Stored the update as {cid} ({where})")
    receipt = send(
        out,
        session,
        account,
        f"submitUpdate(round {round_number})",
        lambda: coordinator.submit_update(account, round_number, cid, adapter.metadata.num_samples),
    )
    return Submitted(
        round_number,
        cid,
        adapter.metadata.num_samples,
        str(receipt.txn_hash),
        int(receipt.block_number),
        where,
    )


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
