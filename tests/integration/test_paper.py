"""Paper books: the ledger equals vectorbt's from_signals over the paper period, bar for bar, whatever the
ticks; a tick that dies part-way leaves nothing and the next writes the same rows once; a restated history
is refused."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import small_config
from tests.integration.test_market import DATA

TRAIN, BEGIN = 1200, 1300  # bars the run evolves on; the book's first bar


def _write(path, df, n):
    df.iloc[:n].to_csv(path, index_label="time")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.live import paper

    tmp = tmp_path_factory.mktemp("paper")
    df = pd.read_csv(DATA / "GOOG.csv", index_col=0, parse_dates=True).astype(float)
    df.columns = [c.lower() for c in df.columns]
    (tmp / "train").mkdir()
    _write(tmp / "train" / "GOOG.csv", df, TRAIN)
    url = f"sqlite:///{tmp}/evo.db"
    cfg = small_config(name="g", data={"paths": [str(tmp / "train" / "GOOG.csv")], "synthetic": None},
                       strategy={"family": "trend", "bounds": {"direction": [1, 2], "slow_window": [20, 80]}},
                       evaluation={"ohlc_stops": True}, algorithm={"pop_size": 12, "generations": 1},
                       constraints=[{"metric": "n_trades", "op": ">=", "value": 1}])
    drive(cfg, None, None, url, None, False, Plain())
    live = tmp / "GOOG.csv"
    _write(live, df, BEGIN + 40)
    paper.create(url, "book", "g", [str(live)], start=df.index[BEGIN].isoformat())
    return tmp, url, df, live


def _vectorbt(genes, df, begin):
    import vectorbt as vbt

    from evo import strategies

    entries, exits = strategies.get("trend").reference_signals(df, genes)
    direction = ["longonly", "shortonly", "both"][int(genes["direction"])]
    size, size_type = (genes["size"] * 10_000.0, "value") if direction == "both" else (genes["size"], "percent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(
            df["close"].iloc[begin:], entries.iloc[begin:], exits.iloc[begin:], init_cash=10_000.0, fees=0.001,
            slippage=0.0005, direction=direction, size=size, size_type=size_type, sl_stop=genes["sl_stop"],
            tp_stop=genes["tp_stop"], sl_trail=bool(genes["sl_trail"]), open=df["open"].iloc[begin:],
            high=df["high"].iloc[begin:], low=df["low"].iloc[begin:], upon_opposite_entry="reversereduce")


def _against(df, genes, begin, end):
    """df's bars up to `end`, where each bar from `begin` on that would pay the side a trend member holds is
    mirrored (its open, high, low and close relative to the previous close inverted, high and low swapped):
    the appended bars reverse the member's edge, as it trades them, with the market's own bar sizes.
    The side is the member's EMA crossover state (a direction-"both" member is long above, short below;
    a short-only one is short above), EMAs as vectorbt's (adjust=False); prices are rounded to cents."""
    cols = ["open", "high", "low", "close"]
    raw = df[cols].to_numpy()
    a = raw[:end].copy()
    fast, slow = 2 / (genes["fast_window"] + 1), 2 / (genes["slow_window"] + 1)
    f = s = raw[0, 3]
    side = -1.0 if int(genes["direction"]) == 1 else 1.0
    for i in range(1, end):
        if i >= begin:
            rel = raw[i] / raw[i - 1, 3]
            if side * np.sign(f - s) * (rel[3] - 1) > 0:  # the bar would pay the member: mirror it
                rel = 1 / rel[[0, 2, 1, 3]]
            a[i] = np.round(a[i - 1, 3] * rel, 2)
        f += fast * (a[i, 3] - f)
        s += slow * (a[i, 3] - s)
    out = df.iloc[:end].copy()
    out[cols] = a
    return out


def _drift_z(genes, backtest_sharpe, df, begin):
    """The Sharpe z-score of Lo (2002) of a member's paper returns (vectorbt's from_signals over df from bar
    `begin`) against its annual backtest Sharpe ratio, both per bar (a 365-day year of daily bars)."""
    import vectorbt as vbt

    r = _vectorbt(genes, df, begin).value().pct_change().dropna().to_numpy()
    sr = r.mean() / r.std(ddof=1)
    bt = backtest_sharpe / np.sqrt(pd.Timedelta(vbt.settings.returns["year_freq"]) / pd.Timedelta("1D"))
    return (sr - bt) / np.sqrt((1 + bt * bt / 2) / len(r))


def test_ticks_build_the_ledger_of_from_signals_once(book):
    from evo.live import paper
    from evo.store import open_store

    tmp, url, df, live = book
    first = paper.tick(url, "book")
    store = open_store(url, write=False)
    b = store.get_book("book")
    assert first["bars"] == 40 and first["rows"] == 40 * len(b.members) and first["last_bar"] == df.index[BEGIN + 39].isoformat()
    assert paper.tick(url, "book")["rows"] == 0  # nothing new: nothing written

    # a tick that dies after inserting its rows, before committing: nothing of it stays
    _write(live, df, BEGIN + 80)

    def die(conn, clauseelement, *args):
        if "INSERT INTO paper_ledger" in str(clauseelement):
            raise KeyboardInterrupt("killed mid-tick")

    event.listen(Engine, "after_execute", die)
    try:
        with pytest.raises(KeyboardInterrupt):
            paper.tick(url, "book")
    finally:
        event.remove(Engine, "after_execute", die)
    assert len(store.ledger(b.id)) == 40 * len(b.members) and store.get_book("book").last_bar == first["last_bar"]
    assert paper.tick(url, "book")["rows"] == 40 * len(b.members)
    _write(live, df, BEGIN + 100)
    assert paper.tick(url, "book")["rows"] == 20 * len(b.members)

    led = paper.frame(store, store.get_book("book"))
    assert len(led) == len(led.drop_duplicates(["member", "symbol", "bar"])) == 100 * len(b.members)
    traded = 0
    for genome_hash in b.members:
        genes = store.genomes_of(store.get_run("g").id, genome_hash)[genome_hash]
        pf = _vectorbt(genes, df.iloc[:BEGIN + 100], BEGIN)
        mine = led[led["member"] == genome_hash].sort_values("bar")
        assert list(mine["bar"]) == [t.isoformat() for t in df.index[BEGIN:BEGIN + 100]]
        np.testing.assert_array_equal(mine["position"].to_numpy(), pf.assets().to_numpy())
        np.testing.assert_array_equal(mine["cash"].to_numpy(), pf.cash().to_numpy())
        np.testing.assert_array_equal(mine["equity"].to_numpy(), pf.value().to_numpy())
        traded += (mine["fill"] != 0).sum()
    assert traded  # the members traded in the paper period


def test_a_restated_history_is_refused(book):
    from evo.config.errors import DataError
    from evo.live import paper

    tmp, url, df, live = book
    _write(live, df, BEGIN + 100)
    paper.tick(url, "book")
    restated = df.copy()
    restated.iloc[BEGIN + 5, restated.columns.get_loc("close")] *= 1.01
    restated.iloc[BEGIN + 5, restated.columns.get_loc("high")] *= 1.01
    _write(live, restated, BEGIN + 120)
    with pytest.raises(DataError, match="history changed"):
        paper.tick(url, "book")
    _write(live, df, BEGIN + 100)  # as it was


def test_drift_is_the_sharpe_z_score_of_the_paper_returns(book):
    from evo.live import paper
    from evo.store import open_store

    tmp, url, df, live = book
    _write(live, df, BEGIN + 100)
    paper.tick(url, "book")
    s = paper.show(url, "book")
    store = open_store(url, write=False)
    led = paper.frame(store, store.get_book("book"))
    for d, h in zip(s["drift"], store.get_book("book").members):
        r = led[led["member"] == h].sort_values("bar")["equity"].pct_change().dropna()
        assert d["bars"] == len(r) == 99
        sr = r.mean() / r.std(ddof=1)
        assert d["sharpe_per_bar"] == pytest.approx(sr, rel=1e-12)
        bt = d["backtest_sharpe_per_bar"]
        assert d["z"] == pytest.approx((sr - bt) / np.sqrt((1 + bt * bt / 2) / 99), rel=1e-12)
        assert d["drift"] == (d["z"] < -2.0)


def test_the_book_shows_cash_and_equity_to_the_cent(book):
    """`evo paper show` and the tick's markdown artifact print the ledger's money to the cent (four significant
    digits printed 10,000 as 1e+04 and 9,967.63 as 9968)."""
    from typer.testing import CliRunner

    from evo.flows.cli import app
    from evo.live import paper
    from evo.store import open_store

    tmp, url, df, live = book
    _write(live, df, BEGIN + 100)
    paper.tick(url, "book")
    store = open_store(url, write=False)
    led = paper.frame(store, store.get_book("book"))
    last = led[led["bar"] == led["bar"].max()]
    assert len(last) == len(store.get_book("book").members) and (last["cash"] != last["equity"]).any()
    table = CliRunner().invoke(app, ["paper", "show", "book", "--db", url]).stdout
    md = paper.markdown(paper.show(url, "book"))
    for cash, equity in zip(last["cash"], last["equity"]):
        for v in (cash, equity):
            cents = f"{round(v, 2):,.2f}"
            assert cents in table and f"| {cents} |" in md, (cents, table, md)
    assert "e+0" not in table and "e+0" not in md


def test_a_book_made_from_relative_paths_ticks_from_any_folder(book, monkeypatch):
    """A book keeps its files' absolute paths: created with `--data GOOG.csv` in one folder, it ticks (as a
    scheduled worker does) from another."""
    from evo.live import paper

    tmp, url, df, live = book
    (tmp / "rel").mkdir()
    _write(tmp / "rel" / "GOOG.csv", df, BEGIN + 30)
    monkeypatch.chdir(tmp / "rel")
    b = paper.create(url, "relative", "g", ["GOOG.csv"], start=df.index[BEGIN].isoformat())
    assert b.data == [str(tmp / "rel" / "GOOG.csv")]
    monkeypatch.chdir(tmp)
    assert paper.tick(url, "relative")["rows"] == 30 * len(b.members)


def test_a_breach_is_reported_once_not_every_tick(book, monkeypatch):
    from evo.live import paper

    tmp, url, df, _ = book
    live = tmp / "alarm" / "GOOG.csv"
    live.parent.mkdir()
    _write(live, df, BEGIN + 10)
    b = paper.create(url, "alarm", "g", [str(live)], start=df.index[BEGIN].isoformat())
    monkeypatch.setenv("EVO_PAPER_DRIFT_Z", "-1e5")  # any z is below 1e5: every member drifts once judged
    monkeypatch.setenv("EVO_PAPER_DRIFT_MIN_BARS", "20")
    assert paper.tick(url, "alarm")["breached"] == []  # 9 paper returns: not judged yet
    _write(live, df, BEGIN + 40)
    breached = paper.tick(url, "alarm")["breached"]
    assert sorted(d["member"] for d in breached) == sorted(b.members) and all(d["bars"] == 39 for d in breached)
    _write(live, df, BEGIN + 60)
    r = paper.tick(url, "alarm")
    assert r["breached"] == [] and all(d["drift"] for d in r["drift"])  # still drifting: no second alarm
    monkeypatch.setenv("EVO_PAPER_DRIFT_Z", "1e5")
    assert all(not d["drift"] for d in paper.tick(url, "alarm")["drift"])


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_the_tick_flow_announces_each_breach_once_and_updates_its_artifact(book, monkeypatch):
    from prefect import get_client

    from evo.flows import paper as flows_paper
    from evo.flows.orchestration import artifact_key
    from evo.live import paper

    tmp, url, df, _ = book
    live = tmp / "flow" / "GOOG.csv"
    live.parent.mkdir()
    _write(live, df, BEGIN + 30)
    b = paper.create(url, "flowbook", "g", [str(live)], start=df.index[BEGIN].isoformat())
    sent = []
    monkeypatch.setattr(flows_paper, "announce", lambda book, member, figures: sent.append((book, member, figures)))
    monkeypatch.setenv("EVO_PAPER_DRIFT_Z", "-1e5")
    for n in (30, 50, 70):  # three ticks, bars appended between them
        _write(live, df, BEGIN + n)
        out = flows_paper.paper_tick(book="flowbook", db_url=url)
        assert out["last_bar"] == df.index[BEGIN + n - 1].isoformat()
    ids = paper.show(url, "flowbook")["members"]
    assert sorted(m for _, m, _ in sent) == sorted(ids) and len(sent) == len(b.members)  # once each
    assert all(f["drift"] and f["bars"] == 29 and f["member"] == m for _, m, f in sent)
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key("flowbook", "paper")])))
    assert arts and any(ids[0] in a.data for a in arts)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_breach_no_tick_announced_is_announced_once_by_the_next_served_tick(book, monkeypatch):
    """A breach judged by a tick that announces nothing (`evo paper tick`), or by a served tick that died
    before it announced, is announced by the next served tick, once. The breach is planted by bars that
    reverse the best member's edge, under the default drift rule."""
    from evo.flows import paper as flows_paper
    from evo.live import paper
    from evo.store import open_store
    from evo.view.summary import describe

    tmp, url, df, _ = book
    pareto = describe(open_store(url, write=False), "g")["pareto"]
    best = max(pareto, key=lambda p: p["metrics"]["sharpe_ratio"])
    rev = _against(df, best["genes"], BEGIN, BEGIN + 50)
    sent = []
    monkeypatch.setattr(flows_paper, "announce", lambda book, member, figures: sent.append((book, member)))
    for name in ("byhand", "died"):
        live = tmp / name / "GOOG.csv"
        live.parent.mkdir()
        _write(live, rev, BEGIN + 30)
        b = paper.create(url, name, "g", [str(live)], start=df.index[BEGIN].isoformat())
        ids = dict(zip(b.members, paper.show(url, name)["members"]))
        if name == "byhand":
            first = paper.tick(url, name)  # as `evo paper tick`: judges the breach, announces nothing
        else:
            def die(book, member, figures):
                raise RuntimeError("killed before it announced")

            with monkeypatch.context() as m:
                m.setattr(flows_paper, "announce", die)
                with pytest.raises(RuntimeError, match="killed before"):
                    flows_paper.paper_tick(book=name, db_url=url)
            first = {"drift": paper.show(url, name)["drift"]}
        drifting = sorted(ids[h] for h, p in zip(b.members, first["drift"]) if p["drift"])
        assert ids[best["genome_hash"]] in drifting and len(drifting) < len(b.members), first["drift"]
        for n in (30, 50):  # the next served ticks: the first announces, the second (more bars) does not again
            _write(live, rev, BEGIN + n)
            flows_paper.paper_tick(book=name, db_url=url)
        assert sorted(m for bk, m in sent if bk == name) == drifting, (name, sent)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_an_evolve_run_announces_its_end_its_verdict_or_its_failure(tmp_path, monkeypatch):
    from evo.flows import paper as flows_paper
    from evo.flows.evolve import evolve
    from evo.run import faults

    sent = []
    monkeypatch.setattr(flows_paper, "announce_run_end", lambda run, figures: sent.append((run, figures)))
    evolve(config=small_config(name="ok", algorithm={"pop_size": 6, "generations": 1}),
           db_url=f"sqlite:///{tmp_path}/a.db")
    assert len(sent) == 1 and sent[0][0] == "ok" and sent[0][1]["status"] == "completed"
    assert sent[0][1]["verdict"] in ("edge", "no evidence of edge") and sent[0][1]["generations_done"] == 1
    monkeypatch.setenv("EVO_FAULT_PERSIST", "commit")
    with pytest.raises(faults.InjectedFault):
        evolve(config=small_config(name="ko", algorithm={"pop_size": 6, "generations": 1}),
               db_url=f"sqlite:///{tmp_path}/b.db")
    assert len(sent) == 2 and sent[1][0] == "ko" and sent[1][1]["status"] == "failed"
    assert "InjectedFault" in sent[1][1]["error"]


@pytest.mark.slow
def test_the_report_plots_each_books_equity_per_member(book):
    from evo.live import paper
    from evo.view.report import PAPER_FIGURE_ID, write_report

    tmp, url, df, live = book
    _write(live, df, BEGIN + 100)
    paper.tick(url, "book")
    page = write_report("g", url, tmp / "report.html").read_text()
    assert f'id="{PAPER_FIGURE_ID}"' in page and "paper book book" in page
    assert all(f'"name":"{m}"' in page for m in paper.show(url, "book")["members"])


def test_a_book_reads_its_bars_from_a_loader_function(book, monkeypatch):
    from evo.live import paper
    from evo.store import open_store

    tmp, url, df, live = book
    feed = tmp / "feeds"
    feed.mkdir(exist_ok=True)
    source = feed / "bars.csv"
    _write(source, df, BEGIN + 50)
    (feed / "paperfeed.py").write_text(
        "import pandas as pd\n\n\ndef latest():\n"
        f"    return {{'GOOG': pd.read_csv({str(source)!r}, index_col=0, parse_dates=True)}}\n"
    )
    monkeypatch.syspath_prepend(str(feed))
    _write(live, df, BEGIN + 100)
    paper.tick(url, "book")  # the same bars from the file, to compare with
    b = paper.create(url, "fed", "g", ["paperfeed:latest"], start=df.index[BEGIN].isoformat())
    assert paper.tick(url, "fed")["rows"] == 50 * len(b.members)
    store = open_store(url, write=False)
    fed = paper.frame(store, store.get_book("fed")).set_index(["member", "bar"])
    other = paper.frame(store, store.get_book("book")).set_index(["member", "bar"]).loc[fed.index]
    assert len(other) == len(fed) and (fed[["position", "cash", "equity"]] == other[["position", "cash", "equity"]]).all().all()


@pytest.mark.slow
def test_a_tick_killed_by_sigkill_before_its_commit_leaves_nothing_and_the_next_writes_once(book):
    """`evo paper tick` as a subprocess that SIGKILLs itself inside the tick's transaction, after its inserts."""
    from evo.live import paper
    from evo.store import open_store
    from tests.helpers import evo

    tmp, url, df, _ = book
    live = tmp / "killed" / "GOOG.csv"
    live.parent.mkdir()
    _write(live, df, BEGIN + 20)
    b = paper.create(url, "killed", "g", [str(live)], start=df.index[BEGIN].isoformat())
    assert paper.tick(url, "killed")["rows"] == 20 * len(b.members)
    _write(live, df, BEGIN + 45)
    res = evo(["paper", "tick", "killed", "--db", url], tmp, api_url=None, EVO_TEST_CRASH="paper@0",
              EVO_TEST_CRASH_RUN="killed")
    assert res.returncode == -9, res.stdout + res.stderr  # SIGKILL
    store = open_store(url, write=False)
    assert len(store.ledger(b.id)) == 20 * len(b.members)
    assert store.get_book("killed").last_bar == df.index[BEGIN + 19].isoformat()
    res = evo(["paper", "tick", "killed", "--db", url], tmp, api_url=None)
    assert res.returncode == 0 and f"{25 * len(b.members)} ledger rows written" in res.stdout, res.stdout + res.stderr
    led = paper.frame(store, store.get_book("killed"))
    assert len(led) == len(led.drop_duplicates(["member", "symbol", "bar"])) == 45 * len(b.members)


def test_bad_books_are_refused_in_one_line_before_anything_is_written(book):
    from typer.testing import CliRunner

    from evo.flows.cli import app

    tmp, url, df, live = book
    for args, words in (
        (["demo2", "--run", "g", "--data", str(live), "--start", "not a time"], "--start 'not a time' is not a timestamp"),
        (["demo2", "--run", "ghost", "--data", str(live)], "no run named 'ghost'"),
        (["demo2", "--run", "g", "--data", str(live), "--member", "ffffffff"], "has no member 'ffffffff'"),
        (["bad\nname", "--run", "g", "--data", str(live)], "paper book name"),
        (["book", "--run", "g", "--data", str(live)], "a paper book named 'book' already exists"),
    ):
        res = CliRunner().invoke(app, ["paper", "create", *args, "--db", url])
        assert res.exit_code == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
    res = CliRunner().invoke(app, ["paper", "tick", "ghost", "--db", url])
    assert res.exit_code == 2 and "no paper book named 'ghost'" in res.stderr
    from evo.store import open_store

    assert open_store(url, write=False).get_book("demo2") is None
