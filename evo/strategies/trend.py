"""Trend following: an EMA crossover regime, entered only when volatility is low enough, with stops."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evo.engine.indicators import Indicator
from evo.strategies.base import STOP_GENES, TRADING, Family, Gene, GeneSpace, Params, as_2d, column, fast_below_slow


class Trend(Family):
    """Hold while the fast EMA is above the slow EMA, but only buy when ATR is small relative to price.

    Indicators (vectorbt):
      fast = vbt.MA(close, fast_window, ewm=True);  slow = vbt.MA(close, slow_window, ewm=True)
      atr  = vbt.ATR(high, low, close, atr_window)   (its default ewm=True: EMA of true range, span atr_window)

    Rules, evaluated on each bar's close (NaN during warm-up compares False):
      entry = fast > slow  and  atr <= max_vol * close      (ATR at most max_vol of the price)
      exit  = fast < slow
    plus a stop-loss of `sl_stop` and a take-profit of `tp_stop` (fractions of
    the entry price), long only, all-in, one position at a time. The entry is a
    state, not a cross: after a stop the position is re-entered on the next bar
    on which both entry conditions still hold.

    Repair: fast_window < slow_window (swapped when the optimiser crosses them).
    """

    name = "trend"
    genes = (
        Gene("fast_window", "int", 3, 50, doc="fast EMA span", window=True),
        Gene("slow_window", "int", 20, 200, doc="slow EMA span", window=True),
        Gene("atr_window", "int", 5, 50, doc="ATR span", window=True),
        Gene("max_vol", "float", 0.005, 0.1, step=0.001, doc="entry only while ATR <= max_vol x close"),
        *STOP_GENES,
    )

    trading = TRADING
    export_signals = '''
def signals(ohlcv):
    """Hold while the fast EMA is above the slow EMA; buy only while ATR is at most MAX_VOL of the close."""
    close = ohlcv["close"]
    fast = vbt.MA.run(close, window=FAST_WINDOW, ewm=True).ma
    slow = vbt.MA.run(close, window=SLOW_WINDOW, ewm=True).ma
    atr = vbt.ATR.run(ohlcv["high"], ohlcv["low"], close, window=ATR_WINDOW).atr
    entries = (fast > slow) & (atr <= MAX_VOL * close)
    exits = fast < slow
    return entries, exits
'''
    indicators = (
        Indicator("ema", "fast_window"),
        Indicator("ema", "slow_window"),
        Indicator("atr", "atr_window"),
    )

    kernel_genes = ("max_vol",)

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        from evo.strategies.nb import trend_signals_nb

        trend_signals_nb(cache.values, cache.rows, genes, arrays["close"], entries, exits)

    def _repair(self, X: np.ndarray, space: GeneSpace) -> np.ndarray:
        return fast_below_slow(X, space)

    def _signals(self, ohlcv: pd.DataFrame, params: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        import vectorbt as vbt

        n_bars = len(ohlcv)
        close = ohlcv["close"]
        fast = as_2d(vbt.MA.run(close, window=column(params, "fast_window", int).tolist(), ewm=True).ma, n_bars)
        slow = as_2d(vbt.MA.run(close, window=column(params, "slow_window", int).tolist(), ewm=True).ma, n_bars)
        atr = as_2d(
            vbt.ATR.run(ohlcv["high"], ohlcv["low"], close, window=column(params, "atr_window", int).tolist()).atr,
            n_bars,
        )
        c = close.to_numpy(dtype=np.float64)[:, None]
        entries = (fast > slow) & (atr <= column(params, "max_vol") * c)
        exits = fast < slow
        return entries, exits
