"""Where the Node-side tools of a source checkout live: anvil, the Helia IPFS node, Chart.js.

`npm ci` (run by `make setup`) installs them under the repository's ``node_modules`` from
``package.json``; this module is the one place that knows those paths. Each ``*_missing`` function
returns None when the tool can be used here, else the reason it cannot, worded so that a user
(or a failing test) knows what to run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO_ROOT / "node_modules"

# The anvil binary of npm's `@foundry-rs/anvil-linux-amd64` (the only platform package.json pins).
ANVIL = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
# The Helia IPFS node: our script speaking Kubo's RPC subset, and the npm package it runs on.
IPFS_NODE_SCRIPT = REPO_ROOT / "tools" / "ipfs-node.mjs"
HELIA = NODE_MODULES / "helia"
# Chart.js's UMD build, served by the dashboard: its path inside any node_modules, and ours.
CHARTJS_IN_NODE_MODULES = Path("chart.js") / "dist" / "chart.umd.min.js"
CHARTJS = NODE_MODULES / CHARTJS_IN_NODE_MODULES

_NPM_CI = "run `make setup` (npm ci) in the repository root"


def anvil_missing() -> str | None:
    """None when :data:`ANVIL` can run, else why not."""
    if not ANVIL.is_file():
        return f"anvil is not installed at {ANVIL}: {_NPM_CI}"
    return None


def helia_missing() -> str | None:
    """None when the Helia IPFS node (``node tools/ipfs-node.mjs``) can start here, else why not."""
    if shutil.which("node") is None:
        return "Node.js (`node`) is not on PATH"
    if not IPFS_NODE_SCRIPT.is_file():
        return f"{IPFS_NODE_SCRIPT} is missing (not a source checkout)"
    if not HELIA.is_dir():
        return f"the Helia IPFS node's package is missing ({HELIA}): {_NPM_CI}"
    return None


def anvil_command(port: int, chain_id: int | None = None) -> list[str]:
    """The command line that starts anvil on ``127.0.0.1:port`` with the hardfork py-evm and our
    compiled contracts use (Prague)."""
    command = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--hardfork", "prague"]
    return [*command, "--chain-id", str(chain_id)] if chain_id is not None else command


def ipfs_node_command(host: str = "127.0.0.1", port: int = 0, *, exit_with_stdin: bool = False) -> list[str]:
    """The command line that starts the Helia IPFS node on ``host:port`` (0: a free port)."""
    command = ["node", str(IPFS_NODE_SCRIPT), "--host", host, "--port", str(port)]
    return [*command, "--exit-with-stdin"] if exit_with_stdin else command
