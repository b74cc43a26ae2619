"""Mean reversion: buy a close below the lower Bollinger band while RSI is oversold, with stops."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evo.engine.indicators import Indicator
from evo.strategies.base import STOP_GENES, TRADING, Family, Gene, Params, as_2d, column


class MeanReversion(Family):
    """Buy a stretch below the lower Bollinger band when RSI confirms; sell back at the mean.

    Indicators (vectorbt, simple moving averages, `ewm=False`):
      bb  = vbt.BBANDS(close, bb_window, alpha=bb_alpha)   (ddof=0: population std)
            middle = MA(close, bb_window);  lower = middle - bb_alpha * MSTD(close, bb_window)
      rsi = vbt.RSI(close, rsi_window)

    Rules, evaluated on each bar's close (NaN during warm-up compares False):
      entry = close < lower  and  rsi < rsi_lower
      exit  = close > middle  or  rsi > rsi_upper
    plus a stop-loss of `sl_stop` and a take-profit of `tp_stop` (fractions of
    the entry price), long only, all-in, one position at a time.

    Repair: none. The RSI levels have disjoint default ranges, and bounds that let
    rsi_lower exceed rsi_upper still give a well-defined strategy.
    """

    name = "mean_reversion"
    genes = (
        Gene("bb_window", "int", 10, 60, doc="Bollinger band look-back (MA and MSTD)", window=True),
        Gene("bb_alpha", "float", 1.0, 2.5, step=0.1, doc="lower band = MA - bb_alpha x MSTD"),
        Gene("rsi_window", "int", 5, 30, doc="RSI look-back in bars", window=True),
        Gene("rsi_lower", "float", 20.0, 50.0, step=0.5, doc="oversold level: entry below it"),
        Gene("rsi_upper", "float", 50.0, 85.0, step=0.5, doc="overbought level: exit above it"),
        *STOP_GENES,
    )

    trading = TRADING
    export_signals = '''
def signals(ohlcv):
    """Buy below the lower Bollinger band while RSI is oversold; sell above the middle band or when RSI is high."""
    close = ohlcv["close"]
    bb = vbt.BBANDS.run(close, window=BB_WINDOW, alpha=BB_ALPHA)
    rsi = vbt.RSI.run(close, window=RSI_WINDOW).rsi
    entries = (close < bb.lower) & (rsi < RSI_LOWER)
    exits = (close > bb.middle) | (rsi > RSI_UPPER)
    return entries, exits
'''
    indicators = (
        Indicator("sma", "bb_window"),
        Indicator("mstd", "bb_window"),
        Indicator("rsi", "rsi_window"),
    )

    kernel_genes = ("bb_alpha", "rsi_lower", "rsi_upper")

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        from evo.strategies.nb import mean_reversion_signals_nb

        mean_reversion_signals_nb(cache.values, cache.rows, genes, arrays["close"], entries, exits)

    def _signals(self, ohlcv: pd.DataFrame, params: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        import vectorbt as vbt

        n_bars = len(ohlcv)
        close = ohlcv["close"]
        bb = vbt.BBANDS.run(
            close, window=column(params, "bb_window", int).tolist(), alpha=column(params, "bb_alpha").tolist()
        )
        middle, lower = as_2d(bb.middle, n_bars), as_2d(bb.lower, n_bars)
        rsi = as_2d(vbt.RSI.run(close, window=column(params, "rsi_window", int).tolist()).rsi, n_bars)
        c = close.to_numpy(dtype=np.float64)[:, None]
        entries = (c < lower) & (rsi < column(params, "rsi_lower"))
        exits = (c > middle) | (rsi > column(params, "rsi_upper"))
        return entries, exits
