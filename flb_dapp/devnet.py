"""`flb devnet`: a local FLB network as separate processes, for operators and client walkthroughs.

`up` starts anvil, deploys the contracts, starts the IPFS node (when Node and Helia are installed),
the oracle service and the REST API, each a process of its own with a log file and a pid file in
one folder, and writes the `flb.yaml` every client command can use. `down` stops exactly the
processes whose pid files it wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flb_dapp.exceptions import FLBError

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
SERVICES = ("anvil", "ipfs", "oracle", "api")


class DevnetError(FLBError, RuntimeError):
    """The devnet could not be started or stopped."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Any, what: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DevnetError(f"{what} exited with code {process.returncode}; see its log")
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise DevnetError(f"{what} did not come up within {timeout:g} s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Devnet:
    folder: Path

    def pid_file(self, name: str) -> Path:
        return self.folder / "run" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    @property
    def config_path(self) -> Path:
        return self.folder / "flb.yaml"

    @property
    def info_path(self) -> Path:
        return self.folder / "devnet.json"

    def spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a service in its own session (it outlives `flb devnet up`) and record its pid."""
        (self.folder / "run").mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        log = self.log_file(name).open("ab")
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.folder,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.pid_file(name).write_text(str(process.pid))
        return process

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        info = json.loads(self.info_path.read_text()) if self.info_path.is_file() else {}
        for name in SERVICES:
            path = self.pid_file(name)
            if not path.is_file():
                continue
            pid = int(path.read_text())
            out[name] = {
                "pid": pid,
                "running": _alive(pid),
                "log": str(self.log_file(name)),
                "url": info.get("urls", {}).get(name, ""),
            }
        return out

    def down(self, timeout: float = 10.0) -> list[str]:
        """Stop every service this devnet started; returns their names."""
        stopped = []
        for name in reversed(SERVICES):
            path = self.pid_file(name)
            if not path.is_file():
                continue
            pid = int(path.read_text())
            _stop_group(pid, timeout)
            path.unlink()
            stopped.append(name)
        return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) no longer runs.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _stop_group(pid: int, timeout: float) -> None:
    """SIGTERM the service's process group, then SIGKILL what is left after ``timeout``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def up(
    folder: Path,
    *,
    round_duration: int = 300,
    clients: int = 2,
    steps: int = 30,
    api_port: int | None = None,
    anvil_port: int | None = None,
    use_ipfs: bool = True,
) -> dict[str, Any]:
    """Start the whole devnet; returns its URLs and the commands a client runs next."""
    from flb_dapp.storage.helia_node import helia_available

    devnet = Devnet(folder)
    if any(s["running"] for s in devnet.status().values()):
        raise DevnetError(f"a devnet is already running from {folder}; run `flb devnet down` first")
    folder.mkdir(parents=True, exist_ok=True)
    if not ANVIL.exists():
        raise DevnetError("anvil is not installed; run `make setup` (npm ci) first")
    anvil_port = anvil_port or free_port()
    anvil = devnet.spawn(
        "anvil", [str(ANVIL), "--host", "127.0.0.1", "--port", str(anvil_port), "--hardfork", "prague"]
    )
    wait_until(lambda: port_open(anvil_port), "anvil", 20, anvil)
    rpc = f"http://127.0.0.1:{anvil_port}"
    urls = {"anvil": rpc}

    store = str(folder / "store")
    if use_ipfs and helia_available() is None:
        ipfs_port = free_port()
        ipfs = devnet.spawn(
            "ipfs",
            [
                "node",
                str(REPO_ROOT / "tools" / "ipfs-node.mjs"),
                "--host",
                "127.0.0.1",
                "--port",
                str(ipfs_port),
            ],
        )
        wait_until(lambda: port_open(ipfs_port), "the IPFS node", 60, ipfs)
        store = urls["ipfs"] = f"http://127.0.0.1:{ipfs_port}"

    settings = _deploy(folder, rpc, store, round_duration, steps)
    contract = settings.pop("contract")
    oracle_token = secrets.token_urlsafe(24)
    api_token = secrets.token_urlsafe(24)
    control_port = free_port()
    api_port = api_port or free_port()
    settings["oracle"].update(interval_s=2.0, control_port=control_port, torch_threads=1)
    settings["api"] = {
        "host": "127.0.0.1",
        "port": api_port,
        "database": str(folder / "api.sqlite"),
        "oracle_control_url": f"http://127.0.0.1:{control_port}",
        "poll_interval_s": 1.0,
    }
    devnet.config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    tokens = {"FLB_ORACLE_TOKEN": oracle_token, "FLB_API_TOKEN": api_token}
    (folder / "tokens.env").write_text("".join(f"{k}={v}\n" for k, v in tokens.items()))
    os.chmod(folder / "tokens.env", 0o600)

    oracle = devnet.spawn(
        "oracle", [_bin("flb-oracle"), "--config", str(devnet.config_path), "-v", "run"], env=tokens
    )
    wait_until(lambda: port_open(control_port), "the oracle", 120, oracle)
    urls["oracle"] = f"http://127.0.0.1:{control_port}"
    api = devnet.spawn("api", [_bin("flb-api"), "--config", str(devnet.config_path)], env=tokens)
    wait_until(lambda: port_open(api_port), "the REST API", 120, api)
    urls["api"] = f"http://127.0.0.1:{api_port}"

    data = _client_data(folder, clients)
    info = {
        "folder": str(folder),
        "config": str(devnet.config_path),
        "urls": urls,
        "contract": contract,
        "clients": [
            f"flb --config {devnet.config_path} register --account test:{2 + i} --data {path} && "
            f"flb --config {devnet.config_path} participate --account test:{2 + i} --data {path}"
            for i, path in enumerate(data)
        ],
    }
    devnet.info_path.write_text(json.dumps(info, indent=2))
    return info


def _deploy(folder: Path, rpc: str, store_url: str, round_duration: int, steps: int) -> dict[str, Any]:
    from flb_dapp.chain.accounts import load_account
    from flb_dapp.chain.deployment import TOKEN_DECIMALS, deploy_system
    from flb_dapp.chain.network import connect
    from flb_dapp.lora.codec import encode_adapter
    from flb_dapp.storage.factory import open_store
    from flb_dapp.taskspec import TaskSpec, initial_adapter

    spec = TaskSpec(model="tiny", steps=steps)
    cache = folder / "cache"
    initial_cid = open_store(store_url).put_bytes(encode_adapter(initial_adapter(spec, cache)))
    with connect(rpc):
        record = deploy_system(
            load_account("test:0"),
            initial_model_cid=initial_cid,
            oracle=load_account("test:1").address,
            round_duration=round_duration,
            reward_per_round=1_000 * TOKEN_DECIMALS,
        )
    deployment = record.save(folder / "deployments" / f"{record.chain_id}.json")
    return {
        "network": rpc,
        "deployment": str(deployment),
        "store": store_url,
        "cache_dir": str(cache),
        "account": "test:1",
        "task": spec.to_dict(),
        "oracle": {"journal": str(folder / "oracle.sqlite")},
        "contract": record.coordinator,
    }


def _client_data(folder: Path, clients: int) -> list[Path]:
    """Each walkthrough client's own share of the bundled task, as an MMLU-Pro-style JSONL file."""
    from flb_dapp.evaluation.datasets import save_questions
    from flb_dapp.evaluation.task import make_task

    shares = make_task(seed=0).split_non_iid(clients, seed=0)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    paths = []
    for i, share in enumerate(shares):
        paths.append(save_questions(share, folder / "data" / f"client-{i}.jsonl"))
    return paths
