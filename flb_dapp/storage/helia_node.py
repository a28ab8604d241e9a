"""Start and stop the Helia IPFS node of ``tools/ipfs-node.mjs`` from Python (tests, bench, devnet).

The node speaks the Kubo RPC subset :class:`~flb_dapp.storage.kubo.KuboStore` uses, listens on
loopback only and keeps its blocks in memory: it is a development stand-in for a Kubo daemon.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time

from flb_dapp.exceptions import StoreUnavailableError
from flb_dapp.node_tools import REPO_ROOT, helia_missing, ipfs_node_command


class HeliaNode:
    """A running ``tools/ipfs-node.mjs``; ``url`` is its RPC address (``http://127.0.0.1:PORT``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 60.0) -> None:
        reason = helia_missing()
        if reason is not None:
            raise StoreUnavailableError(f"cannot start the Helia IPFS node: {reason}")
        # NOTE: stderr goes to a file, not a pipe nobody reads, so a chatty node never blocks.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the node
        self.process = subprocess.Popen(
            ipfs_node_command(host, port, exit_with_stdin=True),
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,  # the node exits when this closes, even if we are killed
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            ready = self._read_ready_line(startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.url = str(ready["api"])
        self.port = int(str(ready["port"]))

    def _read_ready_line(self, timeout: float) -> dict[str, object]:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = b""
        try:
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise StoreUnavailableError(f"Helia node printed no ready line within {timeout} s")
                byte = os.read(self.process.stdout.fileno(), 1)
                if not byte:
                    raise StoreUnavailableError(
                        f"Helia node exited before it was ready: {self.stderr_text()}"
                    )
                line += byte
        finally:
            selector.close()
        ready = json.loads(line)
        if not ready.get("ready"):
            raise StoreUnavailableError(f"unexpected first line from the Helia node: {line!r}")
        return dict(ready)

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")[-4000:]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node (closing stdin, then SIGTERM, then SIGKILL) and reap it."""
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=timeout / 2)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout / 2)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> HeliaNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
