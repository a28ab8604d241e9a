"""Whether a host is this machine only: the one rule for "loopback" that every part applies (the
upload service's plaintext rule, the chain's "local dev node" rule)."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) is loopback-only.

    Wildcards (``0.0.0.0``, ``::``, empty) listen on every interface and are not loopback; other
    names are not resolved and count as remote.
    """
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
