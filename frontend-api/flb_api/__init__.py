"""The REST API for FLB explorers: an indexer that follows the coordinator's events into SQLite,
read endpoints over that cache, operator endpoints forwarded to the oracle, and a dashboard.

Layering: this package imports ``flb_dapp`` (and Ape through it), never the oracle service.
"""

from flb_api.main import create_app
from flb_api.version import __version__

__all__ = ["__version__", "create_app"]
