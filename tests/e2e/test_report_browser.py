"""The HTML report in a real browser: user strings (run name, symbol, gene name) that are scripts stay text.

Headless Chromium loads report.html and dumps the DOM after its scripts ran: plotly must have drawn
the figures (so scripts did run), and no payload may have executed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from evo.config.settings import settings
from tests.conftest import small_config
from tests.user_families import PAYLOAD, PAYLOAD_IMG

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if settings().require_browser:
            pytest.fail("EVO_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    return path


def dump_dom(url: str, tmp_path) -> str:
    res = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_report_shows_hostile_strings_as_text(tmp_path):
    from evo.flows.evolve import evolve
    from evo.view.report import write_report

    rng = np.random.default_rng(3)
    n = 1500
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = pd.DataFrame({
        "symbol": PAYLOAD_IMG, "time": pd.date_range("2021-01-01", periods=n, freq="1h"),
        "open": close, "high": close * 1.005, "low": close * 0.995, "close": close, "volume": 1000.0,
    })
    frame.to_csv(tmp_path / "market.csv", index=False)
    url = f"sqlite:///{tmp_path}/evo.db"
    name = f"run {PAYLOAD} {PAYLOAD_IMG}"
    cfg = small_config(name=name, data={"paths": [str(tmp_path / "market.csv")], "synthetic": None},
                       strategy={"family": "tests.user_families:HostileSmaCross", "bounds": {}},
                       constraints=[], algorithm={"pop_size": 8, "generations": 2})
    evolve(config=cfg, db_url=url)
    out = write_report(name, url, tmp_path / "report.html")
    html = out.read_text()
    assert PAYLOAD not in html and PAYLOAD_IMG not in html  # every copy is escaped
    dom = dump_dom(out.resolve().as_uri(), tmp_path)
    assert "main-svg" in dom, "plotly did not draw: the page's scripts did not run"
    assert "data-pwned" not in dom
    # the strings are there, as text
    assert dom.count("&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt;") >= 2  # run name, gene name
    assert dom.count("&lt;img src=x onerror=document.body.dataset.pwned=1&gt;") >= 2  # run name, symbol
