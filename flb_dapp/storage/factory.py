"""Open the store a configuration names: a folder path or an IPFS node's RPC URL."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from flb_dapp.exceptions import ConfigError
from flb_dapp.storage.base import ContentStore


def open_store(url_or_path: str | os.PathLike[str], **options: object) -> ContentStore:
    """``http(s)://host:port`` -> :class:`KuboStore`; a folder path (or ``file://``) -> :class:`LocalStore`.

    ``options`` go to the backend's constructor (e.g. ``timeout=`` for Kubo).
    """
    text = os.fspath(url_or_path)
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise ConfigError(f"store URL {text!r} names no host; expected e.g. http://127.0.0.1:5001")
        from flb_dapp.storage.kubo import KuboStore

        return KuboStore(text, **options)  # type: ignore[arg-type]
    if parsed.scheme == "file":
        text = parsed.path
    elif parsed.scheme and len(parsed.scheme) > 1:  # NOTE: one letter is a Windows drive, not a scheme
        raise ConfigError(
            f"store {text!r}: unknown scheme {parsed.scheme!r}; use a folder path or an IPFS RPC URL "
            "(http://host:5001)"
        )
    from flb_dapp.storage.local import LocalStore

    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"store path {text!r} is a file, not a folder")
    return LocalStore(path, **options)  # type: ignore[arg-type]
