"""KuboStore against a real HTTP server on loopback that stalls: dripping bytes, or none at all.

A node (or the peer behind it) that sends one byte at a time never trips a per-read timeout;
the caller's deadline must still end the read, as a ContentTimeoutError (about the content),
not a StoreUnavailableError (an outage, which the oracle retries instead of rejecting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flb_dapp.exceptions import ContentTimeoutError, StoreUnavailableError
from flb_dapp.storage.kubo import KuboStore
from tests.storage.test_kubo_faults import F100


class _StallingNode(BaseHTTPRequestHandler):
    mode = "drip"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for _ in range(600):
                if self.mode == "drip":
                    self.wfile.write(b"1\r\nx\r\n")
                    self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def node() -> Iterator[tuple[ThreadingHTTPServer, type[_StallingNode]]]:
    handler = type("Handler", (_StallingNode,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["drip", "silent"])
def test_a_stalling_read_ends_at_the_deadline_as_a_content_timeout(
    node: tuple[ThreadingHTTPServer, type[_StallingNode]], mode: str
) -> None:
    server, handler = node
    handler.mode = mode
    store = KuboStore(f"http://127.0.0.1:{server.server_address[1]}", timeout=30.0)
    started = time.monotonic()
    with pytest.raises(ContentTimeoutError, match=F100):
        store.get_bytes(F100, max_size=1 << 20, deadline_s=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0  # the 30 s per-read timeout never came into play
    store.close()


def test_without_a_deadline_a_stall_is_an_outage(
    node: tuple[ThreadingHTTPServer, type[_StallingNode]],
) -> None:
    server, handler = node
    handler.mode = "silent"
    store = KuboStore(f"http://127.0.0.1:{server.server_address[1]}", timeout=0.5)
    with pytest.raises(StoreUnavailableError, match="stalled during cat"):
        store.get_bytes(F100)
    store.close()
