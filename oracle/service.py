"""Wiring the oracle from settings, and running it on APScheduler."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flb_dapp.chain.accounts import load_account, read_password
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord
from flb_dapp.chain.network import connect
from flb_dapp.chain.settlement import Settlement
from flb_dapp.config import FLBSettings, check_secret
from flb_dapp.exceptions import ConfigError
from flb_dapp.storage.factory import open_store
from oracle.journal import Journal
from oracle.pipeline import Oracle, ProcessedRound

if TYPE_CHECKING:
    from flb_dapp.storage.grpc_upload.policy import ChainSnapshot

log = logging.getLogger("flb.oracle")


def oracle_password(settings: FLBSettings) -> str | None:
    if settings.password_file:
        return read_password(settings.password_file)
    return os.environ.get(settings.password_env)


@contextmanager
def open_oracle(settings: FLBSettings, **overrides: Any) -> Iterator[Oracle]:
    """Connect to the network, load the deployment, unlock the oracle account, open the store."""
    if settings.oracle.torch_threads:
        import torch

        torch.set_num_threads(settings.oracle.torch_threads)
    with connect(settings.network):
        record = DeploymentRecord.load(settings.deployment)
        coordinator = Coordinator(record.coordinator, record.block)
        # NOTE: test:0 is only a default on a local dev chain; load_account refuses it elsewhere.
        account = load_account(settings.account or "test:0", oracle_password(settings))
        journal = Journal(settings.oracle.journal)
        try:
            yield Oracle(
                settings,
                account=account,
                coordinator=coordinator,
                store=open_store(settings.store),
                journal=journal,
                start_block=record.block,
                settlement=Settlement(record.settlement, record.block) if record.settlement else None,
                **overrides,
            )
        finally:
            journal.close()


def summarize(processed: ProcessedRound) -> dict[str, Any]:
    data = asdict(processed)
    data.pop("outcome", None)
    return data


class OracleService:
    """The long-running service: a tick every interval, a control endpoint, optional gRPC upload."""

    def __init__(self, oracle: Oracle, settings: FLBSettings) -> None:
        self.oracle = oracle
        self.settings = settings
        self.lock = threading.Lock()
        self.last_processed: dict[str, Any] | None = None

    def tick(self) -> list[dict[str, Any]]:
        # NOTE: the scheduler and the control endpoint may both ask; one round at a time.
        with self.lock:
            done = [summarize(p) for p in self.oracle.tick()]
        if done:
            self.last_processed = done[-1]
        return done

    def status(self) -> dict[str, Any]:
        return {
            "status": "paused" if self.oracle.paused else "running",
            "contract": self.oracle.coordinator.address,
            "pause_reason": self.oracle.pause_reason,
            "last_error": self.oracle.last_error,
            "last_processed": self.last_processed,
        }

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.oracle.pause("paused by the operator")
        else:
            self.oracle.resume()

    def run(self) -> None:
        from apscheduler.schedulers.blocking import BlockingScheduler

        config = self.settings.oracle
        scheduler = BlockingScheduler()
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=config.interval_s,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(),
        )
        with ExitStack() as stack:
            if config.control_port is not None:
                from oracle.control import ControlServer

                token = check_secret(os.environ.get(config.control_token_env), config.control_token_env)
                control = ControlServer(
                    config.control_host,
                    config.control_port,
                    token,
                    status=self.status,
                    trigger=lambda: {"processed": self.tick()},
                    set_paused=self.set_paused,
                ).start()
                stack.callback(control.stop)
                log.info("control endpoint on %s", control.url)
            if config.upload_port is not None:
                stack.enter_context(self._upload_server())
            signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
            log.info("oracle running for %s every %g s", self.oracle.coordinator.address, config.interval_s)
            scheduler.start()

    @contextmanager
    def _upload_server(self) -> Iterator[Any]:
        """The gRPC upload service, over a chain snapshot that never takes the round lock.

        A daemon thread refreshes the snapshot every ``oracle.upload_refresh_s`` through the SDK
        (registrations and ban changes since the last refresh, and the open round), so an upload
        never waits for a round computation; a newly registered client, or a new round, is seen
        after at most one refresh interval.
        """
        from flb_dapp.storage.grpc_upload import (
            ChainSnapshot,
            SnapshotRefresher,
            StreamLimits,
            UploadServer,
            tls_server_credentials_from_files,
        )

        config = self.settings.oracle
        if bool(config.upload_tls_cert) != bool(config.upload_tls_key):
            raise ConfigError("set both oracle.upload_tls_cert and oracle.upload_tls_key, or neither")
        credentials = (
            tls_server_credentials_from_files(config.upload_tls_cert, config.upload_tls_key)
            if config.upload_tls_cert and config.upload_tls_key
            else None
        )
        snapshot = ChainSnapshot()
        reader = _ChainReader(self.oracle.coordinator, snapshot)
        server = UploadServer(
            self.oracle.store,
            snapshot,
            self.oracle.coordinator.address,
            self.oracle.round_settings.max_update_bytes,
            host=config.upload_host,
            port=config.upload_port or 0,
            credentials=credentials,
            limits=StreamLimits(
                deadline_s=config.upload_deadline_s,
                min_rate=config.upload_min_rate,
                max_streams=config.upload_max_streams,
            ),
        )
        with SnapshotRefresher(reader.refresh, config.upload_refresh_s), server:
            log.info(
                "gRPC upload service on %s (%s), chain view refreshed every %g s",
                server.target,
                "TLS" if server.tls else "plaintext, loopback only",
                config.upload_refresh_s,
            )
            yield server


class _ChainReader:
    """Keeps a :class:`ChainSnapshot` of the open round and the clients' standing, incrementally:
    each refresh reads only the registration and ban events since the previous one."""

    def __init__(self, coordinator: Coordinator, snapshot: ChainSnapshot) -> None:
        self.coordinator = coordinator
        self.snapshot = snapshot
        self.next_block = coordinator.start_block
        self.registered: set[str] = set()
        self.banned: set[str] = set()

    def refresh(self) -> None:
        from flb_dapp.storage.grpc_upload.policy import statuses

        head = _chain_head()
        if head >= self.next_block:
            for registration in self.coordinator.registrations(self.next_block, head):
                self.registered.add(registration.client)
            for change in self.coordinator.ban_changes(self.next_block, head):  # in chain order
                if change.banned:
                    self.banned.add(change.client)
                else:
                    self.banned.discard(change.client)
        open_round = self.coordinator.current_round
        self.snapshot.update(open_round, statuses(self.registered, self.banned), block=head, replace=True)
        self.next_block = head + 1


def _chain_head() -> int:
    """The latest block number on the connected network."""
    from ape import chain

    return int(chain.blocks.head.number)
