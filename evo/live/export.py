"""`evo export`: one member of a run written out as a standalone Python script that needs only vectorbt,
numpy and pandas: its genes as named constants, its family's signals written out with vectorbt's
indicators (the family's `export_signals`), `Portfolio.from_signals` with the run's settings, and the
metric table's metrics by their vectorbt definitions (read from evo.config.metrics itself).
"""

from __future__ import annotations

import ast
import inspect
import math
from pathlib import Path

from evo.config.errors import FamilyError
from evo.live.members import Member, OpenRun


def metric_definitions() -> dict[str, str]:
    """Each metric's vectorbt definition as source (`pf.total_return()`), read from the metric table's
    declaration: the reference lambdas are the one place a metric's meaning is written."""
    from evo.config import metrics

    out = {}
    for node in ast.walk(ast.parse(inspect.getsource(metrics))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Metric":
            name, lam = node.args[0].value, node.args[4]
            assert isinstance(lam, ast.Lambda) and lam.args.args[0].arg == "pf", name
            out[name] = ast.unparse(lam.body)
    assert list(out) == list(metrics.METRICS), "every metric of the table, in order"
    return out


def _literal(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return f'float("{v}")'
    return repr(v)


def trading_constants(run: OpenRun, family, genes: dict, n_assets: int) -> dict:
    """How the member trades, as vectorbt's from_signals arguments: direction, size, size type, stops, trailing."""
    from evo.engine.enums import Direction, SizeType

    ev = run.config.evaluation
    shared = ev.reducer == "portfolio" and n_assets > 1
    space = family.space()
    p = family.sim_params(space.encode([genes]), space.names, ev.init_cash, n_assets if shared else 0)[0]
    return {
        "direction": Direction._fields[int(p["direction"])].lower(),
        "size": float(p["size"]),
        "size_type": SizeType._fields[int(p["size_type"])].lower(),
        "sl_stop": float(p["sl_stop"]),
        "tp_stop": float(p["tp_stop"]),
        "sl_trail": bool(p["sl_trail"]),
    }


def script(run: OpenRun, member: Member) -> str:
    """The exported script's source."""
    from evo.live.signals import run_market
    from evo.run.context import metric_directions

    family = run.family()
    template = type(family).export_signals
    if not template:
        raise FamilyError(
            f"family {run.config.strategy.family!r} cannot be exported: it declares no `export_signals` (its "
            "signals written out with vectorbt, numpy and pandas; see evo.strategies.Family)"
        )
    market = run_market(run, checked=False)  # its symbols and bar duration
    ev, data = run.config.evaluation, run.config.data
    genes = "\n".join(f"{g.upper()} = {_literal(v)}" for g, v in member.genes.items())
    settings = {
        "SYMBOLS": list(market.symbols),
        "DATA_START": data.start,
        "FREQ": str(market.freq),
        "INIT_CASH": float(ev.init_cash),
        "FEES": float(ev.fees),
        "SLIPPAGE": float(ev.slippage),
        "OHLC_STOPS": bool(ev.ohlc_stops),
        "REDUCER": ev.reducer,
        "DIRECTIONS": {m.name: metric_directions(run.config).get(m.name, m.direction) for m in _table()},
    }
    lines = "\n".join(f"{k} = {_literal(v)}" for k, v in settings.items())
    trading = trading_constants(run, family, member.genes, market.n_assets)
    lines += "\n\n# how it trades: its direction, size and stops genes as vectorbt's from_signals arguments\nTRADING = {\n"
    lines += "".join(f"    {k!r}: {_literal(v)},\n" for k, v in trading.items()) + "}"
    metrics = "\n".join(f'    "{k}": lambda pf: {v},' for k, v in metric_definitions().items())
    return TEMPLATE.format(
        id=member.id, genome_hash=member.genome_hash, run=run.name, family=run.config.strategy.family,
        genes=genes, settings=lines, signals=template.strip("\n"), metrics=metrics,
    )


def _table():
    from evo.config.metrics import TABLE

    return TABLE


def export(run: OpenRun, member: Member, out: Path) -> Path:
    """Write the member's script to `out` (its folder is created)."""
    text = script(run, member)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


TEMPLATE = '''#!/usr/bin/env python3
"""Member {id} of the evo run {run!r} (family {family}), written out to run with vectorbt alone.

    python THIS_FILE DATA.csv... [--start ISO] [--end ISO] --json

DATA: one OHLCV file per symbol (CSV or Parquet, named by its symbol, or one file with a `symbol` column),
the run's symbols at least. The signals see every bar up to --end (inclusive); the portfolio trades from
--start (its first bar at or after it). Prints {{"metrics": {{name: value}}, "position": units held after
the last bar}} (a number, or one per symbol for several): the metrics are evo's metric table, each by its
vectorbt definition below. Genome hash {genome_hash}.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import vectorbt as vbt

# the member's genes
{genes}

# how the run traded: market, costs, stops, and how several symbols combine
{settings}


{signals}


METRICS = {{
{metrics}
}}


def load(paths, end=None):
    """The symbols' OHLCV frames on their common bars (float, lower-case columns, UTC-naive times)."""
    frames = {{}}
    for path in map(Path, paths):
        raw = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
        raw.columns = [str(c).strip().lower() for c in raw.columns]
        when = next((c for c in ("date", "datetime", "timestamp", "time") if c in raw.columns), raw.columns[0])
        raw.index = pd.DatetimeIndex(pd.to_datetime(raw.pop(when)))
        if raw.index.tz is not None:
            raw.index = raw.index.tz_convert("UTC").tz_localize(None)
        parts = raw.groupby("symbol") if "symbol" in raw.columns else [(path.stem, raw)]
        for symbol, part in parts:
            frames[str(symbol)] = part[["open", "high", "low", "close", "volume"]].astype(float).sort_index()
    missing = [s for s in SYMBOLS if s not in frames]
    if missing:
        raise SystemExit(f"error: the data lacks the symbols {{missing}}")
    index = None
    for s in SYMBOLS:
        f = frames[s]
        if DATA_START:
            f = f[f.index >= pd.Timestamp(DATA_START)]
        if end:
            f = f[f.index <= pd.Timestamp(end)]
        frames[s] = f
        index = f.index if index is None else index.intersection(f.index)
    return {{s: frames[s].loc[index] for s in SYMBOLS}}


def portfolio(frames, start=None):
    """vectorbt's Portfolio.from_signals of the member on every symbol, one column each, trading from `start`."""
    first = next(iter(frames.values()))
    begin = int(first.index.searchsorted(pd.Timestamp(start))) if start else 0
    signals_ = {{s: signals(f) for s, f in frames.items()}}

    def wide(pick):
        return pd.DataFrame({{s: pick(s) for s in SYMBOLS}}).iloc[begin:]

    shared = REDUCER == "portfolio" and len(SYMBOLS) > 1
    ohlc = {{k: wide(lambda s: frames[s][k]) for k in ("open", "high", "low")}} if OHLC_STOPS else {{}}
    return vbt.Portfolio.from_signals(
        wide(lambda s: frames[s]["close"]), wide(lambda s: signals_[s][0]), wide(lambda s: signals_[s][1]),
        init_cash=INIT_CASH, fees=FEES, slippage=SLIPPAGE, freq=pd.Timedelta(FREQ), **TRADING,
        upon_opposite_entry="reversereduce", **ohlc, **(dict(group_by=True, cash_sharing=True) if shared else {{}}),
    )


def metrics(pf):
    """Each metric; several symbols traded apart are combined by the run's reducer (mean, median, worst)."""
    out = {{}}
    for name, definition in METRICS.items():
        values = np.asarray(definition(pf), dtype=np.float64).reshape(-1)
        if len(values) == 1:
            out[name] = float(values[0])
        elif REDUCER == "median":
            out[name] = float(np.median(values))
        elif REDUCER == "worst" and DIRECTIONS[name] == "max":
            out[name] = float(values.min())
        elif REDUCER == "worst" and DIRECTIONS[name] == "min":
            out[name] = float(values.max())
        else:
            out[name] = float(values.mean())
    return out


def plain(v):
    """JSON as evo writes it: NaN as null, infinities as "inf" and "-inf"."""
    if isinstance(v, dict):
        return {{k: plain(x) for k, x in v.items()}}
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", help="OHLCV files, one per symbol (or one with a symbol column)")
    parser.add_argument("--start", help="trade from this bar (the signals still see every bar before it)")
    parser.add_argument("--end", help="the last bar (inclusive)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    pf = portfolio(load(args.data, args.end), args.start)
    held = pf.assets().iloc[-1]
    position = float(held.iloc[0]) if len(SYMBOLS) == 1 else {{s: float(held[s]) for s in SYMBOLS}}
    result = {{"metrics": metrics(pf), "position": position}}
    if args.json:
        print(json.dumps(plain(result)))
    else:
        for name, value in result["metrics"].items():
            print(f"{{name:>24}}  {{value:.6g}}")
        print(f"{{'position':>24}}  {{position}}")


if __name__ == "__main__":
    main()
'''
