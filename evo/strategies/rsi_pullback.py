"""RSI pullback in an uptrend, with a volume filter and stops."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evo.engine.indicators import Indicator
from evo.strategies.base import STOP_GENES, TRADING, Family, Gene, GeneSpace, Params, as_2d, column, fast_below_slow


class RsiPullback(Family):
    """Buy oversold dips while the trend is up; sell when overbought or the trend turns.

    Indicators (vectorbt, simple moving averages, `ewm=False`):
      rsi   = vbt.RSI(close, rsi_window)
      fast  = vbt.MA(close, fast_window);  slow = vbt.MA(close, slow_window)
      vol_ma = vbt.MA(volume, vol_window)

    Rules, evaluated on each bar's close (NaN during warm-up compares False):
      entry = rsi < rsi_lower  and  fast > slow  and  volume >= vol_mult * vol_ma
      exit  = rsi > rsi_upper  or   fast < slow
    plus a stop-loss of `sl_stop` and a take-profit of `tp_stop` (fractions of
    the entry price), long only, all-in, one position at a time.

    Repair: fast_window < slow_window (swapped when the optimiser crosses them).
    """

    name = "rsi_pullback"
    genes = (
        Gene("rsi_window", "int", 5, 30, doc="RSI look-back in bars", window=True),
        Gene("rsi_lower", "float", 10.0, 45.0, step=0.5, doc="oversold level: entry below it"),
        Gene("rsi_upper", "float", 55.0, 90.0, step=0.5, doc="overbought level: exit above it"),
        Gene("fast_window", "int", 3, 50, doc="fast MA look-back", window=True),
        Gene("slow_window", "int", 20, 200, doc="slow MA look-back", window=True),
        Gene("vol_window", "int", 5, 50, doc="volume MA look-back", window=True),
        Gene("vol_mult", "float", 0.0, 2.0, step=0.05, doc="volume must be >= vol_mult x its MA (0 = off)"),
        *STOP_GENES,
    )

    trading = TRADING
    export_signals = '''
def signals(ohlcv):
    """Buy an RSI dip in an up-trend on enough volume; sell when RSI is overbought or the trend turns."""
    close, volume = ohlcv["close"], ohlcv["volume"]
    rsi = vbt.RSI.run(close, window=RSI_WINDOW).rsi
    fast = vbt.MA.run(close, window=FAST_WINDOW).ma
    slow = vbt.MA.run(close, window=SLOW_WINDOW).ma
    vol_ma = vbt.MA.run(volume, window=VOL_WINDOW).ma
    entries = (rsi < RSI_LOWER) & (fast > slow) & (volume >= VOL_MULT * vol_ma)
    exits = (rsi > RSI_UPPER) | (fast < slow)
    return entries, exits
'''
    indicators = (
        Indicator("rsi", "rsi_window"),
        Indicator("sma", "fast_window"),
        Indicator("sma", "slow_window"),
        Indicator("sma", "vol_window", source="volume"),
    )

    kernel_genes = ("rsi_lower", "rsi_upper", "vol_mult")
    fused = True

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        from evo.strategies.nb import rsi_pullback_signals_nb

        rsi_pullback_signals_nb(cache.values, cache.rows, genes, arrays["volume"], entries, exits)

    def _fast_metrics(self, cache, genes, arrays, prices, params, sim, n_threads) -> np.ndarray:
        from evo.strategies.nb import rsi_pullback_metrics_nb

        return rsi_pullback_metrics_nb(cache.values, cache.rows, genes, arrays["volume"], prices, params, sim,
                                       n_threads)

    def _repair(self, X: np.ndarray, space: GeneSpace) -> np.ndarray:
        return fast_below_slow(X, space)

    def _signals(self, ohlcv: pd.DataFrame, params: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        import vectorbt as vbt

        n_bars = len(ohlcv)
        close, volume = ohlcv["close"], ohlcv["volume"]
        # vectorbt's indicator cache computes each distinct window once per call
        rsi = as_2d(vbt.RSI.run(close, window=column(params, "rsi_window", int).tolist()).rsi, n_bars)
        fast = as_2d(vbt.MA.run(close, window=column(params, "fast_window", int).tolist()).ma, n_bars)
        slow = as_2d(vbt.MA.run(close, window=column(params, "slow_window", int).tolist()).ma, n_bars)
        vol_ma = as_2d(vbt.MA.run(volume, window=column(params, "vol_window", int).tolist()).ma, n_bars)
        vol = volume.to_numpy(dtype=np.float64)[:, None]

        entries = (
            (rsi < column(params, "rsi_lower"))
            & (fast > slow)
            & (vol >= column(params, "vol_mult") * vol_ma)
        )
        exits = (rsi > column(params, "rsi_upper")) | (fast < slow)
        return entries, exits
