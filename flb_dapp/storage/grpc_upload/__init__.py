"""gRPC upload of adapters for clients without an IPFS node: signed, size-limited, CID-checked.

The generated ``upload_pb2*.py`` modules come from ``upload.proto``; regenerate them with
``python -m flb_dapp.storage.grpc_upload.generate``.
"""

from flb_dapp.storage.grpc_upload.client import upload_adapter
from flb_dapp.storage.grpc_upload.server import AdapterUploadServicer, UploadServer, tls_server_credentials
from flb_dapp.storage.grpc_upload.signing import recover_uploader, sign_upload, upload_message

__all__ = [
    "AdapterUploadServicer",
    "UploadServer",
    "recover_uploader",
    "sign_upload",
    "tls_server_credentials",
    "upload_adapter",
    "upload_message",
]
