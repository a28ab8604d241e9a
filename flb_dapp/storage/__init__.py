"""Content-addressed storage: CIDs, the store interface and its backends (local folder, IPFS/Kubo).

Nothing here imports chain code; the gRPC upload service verifies Ethereum signatures with
``eth_account`` alone.
"""

from flb_dapp.storage.base import ContentStore
from flb_dapp.storage.cid import Cid, cid_from_bytes, cid_of_bytes, cid_of_file, cid_to_bytes, parse_cid
from flb_dapp.storage.factory import open_store
from flb_dapp.storage.local import LocalStore

__all__ = [
    "Cid",
    "ContentStore",
    "LocalStore",
    "cid_from_bytes",
    "cid_of_bytes",
    "cid_of_file",
    "cid_to_bytes",
    "open_store",
    "parse_cid",
]
