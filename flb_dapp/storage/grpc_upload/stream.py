"""The upload stream as the server reads it: its time and rate limits, the reader that gives up on a
slow client, and the receiver that counts, hashes and writes the content after the header.

Every refusal is a :class:`Refusal`: a gRPC status and a message for the client, which the servicer
(:mod:`flb_dapp.storage.grpc_upload.server`) turns into the RPC's abort.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import grpc

from flb_dapp.storage.cid import UnixFSHasher
from flb_dapp.storage.grpc_upload import upload_pb2


@dataclass(frozen=True)
class StreamLimits:
    """How long and how slowly one upload may take, and how many may run at once.

    An upload must be complete ``deadline_s`` after it began; and, after the first ``grace_s``
    (which also bounds the wait for the header), it must keep an average of ``min_rate`` bytes per
    second: ``n`` bytes received buy ``grace_s + n / min_rate`` seconds since the start.
    ``min_rate = 0`` checks the total deadline only. ``max_streams`` uploads run at once (one worker
    thread each); more are refused with RESOURCE_EXHAUSTED.
    """

    deadline_s: float = 60.0
    min_rate: int = 16 << 10
    grace_s: float = 5.0
    max_streams: int = 16

    def __post_init__(self) -> None:
        if self.deadline_s <= 0 or self.grace_s < 0 or self.min_rate < 0 or self.max_streams < 1:
            raise ValueError(f"invalid stream limits: {self}")


class Refusal(Exception):
    """An upload refused with a gRPC status and a message for the client."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


_END = object()


class TimedStream:
    """The request stream, read in a helper thread so the worker can give up on a slow client.

    The worker waits for each message at most until the upload's deadline (the sooner of the total
    deadline and the rate allowance); past it, it raises DEADLINE_EXCEEDED, the RPC ends, gRPC ends
    the helper's blocked read, and both threads are free. The hand-over queue holds two messages,
    so a fast client cannot make the server buffer more than that.
    """

    def __init__(self, requests: Iterator[upload_pb2.UploadChunk], limits: StreamLimits) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self._requests = requests
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="flb-upload-reader", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        item: object = _END
        try:
            for message in self._requests:
                if not self._put(message):
                    return
        except Exception as exc:  # the client cancelled, or the RPC ended under us
            item = exc
        self._put(item)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self, received: int | None, declared: int | None = None) -> upload_pb2.UploadChunk | None:
        """The next message, or None at the end of the stream. ``received`` is None before the header."""
        limits = self.limits
        total_at = self.started + limits.deadline_s
        if received is None:
            allowed = min(limits.grace_s, limits.deadline_s) if limits.grace_s > 0 else limits.deadline_s
            wait_until, reason = self.started + allowed, f"no upload header within {allowed:g} s; aborted"
        else:
            wait_until = total_at
            reason = (
                f"upload not finished within {limits.deadline_s:g} s "
                f"({received} of {declared} bytes received); aborted"
            )
            if limits.min_rate > 0:
                allowance = limits.grace_s + received / limits.min_rate
                if self.started + allowance < wait_until:
                    wait_until = self.started + allowance
                    reason = (
                        f"upload slower than {limits.min_rate} bytes/s: {received} of {declared} bytes "
                        f"received in {allowance:g} s; aborted"
                    )
        try:
            item = self._queue.get(timeout=max(0.0, wait_until - time.monotonic()))
        except queue.Empty:
            raise Refusal(grpc.StatusCode.DEADLINE_EXCEEDED, reason) from None
        if item is _END:
            return None
        if isinstance(item, Exception):
            raise Refusal(grpc.StatusCode.CANCELLED, f"the client ended the stream: {item!r}") from item
        assert isinstance(item, upload_pb2.UploadChunk)
        return item

    def close(self) -> None:
        self._stop.set()


def receive_content(stream: TimedStream, declared: int, cid: str, max_size: int, out: BinaryIO) -> int:
    """Stream the content after the header to ``out``, hashing it on the way, within ``max_size`` and
    the ``declared`` size; refuses content whose CID is not ``cid``. Returns the byte count."""
    hasher = UnixFSHasher(1)
    received = 0
    while (message := stream.next(received, declared)) is not None:
        if message.WhichOneof("payload") != "data":
            raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, "only data may follow the header")
        received += len(message.data)
        if received > max_size:
            raise Refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"upload exceeds this server's limit of {max_size} bytes; stopped reading",
            )
        if received > declared:
            raise Refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"upload sends more than the {declared} bytes its header declared; stopped reading",
            )
        hasher.update(message.data)
        out.write(message.data)
    if received != declared:
        raise Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"stream ended after {received} bytes; header declared {declared}",
        )
    actual = hasher.finalize().encode()
    if actual != cid:
        raise Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"CID mismatch: the content hashes to {actual}, the signed header names {cid}",
        )
    return received
