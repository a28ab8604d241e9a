"""`flb devnet up`, two clients as separate processes, the oracle finalizes, the REST API shows the
round, and `flb devnet down` leaves none of its processes running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flb_dapp.devnet import Devnet, _alive

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
FLB = str(Path(sys.executable).with_name("flb"))


def test_devnet_two_clients_one_round(tmp_path: Path) -> None:
    folder = tmp_path / "devnet"
    up = subprocess.run(
        [FLB, "devnet", "up", "--dir", str(folder), "--steps", "20", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    pids: dict[str, int] = {}
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        info = json.loads(up.stdout[up.stdout.index("{") :])
        state = Devnet(folder).status()
        pids = {name: item["pid"] for name, item in state.items()}
        assert {"anvil", "oracle", "api"} <= set(pids) and all(item["running"] for item in state.values())
        config = info["config"]
        clients = []
        for i in range(2):
            data = folder / "data" / f"client-{i}.jsonl"
            command = (
                f"{FLB} --config {config} register --account test:{2 + i} --data {data} && "
                f"{FLB} --config {config} participate --account test:{2 + i} --data {data}"
            )
            clients.append(
                subprocess.Popen(
                    ["bash", "-c", command],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )
            )
        outputs = []
        for client in clients:
            output, _ = client.communicate(timeout=600)
            assert client.returncode == 0, output[-3000:]
            outputs.append(output)
        # The later commit closed the commit phase and revealed at once; the earlier client
        # reveals on its next run, as a cron job would.
        assert sorted("submitted bafk" in o for o in outputs) == [False, True], outputs
        for i, output in enumerate(outputs):
            if "submitted bafk" not in output:
                assert "committed to bafk" in output and "run again once the commit phase closed" in output
                again = subprocess.run(
                    [
                        FLB,
                        "--config",
                        config,
                        "participate",
                        "--account",
                        f"test:{2 + i}",
                        "--data",
                        str(folder / "data" / f"client-{i}.jsonl"),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert again.returncode == 0 and again.stdout.startswith("revealed bafk"), (
                    again.stdout + again.stderr
                )

        api = info["urls"]["api"]
        deadline = time.monotonic() + 300
        round_one: dict[str, object] = {}
        while time.monotonic() < deadline:
            response = httpx.get(f"{api}/rounds/1", timeout=10)
            if response.status_code == 200 and response.json().get("status") == "finalized":
                round_one = response.json()
                break
            time.sleep(2)
        assert round_one, "the oracle did not finalize round 1 in time"
        assert round_one["submissions"] == 2 and round_one["accepted"] == 2
        assert str(round_one["global_model_cid"]).startswith("bafk")
        updates = httpx.get(f"{api}/rounds/1/updates", timeout=10).json()
        assert sorted(u["client"] for u in updates["data"]) == sorted(
            ["0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"]
        )
    finally:
        down = subprocess.run(
            [FLB, "devnet", "down", "--dir", str(folder)], capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0, down.stderr
    assert "stopped: api, oracle" in down.stdout
    assert not any(_alive(pid) for pid in pids.values()), pids
    assert Devnet(folder).status() == {}
