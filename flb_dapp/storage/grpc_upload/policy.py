"""What the upload service needs to know about the chain, as a view it can read without waiting.

The servicer asks two questions per upload: which round is open, and whether the signer is a
registered, not banned, client. Both must answer from memory at once: an upload must never wait for
a chain node, nor for the oracle's round computation. :class:`ChainSnapshot` is such a view, kept
fresh by a :class:`SnapshotRefresher` thread that calls a reader of the chain (the oracle's) every
few seconds.

Staleness: the snapshot is as old as its last refresh. A client that registers, or a round that
opens, is seen at most one refresh interval (plus one refresh's duration) later; until then its
uploads are refused and may be retried. A client banned since the last refresh may still upload in
that window; the contract and the round computation refuse a banned client's update regardless.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from eth_utils import to_checksum_address

log = logging.getLogger(__name__)


class ClientStatus(enum.Enum):
    """A client's standing with the contract, as far as uploads care."""

    UNREGISTERED = "unregistered"
    REGISTERED = "registered"
    BANNED = "banned"


class ChainViewUnavailable(RuntimeError):
    """The view cannot answer yet (never refreshed); the upload is refused as UNAVAILABLE."""


@runtime_checkable
class ChainView(Protocol):
    """The upload service's non-blocking view of the contract. Both methods answer from memory."""

    def open_round(self) -> int | None:
        """The round uploads are accepted for. ``None`` only for views that do not track rounds
        (:class:`RegistrationOnlyView`); raises :class:`ChainViewUnavailable` when not known yet."""
        ...

    def client_status(self, address: str) -> ClientStatus:
        """``address``'s status (checksum or not); raises :class:`ChainViewUnavailable` when not known yet."""
        ...


@dataclass(frozen=True)
class SnapshotState:
    """One consistent reading of the chain: the open round and every known client's status."""

    open_round: int
    clients: Mapping[str, ClientStatus]
    block: int | None = None


class ChainSnapshot:
    """A thread-safe, in-memory :class:`ChainView`; replaced or updated by whoever reads the chain."""

    def __init__(
        self,
        open_round: int | None = None,
        clients: Mapping[str, ClientStatus] | None = None,
        *,
        block: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._open_round = open_round
        self._clients = {to_checksum_address(a): s for a, s in (clients or {}).items()}
        self._block = block
        self.refreshed_at: float | None = time.monotonic() if open_round is not None else None

    # --- ChainView ------------------------------------------------------------------------------
    def open_round(self) -> int | None:
        with self._lock:
            if self._open_round is None:
                raise ChainViewUnavailable("the oracle has not read the chain yet; retry in a few seconds")
            return self._open_round

    def client_status(self, address: str) -> ClientStatus:
        with self._lock:
            if self._open_round is None:
                raise ChainViewUnavailable("the oracle has not read the chain yet; retry in a few seconds")
            return self._clients.get(to_checksum_address(address), ClientStatus.UNREGISTERED)

    # --- writers --------------------------------------------------------------------------------
    @property
    def block(self) -> int | None:
        """The block the snapshot was last read at, when the reader says."""
        with self._lock:
            return self._block

    def update(
        self,
        open_round: int,
        clients: Mapping[str, ClientStatus] | None = None,
        *,
        block: int | None = None,
        replace: bool = False,
    ) -> None:
        """Set the open round and the given clients' status (all clients when ``replace``)."""
        changes = {to_checksum_address(a): s for a, s in (clients or {}).items()}
        with self._lock:
            if replace:
                self._clients = changes
            else:
                self._clients.update(changes)
            self._open_round = int(open_round)
            self._block = block
            self.refreshed_at = time.monotonic()

    def set_client(self, address: str, status: ClientStatus) -> None:
        with self._lock:
            self._clients[to_checksum_address(address)] = status


class RegistrationOnlyView:
    """A view over a bare ``is_registered(address)`` callable (the service's former interface).

    It knows no round (so the round is not checked) and no bans; meant for tests and embedding,
    never for the oracle, which passes a :class:`ChainSnapshot`.
    """

    def __init__(self, is_registered: Callable[[str], bool]) -> None:
        self.is_registered = is_registered

    def open_round(self) -> int | None:
        return None

    def client_status(self, address: str) -> ClientStatus:
        return ClientStatus.REGISTERED if self.is_registered(address) else ClientStatus.UNREGISTERED


def as_chain_view(view: ChainView | Callable[[str], bool]) -> ChainView:
    """``view`` itself, or a :class:`RegistrationOnlyView` over a bare callable."""
    if isinstance(view, ChainView):
        return view
    if callable(view):
        return RegistrationOnlyView(view)
    raise TypeError(f"expected a ChainView or an is_registered callable, got {type(view).__name__}")


def statuses(registered: Iterable[str], banned: Iterable[str]) -> dict[str, ClientStatus]:
    """Statuses from the sets of registered and of banned addresses (banned wins)."""
    result: dict[str, ClientStatus] = {to_checksum_address(a): ClientStatus.REGISTERED for a in registered}
    result.update({to_checksum_address(a): ClientStatus.BANNED for a in banned})
    return result


class SnapshotRefresher:
    """Calls ``refresh()`` now and then every ``interval_s`` in a daemon thread, until stopped.

    ``refresh`` reads the chain and updates the snapshot; its failures are logged and retried at the
    next interval (the snapshot keeps its last good state). ``start(wait_first=True)`` returns after
    the first attempt, so a service starts with a loaded view whenever the chain answers.
    """

    def __init__(
        self, refresh: Callable[[], None], interval_s: float, *, name: str = "flb-upload-view"
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the refresh interval must be positive")
        self.refresh = refresh
        self.interval_s = interval_s
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self.failures, self.last_error = 0, None
            except Exception as exc:  # the chain node may be down; keep the last good snapshot
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("upload service: chain view refresh failed (%d in a row): %s", self.failures, exc)
            self._first.set()
            self._stop.wait(self.interval_s)

    def start(self, *, wait_first: bool = True, timeout: float | None = 60.0) -> SnapshotRefresher:
        self._thread.start()
        if wait_first:
            self._first.wait(timeout)
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> SnapshotRefresher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
