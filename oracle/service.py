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
from typing import Any

from flb_dapp.chain.accounts import load_account, read_password
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord
from flb_dapp.chain.network import connect
from flb_dapp.config import FLBSettings, check_secret
from flb_dapp.storage.factory import open_store
from oracle.journal import Journal
from oracle.pipeline import Oracle, ProcessedRound

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
            "last_error": self.oracle.last_error,
            "last_processed": self.last_processed,
        }

    def set_paused(self, paused: bool) -> None:
        self.oracle.paused = paused
        log.info("round processing %s", "paused" if paused else "resumed")

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
        from flb_dapp.storage.grpc_upload import UploadServer

        coordinator = self.oracle.coordinator

        def is_registered(address: str) -> bool:
            with self.lock:
                return coordinator.client(address).registered

        server = UploadServer(
            self.oracle.store,
            is_registered,
            coordinator.address,
            self.settings.oracle.max_update_bytes,
            host=self.settings.oracle.control_host,
            port=self.settings.oracle.upload_port or 0,
        )
        with server:
            log.info("gRPC upload service on %s", server.target)
            yield server
