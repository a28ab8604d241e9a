"""Loading signing accounts: Ape's encrypted keystores, or Ape's test accounts on dev chains.

Private keys never appear in configuration: an account is named by its Ape alias and unlocked
with a password typed at a prompt, read from a file, or taken from an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flb_dapp.exceptions import WalletError

TEST_PREFIX = "test:"


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
            return accounts.test_accounts[int(name[len(TEST_PREFIX) :])]
        except (ValueError, IndexError) as exc:
            raise WalletError(f"no test account {name!r}; use test:0 .. test:9") from exc
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
