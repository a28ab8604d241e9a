"""Shared by the benchmarks that run `flb` as users do: a subprocess's wall time and its peak memory
summed over the process tree. (Not a benchmark itself: `make bench` skips files starting with _.)"""

from __future__ import annotations

import os
import subprocess
import time

# NOTE: reading a process's PSS parses /proc/PID/smaps: sampled every 0.2 s it took a fifth of a
# core from the 2-core run it measured; once a second costs little and still sees each phase.
SAMPLE_S = 1.0
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def measure(command: list[str]) -> dict[str, float]:
    """Wall seconds and peak memory (MB, RSS and PSS summed over the process tree) of ``command``.

    RSS counts shared pages in each process; PSS splits them between the processes that map them
    (what the processes cost the machine). Sampled every SAMPLE_S seconds."""
    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        env={**os.environ, **OFFLINE_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    root = psutil.Process(child.pid)
    peak_rss = peak_pss = 0.0
    while child.poll() is None:
        rss = pss = 0.0
        try:
            for process in [root, *root.children(recursive=True)]:
                info = process.memory_full_info()
                rss, pss = rss + info.rss, pss + info.pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # a process ended while sampled: the next sample sees the rest
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(SAMPLE_S)
    seconds = time.perf_counter() - started
    stderr = child.stderr.read() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{command} failed ({child.returncode}):\n{stderr[-3000:]}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss / 2**20),
        "peak_pss_mb": round(peak_pss / 2**20),
    }
