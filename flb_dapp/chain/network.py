"""Connecting Ape to the network a configuration names (an Ape choice or an RPC URI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flb_dapp.exceptions import ChainUnavailableError


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
    try:
        yield provider
    finally:
        context.__exit__(None, None, None)
