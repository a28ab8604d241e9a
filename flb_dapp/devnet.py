"""`flb devnet`: a local FLB network as separate processes, for operators and client walkthroughs.

`up` starts anvil and the Helia IPFS node (with `--no-ipfs`, a local store folder instead),
deploys the contracts, writes the `flb.yaml` every client command can use, and starts the oracle
service and the REST API: each service a process of its own with a log file and a pid file in one
folder. `down` stops exactly the processes whose pid files it wrote.

Every path `up` writes (into `flb.yaml`, `devnet.json`, the services' command lines) is absolute:
the configuration does not resolve relative paths against anything but the reader's working
directory, and the services run in the devnet folder while clients run wherever their user is, so
only absolute paths mean the same file to all of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flb_dapp.atomic import OWNER_ONLY, atomic_write_text
from flb_dapp.exceptions import DevnetError  # NOTE: defined with the other FLB errors; importable here too
from flb_dapp.node_tools import anvil_command, anvil_missing, helia_missing, ipfs_node_command

SERVICES = ("anvil", "ipfs", "oracle", "api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Any,
    what: str,
    timeout: float = 60.0,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> Any:
    """Poll ``check`` until it is truthy; a ``process`` that exits first fails with ``log``'s tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DevnetError(f"{what} exited with code {process.returncode}{_log_tail(log)}")
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise DevnetError(f"{what} did not come up within {timeout:g} s{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 5) -> str:
    """The last lines of a service's log, so the error says why without opening the file."""
    if log is None:
        return ""
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"; see {log}"
    return f"; last lines of {log}:\n" + "\n".join(f"  {line}" for line in tail)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Devnet:
    folder: Path

    def __post_init__(self) -> None:
        # Absolute from here on: every path derived from it goes into files other processes read.
        self.folder = Path(self.folder).expanduser().resolve()

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
        """Start a service in its own session (it outlives `flb devnet up`) and record its pid.

        Its working directory is the devnet folder: whatever a service writes to a relative default
        path stays with the devnet (and goes with `rm -rf` of it) instead of landing in the
        directory `up` was typed in. Nothing it needs is relative: see the module's docstring.
        """
        (self.folder / "run").mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        atomic_write_text(self.pid_file(name), str(process.pid))
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
    """This environment's console script ``name`` (the services run the installed code)."""
    return str(Path(sys.executable).with_name(name))


def flb_executable() -> str:
    """How to spell this environment's ``flb`` in a printed command line that works when pasted:
    ``flb`` when that is the one on PATH (an activated virtualenv), else its full path."""
    flb = _bin("flb")
    found = shutil.which("flb")
    if found is not None and Path(found).resolve() == Path(flb).resolve():
        return "flb"
    return flb


def _client_commands(config: Path, account: str, data: Path) -> dict[str, str]:
    """One client's `register` and `participate` command lines, absolute paths, any directory."""
    common = f"{shlex.quote(flb_executable())} --config {shlex.quote(str(config))}"
    args = f"--account {account} --data {shlex.quote(str(data))}"
    return {
        "account": account,
        "data": str(data),
        "register": f"{common} register {args}",
        "participate": f"{common} participate {args}",
    }


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
    """Start the whole devnet; returns its URLs and the commands a client runs next.

    ``folder`` may be relative (to the current directory); everything written holds it absolute.
    """
    devnet = Devnet(folder)
    folder = devnet.folder
    if any(s["running"] for s in devnet.status().values()):
        raise DevnetError(f"a devnet is already running from {folder}; run `flb devnet down` first")
    if (reason := anvil_missing()) is not None:
        raise DevnetError(reason)
    # NOTE: asked for IPFS and cannot have it is an error, not a quiet switch to a local folder:
    # the walkthrough would then run on another store than the one it says.
    if use_ipfs and (reason := helia_missing()) is not None:
        raise DevnetError(f"cannot start the IPFS node: {reason} (or pass --no-ipfs for a local store)")
    folder.mkdir(parents=True, exist_ok=True)
    anvil_port = anvil_port or free_port()
    anvil = devnet.spawn("anvil", anvil_command(anvil_port))
    wait_until(lambda: port_open(anvil_port), "anvil", 20, anvil, devnet.log_file("anvil"))
    rpc = f"http://127.0.0.1:{anvil_port}"
    urls = {"anvil": rpc}

    store = str(folder / "store")
    if use_ipfs:
        ipfs_port = free_port()
        ipfs = devnet.spawn("ipfs", ipfs_node_command("127.0.0.1", ipfs_port))
        wait_until(lambda: port_open(ipfs_port), "the IPFS node", 60, ipfs, devnet.log_file("ipfs"))
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
    atomic_write_text(devnet.config_path, yaml.safe_dump(settings, sort_keys=False))
    tokens = {"FLB_ORACLE_TOKEN": oracle_token, "FLB_API_TOKEN": api_token}
    tokens_env = "".join(f"{k}={v}\n" for k, v in tokens.items())
    atomic_write_text(folder / "tokens.env", tokens_env, mode=OWNER_ONLY)

    oracle = devnet.spawn(
        "oracle", [_bin("flb-oracle"), "--config", str(devnet.config_path), "-v", "run"], env=tokens
    )
    wait_until(lambda: port_open(control_port), "the oracle", 120, oracle, devnet.log_file("oracle"))
    urls["oracle"] = f"http://127.0.0.1:{control_port}"
    api = devnet.spawn("api", [_bin("flb-api"), "--config", str(devnet.config_path)], env=tokens)
    wait_until(lambda: port_open(api_port), "the REST API", 120, api, devnet.log_file("api"))
    urls["api"] = f"http://127.0.0.1:{api_port}"

    data = _client_data(folder, clients)
    info = {
        "folder": str(folder),
        "config": str(devnet.config_path),
        "urls": urls,
        "contract": contract,
        "clients": [
            _client_commands(devnet.config_path, f"test:{2 + i}", path) for i, path in enumerate(data)
        ],
    }
    atomic_write_text(devnet.info_path, json.dumps(info, indent=2))
    return info


def _deploy(folder: Path, rpc: str, store_url: str, round_duration: int, steps: int) -> dict[str, Any]:
    """Deploy through the federation builder (clients register themselves, as in the walkthrough)."""
    from flb_dapp.chain.accounts import load_account
    from flb_dapp.chain.network import connect
    from flb_dapp.federation import FederationPlan, deploy_federation
    from flb_dapp.taskspec import TaskSpec

    spec = TaskSpec(model="tiny", steps=steps)
    plan = FederationPlan(
        spec=spec, round_duration=round_duration, network=rpc, store_url=store_url, account="test:1"
    )
    with connect(rpc):
        record, settings, _ = deploy_federation(folder, load_account("test:0"), load_account("test:1"), plan)
    return {
        "network": settings.network,
        "deployment": settings.deployment,
        "store": settings.store,
        "cache_dir": settings.cache_dir,
        "account": settings.account,
        "task": spec.to_dict(),
        "oracle": {"journal": settings.oracle.journal},
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
