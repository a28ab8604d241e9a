"""REST API benchmark: requests/s and p99 latency of GET /rounds and GET /clients/{addr}, against a
bare FastAPI endpoint returning a constant, served the same way in the same run.

Run from the repository root: ``.venv/bin/python bench/api.py`` (about a minute). It deploys FLB on
Ape's embedded chain, runs a few synthetic rounds (synthetic round reports in a temporary local
store: this measures the API, not the learning), indexes them, then serves the API and the baseline
with uvicorn on 127.0.0.1 (a subprocess each, one worker) and loads each with 32 concurrent httpx
connections for a fixed number of requests. Only loopback traffic. Target: the API endpoints reach
at least half the baseline's requests/s. The last line is one JSON object:
``{"rounds_rps": X, "rounds_p99_ms": X, "client_rps": X, "client_p99_ms": X, "baseline_rps": X,
"baseline_p99_ms": X}``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # NOTE: run as a script from anywhere
sys.path.insert(0, str(ROOT / "frontend-api"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLIENTS = 16
ROUNDS = 5
REQUESTS = 3_000
WARMUP = 300
CONCURRENCY = 32
PHASE_LIMIT_S = 60.0


# --- the federation ------------------------------------------------------------------------------------
def synthetic_report(
    number: int,
    global_cid: str,
    previous: str,
    decisions: list[dict[str, Any]],
    budget: int,
    previous_cumulative: dict[str, int],
) -> tuple[Any, Any]:
    """A typed round report with made-up metrics (the API bench measures reading, not training)."""
    from flb_dapp.report import (
        AggregationSummary,
        EvaluationSummary,
        ReportInput,
        ReportMetrics,
        ReportPrivacy,
        ReportRewards,
        RoundReport,
    )
    from flb_dapp.rewards import allocate

    rewards = allocate({d["client"]: d["contribution"] for d in decisions}, budget, previous_cumulative)
    accuracy = 0.25 + 0.08 * number

    def evaluation(acc: float) -> EvaluationSummary:
        categories = {"all": {"accuracy": acc, "n": 100}}
        return EvaluationSummary.model_validate(
            {"accuracy": acc, "loss": 2.0 - acc, "n": 100, "per_category": categories}
        )

    event = {"noise_multiplier": 1.1, "num_clients": len(decisions), "sampling_rate": 1.0}
    report = RoundReport(
        software={"flb": "bench"},
        contract="0x" + "00" * 20,
        chain_id=1337,
        round=number,
        task={},
        previous_global_model_cid=previous,
        global_model_cid=global_cid,
        settings={},
        strategy={"name": "fedavg"},
        inputs=[ReportInput(**d, reward=rewards.round_rewards[d["client"]]) for d in decisions],
        aggregation=AggregationSummary(),
        privacy=ReportPrivacy(
            server_noise=True,
            round_event=event,
            local_dp=None,
            epsilon=0.5 * number,
            delta=1e-5,
            state={},
        ),
        metrics=ReportMetrics(before=evaluation(accuracy - 0.08), after=evaluation(accuracy)),
        rewards=ReportRewards(
            budget=budget,
            scoring="leave-one-out",
            round=rewards.round_rewards,
            round_total=rewards.total,
            cumulative=rewards.cumulative,
            root=rewards.tree.root_hex,
            proofs={c: rewards.tree.proof_hex(c) for c in rewards.tree.amounts},
        ),
    )
    return report, rewards


def synthetic_decisions(number: int, submitted: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Made-up verdicts for (client, CID) pairs: every seventh rejected, contributions 0-4."""
    decisions = []
    for i, (client, cid) in enumerate(submitted):
        accepted = i % 7 != 3
        decisions.append(
            {
                "client": client,
                "cid": cid,
                "num_samples": 100 + i,
                "accepted": accepted,
                "reason": "" if accepted else "update norm exceeds 20 x the median norm",
                "norm": 1.0 + i / 10,
                "weight": 1 / CLIENTS,
                "excluded": "",
                "contribution": float((i * number) % 5) if accepted else 0.0,
            }
        )
    return decisions


def build_index(workdir: Path) -> str:
    """Deploy, run ROUNDS synthetic rounds with CLIENTS clients, index them; returns a client address."""
    from ape import accounts, networks
    from flb_api.core.db import Database
    from flb_api.indexer import Indexer

    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import deploy_system
    from flb_dapp.chain.types import FinalizeRequest
    from flb_dapp.storage.local import LocalStore

    store = LocalStore(workdir / "store")
    with networks.parse_network_choice("ethereum:local:test"):
        operator, oracle = accounts.test_accounts[0], accounts.test_accounts[1]
        clients = [accounts.test_accounts.generate_test_account() for _ in range(CLIENTS)]
        for client in clients:
            operator.transfer(client, 10**18)
        budget = 1_000 * 10**18
        record = deploy_system(
            operator,
            initial_model_cid=store.put_bytes(b"initial model"),
            oracle=oracle.address,
            round_duration=3600,
            reward_per_round=budget,
            fund_amount=ROUNDS * budget,
        )
        sdk = Coordinator(record.coordinator, record.block)
        for i, client in enumerate(clients):
            sdk.register(client, hashlib.sha256(b"dataset %d" % i).digest())
        cumulative: dict[str, int] = {}
        for number in range(1, ROUNDS + 1):
            entries = [
                (client, number, store.put_bytes(b"update %d %d" % (number, i)), 100 + i)
                for i, client in enumerate(clients)
            ]
            sdk.submit_all(entries)
            decisions = synthetic_decisions(
                number, [(c.address, e[2]) for c, e in zip(clients, entries, strict=True)]
            )
            previous = sdk.latest_global_model_cid
            global_cid = store.put_bytes(b"global model %d" % number)
            report, rewards = synthetic_report(number, global_cid, previous, decisions, budget, cumulative)
            report_cid = store.put_bytes(report.to_json())
            sdk.finalize_round(
                oracle,
                FinalizeRequest(
                    number,
                    global_cid,
                    report_cid,
                    rewards.tree.root,
                    rewards.total,
                    report.metrics.after.accuracy,
                    report.privacy.epsilon,
                ),
            )
            cumulative = rewards.cumulative
        indexer = Indexer(
            Database(workdir / "index.sqlite"),
            sdk,
            store,
            start_block=record.block,
            deployment_block=record.block,
            network=record.network,
        )
        started = time.perf_counter()
        result = indexer.sync()
        print(
            f"indexed {result.events} events and {result.reports} reports of blocks "
            f"{result.from_block}..{result.to_block} in {time.perf_counter() - started:.2f} s"
        )
        indexer.db.close()
        return str(clients[0].address)


# --- the servers (run in subprocesses) ---------------------------------------------------------------------
def serve(kind: str, port: int, workdir: Path) -> None:
    """``baseline``: one constant endpoint; ``api`` / ``api-nocache``: the API over the built index."""
    import uvicorn
    from fastapi import FastAPI

    if kind == "baseline":
        app = FastAPI()

        @app.get("/constant")
        async def constant() -> dict[str, bool]:
            return {"ok": True}
    else:
        from flb_api.core.config import ApiSettings
        from flb_api.core.db import Database
        from flb_api.indexer import Indexer
        from flb_api.main import create_app

        from flb_dapp.storage.local import LocalStore

        db = Database(workdir / "index.sqlite")

        def no_chain() -> Any:
            raise RuntimeError("the benchmark serves a finished index; it never syncs")

        indexer = Indexer(db, no_chain, LocalStore(workdir / "store"), address=db.get_meta("coordinator"))
        settings = ApiSettings(
            database=str(workdir / "index.sqlite"),
            response_cache_entries=0 if kind == "api-nocache" else 1024,
        )
        app = create_app(settings, indexer=indexer, poll=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(kind: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--workdir", str(workdir)]
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        if process.poll() is not None:
            raise RuntimeError(f"the {kind} server exited with {process.returncode}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {kind} server did not start")


# --- the load --------------------------------------------------------------------------------------------
async def _get_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    """One keep-alive HTTP/1.1 GET on an open connection; raises unless the answer is 200."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:80]!r}")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)


async def load(url: str, total: int, client: str = "raw") -> tuple[float, float]:
    """(requests/s, p99 latency in ms) of ``total`` GETs over CONCURRENCY keep-alive connections.

    NOTE: the default client is a minimal asyncio HTTP/1.1 client. httpx tops out near 300 req/s
    per process on a small machine, far below what uvicorn serves, so with it every endpoint looks
    as fast as the baseline: that measures the client, not the API (``--client httpx`` shows it).
    """
    parts = httpx.URL(url)
    request = f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}\r\n\r\n".encode()
    latencies: list[float] = []
    remaining = iter(range(total))
    deadline = time.perf_counter() + PHASE_LIMIT_S

    async def raw_worker() -> None:
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        try:
            for _ in remaining:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                await _get_raw(reader, writer, request)
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    async def httpx_worker(session: httpx.AsyncClient) -> None:
        for _ in remaining:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            (await session.get(url)).raise_for_status()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    if client == "httpx":
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as session:
            await asyncio.gather(*(httpx_worker(session) for _ in range(CONCURRENCY)))
    else:
        await asyncio.gather(*(raw_worker() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return len(latencies) / wall, p99 * 1000


def measure(kind: str, path: str, workdir: Path, client: str = "raw") -> tuple[float, float]:
    process, base = start_server(kind, workdir)
    try:
        with httpx.Client() as check:  # the endpoint answers what it should before it is timed
            assert check.get(base + path).status_code == 200
        asyncio.run(load(base + path, WARMUP, client))
        rps, p99 = asyncio.run(load(base + path, REQUESTS, client))
    finally:
        process.terminate()
        process.wait(10)
    print(f"{kind:>11} GET {path[:60]:<60} {rps:8.0f} req/s   p99 {p99:6.1f} ms")
    return rps, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["api", "api-nocache", "baseline"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--client", choices=["raw", "httpx"], default="raw", help="load generator (see load())"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="flb-bench-api-") as folder:
        workdir = Path(folder)
        client = build_index(workdir)
        baseline = measure("baseline", "/constant", workdir, args.client)
        rounds = measure("api", "/rounds", workdir, args.client)
        single = measure("api", f"/clients/{client}", workdir, args.client)
        # For the record: the same endpoints when every request runs the query and the validation.
        cold = [
            measure("api-nocache", path, workdir, args.client) for path in ("/rounds", f"/clients/{client}")
        ]
    print(
        f"without the response cache: /rounds {cold[0][0]:.0f} req/s ({cold[0][0] / baseline[0]:.2f} x), "
        f"/clients/{{addr}} {cold[1][0]:.0f} req/s ({cold[1][0] / baseline[0]:.2f} x)"
    )
    ratio = min(rounds[0], single[0]) / baseline[0]
    print(f"slowest API endpoint at {ratio:.2f} x the bare endpoint's requests/s (target >= 0.5)")
    print(
        json.dumps(
            {
                "rounds_rps": round(rounds[0], 1),
                "rounds_p99_ms": round(rounds[1], 2),
                "client_rps": round(single[0], 1),
                "client_p99_ms": round(single[1], 2),
                "baseline_rps": round(baseline[0], 1),
                "baseline_p99_ms": round(baseline[1], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
