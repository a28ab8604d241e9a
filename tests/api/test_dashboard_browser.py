"""The dashboard in headless Chromium, served by a real uvicorn server on 127.0.0.1.

Chromium renders the page twice: once to dump the DOM (the charts write the values they plot into
data attributes, and the position of their plot area), once to take a screenshot, whose chart area
must hold the chart's colours.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from flb_api.main import create_app
from PIL import Image

from tests.api.conftest import api_settings
from tests.api.federation import Federation
from tests.fixtures.processes import free_port, wait_for_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 900)
ACCENT = (0x4F, 0x46, 0xE5)  # --accent, the "after" accuracy line


class Elements(HTMLParser):
    """Attributes of every element with an id, and of every leaderboard row."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.rows: list[dict[str, str]] = []
        self.text: dict[str, str] = {}  # the text directly inside each element with an id
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.by_id[values["id"]] = values
            self._open = values["id"]
        if tag == "tr" and "data-client" in values:
            self.rows.append(values)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.text[self._open] = self.text.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None


# NOTE: session scope so that it runs before the session's federation is built, not after.
@pytest.fixture(scope="session", autouse=True)
def _require_chromium() -> None:
    """Fail when Chromium is missing: `make setup` installs it as root (the CI case), so its
    absence means a broken setup, and a skip would leave the dashboard untested but green."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail(
            f"Debian's chromium is not installed at {CHROMIUM}: run `make system-packages` as root "
            "(apt-get install chromium chromium-driver)",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def server(app: FastAPI, federation_dir: Path) -> Iterator[str]:
    """The API over the session's index, served like `flb-api` serves it."""
    served = create_app(api_settings(federation_dir), indexer=app.state.indexer, poll=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--force-device-scale-factor=1",
        "--virtual-time-budget=8000",
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_dashboard_shows_the_indexed_values(server: str, federation: Federation, tmp_path: Path) -> None:
    started = time.monotonic()
    dom = chromium(server, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Elements()
    page.feed(dom.stdout)
    assert page.by_id["status-pill"] is not None
    # Who may join and who decides rounds: an open, free federation whose oracle finalizes alone.
    assert page.text["trust-meta"] == "admission open · rounds finalized by the oracle alone"
    assert 'data-ready="1"' in dom.stdout, "the dashboard did not finish loading: " + dom.stdout[:500]

    sdk = federation.coordinator
    accuracy = page.by_id["accuracy-figure"]
    assert accuracy["data-rounds"] == "1,2"
    assert [float(x) for x in accuracy["data-points"].split(",")] == [
        sdk.round(1).metric,
        sdk.round(2).metric,
    ]
    assert [float(x) for x in accuracy["data-before"].split(",")] == [
        federation.outcomes[n].report.metrics.before.accuracy for n in (1, 2)
    ]
    participation = page.by_id["participation-figure"]
    assert participation["data-rounds"] == "1,2,3"
    assert participation["data-points"] == f"{sdk.round(1).submissions},{sdk.round(2).submissions},1"
    assert participation["data-rejected"] == "0,1,0"
    assert page.by_id["accuracy-plot"]["data-renderer"] == "chartjs"

    cumulative = federation.outcomes[2].rewards.cumulative
    expected = sorted(cumulative.items(), key=lambda kv: (-kv[1], kv[0].lower()))
    assert [(r["data-client"], int(r["data-cumulative"])) for r in page.rows] == expected
    # the open round 3 is past its commit phase (every commitment revealed): it awaits the oracle
    assert "#3" in dom.stdout and "closed · awaiting the oracle" in dom.stdout

    shot = tmp_path / "dashboard.png"
    taken = chromium(server, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == WINDOW
    for plot in ("accuracy-plot", "participation-plot"):
        x, y, w, h = (int(v) for v in page.by_id[plot]["data-rect"].split(","))
        assert w > 200 and h > 150 and y + h <= WINDOW[1], (
            f"{plot} lies outside the first screen: {x, y, w, h}"
        )
        region = image.crop((x, y, x + w, y + h))
        background = region.getpixel((2, 2))
        pixels: Any = region.getdata()
        drawn = sum(1 for p in pixels if max(abs(a - b) for a, b in zip(p, background, strict=True)) > 40)
        assert drawn > 0.01 * w * h, f"{plot} is blank in the screenshot"
    x, y, w, h = (int(v) for v in page.by_id["accuracy-plot"]["data-rect"].split(","))
    colours: Any = image.crop((x, y, x + w, y + h)).getdata()
    assert any(max(abs(a - b) for a, b in zip(p, ACCENT, strict=True)) < 30 for p in colours), (
        "no accuracy line"
    )
    assert time.monotonic() - started < 120


def test_svg_charts_without_chartjs(server: str, tmp_path: Path) -> None:
    dom = chromium(f"{server}/?charts=svg", tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Elements()
    page.feed(dom.stdout)
    assert page.by_id["accuracy-plot"]["data-renderer"] == "svg"
    plot = dom.stdout.split('id="accuracy-plot"', 1)[1].split("</figure>", 1)[0]
    assert plot.count("<circle") == 4  # two rounds, two lines
    bars = dom.stdout.split('id="participation-plot"', 1)[1].split("</figure>", 1)[0]
    assert bars.count("<rect") == 9  # three rounds, three stacked series
