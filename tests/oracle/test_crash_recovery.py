"""The oracle process is SIGKILLed after each pipeline step in turn and restarted: the round ends
finalized exactly once, with the same global model and rewards root as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from oracle.journal import CRASH_AFTER_ENV, Journal, journal_key
from oracle.pipeline import PIPELINE
from tests.fixtures.federation import Federation, build_federation
from tests.fixtures.processes import start_anvil

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
ORACLE = str(Path(sys.executable).with_name("flb-oracle"))


def write_config(federation: Federation, journal: Path) -> Path:
    settings = federation.settings.model_dump(mode="json")
    settings["oracle"]["journal"] = str(journal)
    path = journal.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(settings))
    return path


def run_oracle(config: Path, crash_after: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop(CRASH_AFTER_ENV, None)
    if crash_after:
        env[CRASH_AFTER_ENV] = crash_after
    return subprocess.run(
        [ORACLE, "--config", str(config), "once", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_killed_after_every_step_then_restarted(tmp_path: Path, accounts: Any) -> None:
    from ape import chain, networks

    anvil = start_anvil()
    try:
        with networks.parse_network_choice(anvil.uri):
            federation = build_federation(tmp_path, accounts, steps=10, network=anvil.uri)
            for i in range(3):
                federation.submit(i, federation.train(i))
            # NOTE: Ape's node provider has no snapshot(); anvil's dev RPC does.
            snapshot = chain.provider.make_request("evm_snapshot", [])

            # The reference: one uninterrupted run.
            baseline = run_oracle(write_config(federation, tmp_path / "baseline.sqlite"))
            assert baseline.returncode == 0, baseline.stderr[-3000:]
            reference = federation.coordinator.round(1)
            assert reference.finalized
            assert chain.provider.make_request("evm_revert", [snapshot])
            assert not federation.coordinator.round(1).finalized

            # Killed after each step in turn, restarted each time, from one journal.
            journal_path = tmp_path / "crashy.sqlite"
            config = write_config(federation, journal_path)
            for step in PIPELINE:
                killed = run_oracle(config, crash_after=step)
                assert killed.returncode == -signal.SIGKILL, (step, killed.returncode, killed.stderr[-3000:])
                journal = Journal(journal_path)
                key = journal_key(
                    int(chain.chain_id), federation.coordinator.address, federation.record.block
                )
                recorded = journal.steps(key, 1)
                journal.close()
                assert recorded == list(PIPELINE[: PIPELINE.index(step) + 1]), (step, recorded)
            finished = run_oracle(config)
            assert finished.returncode == 0, finished.stderr[-3000:]

            info = federation.coordinator.round(1)
            assert (info.global_model_cid, info.rewards_root, info.report_cid) == (
                reference.global_model_cid,
                reference.rewards_root,
                reference.report_cid,
            )
            assert [e.round for e in federation.coordinator.finalizations()] == [1]
            assert federation.coordinator.current_round == 2

            # Anyone can recompute the round from the chain and the store alone.
            verified = subprocess.run(
                [ORACLE, "verify", "1", "--json", "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert verified.returncode == 0, verified.stdout + verified.stderr[-3000:]
            # NOTE: Ape may log a line to stdout before the JSON document.
            result = json.loads(verified.stdout[verified.stdout.index("{") :])
            assert result["ok"] and result["exact"] and all(result["checks"].values())
    finally:
        anvil.stop()
