"""The fetch step: bring every update into the cache, a few at a time, within deadlines.

A failure about one update (missing, too big, wrong bytes, too slow) is that update's rejection;
only an outage of the store itself is raised, so the round waits for the next tick instead of
rejecting honest updates.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from flb_dapp.exceptions import (
    CidMismatchError,
    ContentNotFoundError,
    ContentTooLargeError,
    FLBError,
    StoreUnavailableError,
)
from flb_dapp.rounds.inputs import UpdateRef
from flb_dapp.rounds.results import FetchedUpdate, FetchResult
from flb_dapp.rounds.settings import RoundRules
from flb_dapp.storage.base import ContentStore

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation

#: Rejection reasons that mean "the oracle could not get the bytes" (a verifier keeps them as they are).
UNFETCHABLE_PREFIXES = ("CID does not resolve", "could not be fetched")


def fetch_with_retry(
    store: ContentStore, cid: str, settings: RoundRules, not_after: float | None = None
) -> bytes:
    """Verified bytes within ``fetch_timeout_s`` in total; a store that is down is retried within
    that time and then raised (an outage of the oracle's own node is never the client's fault)."""
    deadline = time.monotonic() + settings.fetch_timeout_s
    if not_after is not None:
        deadline = min(deadline, not_after)
    delay = settings.fetch_retry_s
    while True:
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            return store.get_bytes(cid, max_size=settings.max_update_bytes, deadline_s=remaining)
        except StoreUnavailableError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def exception_text(exc: BaseException) -> str:
    """What went wrong, in words: FLB errors say it themselves; others are named by their type."""
    return str(exc) if isinstance(exc, FLBError) else f"{type(exc).__name__}: {exc}"


def describe(exc: BaseException) -> str:
    """An exception as a one-line rejection reason, at most 500 characters."""
    text = exception_text(exc)
    return text if len(text) <= 500 else text[:497] + "..."


def _failure_reason(exc: Exception, settings: RoundRules) -> str:
    if isinstance(exc, ContentNotFoundError):
        return f"CID does not resolve: {exc}"
    if isinstance(exc, CidMismatchError):
        return f"bytes do not match their CID: {exc}"
    if isinstance(exc, ContentTooLargeError):
        return f"update larger than {settings.max_update_bytes} bytes"
    return f"could not be fetched within {settings.fetch_timeout_s:g} s: {exception_text(exc)}"


def fetch_step(run: RoundComputation) -> FetchResult:
    """Every update in chain order; past ``max_updates`` they are listed as not processed."""
    settings = run.settings
    refs = list(run.inputs.updates)
    processed = refs[: settings.max_updates]
    not_after = time.monotonic() + settings.fetch_round_budget_s

    def fetch_one(ref: UpdateRef) -> FetchedUpdate:
        entry = FetchedUpdate(client=ref.client, cid=ref.cid, num_samples=ref.num_samples)
        if time.monotonic() >= not_after:
            budget = settings.fetch_round_budget_s
            entry.ok, entry.reason = (
                False,
                f"could not be fetched within the round's fetch budget of {budget:g} s",
            )
            return entry
        try:
            data = fetch_with_retry(run.store, ref.cid, settings, not_after)
            if run.cache is not run.store:
                run.cache.put_bytes(data)
        except StoreUnavailableError:
            raise
        except Exception as exc:  # NOTE: whatever one update does, it only rejects that update
            entry.ok, entry.reason = False, _failure_reason(exc, settings)
        return entry

    with ThreadPoolExecutor(max_workers=settings.fetch_concurrency) as pool:
        fetched = list(pool.map(fetch_one, processed))
    skipped = f"not processed: the round takes at most {settings.max_updates} updates (chain order)"
    fetched += [
        FetchedUpdate(client=r.client, cid=r.cid, num_samples=r.num_samples, ok=False, reason=skipped)
        for r in refs[len(processed) :]
    ]
    return FetchResult(updates=fetched)
