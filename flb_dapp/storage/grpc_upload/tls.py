"""Transport security of the upload service: TLS credentials, and plaintext only on loopback.

An upload carries a signature over its bytes, so a network attacker cannot forge one; but without
TLS it can read every adapter, and a client cannot tell the oracle from an impostor that answers
"stored". Plaintext is therefore allowed on loopback addresses only, on both sides: the server
refuses to listen in plaintext elsewhere (``0.0.0.0`` included) and the client refuses to send.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from flb_dapp.exceptions import ConfigError
from flb_dapp.loopback import is_loopback


def target_host(target: str) -> str:
    """The host part of a gRPC target: ``host:port``, ``[v6]:port``, ``dns:///host:port``, ``ipv4:...``."""
    rest = target.strip()
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            break
    if rest.startswith("unix:") or rest.startswith("unix-abstract:"):
        return "localhost"  # a local socket: loopback by nature
    if rest.startswith("["):
        return rest[1 : rest.find("]")] if "]" in rest else rest
    if rest.count(":") > 1:  # a bare IPv6 literal without a port
        return rest
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of a PEM file, or a ConfigError naming ``what`` it should have been."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{what} {path} is not a PEM file")
    return data


def tls_server_credentials(certificate_chain: bytes, private_key: bytes) -> grpc.ServerCredentials:
    """Server TLS credentials from PEM bytes (no client certificates asked: uploads are signed)."""
    return grpc.ssl_server_credentials([(private_key, certificate_chain)])


def tls_server_credentials_from_files(
    cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]
) -> grpc.ServerCredentials:
    """Server TLS credentials from a PEM certificate (chain) file and its PEM private key file."""
    return tls_server_credentials(
        read_pem(cert_file, "the TLS certificate"), read_pem(key_file, "the TLS private key")
    )


def refuse_plaintext_listen(host: str) -> None:
    """Raise ConfigError unless ``host`` is loopback (for a server without TLS credentials)."""
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to serve gRPC uploads in plaintext on {host or '*'}: plaintext is allowed on "
            "loopback addresses only; configure oracle.upload_tls_cert and oracle.upload_tls_key, "
            "or set oracle.upload_host to 127.0.0.1"
        )


def refuse_plaintext_send(target: str) -> None:
    """Raise ConfigError unless ``target`` is on loopback (for a client without TLS)."""
    if not is_loopback(target_host(target)):
        raise ConfigError(
            f"refusing to send an upload in plaintext to {target}: plaintext is allowed to loopback "
            "addresses only; set upload_tls_ca (FLB_UPLOAD_TLS_CA) to the certificate of the "
            "service's CA"
        )
