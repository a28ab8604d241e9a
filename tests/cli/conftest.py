"""Fixtures for the `flb` CLI tests: a workspace (flb.yaml, local store, client data, Ape data folder)
with FLB deployed on a real anvil node.

Two ways to run `flb`: :meth:`Workspace.flb` runs the real console script as a subprocess (what a
user runs; needed for keystores, terminals and the end-to-end test), :meth:`Workspace.invoke` runs
the click group in this process (fast; used where a test account, ``test:N``, is enough).
Subprocesses get their own ``APE_DATA_FOLDER``, so no test ever reads or writes ``~/.ape``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from tests.fixtures.processes import ROOT, AnvilNode

FLB = ROOT / ".venv" / "bin" / "flb"
FLB_ORACLE = ROOT / ".venv" / "bin" / "flb-oracle"
PASSWORD = "correct horse battery"
TOKEN = 10**18
TASK = {"model": "tiny", "steps": 8, "batch_size": 8, "lora_r": 4, "lora_alpha": 8, "eval_limit": 40}


@pytest.fixture(scope="session")
def cli_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the session: the tiny model is built once and shared by every process."""
    from flb_dapp.taskspec import TaskSpec, model_path

    cache = tmp_path_factory.mktemp("flb-cache")
    model_path(TaskSpec.from_dict(TASK), cache)
    return cache


@pytest.fixture(scope="session")
def initial_adapter_bytes(cli_cache: Path) -> bytes:
    """The round-0 global adapter of the test task, encoded."""
    from flb_dapp.lora import encode_adapter
    from flb_dapp.taskspec import TaskSpec, initial_adapter

    return encode_adapter(initial_adapter(TaskSpec.from_dict(TASK), cli_cache))


@pytest.fixture(scope="session")
def client_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client's local data: 64 questions of the bundled task's train split, as MMLU-Pro JSONL."""
    from flb_dapp.evaluation.datasets import save_questions
    from flb_dapp.evaluation.task import make_task

    folder = tmp_path_factory.mktemp("client-data")
    return save_questions(make_task(seed=0).train[:64], folder / "questions.jsonl")


def rpc(uri: str, method: str, params: list[Any]) -> Any:
    """A raw JSON-RPC call (anvil's dev methods: time travel, balances)."""
    reply = httpx.post(uri, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
    body = reply.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


@dataclass
class Workspace:
    """A client's working folder: flb.yaml, store, cache, data, and the chain it points at."""

    root: Path
    anvil: AnvilNode
    cache: Path
    data: Path
    record: Any = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "flb.yaml"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def ape_data(self) -> Path:
        return self.root / "ape"

    def write_config(self, path: Path | None = None, **values: Any) -> Path:
        """flb.yaml with the workspace defaults, updated by ``values``."""
        target = path or self.config
        document = {**self.settings, **values}
        target.write_text(yaml.safe_dump(document, sort_keys=True))
        return target

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLB_", "APE_"))}
        env.update(
            APE_DATA_FOLDER=str(self.ape_data),
            FLB_CONFIG=str(self.config),
            NO_COLOR="1",
            HF_HUB_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            COLUMNS="120",
        )
        env.update(extra)
        return env

    def flb(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `flb` executable in the workspace."""
        started = time.monotonic()
        done = subprocess.run(
            [str(FLB), *args],
            cwd=self.root,
            env=self.env(**env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        print(f"flb {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.1f} s")
        if check and done.returncode != 0:
            command = " ".join(args)
            raise AssertionError(f"flb {command} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def invoke(self, *args: str, expect: int | None = 0) -> Invocation:
        """Run `flb` in this process, errors handled as the console script does (test accounts
        only: Ape's data folder of this process is not the workspace's)."""
        return invoke_flb("--config", str(self.config), *args, expect=expect)

    # --- chain helpers -------------------------------------------------------------------------
    def fund(self, address: str, ether: int = 10) -> None:
        rpc(self.anvil.uri, "anvil_setBalance", [address, hex(ether * 10**18)])

    def nonce(self, address: str) -> int:
        return int(rpc(self.anvil.uri, "eth_getTransactionCount", [address, "latest"]), 16)

    def advance_time(self, seconds: int) -> None:
        rpc(self.anvil.uri, "evm_increaseTime", [seconds])
        rpc(self.anvil.uri, "evm_mine", [])


@dataclass(frozen=True)
class Invocation:
    exit_code: int
    stdout: str
    stderr: str


def invoke_flb(*args: str, expect: int | None = 0, input: str | None = None) -> Invocation:
    """`flb ARGS` in this process through :func:`flb_dapp.cli.main.run`, output captured."""
    from flb_dapp.cli.main import run

    runner = CliRunner(mix_stderr=False)
    with runner.isolation(input=input) as streams:
        code = run(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        # NOTE: read inside the block: click closes the captured streams on exit.
        out, err = streams
        assert err is not None  # mix_stderr=False: stderr is captured on its own
        result = Invocation(code, out.getvalue().decode(), err.getvalue().decode())
    if expect is not None and code != expect:
        raise AssertionError(
            f"flb {' '.join(args)} exited {code} (wanted {expect}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def deploy(
    anvil: AnvilNode, initial_cid: str, record_path: Path, round_duration: int = 3600, admission: Any = None
) -> Any:
    """Deploy FLB on ``anvil`` from this process (deployer test:0, oracle test:1) and save the record."""
    from ape import accounts, networks

    from flb_dapp.chain.deployment import deploy_system

    with networks.parse_network_choice(anvil.uri):
        record = deploy_system(
            accounts.test_accounts[0],
            initial_model_cid=initial_cid,
            oracle=accounts.test_accounts[1].address,
            round_duration=round_duration,
            reward_per_round=1_000 * TOKEN,
            token_supply=1_000_000 * TOKEN,
            fund_amount=10_000 * TOKEN,
            admission=admission,
        )
    record.save(record_path)
    return record


@pytest.fixture
def workspace(
    tmp_path: Path, anvil: AnvilNode, cli_cache: Path, client_data: Path, initial_adapter_bytes: bytes
) -> Workspace:
    """A fresh deployment on the session's anvil node and a client workspace pointing at it."""
    from flb_dapp.storage.local import LocalStore

    # A cache per workspace (updates are saved beside it) sharing the session's tiny model.
    cache = tmp_path / "cache"
    cache.mkdir()
    for built in cli_cache.iterdir():
        (cache / built.name).symlink_to(built)
    ws = Workspace(root=tmp_path, anvil=anvil, cache=cache, data=client_data)
    initial_cid = LocalStore(ws.store).put_bytes(initial_adapter_bytes)
    ws.record = deploy(anvil, initial_cid, tmp_path / "deployment.json")
    ws.settings = {
        "network": anvil.uri,
        "deployment": str(tmp_path / "deployment.json"),
        "store": str(ws.store),
        "cache_dir": str(cache),
        "data": str(client_data),
        "task": TASK,
    }
    ws.write_config()
    return ws


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models train several times faster on one torch thread than on two busy cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def parse_json(text: str) -> Any:
    """The one JSON document a `--json` command prints on stdout."""
    return json.loads(text)


def finalize_with_library(ws: Workspace, round_number: int = 1) -> Any:
    """Close a round the way the oracle computes it (flb_dapp.rounds), sent from test:1 (the oracle).

    Not the oracle service: this lets claim / pull / status be tested on their own; the end-to-end
    test runs the real `flb-oracle`.
    """
    from ape import accounts, networks

    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.types import FinalizeRequest
    from flb_dapp.rounds import RoundInputs, RoundSettings, UpdateRef, compute_round
    from flb_dapp.storage.local import LocalStore
    from flb_dapp.taskspec import TaskSpec, make_evaluator

    spec = TaskSpec.from_dict(TASK)
    with networks.parse_network_choice(ws.anvil.uri) as provider:
        sdk = Coordinator(ws.record.coordinator, ws.record.block)
        updates = [UpdateRef(u.client, u.cid, u.num_samples) for u in sdk.updates(round_number)]
        inputs = RoundInputs(
            contract=sdk.address,
            chain_id=int(provider.chain_id),
            round=round_number,
            previous_global_cid=sdk.latest_global_model_cid,
            updates=updates,
            budget=sdk.reward_per_round,
            task=spec.to_dict(),
        )
        outcome = compute_round(inputs, RoundSettings(), LocalStore(ws.store), make_evaluator(spec, ws.cache))
        sdk.finalize_round(
            accounts.test_accounts[1],
            FinalizeRequest(
                round_number,
                outcome.global_model_cid,
                outcome.report_cid,
                outcome.rewards.tree.root,
                outcome.rewards.total,
                outcome.metric,
                outcome.epsilon,
            ),
        )
    return outcome
