"""`evo report`: one self-contained HTML file with the expected figures, tables, verdict and config."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.conftest import small_config
from tests.helpers import evo

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.divs, self.scripts_src, self.tables, self.rows, self.h2 = [], [], {}, {}, []
        self._table = None
        self._in_h2 = False
        self.inline_scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.divs.append(a.get("id"))
        if tag == "script":
            if a.get("src"):
                self.scripts_src.append(a["src"])
            else:
                self.inline_scripts += 1
        if tag == "table":
            self._table = a.get("class")
            self.tables[self._table] = self.tables.get(self._table, 0) + 1
            self.rows[self._table] = 0
        if tag == "tr" and self._table:
            self.rows[self._table] += 1
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


def test_report_is_one_file_with_the_figures_tables_and_verdict(tmp_path, db_url):
    from evo.view import summary
    from evo.view.report import FIGURE_IDS, STATS_FIGURE_IDS, write_report
    from evo.flows.evolve import evolve

    evolve(config=small_config(algorithm={"pop_size": 12, "generations": 3}), db_url=db_url)
    out = write_report("t", db_url, tmp_path / "out" / "report.html")
    text = out.read_text()
    page = Page()
    page.feed(text)
    s = summary.summary("t", db_url)

    # the verdict's (the CSCV logits, OOS against IS, the bootstrap drawdowns, the neighbours), then the Pareto front, per
    # generation, equity curves
    assert page.divs == list(STATS_FIGURE_IDS) + list(FIGURE_IDS)
    assert "probability of backtest overfitting (PBO, CSCV)" in text and "SPA p-value against buy-and-hold" in text
    assert page.scripts_src == [] and page.inline_scripts >= 4  # plotly.js inlined: no network needed
    assert "Plotly.newPlot" in text and len(text) > 1_000_000
    assert page.rows["pareto"] == len(s["pareto"]) + 1  # header + one row per Pareto strategy
    assert page.rows["stats"] > 20 and "Sharpe Ratio" in text and "Total Trades" in text  # vectorbt's stats()
    assert any(h.startswith("Verdict: ") for h in page.h2) and s["verdict"]["verdict"] in text
    assert s["data_fingerprint"] in text and "&quot;pop_size&quot;: 12" in text  # the config and the fingerprint
    assert "holdout" in text and "buy and hold" in text
    # a quant's report: the equity axis says what it shows, the wide Pareto table scrolls in its own box,
    # the verdict's headline rows first and the statistics behind them folded away
    assert '"title":{"text":"portfolio value"}' in text
    assert '<div class="scroll"><table class="pareto">' in text
    assert "deflated Sharpe ratio (P[true Sharpe &gt; 0])" in text and "strategies tried (N)" in text
    assert "<details><summary>how it was computed</summary>" in text
    # the run remembers where its report is
    assert summary.summary("t", db_url)["report"] == str(out.resolve())


def test_report_cli_and_unknown_run(tmp_path):
    res = evo(["report", "ghost", "--db", f"sqlite:///{tmp_path}/x.db", "--out", str(tmp_path / "r.html")], tmp_path)
    assert res.returncode == 2 and "no evo database at" in res.stderr
    assert not (tmp_path / "x.db").exists()  # a read-only command creates no database
