"""From the Pareto set to the market: member ids, `evo signals` against vectorbt's own `from_signals`.

Runs evolve in-process (no Prefect) on the first bars of GOOG and EURUSD; the commands then see the
whole files, bars the runs never saw included.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import small_config

bt = pytest.importorskip("backtesting")
DATA = Path(bt.__file__).parent / "test"

#: (run, symbol file, bars the run sees, family, its bounds): shorts, sizing, trailing and OHLC stops on
RUNS = {
    "goog": ("GOOG", 1500, "trend", {"direction": [1, 2], "slow_window": [20, 80]}),
    "eur": ("EURUSD", 2500, "breakout", {"direction": [0, 2]}),
}


def _csv(folder: Path, symbol: str, n: int | None = None) -> Path:
    df = pd.read_csv(DATA / f"{symbol}.csv", index_col=0, parse_dates=True).astype(float)
    df.columns = [c.lower() for c in df.columns]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol}.csv"
    (df if n is None else df.iloc[:n]).to_csv(path, index_label="time")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small completed runs in one SQLite database, and the whole files (newer bars included)."""
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    tmp = tmp_path_factory.mktemp("market")
    url = f"sqlite:///{tmp}/evo.db"
    full = {}
    for name, (symbol, n, family, bounds) in RUNS.items():
        train = _csv(tmp / "train", symbol, n)
        full[name] = _csv(tmp / "full", symbol)
        cfg = small_config(name=name, data={"paths": [str(train)], "synthetic": None},
                           strategy={"family": family, "bounds": bounds},
                           evaluation={"ohlc_stops": True, "fees": 0.001, "slippage": 0.0005},
                           algorithm={"pop_size": 16, "generations": 2},
                           constraints=[{"metric": "n_trades", "op": ">=", "value": 1}])
        drive(cfg, None, None, url, None, False, Plain())
    return tmp, url, full


def _vectorbt(family_name: str, genes: dict, df: pd.DataFrame, init_cash=10_000.0):
    """vectorbt's from_signals with the member's genes spelled out as vectorbt's arguments."""
    import vectorbt as vbt

    from evo import strategies

    entries, exits = strategies.get(family_name).reference_signals(df, genes)
    direction = ["longonly", "shortonly", "both"][int(genes.get("direction", 0))]
    f = genes.get("size")
    if f is None:
        size, size_type = np.inf, "amount"
    elif direction == "both":
        size, size_type = f * init_cash, "value"
    else:
        size, size_type = f, "percent"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(
            df["close"], entries, exits, init_cash=init_cash, fees=0.001, slippage=0.0005, freq=None,
            direction=direction, size=size, size_type=size_type, sl_stop=genes.get("sl_stop", np.nan),
            tp_stop=genes.get("tp_stop", np.nan), sl_trail=bool(genes.get("sl_trail", 0)),
            open=df["open"], high=df["high"], low=df["low"], upon_opposite_entry="reversereduce",
        )


def test_ids_are_unique_prefixes_shown_everywhere(runs):
    from evo.store import open_store
    from evo.view.summary import describe, pareto_markdown

    _, url, _ = runs
    s = describe(open_store(url, write=False), "goog")
    ids = [e["id"] for e in s["pareto"]]
    assert ids and len(set(ids)) == len(ids) and len({len(i) for i in ids}) == 1 and len(ids[0]) >= 8
    assert all(e["genome_hash"].startswith(e["id"]) for e in s["pareto"])
    md = pareto_markdown(s)
    assert all(f"| {i} |" in md for i in ids)


@pytest.mark.parametrize("name", list(RUNS))
def test_signals_equal_vectorbt_on_newer_bars(runs, name):
    from evo.live import signals as sig
    from evo.live.members import open_run

    tmp, url, full = runs
    run = open_run(name, url)
    df = pd.read_csv(full[name], index_col=0, parse_dates=True)
    members = run.members([])
    assert len(df) > RUNS[name][1]  # bars the run never saw
    rows = sig.signals(run, members, sig.load_data(run, [str(full[name])]))
    assert [r["member"] for r in rows] == [m.id for m in members]
    shorts = 0
    for m, r in zip(members, rows):
        pf = _vectorbt(RUNS[name][2], m.genes, df)
        assets = pf.assets()
        assert r["position"] == assets.iloc[-1], m.genes
        o = pf.orders.records_readable
        last = o[o["Timestamp"] == df.index[-1]]
        want = float(np.where(last["Side"] == "Buy", last["Size"], -last["Size"]).sum())
        assert r["order"] == want
        assert r["bar"] == df.index[-1].isoformat() and r["symbol"] == RUNS[name][0]
        shorts += (assets < 0).any()
        if r["position"]:
            pos = pf.positions.records_readable
            open_pos = pos[pos["Status"] == "Open"]
            assert r["entry_price"] == pytest.approx(float(open_pos["Avg Entry Price"].iloc[-1]), rel=1e-12)
    if name == "goog":
        assert shorts > 0  # the short side was exercised
    # cut the data right after a bar the runs never saw on which a member traded: its order is that trade
    m = members[0]
    o = _vectorbt(RUNS[name][2], m.genes, df).orders.records_readable
    late = o[o["Timestamp"] > df.index[RUNS[name][1]]]
    assert len(late), "the member never trades on the newer bars"
    at = late["Timestamp"].iloc[-1]
    cut = tmp / "cut" / name
    cut.mkdir(parents=True, exist_ok=True)
    df.loc[:at].to_csv(cut / full[name].name, index_label="time")
    (r,) = sig.signals(run, [m], sig.load_data(run, [str(cut / full[name].name)]))
    here = late[late["Timestamp"] == at]
    assert r["order"] == float(np.where(here["Side"] == "Buy", here["Size"], -here["Size"]).sum()) != 0
    assert r["bar"] == at.isoformat()
    assert r["position"] == _vectorbt(RUNS[name][2], m.genes, df.loc[:at]).assets().iloc[-1]


def evo(args: list[str], tmp: Path):
    """`evo ARGS` in this process (typer's runner): stdout, stderr and the exit code apart."""
    from typer.testing import CliRunner

    from evo.flows.cli import app

    return CliRunner().invoke(app, args)


def test_signals_cli_json_and_refusals(runs):
    tmp, url, full = runs
    res = evo(["signals", "goog", "--data", str(full["goog"]), "--json", "--db", url], tmp)
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows and {"member", "symbol", "bar", "position", "order", "side", "stop_loss"} <= set(rows[0])
    one = rows[0]["member"]
    res = evo(["signals", "goog", "--data", str(full["goog"]), "--member", one, "--db", url], tmp)
    assert res.exit_code == 0 and one in res.stdout, res.stderr
    for args, words in (
        (["--member", "ffffffff"], "has no member 'ffffffff'"),
        (["--member", "xyz"], "expected 4 to 64 hex digits"),
    ):
        res = evo(["signals", "goog", "--data", str(full["goog"]), *args, "--db", url], tmp)
        assert res.exit_code == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = evo(["signals", "goog", "--data", str(full["eur"]), "--db", url], tmp)
    assert res.exit_code == 2 and "['GOOG'] missing" in res.stderr, res.stderr
    short = _csv(tmp / "short", "GOOG", 30)
    res = evo(["signals", "goog", "--data", str(short), "--db", url], tmp)
    assert res.exit_code == 2 and "largest window" in res.stderr, res.stderr
    assert not list(tmp.glob("*.db-journal")) and sorted(p.name for p in tmp.iterdir() if p.suffix == ".db") == ["evo.db"]


def test_stop_loss_level_is_where_vectorbt_stops_on_the_next_bar(runs):
    """A next bar that just reaches the stop-loss level printed fills there in vectorbt; one that stops
    a hair short of it does not."""
    from evo.live import signals as sig
    from evo.live.members import open_run

    tmp, url, full = runs
    checked = trailing = 0
    for name in RUNS:
        run = open_run(name, url)
        df = pd.read_csv(full[name], index_col=0, parse_dates=True)
        rows = sig.signals(run, run.members([]), sig.load_data(run, [str(full[name])]))
        for m, r in zip(run.members([]), rows):
            if r["stop_loss"] is None:
                continue
            level, last = r["stop_loss"], df.iloc[-1]
            for beyond, fills in ((1e-6, True), (-1e-6, False)):
                edge = level * (1 - beyond) if r["position"] > 0 else level * (1 + beyond)
                bar = {"open": last["close"], "close": last["close"], "volume": last["volume"],
                       "high": max(last["close"], edge), "low": min(last["close"], edge)}
                more = pd.concat([df, pd.DataFrame([bar], index=[df.index[-1] + (df.index[-1] - df.index[-2])])])
                o = _vectorbt(RUNS[name][2], m.genes, more).orders.records_readable
                stopped = o[o["Timestamp"] == more.index[-1]]
                if fills:
                    assert len(stopped) and stopped["Price"].iloc[0] == pytest.approx(level, rel=1e-12), (m.genes, r)
                else:
                    assert not (len(stopped) and stopped["Price"].iloc[0] == pytest.approx(level, rel=1e-9))
            checked += 1
            trailing += r["trailing"]
    assert checked >= 2 and trailing  # a fixed and a trailing stop-loss at least


def test_load_reads_frames_and_portfolios_equal_to_the_stored_metrics(runs, tmp_path):
    import evo
    from evo.config.errors import RunError, StoreError
    from evo.store import open_store
    from evo.view.summary import describe

    _, url, _ = runs
    s = describe(open_store(url, write=False), "goog")
    run = evo.load("goog", db=url)
    pareto = run.pareto_frame()
    assert list(pareto.index) == [e["id"] for e in s["pareto"]]
    assert run.verdict == s["verdict"] and run.verdict["verdict"] in ("edge", "no evidence of edge")
    gens = run.generations_frame()
    assert list(gens.index) == [1, 2] and (gens["n_offspring"] > 0).all()
    ev = run.evaluations_frame()
    assert len(ev) == gens["n_offspring"].sum() and {"generation", "id", "rsi_window"} - set(ev) == {"rsi_window"}
    assert set(pareto["genome_hash"]) <= set(ev["genome_hash"])
    for e in s["pareto"][:3]:
        for window, stored in (("train", e["metrics"]), ("holdout", e["oos_metrics"])):
            st = run.portfolio(e["id"], window).stats()
            assert st["Total Return [%]"] == pytest.approx(100 * stored["total_return"], rel=1e-9)
            assert st["Total Trades"] == stored["n_trades"]
            if stored["sharpe_ratio"] is not None:
                assert st["Sharpe Ratio"] == pytest.approx(stored["sharpe_ratio"], rel=1e-9)
            assert st["Max Drawdown [%]"] == pytest.approx(-100 * stored["max_drawdown"], rel=1e-9, abs=1e-12)
        row = pareto.loc[e["id"]]
        assert row["total_return"] == e["metrics"]["total_return"] and row["oos_n_trades"] == e["oos_metrics"]["n_trades"]
    assert len(run.portfolio(s["pareto"][0]["id"], "all").wrapper.index) == len(run.portfolio(s["pareto"][0]["id"], "train").wrapper.index) + s["verdict"]["holdout"][1] - s["verdict"]["holdout"][0]
    with pytest.raises(RunError, match="no run named 'ghost'"):
        evo.load("ghost", db=url)
    with pytest.raises(StoreError):
        evo.load("goog", db=f"sqlite:///{tmp_path}/none.db")
    assert not (tmp_path / "none.db").exists()


def test_signals_of_a_shared_cash_portfolio_equal_vectorbt_grouped(tmp_path):
    """reducer 'portfolio': GOOG and EURUSD (their last bars on one daily index) share the cash."""
    import vectorbt as vbt

    from evo import strategies
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.live import signals as sig
    from evo.live.members import open_run

    n = 2000
    idx = pd.date_range("2015-01-01", periods=n, freq="1D", name="time")
    frames = {}
    for symbol in ("GOOG", "EURUSD"):
        df = pd.read_csv(DATA / f"{symbol}.csv", index_col=0).astype(float).iloc[-n:]
        df.columns = [c.lower() for c in df.columns]
        frames[symbol] = df.set_axis(idx)
        for folder, part in (("train", frames[symbol].iloc[:1400]), ("full", frames[symbol])):
            (tmp_path / folder).mkdir(exist_ok=True)
            part.to_csv(tmp_path / folder / f"{symbol}.csv")
    url = f"sqlite:///{tmp_path}/evo.db"
    cfg = small_config(name="pair", data={"paths": [str(tmp_path / "train" / f"{s}.csv") for s in frames],
                                          "synthetic": None},
                       strategy={"family": "mean_reversion", "bounds": {"direction": [0, 2]}},
                       evaluation={"ohlc_stops": True, "reducer": "portfolio"}, algorithm={"pop_size": 12, "generations": 1},
                       constraints=[{"metric": "n_trades", "op": ">=", "value": 1}])
    drive(cfg, None, None, url, None, False, Plain())
    run = open_run("pair", url)
    members = run.members([])
    rows = sig.signals(run, members, sig.load_data(run, [str(tmp_path / "full" / f"{s}.csv") for s in frames]))
    assert len(rows) == 2 * len(members)
    family = strategies.get("mean_reversion")
    held = 0
    for k, m in enumerate(members):
        sigs = [family.reference_signals(frames[s], m.genes) for s in frames]
        wide = lambda xs: pd.concat(xs, axis=1, keys=list(frames))  # noqa: E731
        g = m.genes
        direction = ["longonly", "shortonly", "both"][int(g["direction"])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pf = vbt.Portfolio.from_signals(
                wide([frames[s]["close"] for s in frames]), wide([e for e, _ in sigs]), wide([x for _, x in sigs]),
                init_cash=10_000.0, fees=0.001, slippage=0.0005, direction=direction,
                size=10_000.0 / 2 * g.get("size", 1.0), size_type="value", sl_stop=g["sl_stop"], tp_stop=g["tp_stop"],
                sl_trail=bool(g.get("sl_trail", 0)), open=wide([frames[s]["open"] for s in frames]),
                high=wide([frames[s]["high"] for s in frames]), low=wide([frames[s]["low"] for s in frames]),
                group_by=True, cash_sharing=True, upon_opposite_entry="reversereduce",
            )
        for a, symbol in enumerate(frames):
            r = rows[2 * k + a]
            assert (r["member"], r["symbol"]) == (m.id, symbol)
            assert r["position"] == pf.assets()[symbol].iloc[-1]
            held += r["position"] != 0
    assert held  # some member holds something at the end


def test_signals_and_export_on_the_runs_own_file_grown_in_place(tmp_path):
    """The usual case: newer bars appended to the very file the run evolved on."""
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.live import signals as sig
    from evo.live.members import open_run

    path = _csv(tmp_path / "data", "GOOG", 1500)
    url = f"sqlite:///{tmp_path}/evo.db"
    cfg = small_config(name="grow", data={"paths": [str(path)], "synthetic": None},
                       strategy={"family": "trend", "bounds": {"direction": [0, 2]}},
                       algorithm={"pop_size": 8, "generations": 1},
                       constraints=[{"metric": "n_trades", "op": ">=", "value": 1}])
    drive(cfg, None, None, url, None, False, Plain())
    _csv(tmp_path / "data", "GOOG")  # the same file, now with every bar
    run = open_run("grow", url)
    m = run.members([])[0]
    (r,) = sig.signals(run, [m], sig.load_data(run, [str(path)]))
    df = pd.read_csv(path, index_col=0, parse_dates=True)
    assert r["bar"] == df.index[-1].isoformat() and len(df) > 1500
    assert r["position"] == _vectorbt("trend", m.genes, df).assets().iloc[-1]
    res = evo(["export", "grow", "--member", m.id, "--out", str(tmp_path / "s.py"), "--db", url], tmp_path)
    assert res.exit_code == 0, res.output
