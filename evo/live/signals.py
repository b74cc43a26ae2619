"""What a member holds after the last bar of fresh market data, what the last bar ordered, and the stop
levels to place for the next bar: `evo signals`.

The member trades every bar given, from the first, with its run's settings (vectorbt's
`Portfolio.from_signals`, evo.live.portfolio), so the position is the one a backtest over those bars
ends with. Stop levels follow the engine's rules (evo.engine.nb): set from the close of the bar the
position was opened on, a trailing stop-loss from the highest high (lowest low short) of the bars after
it (the close when the run's stops use close prices only).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from evo.config.errors import DataError
from evo.live.members import Member, OpenRun
from evo.market import Market


def load_data(run: OpenRun, paths: Sequence[str]) -> Market:
    """The given files as a market of the run's symbols (others are ignored), with the run's bar
    frequency and start; refused in one line when a run's symbol is missing."""
    from evo.market.load import build_market, load_market

    if is_loader(paths):
        given = call_loader(paths[0], run.config.data.freq)
    else:
        cfg = run.config.data.model_copy(update={"paths": list(paths), "synthetic": None, "end": None})
        given = load_market(cfg)
    symbols = run_symbols(run)
    missing = [s for s in symbols if s not in given.symbols]
    if missing:
        raise DataError(
            f"the data holds the symbols {list(given.symbols)} but run {run.name!r} trades {list(symbols)}: "
            f"{missing} missing (a file per symbol, named by it, or a 'symbol' column)"
        )
    frames = {s: given.frame(given.symbols.index(s)) for s in symbols}
    return build_market(frames, run.config.data.freq or str(given.freq), str(paths[0]))


LOADER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_loader(paths: Sequence[str]) -> bool:
    """True when the data is one `module:function` loader rather than files (a file of that name wins)."""
    from pathlib import Path

    return len(paths) == 1 and bool(LOADER.match(paths[0])) and not Path(paths[0]).exists()


def call_loader(spec: str, freq: str | None) -> Market:
    """The market a `module:function` loader returns ({symbol: OHLCV DataFrame}, the latest bars); the module
    is imported as a user family's is (the import path, else the current folder)."""
    from evo.market.load import build_market, loaded_frames
    from evo.strategies import _import

    module, _, name = spec.partition(":")
    try:
        fn = getattr(_import(module), name)
        obj = fn()
    except Exception as e:
        raise DataError(f"data loader {spec!r} failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    return build_market(loaded_frames(obj, spec), freq, spec)


def run_symbols(run: OpenRun) -> tuple[str, ...]:
    """The symbols the run was evolved on (its data as it is now: newer bars may have been appended)."""
    return run_market(run, checked=False).symbols


def run_market(run: OpenRun, checked: bool = True) -> Market:
    """The market the run's config describes, loaded once per process; `checked`: refused unless it is the
    one the run was evolved on (its fingerprint), as bar indices into it (the windows) require."""
    from evo.market import get_market

    return get_market(run.config.data, run.record.data_fingerprint if checked else None)


def largest_window(family, genes: dict) -> int:
    """The member's longest look-back, in bars."""
    return int(max((genes[g.name] for g in family.all_genes if g.window and g.name in genes), default=1))


def signals(run: OpenRun, members: Sequence[Member], market: Market) -> list[dict]:
    """One row per member and symbol: position after the last bar, the last bar's order, next bar's stops."""
    family = run.family()
    for m in members:
        need = largest_window(family, m.genes)
        if market.n_bars <= need:
            raise DataError(
                f"member {m.id}: the data has {market.n_bars} bars; its largest window ({need} bars) needs more"
            )
    from evo.live.portfolio import member_portfolio

    rows = []
    for m in members:
        pf = member_portfolio(run.config, family, m.genes, market)
        rows += _rows(run, m, pf, market)
    return rows


def _rows(run: OpenRun, m: Member, pf, market: Market) -> list[dict]:
    ev = run.config.evaluation
    space = run.family().space()
    p = run.family().sim_params(space.encode([m.genes]), space.names, ev.init_cash)[0]
    assets = pf.assets().to_numpy().reshape(market.n_bars, market.n_assets)
    orders = pf.orders.values
    last = market.n_bars - 1
    out = []
    for a, symbol in enumerate(market.symbols):
        held = assets[:, a]
        pos = float(held[last])
        o = orders[(orders["col"] == a) & (orders["idx"] == last)]
        signed = np.where(o["side"] == 0, o["size"], -o["size"])  # OrderSide: 0 buy, 1 sell
        row = {
            "member": m.id,
            "genome_hash": m.genome_hash,
            "symbol": symbol,
            "bar": market.index[last].isoformat(),
            "position": pos,
            "side": "long" if pos > 0 else "short" if pos < 0 else "flat",
            "order": float(signed.sum()) if len(o) else 0.0,
            "order_price": float(o["price"][-1]) if len(o) else None,
            "close": float(market.close[last, a]),
            "entry_price": None,
            "entry_bar": None,
            "bars_held": 0,
            "stop_loss": None,
            "take_profit": None,
            "trailing": bool(p["sl_trail"]) and not math.isnan(p["sl_stop"]),
        }
        if pos != 0:
            sign = np.sign(held)
            changed = np.flatnonzero(sign != np.concatenate([[0.0], sign[:-1]]))
            entry = int(changed[-1])  # the bar the position was opened (or reversed) on
            fills = orders[(orders["col"] == a) & (orders["idx"] == entry)]
            ref = float(market.close[entry, a])  # the engine's StopEntryPrice.Close
            sl_ref = ref
            if row["trailing"]:
                hi = market.high if ev.ohlc_stops else market.close
                lo = market.low if ev.ohlc_stops else market.close
                after = slice(entry + 1, last + 1)
                if after.start <= last:
                    sl_ref = max(ref, float(hi[after, a].max())) if pos > 0 else min(ref, float(lo[after, a].min()))
            sl, tp = float(p["sl_stop"]), float(p["tp_stop"])
            row.update(
                entry_price=float(fills["price"][-1]) if len(fills) else None,
                entry_bar=market.index[entry].isoformat(),
                bars_held=last - entry,
                stop_loss=None if math.isnan(sl) else sl_ref * (1 - sl) if pos > 0 else sl_ref * (1 + sl),
                take_profit=None if math.isnan(tp) else ref * (1 + tp) if pos > 0 else ref * (1 - tp),
            )
        out.append(row)
    return out
