"""Donchian channel breakout with an ATR margin, with stops."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from evo.engine.indicators import Indicator
from evo.strategies.base import STOP_GENES, TRADING, Family, Gene, Params, as_2d, column


class Breakout(Family):
    """Buy a close that clears the previous channel high by an ATR margin; sell below the previous channel low.

    Indicators (vectorbt):
      upper = high.vbt.rolling_max(entry_window).vbt.fshift(1)   (highest high of the entry_window
              bars before this one; NaN until the window is full, and on bar 0)
      lower = low.vbt.rolling_min(exit_window).vbt.fshift(1)     (lowest low of the exit_window bars before)
      atr   = vbt.ATR(high, low, close, atr_window)              (its default ewm=True), on this bar

    Rules, evaluated on each bar's close (NaN during warm-up compares False):
      entry = close > upper + atr_mult * atr
      exit  = close < lower
    plus a stop-loss of `sl_stop` and a take-profit of `tp_stop` (fractions of
    the entry price), long only, all-in, one position at a time.

    Repair: none; the entry and exit channels are independent.
    """

    name = "breakout"
    genes = (
        Gene("entry_window", "int", 10, 100, doc="entry channel: highest high of this many previous bars", window=True),
        Gene("exit_window", "int", 5, 50, doc="exit channel: lowest low of this many previous bars", window=True),
        Gene("atr_window", "int", 5, 50, doc="ATR span", window=True),
        Gene("atr_mult", "float", 0.0, 1.0, step=0.05, doc="entry margin above the channel, in ATRs"),
        *STOP_GENES,
    )

    # unshifted channels: the kernel reads bar i - 1 itself
    trading = TRADING
    export_signals = '''
def signals(ohlcv):
    """Buy when the close clears the previous bars' highest high by ATR_MULT ATRs; sell below their lowest low."""
    close = ohlcv["close"]
    upper = ohlcv["high"].vbt.rolling_max(ENTRY_WINDOW).vbt.fshift(1)
    lower = ohlcv["low"].vbt.rolling_min(EXIT_WINDOW).vbt.fshift(1)
    atr = vbt.ATR.run(ohlcv["high"], ohlcv["low"], close, window=ATR_WINDOW).atr
    entries = close > upper + ATR_MULT * atr
    exits = close < lower
    return entries, exits
'''
    indicators = (
        Indicator("max", "entry_window", source="high"),
        Indicator("min", "exit_window", source="low"),
        Indicator("atr", "atr_window"),
    )

    kernel_genes = ("atr_mult",)

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        from evo.strategies.nb import breakout_signals_nb

        breakout_signals_nb(cache.values, cache.rows, genes, arrays["close"], entries, exits)

    def _signals(self, ohlcv: pd.DataFrame, params: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        import vectorbt as vbt

        n_bars = len(ohlcv)
        close = ohlcv["close"]
        upper = previous_channel(ohlcv["high"], column(params, "entry_window", int), "max")
        lower = previous_channel(ohlcv["low"], column(params, "exit_window", int), "min")
        atr = as_2d(
            vbt.ATR.run(ohlcv["high"], ohlcv["low"], close, window=column(params, "atr_window", int).tolist()).atr,
            n_bars,
        )
        c = close.to_numpy(dtype=np.float64)[:, None]
        entries = c > upper + column(params, "atr_mult") * atr
        exits = c < lower
        return entries, exits


def previous_channel(series: pd.Series, windows: np.ndarray, kind: Literal["max", "min"]) -> np.ndarray:
    """(n_bars, len(windows)): `series.vbt.rolling_max/min(w).vbt.fshift(1)` for each strategy's
    window w, each distinct window computed once."""
    import vectorbt  # noqa: F401  (registers the .vbt accessor)

    out = np.empty((len(series), len(windows)), dtype=np.float64)
    for w in np.unique(windows):
        roll = series.vbt.rolling_max(int(w)) if kind == "max" else series.vbt.rolling_min(int(w))
        out[:, windows == w] = roll.vbt.fshift(1).to_numpy(dtype=np.float64)[:, None]
    return out
