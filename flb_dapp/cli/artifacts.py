"""Fetching adapters and reports by CID, and writing results so that a crash never leaves half a file.

Everything fetched is verified twice: the store re-hashes the bytes against the CID, and the codec
validates the adapter (format, shapes, finite values). Errors name the CID and say what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flb_dapp import atomic
from flb_dapp.exceptions import (
    AdapterMismatchError,
    AdapterValidationError,
    CidMismatchError,
    ConfigError,
    ContentNotFoundError,
)
from flb_dapp.lora.adapter import Adapter


def open_store(location: str) -> Any:
    """The store named by ``location`` (a folder or an IPFS RPC URL)."""
    from flb_dapp.storage.factory import open_store as factory

    return factory(location)


def fetch_verified(store: Any, cid: str, what: str, max_size: int | None = None) -> bytes:
    """The bytes of ``cid``, checked against it; errors say which artifact failed and why."""
    try:
        return bytes(store.get_bytes(cid, max_size=max_size))
    except CidMismatchError as exc:
        raise CidMismatchError(
            f"the {what} {cid} does not verify: the store returned other bytes than the CID names ({exc}); "
            "nothing was used or written. The store's copy is corrupt or forged: fetch it from another "
            "store or ask its operator"
        ) from exc
    except ContentNotFoundError as exc:
        raise ContentNotFoundError(
            f"the {what} {cid} is not in the store {location_of(store)}; check `store` in flb.yaml "
            "(it must be the store the oracle publishes to)"
        ) from exc


def location_of(store: Any) -> str:
    return str(getattr(store, "root", None) or getattr(store, "url", None) or store)


def fetch_adapter(store: Any, cid: str, what: str = "global model") -> Adapter:
    """Fetch, verify and decode an adapter."""
    from flb_dapp.lora.codec import AdapterLimits, decode_adapter

    limits = AdapterLimits()
    data = fetch_verified(store, cid, what, max_size=limits.max_bytes)
    try:
        return decode_adapter(data, limits)
    except AdapterValidationError as exc:
        raise AdapterValidationError(f"the {what} {cid} is not a valid FLB adapter: {exc}") from exc


def check_base_model(adapter: Adapter, spec: Any, what: str = "global model") -> None:
    """The adapter must belong to the task's base model, or training / merging would misfire."""
    from flb_dapp.taskspec import base_model_name

    expected = base_model_name(spec)
    if adapter.metadata.base_model != expected:
        raise AdapterMismatchError(
            f"the {what} was trained on base model {adapter.metadata.base_model!r}, but the task in "
            f"flb.yaml names {expected!r}; fix `task.model` (every party must use the same task)"
        )


def read_adapter_file(path: Path) -> Adapter:
    """An adapter from a safetensors file or a PEFT folder."""
    from flb_dapp.lora import decode_adapter, import_peft

    if path.is_dir():
        return import_peft(path)
    if not path.is_file():
        raise ConfigError(f"no adapter at {path}")
    try:
        return decode_adapter(path.read_bytes())
    except AdapterValidationError as exc:
        raise AdapterValidationError(f"{path} is not a valid FLB adapter: {exc}") from exc


def check_writable_folder(dest: Path, force: bool) -> None:
    """Refuse to replace a non-empty folder unless --force (before any slow work starts)."""
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ConfigError(f"{dest} exists and is not empty; pass --force to replace it")


@contextmanager
def atomic_folder(dest: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside ``dest``; on success it replaces ``dest``, on failure it goes away.
    An occupied ``dest`` is refused unless ``force``."""
    check_writable_folder(dest, force)
    with atomic.atomic_folder(dest) as staged:
        yield staged
