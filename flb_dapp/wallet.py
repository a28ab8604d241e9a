"""The client's wallet: Ape's encrypted keystores (``<Ape data folder>/accounts/<alias>.json``).

Keys only ever exist encrypted on disk (Ape's keyfile format, scrypt + AES). Ape's data folder is
``~/.ape`` unless the ``APE_DATA_FOLDER`` environment variable names another one (tests and
separate identities on one machine use it). ``test:N`` names Ape's N-th test account on a local
chain; it needs no keystore and no password.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flb_dapp.chain.accounts import TEST_PREFIX, load_account
from flb_dapp.exceptions import WalletError

MIN_PASSWORD_LENGTH = 8
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class KeystoreAccount:
    """An account stored encrypted in Ape's data folder."""

    alias: str
    address: str
    path: Path


def keystore_folder() -> Path:
    """Where Ape keeps encrypted accounts (created if missing)."""
    from ape import accounts

    return Path(accounts.containers["accounts"].data_folder)


def _describe(account: Any) -> KeystoreAccount:
    return KeystoreAccount(alias=account.alias, address=str(account.address), path=Path(account.keyfile_path))


def list_accounts() -> list[KeystoreAccount]:
    """Every keystore account, sorted by alias."""
    from ape_accounts.accounts import KeyfileAccount

    return sorted(
        (_describe(KeyfileAccount(keyfile_path=path)) for path in keystore_folder().glob("*.json")),
        key=lambda a: a.alias,
    )


def check_alias(alias: str) -> str:
    """A usable new alias: a short file-name-safe word, not taken, not ``test:N``."""
    if alias.startswith(TEST_PREFIX) or not _ALIAS.match(alias):
        raise WalletError(
            f"{alias!r} is not a valid account alias: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    if _HEX_KEY.match(alias) or (alias.startswith("0x") and len(alias) >= 42):
        raise WalletError("an alias may not look like a key or an address (it is stored in plain text)")
    if (keystore_folder() / f"{alias}.json").exists():
        raise WalletError(f"an account named {alias!r} exists already; choose another alias")
    return alias


def check_password(password: str) -> str:
    """Refuse empty and very short passwords: the keystore is only as strong as its password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WalletError(f"choose a password of at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _quietly(function: Any, *args: Any) -> Any:
    # NOTE: Ape warns about simple passwords through `warnings`; FLB checks them itself (above).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return function(*args)
        except WalletError:
            raise
        except Exception as exc:
            raise WalletError(f"could not write the keystore: {exc}") from exc


def create_account(alias: str, password: str) -> tuple[KeystoreAccount, str]:
    """A new random account, encrypted with ``password``; returns it and its recovery phrase."""
    from ape_accounts import generate_account

    check_alias(alias)
    check_password(password)
    account, mnemonic = _quietly(generate_account, alias, password)
    return _describe(account), str(mnemonic)


def normalize_private_key(text: str) -> str:
    """``0x`` + 64 hex digits; the message never repeats the (possibly secret) input."""
    key = text.strip()
    if not _HEX_KEY.match(key):
        raise WalletError("that is not a private key: expected 64 hexadecimal digits (0x optional)")
    return key if key.startswith("0x") else "0x" + key


def import_private_key(alias: str, password: str, private_key: str) -> KeystoreAccount:
    """Encrypt an existing private key into a new keystore named ``alias``."""
    from ape_accounts import import_account_from_private_key

    key = normalize_private_key(private_key)
    check_alias(alias)
    check_password(password)
    return _describe(_quietly(import_account_from_private_key, alias, password, key))


def import_mnemonic(
    alias: str, password: str, mnemonic: str, hd_path: str = "m/44'/60'/0'/0/0"
) -> KeystoreAccount:
    """Derive an account from a BIP-39 phrase and encrypt it into a new keystore."""
    from ape_accounts import import_account_from_mnemonic

    words = " ".join(mnemonic.split())
    if len(words.split()) not in (12, 15, 18, 21, 24):
        raise WalletError("a recovery phrase has 12, 15, 18, 21 or 24 words")
    check_alias(alias)
    check_password(password)
    return _describe(_quietly(import_account_from_mnemonic, alias, password, words, hd_path))


def is_test_account(name: str) -> bool:
    return name.startswith(TEST_PREFIX)


def account_address(name: str) -> str:
    """The checksum address of an alias or ``test:N`` without unlocking anything."""
    if is_test_account(name):
        return str(load_account(name).address)
    path = keystore_folder() / f"{name}.json"
    if not path.is_file():
        raise WalletError(
            f"no account named {name!r} in {path.parent}; create one with `flb account new {name}` "
            "or list them with `flb account list`"
        )
    from ape_accounts.accounts import KeyfileAccount

    return str(KeyfileAccount(keyfile_path=path).address)


def unlock_account(name: str, password: str | None) -> Any:
    """The Ape account ``name``, unlocked to sign without further prompts."""
    from ape.logging import logger

    if not is_test_account(name):
        account_address(name)  # a clear "no such account" before anything else
        if password is None:
            raise WalletError(f"account {name!r} needs its password to sign")
    # NOTE: Ape warns "Danger! This account will now sign any transaction" on stdout; FLB unlocks
    # on purpose, for this one command, and keeps stdout for results.
    with logger.at_level(logging.ERROR):
        return load_account(name, password)
