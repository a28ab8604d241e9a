"""`flb simulate` prints its round lines, table and result; Ape's transaction log only with -v.

The smallest federation (one client, one round, two steps) on Ape's embedded chain, run twice as a
user runs it: once plain, once with `-v`. Both must print the same lines apart from Ape's log.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
FLB = str(Path(sys.executable).with_name("flb"))
# Ape's log lines: its level name, a colon and padding ("INFO:     Confirmed 0x...").
APE_LINE = re.compile(r"^(DEBUG|INFO|SUCCESS|WARNING|ERROR):\s")


def _simulate(out: Path, *flags: str) -> str:
    result = subprocess.run(
        [FLB, "simulate", "--clients", "1", "--rounds", "1", "--steps", "2", "--out", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not any(APE_LINE.match(line) for line in result.stderr.splitlines()), result.stderr
    # The run folder is the one thing that differs between the two runs.
    return result.stdout.replace(str(out), "OUT")


def test_ape_transaction_lines_only_with_verbose(tmp_path: Path) -> None:
    quiet = _simulate(tmp_path / "quiet")
    assert [line for line in quiet.splitlines() if APE_LINE.match(line)] == []
    assert "Confirmed" not in quiet and "Submitted" not in quiet
    lines = quiet.splitlines()
    assert lines[0] == "deploying on Ape's embedded chain; run folder OUT"
    assert lines[1].startswith("round 1: accuracy ") and "1 accepted, 0 rejected" in lines[1]
    assert "FLB simulation: 1 clients, 1 rounds, fedavg" in quiet
    assert lines[-4].startswith("accuracy ") and lines[-3:] == [
        "summary: OUT/summary.json",
        "plot:    OUT/plot.png",
        "reports: OUT/reports",
    ]

    verbose = _simulate(tmp_path / "verbose", "-v")
    ape = [line for line in verbose.splitlines() if APE_LINE.match(line)]
    for contract in ("FLBRewardToken", "FLBCoordinator"):
        assert any(line.startswith(f"SUCCESS:  Contract '{contract}' deployed to: 0x") for line in ape), ape
    # At least: two deployments, register, commit, reveal, finalize and claim, each confirmed.
    assert sum(line.startswith("INFO:     Confirmed 0x") for line in ape) >= 7, ape
    # -v adds Ape's log and changes nothing else (same seed, same rounds, same table).
    assert [line for line in verbose.splitlines() if not APE_LINE.match(line)] == lines
