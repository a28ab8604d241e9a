"""Connecting Ape to the network a configuration names (an Ape choice or an RPC URI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flb_dapp.exceptions import ChainUnavailableError
from flb_dapp.loopback import is_loopback

# How often a transaction's receipt is polled on a node on this machine (anvil). web3 polls every
# 100 ms; anvil mines a transaction a few milliseconds after accepting it, so each receipt that is
# not there on the first ask cost 100 ms: measured on bench/scale.py with 400 to 1,000 registered
# clients, a third of the round's transactions waited, the largest part of its chain time.
LOCAL_RECEIPT_POLL_S = 0.005


@contextmanager
def connect(network: str) -> Iterator[Any]:
    """Connect for the duration of the block; an unreachable node raises ChainUnavailableError.

    ``network`` is an Ape network choice (``ethereum:local:test``, ``ethereum:sepolia:node``) or a
    node's RPC URI (``http://127.0.0.1:8545``). When Ape is already connected to that same choice
    (as in the embedded test chain), the existing connection is reused.
    """
    from ape import networks

    active = networks.active_provider
    if (
        active is not None
        and active.is_connected
        and network in (active.network_choice, getattr(active, "uri", None))
    ):
        yield active
        return
    try:
        context = networks.parse_network_choice(network)
        provider = context.__enter__()
    except Exception as exc:
        raise ChainUnavailableError(
            f"cannot reach the chain node at {network}; is it running? ({exc})"
        ) from exc
    poll_receipts_quickly_on_loopback(provider)
    try:
        yield provider
    finally:
        context.__exit__(None, None, None)


def poll_receipts_quickly_on_loopback(provider: Any) -> None:
    """On a node at a loopback address, poll receipts every LOCAL_RECEIPT_POLL_S (a remote node
    keeps web3's 100 ms: its blocks take seconds and each poll is a network round trip)."""
    from urllib.parse import urlparse

    uri = getattr(provider, "uri", None)
    web3 = getattr(provider, "web3", None) if getattr(provider, "is_connected", False) else None
    if not isinstance(uri, str) or web3 is None or not is_loopback(urlparse(uri).hostname or ""):
        return
    eth = web3.eth
    wait = type(eth).wait_for_transaction_receipt

    def wait_for_transaction_receipt(
        transaction_hash: Any, timeout: float = 120, poll_latency: float = 0.1
    ) -> Any:
        return wait(eth, transaction_hash, timeout, min(poll_latency, LOCAL_RECEIPT_POLL_S))

    eth.wait_for_transaction_receipt = wait_for_transaction_receipt
