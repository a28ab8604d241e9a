"""The text a client signs to upload an adapter, and recovering who signed it.

The signature is EIP-191 ``personal_sign`` (what every wallet offers) over a short, readable text
naming everything the upload commits to: contract, round, CID and size. The contract address
and the round bind it to one submission slot, so it cannot be replayed elsewhere; the CID and size
bind it to the bytes.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from flb_dapp.storage.cid import normalize_cid

UPLOAD_PREFIX = "FLB adapter upload"


def upload_message(contract_address: str, round: int, cid: str, size: int) -> str:
    """The canonical text signed for an upload (checksum address, canonical CID, decimal numbers)."""
    if not is_address(contract_address):
        raise ValueError(f"{contract_address!r} is not an Ethereum address")
    if round < 0 or size < 0:
        raise ValueError("round and size must be non-negative")
    return (
        f"{UPLOAD_PREFIX}\n"
        f"contract: {to_checksum_address(contract_address)}\n"
        f"round: {int(round)}\n"
        f"cid: {normalize_cid(cid)}\n"
        f"size: {int(size)}"
    )


def sign_upload(account: LocalAccount, contract_address: str, round: int, cid: str, size: int) -> bytes:
    """The 65-byte signature of :func:`upload_message` by ``account``."""
    message = encode_defunct(text=upload_message(contract_address, round, cid, size))
    return bytes(account.sign_message(message).signature)


def recover_uploader(signature: bytes, contract_address: str, round: int, cid: str, size: int) -> str:
    """The checksum address that signed this upload; raises ValueError for a malformed signature."""
    message = encode_defunct(text=upload_message(contract_address, round, cid, size))
    return str(Account.recover_message(message, signature=signature))
