"""One member trading market data with its run's settings, as vectorbt's own `Portfolio`: the one
builder behind `evo signals`, the notebook's `portfolio()` and the checks of an exported script."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from evo.market import Market


def member_portfolio(config, family, genes: dict, market: Market, window: tuple[int, int] | None = None):
    """vectorbt's `Portfolio.from_signals` of one member on every symbol of `market`, one column per symbol
    (named by the symbol), with the run's fees, slippage, cash, OHLC stops and the member's direction,
    size, stops and trailing. window = (start, stop): the signals see the bars before `stop`, the
    portfolio trades [start, stop) (evo's windows). With the reducer 'portfolio' the symbols share one
    cash account, equally allocated by value, as the run scored them; otherwise each column trades on
    its own with the whole initial cash."""
    from evo.engine import vbt

    ev = config.evaluation
    n_assets = market.n_assets
    start, stop = window if window is not None else (0, market.n_bars)
    shared = ev.reducer == "portfolio" and n_assets > 1
    space = family.space()
    records = family.sim_params(space.encode([genes]), space.names, ev.init_cash, n_assets if shared else 0)
    frames = [market.frame(a).iloc[:stop] for a in range(n_assets)]
    signals = [family.reference_signals(f, genes) for f in frames]
    index = market.index[start:stop]

    def wide(arrays: Sequence[np.ndarray]) -> pd.DataFrame:
        return pd.DataFrame(np.column_stack(arrays)[start:], index=index, columns=list(market.symbols))

    close = wide([f["close"].to_numpy() for f in frames])
    extra = dict(group_by=True, cash_sharing=True) if shared else {}
    return vbt.portfolio(
        close, wide([e.to_numpy() for e, _ in signals]), wide([x.to_numpy() for _, x in signals]),
        init_cash=ev.init_cash, fees=ev.fees, slippage=ev.slippage, freq=market.freq,
        params=np.repeat(records, n_assets),
        ohlc={f: wide([fr[f].to_numpy() for fr in frames]) for f in ("open", "high", "low")} if ev.ohlc_stops else None,
        **extra,
    )
