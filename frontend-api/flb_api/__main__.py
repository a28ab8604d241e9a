"""``flb-api``: connect Ape to the configured network, index the deployed coordinator, serve the API.

flb-api                                  # flb.yaml / FLB_* settings
flb-api --network http://127.0.0.1:8545 --deployment deployments/31337.json --port 8000
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flb_dapp.config import FLBSettings, load_settings
from flb_dapp.exceptions import ChainUnavailableError, FLBError

log = logging.getLogger("flb.api")


@contextmanager
def connected(network: str) -> Iterator[Any]:
    """Ape connected to ``network`` (an Ape choice or a node URI) for the block's duration."""
    from ape import networks

    try:
        context = networks.parse_network_choice(network)
        provider = context.__enter__()
    except Exception as exc:
        raise ChainUnavailableError(f"cannot connect to network {network!r}: {exc}") from exc
    try:
        yield provider
    finally:
        context.__exit__(None, None, None)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="flb-api", description="The FLB REST API for explorers, and its dashboard."
    )
    parser.add_argument("--config", help="settings file (default: $FLB_CONFIG or flb.yaml)")
    parser.add_argument("--network", help="Ape network choice or node URI (settings: network)")
    parser.add_argument("--deployment", help="deployment record JSON (settings: deployment)")
    parser.add_argument("--store", help="store folder or IPFS RPC URL (settings: store)")
    parser.add_argument("--host", help="address to listen on (settings: api.host)")
    parser.add_argument("--port", type=int, help="port to listen on (settings: api.port)")
    parser.add_argument("--database", help="index cache file (settings: api.database)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> FLBSettings:
    settings = load_settings(args.config, network=args.network, deployment=args.deployment, store=args.store)
    api = {
        k: v
        for k, v in (("host", args.host), ("port", args.port), ("database", args.database))
        if v is not None
    }
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)}) if api else settings


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from(args)
        import uvicorn

        from flb_api.main import create_app

        with connected(settings.network):
            app = create_app(settings)
            log.info(
                "serving the API on http://%s:%d (network %s)",
                settings.api.host,
                settings.api.port,
                settings.network,
            )
            uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level=args.log_level)
    except FLBError as exc:
        print(f"flb-api: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
