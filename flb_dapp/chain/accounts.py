"""Loading signing accounts: Ape's encrypted keystores, or Ape's test accounts on dev chains.

Private keys never appear in configuration: an account is named by its Ape alias and unlocked
with a password typed at a prompt, read from a file, or taken from an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flb_dapp.exceptions import WalletError
from flb_dapp.loopback import is_loopback

TEST_PREFIX = "test:"
DEV_CHAIN_IDS = (1337, 31337)  # Ape's embedded chain, anvil, hardhat


def is_local_chain() -> bool:
    """Whether the connected chain is a dev chain on this machine, where well-known test keys may
    sign: Ape's embedded chain, or a node on a loopback address with a dev chain id. A URL network
    is not local by being a URL: ``https://rpc.example`` with chain id 1 is mainnet."""
    from urllib.parse import urlparse

    from ape import chain

    provider = chain.provider
    if provider.network.name == "local" and provider.name == "test":
        return True  # the embedded py-evm chain, in this process
    uri = getattr(provider, "uri", None) or getattr(provider, "http_uri", None) or ""
    host = urlparse(str(uri)).hostname or ""
    return is_loopback(host) and int(chain.chain_id) in DEV_CHAIN_IDS


def check_may_sign(account: Any, name: str | None = None) -> None:
    """Refuse a well-known test account on a chain that is not a local dev chain (WalletError)."""
    from ape.api.accounts import TestAccountAPI

    if isinstance(account, TestAccountAPI) and not is_local_chain():
        from ape import chain

        raise WalletError(
            f"{name or account.address} is one of Ape's test accounts, whose keys are public; refusing "
            f"to sign with it on chain {chain.chain_id}, which is not a local dev chain: name an "
            "encrypted account instead"
        )


def _connected() -> bool:
    """Whether a chain is connected; without one nothing can be sent (``flb train`` only needs the
    address), so the test-key rule waits for the session that could send."""
    from ape import networks

    return networks.active_provider is not None and networks.active_provider.is_connected


def read_password(password_file: str | Path | None = None, password_env: str | None = None) -> str | None:
    """The password from a file (first line) or an environment variable; None if neither is set."""
    if password_file:
        path = Path(password_file).expanduser()
        if not path.is_file():
            raise WalletError(f"password file {path} does not exist")
        lines = path.read_text().splitlines()
        return lines[0] if lines else ""
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise WalletError(f"environment variable {password_env} is not set")
        return value
    return None


def load_account(
    name: str,
    password: str | None = None,
    *,
    autosign: bool = True,
) -> Any:
    """An unlocked Ape account.

    ``name`` is an Ape alias (``~/.ape/accounts/<alias>.json``) or ``test:N`` for Ape's N-th test
    account on a local chain (they share anvil's mnemonic, so they are funded there too). With a
    password the account signs without prompting (services); without one Ape prompts.
    """
    from ape import accounts

    if name.startswith(TEST_PREFIX):
        try:
            test_account = accounts.test_accounts[int(name[len(TEST_PREFIX) :])]
        except (ValueError, IndexError) as exc:
            raise WalletError(f"no test account {name!r}; use test:0 .. test:9") from exc
        if _connected():
            check_may_sign(test_account, name)
        return test_account
    try:
        account = accounts.load(name)
    except Exception as exc:
        raise WalletError(f"no account named {name!r}; create one with `flb account new {name}`") from exc
    if password is not None:
        try:
            if autosign:
                account.set_autosign(True, passphrase=password)
            else:
                account.unlock(passphrase=password)
        except Exception as exc:
            raise WalletError(f"wrong password for account {name!r}") from exc
    return account
