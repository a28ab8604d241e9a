"""gRPC upload of adapters for clients without an IPFS node: signed, size-limited, CID-checked.

The generated ``upload_pb2*.py`` modules come from ``upload.proto``; regenerate them with
``python -m flb_dapp.storage.grpc_upload.generate``.
"""

from flb_dapp.storage.grpc_upload.client import upload_adapter
from flb_dapp.storage.grpc_upload.policy import (
    ChainSnapshot,
    ChainView,
    ChainViewUnavailable,
    ClientStatus,
    RegistrationOnlyView,
    SnapshotRefresher,
)
from flb_dapp.storage.grpc_upload.server import (
    AdapterUploadServicer,
    StreamLimits,
    UploadLedger,
    UploadServer,
)
from flb_dapp.storage.grpc_upload.signing import recover_uploader, sign_upload, upload_message
from flb_dapp.storage.grpc_upload.tls import (
    is_loopback,
    tls_server_credentials,
    tls_server_credentials_from_files,
)

__all__ = [
    "AdapterUploadServicer",
    "ChainSnapshot",
    "ChainView",
    "ChainViewUnavailable",
    "ClientStatus",
    "RegistrationOnlyView",
    "SnapshotRefresher",
    "StreamLimits",
    "UploadLedger",
    "UploadServer",
    "is_loopback",
    "recover_uploader",
    "sign_upload",
    "tls_server_credentials",
    "tls_server_credentials_from_files",
    "upload_adapter",
    "upload_message",
]
