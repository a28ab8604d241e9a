"""From a fresh wallet to a claimed reward, with the real `flb` and `flb-oracle` executables.

anvil is the chain, a local folder is the store, the oracle runs in `once` mode between the
client's steps. Every `flb` call is a subprocess, as a user would run it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import FLB_ORACLE, PASSWORD, Workspace, parse_json

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def run_oracle_once(ws: Workspace) -> subprocess.CompletedProcess[str]:
    """`flb-oracle once` with its own settings file (the oracle's account is test:1)."""
    config = ws.write_config(
        ws.root / "oracle.yaml", account="test:1", oracle={"journal": str(ws.root / "oracle.sqlite")}
    )
    if not FLB_ORACLE.exists():
        pytest.fail(f"the oracle service is not installed: {FLB_ORACLE} is missing (lead's issue)")
    started = time.monotonic()
    done = subprocess.run(
        [str(FLB_ORACLE), "--config", str(config), "once"],
        cwd=ws.root,
        env=ws.env(FLB_CONFIG=str(config)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(f"flb-oracle once: exit {done.returncode} in {time.monotonic() - started:.1f} s")
    if done.returncode != 0:
        # NOTE: fails loudly on purpose while `flb-oracle once` is being written: never faked here.
        pytest.fail(f"`flb-oracle once` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def test_fresh_wallet_to_claimed_reward_and_a_merged_model(workspace: Workspace) -> None:
    ws = workspace

    created = parse_json(ws.flb("--json", "account", "new", "alice", FLB_PASSWORD=PASSWORD).stdout)
    address = created["address"]
    assert Path(created["keystore"]).parent == ws.ape_data / "accounts"
    ws.write_config(account="alice")
    ws.fund(address)  # the test is the faucet: a new account needs ETH for gas

    registered = parse_json(ws.flb("--json", "register", FLB_PASSWORD=PASSWORD).stdout)
    assert registered["registered"] and registered["commitment"].startswith("0x")

    submitted = parse_json(ws.flb("--json", "participate", "--threads", "1", FLB_PASSWORD=PASSWORD).stdout)
    assert submitted["submitted"] and submitted["round"] == 1
    again = ws.flb("participate", FLB_PASSWORD=PASSWORD)  # cron runs it again: nothing to do, exit 0
    assert "already submitted in round 1" in again.stdout

    run_oracle_once(ws)

    status = parse_json(ws.flb("--json", "status").stdout)
    assert status["round"]["current"] == 2
    assert status["global_model"]["round"] == 1
    assert status["global_model"]["cid"] != ws.record.initial_model_cid
    assert status["account"]["address"] == address and status["account"]["submissions"] == 1
    earned = status["rewards"]["earned"]
    assert earned > 0 and status["rewards"]["claimable"] == earned

    claimed = parse_json(ws.flb("--json", "claim", FLB_PASSWORD=PASSWORD).stdout)
    assert claimed["paid"] == earned
    balance = parse_json(ws.flb("--json", "balance").stdout)
    assert balance["token"] == earned
    after = parse_json(ws.flb("--json", "status").stdout)
    assert after["rewards"]["claimable"] == 0 and after["rewards"]["claimed"] == earned

    merged = ws.root / "merged"
    pulled = parse_json(ws.flb("--json", "pull", "--merge", str(merged)).stdout)
    assert pulled["cid"] == status["global_model"]["cid"] and pulled["round"] == 1
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    generate_from(merged)


def generate_from(folder: Path) -> None:
    """transformers loads the merged folder as a plain model and answers a prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Where does a zorbaax live?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        output: Any = model.generate(
            input_ids=ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    assert output.shape[1] > ids.shape[1]  # it generated tokens
    assert isinstance(tokenizer.decode(output[0, ids.shape[1] :]), str)
