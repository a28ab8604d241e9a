"""The two multibase encodings CIDs are written in: base58btc (``Qm...`` and ``z...``) and
lower-case, unpadded RFC 4648 base32 (``b...``). Stdlib only; the CID value type is in
:mod:`flb_dapp.storage.cid`.
"""

from __future__ import annotations

import base64

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """base58btc (Bitcoin alphabet), leading zero bytes as '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    chars: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(chars))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"{char!r} is not a base58btc character")
        number = number * 58 + _B58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def b32encode(data: bytes) -> str:
    """Lower-case base32 without padding (the body of a ``b...`` CID)."""
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def b32decode(text: str) -> bytes:
    """Inverse of :func:`b32encode` (either case); raises ValueError (binascii.Error) on bad input."""
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
