"""Connecting a command to the chain: the node, the deployment record and the coordinator SDK.

Every failure on the way is turned into an FLB error that says what to do: an unreachable node,
a record for another chain, no contract at the recorded address. Sending goes through
:func:`send`, which checks the account can pay for gas first and reports the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from flb_dapp.cli.output import Output, format_units
from flb_dapp.exceptions import ChainError, ChainUnavailableError, ConfigError, FLBError, PreflightError


@dataclass
class ChainSession:
    """A live connection: the network choice, the deployment record and the coordinator."""

    network: str
    chain_id: int
    record: Any  # DeploymentRecord
    coordinator: Any  # Coordinator

    def eth_balance(self, address: str) -> int:
        from ape import chain

        return int(chain.provider.get_balance(address))

    def token_units(self) -> tuple[str, int]:
        """The reward token's symbol and decimals, as amounts are shown."""
        token = self.coordinator.token
        return str(token.symbol()), int(token.decimals())


def _looks_like_uri(choice: str) -> bool:
    return "://" in choice or choice.endswith(".ipc")


@contextmanager
def connect(network: str, verbose: bool = False) -> Iterator[Any]:
    """Ape connected to ``network`` (an Ape choice or a node URI) for the duration of the block."""
    from ape import networks
    from ape.exceptions import ApeException, NetworkError
    from ape.logging import logger

    with ExitStack() as stack:
        # NOTE: Ape logs every confirmation and an autosign warning at INFO/WARNING; FLB reports
        # transactions itself, so Ape speaks only with --verbose.
        stack.enter_context(logger.at_level(logging.INFO if verbose else logging.ERROR))
        try:
            provider = stack.enter_context(networks.parse_network_choice(network))
            provider.chain_id  # noqa: B018 - the first request is where a dead node shows up
        except NetworkError as exc:
            if _looks_like_uri(network):
                raise ChainUnavailableError(
                    f"cannot reach the chain node at {network}; is it running?"
                ) from exc
            raise ConfigError(
                f"unknown network {network!r}: {exc}; use an Ape network choice "
                "(e.g. ethereum:sepolia:node) or a node URL (http://127.0.0.1:8545)"
            ) from exc
        except (ApeException, OSError, ConnectionError) as exc:
            raise ChainUnavailableError(
                f"cannot reach the chain node at {network}; is it running? ({exc})"
            ) from exc
        yield provider


@contextmanager
def ape_logging(verbose: bool) -> Iterator[None]:
    """Ape's log at INFO with ``verbose``, else errors only, for the duration of the block.

    Ape logs every transaction it submits and confirms, and every deployment, at INFO/SUCCESS: a
    run of many rounds would bury its own table under them. Unlike Ape's ``logger.at_level``, the
    previous level comes back even when the block raises (in-process callers keep their setup).
    For the top-floor commands (`flb simulate`, `flb devnet up`) that connect through
    :func:`flb_dapp.chain.network.connect` rather than :func:`connect`.
    """
    from ape.logging import logger

    previous = logger.level
    logger.set_level(logging.INFO if verbose else logging.ERROR)
    try:
        yield
    finally:
        logger.set_level(previous)


@contextmanager
def chain_session(settings: Any, verbose: bool = False) -> Iterator[ChainSession]:
    """Connect to ``settings.network`` and open the coordinator named by ``settings.deployment``."""
    from flb_dapp.chain.deployment import DeploymentRecord

    record = DeploymentRecord.load(settings.deployment)  # before connecting: a typo fails fast
    with connect(settings.network, verbose) as provider:
        chain_id = int(provider.chain_id)
        if chain_id != record.chain_id:
            raise ConfigError(
                f"the deployment record {settings.deployment} is for chain {record.chain_id}, but "
                f"{settings.network} is chain {chain_id}; point `deployment:` at this chain's record"
            )
        from flb_dapp.chain.coordinator import Coordinator

        yield ChainSession(settings.network, chain_id, record, Coordinator(record.coordinator, record.block))


def check_gas_funds(session: ChainSession, address: str) -> None:
    """A transaction from an account without ETH fails inside the node with an obscure message."""
    if session.eth_balance(address) == 0:
        raise PreflightError(
            f"{address} has no ETH to pay for gas on chain {session.chain_id}; fund it first "
            "(`flb balance` shows what it holds)"
        )


def send(out: Output, session: ChainSession, account: Any, what: str, transact: Callable[[], Any]) -> Any:
    """Run ``transact`` (an SDK method that pre-flights and sends) and report the receipt."""
    from ape.exceptions import ApeException

    from flb_dapp.chain.accounts import check_may_sign

    check_may_sign(account)  # NOTE: the account may have been unlocked before this chain was connected
    check_gas_funds(session, str(account.address))
    try:
        with out.status(f"Sending {what} ..."):
            receipt = transact()
    except FLBError:
        raise
    except ApeException as exc:
        raise ChainError(f"{what} failed: {exc}") from exc
    if receipt is None:
        raise ChainError(f"{what} was not signed")
    fee = int(getattr(receipt, "gas_used", 0) or 0) * int(getattr(receipt, "gas_price", 0) or 0)
    out.success(
        f"{what}: transaction {receipt.txn_hash} in block {receipt.block_number} "
        f"(gas {int(receipt.gas_used):,}, fee {format_units(fee)} ETH)"
    )
    return receipt
