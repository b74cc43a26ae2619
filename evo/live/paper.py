"""Paper trading: a book of a run's members traded forward on market data that grows, one tick at a time.

A tick reads the book's data, refuses a history that changed under it (the bars up to the last one in the
ledger must hash as they did), backtests each member from the book's start bar with the run's settings
(evo.live.portfolio: vectorbt's from_signals, as `evo signals`), and appends each bar past the ledger's
last one, per member and symbol: the fill, the position, the cash and the equity. The rows and the book's
new last bar commit in one transaction, so a tick killed part-way leaves the ledger as it was and the
next tick writes the same rows once.

Drift: after each tick, each member's paper Sharpe ratio (per bar, over the paper bars) is compared with
its backtest's (the stored in-sample Sharpe ratio, per bar) by the z-score of Lo (2002):
z = (SR_paper - SR_backtest) / sqrt((1 + SR_backtest^2 / 2) / n), for n paper returns; a member drifts when
n >= EVO_PAPER_DRIFT_MIN_BARS (default 20) and z < -EVO_PAPER_DRIFT_Z (default 2). A tick reports the
members that drift now and did not before it (`breached`). The served tick (evo.flows.paper) announces
each breach once: the book records the members whose current drift it has announced (`announced`), so a
breach judged by a tick that announces nothing is announced by the next served one (`unannounced`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from evo.config.errors import DataError, RunError
from evo.live.members import OpenRun
from evo.market import Market
from evo.store import Store, open_store


def drift_rule() -> tuple[float, int]:
    """(z threshold, minimum paper returns): EVO_PAPER_DRIFT_Z, EVO_PAPER_DRIFT_MIN_BARS."""
    from evo.config.settings import settings

    s = settings()
    return s.paper_drift_z, s.paper_drift_min_bars


def history_hash(market: Market, upto: int) -> str:
    """sha256 of the market's bars [0, upto]: symbols, timestamps and OHLCV."""
    from evo.market.load import FIELDS, fingerprint

    return fingerprint(market.index[: upto + 1], market.symbols,
                       {f: np.asfortranarray(getattr(market, f)[: upto + 1]) for f in FIELDS})


def create(database: str, name: str, run_name: str, data: Sequence[str], member_ids: Sequence[str] = (),
           start: str | None = None):
    """A new paper book of run `run_name`'s members (default: its final Pareto set) on the files `data`,
    trading from the first bar at or after `start` (default: the bar after the data's last one today)."""
    from evo.config import NAME_MAX, check_text
    from evo.config.errors import ConfigError
    from evo.live.signals import load_data

    try:
        check_text(name, "paper book name", NAME_MAX)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    store = open_store(database, write=True)
    run = OpenRun(store, *_record(store, run_name))
    members = run.members(member_ids)
    market = load_data(run, data)
    if start is None:
        start = (market.index[-1] + market.freq).isoformat()
    else:
        from evo.market.load import timestamp

        try:
            when = timestamp(start)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"--start {start!r} is not a timestamp: {e}") from None
        if when is pd.NaT:
            raise ConfigError(f"--start {start!r} is not a timestamp")
        start = when.isoformat()
    return store.create_book(name, run.record.id, [m.genome_hash for m in members], _where(data), start)


def _where(data: Sequence[str]) -> list[str]:
    """The book's data as every tick finds it, whatever folder it runs in: files as absolute paths (a
    scheduled tick runs wherever its worker does), a `module:function` loader as given."""
    from pathlib import Path

    from evo.live.signals import is_loader

    if is_loader(data):
        return list(data)
    return [p if "://" in p else str(Path(p).resolve()) for p in data]


def _record(store: Store, run_name: str):
    from evo.config.schema import stored

    rec = store.get_run(run_name)
    if rec is None:
        raise RunError(f"no run named {run_name!r} in {store.masked_url}")
    return rec, stored(rec.config, source=f"run {run_name!r}")


def _book(store: Store, name: str):
    book = store.get_book(name)
    if book is None:
        raise RunError(f"no paper book named {name!r} in {store.masked_url}")
    return book


def tick(database: str, name: str) -> dict:
    """One tick of book `name`: the new bars appended to its ledger. Returns {bars, rows, last_bar, drift}."""
    from evo.live.portfolio import member_portfolio
    from evo.live.signals import load_data

    store = open_store(database, write=True)
    book = _book(store, name)
    run = _run_of(store, book)
    market = load_data(run, book.data)
    if book.last_bar is not None:
        last = pd.Timestamp(book.last_bar)
        k = int(market.index.searchsorted(last))
        if k >= market.n_bars or market.index[k] != last or history_hash(market, k) != book.history:
            raise DataError(
                f"paper book {name!r}: the history changed under it: the bars up to {book.last_bar} no longer "
                "hash as they did when they were booked (a restated or shortened file)"
            )
    begin = int(market.index.searchsorted(pd.Timestamp(book.start)))
    before = drift(store, book, run)
    if begin >= market.n_bars:
        return {"bars": 0, "rows": 0, "last_bar": book.last_bar, "drift": before, "breached": []}
    family = run.family()
    done = -1 if book.last_bar is None else int(market.index.searchsorted(pd.Timestamp(book.last_bar)))
    rows = []
    for genome_hash in book.members:
        genes = run.store.genomes_of(run.record.id, genome_hash)[genome_hash]
        pf = member_portfolio(run.config, family, genes, market, (begin, market.n_bars))
        rows += ledger_rows(pf, market, begin, genome_hash, first=max(done + 1, begin))
    last = market.n_bars - 1
    from evo.run import faults

    written = store.append_ledger(book, rows, market.index[last].isoformat(), history_hash(market, last),
                                  before_commit=lambda: faults.crash_if("paper", 0, book.name))
    book = store.get_book(name)
    now = drift(store, book, run)
    was = {d["member"] for d in before if d["drift"]}
    return {"bars": last - max(done + 1, begin) + 1, "rows": written, "last_bar": book.last_bar, "drift": now,
            "breached": [d for d in now if d["drift"] and d["member"] not in was]}


def _run_of(store: Store, book) -> OpenRun:
    from evo.config.schema import stored

    rec = store.run_by_id(book.run_id)
    return OpenRun(store, rec, stored(rec.config, source=f"run {rec.name!r}"))


def ledger_rows(pf, market: Market, begin: int, member: str, first: int) -> list[dict]:
    """The ledger rows of one member's portfolio (trading bars [begin, n)) for bars [first, n)."""
    n = market.n_bars
    cols = market.n_assets
    assets = pf.assets().to_numpy().reshape(n - begin, cols)
    cash = np.asarray(pf.cash()).reshape(n - begin, -1)
    value = np.asarray(pf.value()).reshape(n - begin, -1)
    orders = pf.orders.values
    out = []
    for a, symbol in enumerate(market.symbols):
        g = 0 if cash.shape[1] == 1 else a
        mine = orders[orders["col"] == a]
        for i in range(first, n):
            j = i - begin
            o = mine[mine["idx"] == j]
            fill = float(np.where(o["side"] == 0, o["size"], -o["size"]).sum()) if len(o) else 0.0
            out.append({"member": member, "symbol": symbol, "bar": market.index[i].isoformat(), "fill": fill,
                        "price": float(o["price"][-1]) if len(o) else None, "position": float(assets[j, a]),
                        "cash": float(cash[j, g]), "equity": float(value[j, g])})
    return out


def frame(store: Store, book) -> pd.DataFrame:
    """The book's ledger as a DataFrame."""
    from evo.store.paper import LEDGER_FIELDS

    return pd.DataFrame(store.ledger(book.id), columns=list(LEDGER_FIELDS))


def drift(store: Store, book, run: OpenRun) -> list[dict]:
    """Per member: paper bars, paper and backtest Sharpe ratios per bar, the z-score, and whether it drifts."""
    from evo.view.summary import describe

    led = frame(store, book)
    stored = {e["genome_hash"]: e for e in describe(store, run.name)["pareto"]}
    from evo.engine.inputs import ann_factor
    from evo.live.signals import run_market

    per_year = ann_factor(run_market(run, checked=False).freq)
    z_limit, min_bars = drift_rule()
    out = []
    for genome_hash in book.members:
        mine = led[led["member"] == genome_hash]
        # the member's equity per bar: summed over its symbols (each trades its own cash), or the shared one
        equity = mine.groupby("bar")["equity"].sum() if run.config.evaluation.reducer != "portfolio" else \
            mine.groupby("bar")["equity"].first()
        rets = equity.pct_change().dropna().to_numpy()
        n = len(rets)
        sr = float(np.mean(rets) / np.std(rets, ddof=1)) if n > 1 and np.std(rets, ddof=1) > 0 else math.nan
        bt = stored.get(genome_hash, {}).get("metrics", {}).get("sharpe_ratio")
        bt = math.nan if bt is None else float(bt) / math.sqrt(per_year)
        z = (sr - bt) / math.sqrt((1 + bt * bt / 2) / n) if n > 1 and math.isfinite(sr) and math.isfinite(bt) else math.nan
        out.append({"member": genome_hash, "bars": n, "sharpe_per_bar": sr, "backtest_sharpe_per_bar": bt, "z": z,
                    "drift": bool(n >= min_bars and math.isfinite(z) and z < -z_limit)})
    return out


def unannounced(database: str, name: str, now: list[dict]) -> list[dict]:
    """The drift rows (`tick()["drift"]`) of the members drifting now whose breach has not been announced: a
    breach first judged by a tick that announces nothing (`evo paper tick`, `paper.tick`), or by a served
    tick killed before it announced, is announced by the next served tick."""
    done = set(_book(open_store(database, write=False), name).alarms)
    return [d for d in now if d["drift"] and d["member"] not in done]


def announced(database: str, name: str, now: list[dict]) -> None:
    """Record that the members drifting now have been announced; a member that stopped drifting is
    forgotten, so that its next breach is announced again."""
    store = open_store(database, write=True)
    store.set_alarms(_book(store, name).id, [d["member"] for d in now if d["drift"]])


def full_members(database: str, name: str) -> list[str]:
    """The genome hashes of the book's members, in the book's order."""
    return _book(open_store(database, write=False), name).members


def show(database: str, name: str) -> dict:
    """What `evo paper show` prints: the book, each member's last ledger row and its drift."""
    store = open_store(database, write=False)
    book = _book(store, name)
    run = _run_of(store, book)
    led = frame(store, book)
    n = run.id_length()
    last = [] if led.empty else led[led["bar"] == led["bar"].max()].to_dict("records")
    for r in last:
        r["member"] = r["member"][:n]
    return {"name": book.name, "run": run.name, "members": [h[:n] for h in book.members], "data": book.data,
            "start": book.start, "last_bar": book.last_bar, "ledger_rows": len(led), "last": last,
            "drift": [dict(d, member=d["member"][:n]) for d in drift(store, book, run)]}


def markdown(s: dict) -> str:
    """A paper book as markdown (its Prefect artifact, updated each tick): each member's last row and drift."""
    from evo.view.summary import fmt, money
    from evo.view.text import markdown as md

    lines = [f"# paper book {md(s['name'])} (run {md(s['run'])})", "",
             f"trading from {s['start']}, last bar {s['last_bar'] or '-'}, {s['ledger_rows']} ledger rows", "",
             "| member | symbol | position | cash | equity | paper bars | Sharpe z | drift |", "|---|---|---:|---:|---:|---:|---:|---|"]
    drift_of = {d["member"]: d for d in s["drift"]}
    for r in s["last"]:
        d = drift_of[r["member"]]
        lines.append(f"| {r['member']} | {md(r['symbol'])} | {fmt(r['position'])} | {money(r['cash'])} | "
                     f"{money(r['equity'])} | {d['bars']} | {fmt(d['z'])} | {'yes' if d['drift'] else 'no'} |")
    return "\n".join(lines) + "\n"
