"""Indicator composition with genetic logic: conditions switched on and off by genes, joined by AND or OR."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evo.engine.indicators import Indicator
from evo.strategies.base import STOP_GENES, TRADING, Family, Gene, GeneSpace, Params, as_2d, column, fast_below_slow, switch
from evo.strategies.breakout import previous_channel

#: switch genes of the entry conditions, in kernel order
ENTRY_SWITCHES = ("e_rsi", "e_trend", "e_bb", "e_breakout", "e_volume")
#: switch genes of the exit conditions, in kernel order
EXIT_SWITCHES = ("x_rsi", "x_trend", "x_bb", "x_breakdown")


class Composite(Family):
    """Entry and exit rules evolved as a composition of indicator conditions.

    Indicators (vectorbt, simple moving averages, `ewm=False`):
      rsi    = vbt.RSI(close, rsi_window)
      fast   = vbt.MA(close, fast_window);  slow = vbt.MA(close, slow_window)
      bb     = vbt.BBANDS(close, bb_window, alpha=bb_alpha)   (ddof=0)
               middle = MA(close, bb_window);  lower = middle - bb_alpha * MSTD(close, bb_window)
      dc_high = high.vbt.rolling_max(dc_entry_window).vbt.fshift(1)   (previous bars' highest high)
      dc_low  = low.vbt.rolling_min(dc_exit_window).vbt.fshift(1)     (previous bars' lowest low)
      vol_ma = vbt.MA(volume, vol_window)

    Conditions, on each bar's close (NaN during warm-up compares False):
      entry  e_rsi       rsi < rsi_lower            (oversold)
             e_trend     fast > slow                (trend up)
             e_bb        close < lower              (below the lower Bollinger band)
             e_breakout  close > dc_high            (Donchian breakout)
             e_volume    volume > vol_ma            (volume above its average)
      exit   x_rsi       rsi > rsi_upper            (overbought)
             x_trend     fast < slow                (trend down)
             x_bb        close > middle             (back above the Bollinger mean)
             x_breakdown close < dc_low             (Donchian breakdown)

    A condition is on when its switch gene is 1. `entry_logic` (`exit_logic`)
    0 combines the enabled entry (exit) conditions with AND, 1 with OR:
      entry = AND or OR of the enabled entry conditions; exit likewise.
    With no condition enabled the signal is never true (AND over nothing is
    defined as False here, not True); repair makes sure it does not happen.
    Plus a stop-loss of `sl_stop` and a take-profit of `tp_stop` (fractions of
    the entry price), long only, all-in, one position at a time.

    Repair: fast_window < slow_window (swapped when the optimiser crosses them);
    if no entry condition is on, e_rsi is switched on; if no exit condition is
    on, x_rsi is switched on. Genes of disabled conditions are kept as they are
    (they are inherited material, and harmless).
    """

    name = "composite"
    genes = (
        Gene("rsi_window", "int", 5, 30, doc="RSI look-back in bars", window=True),
        Gene("rsi_lower", "float", 15.0, 45.0, step=0.5, doc="oversold level (e_rsi)"),
        Gene("rsi_upper", "float", 55.0, 85.0, step=0.5, doc="overbought level (x_rsi)"),
        Gene("fast_window", "int", 3, 50, doc="fast MA look-back (e_trend, x_trend)", window=True),
        Gene("slow_window", "int", 20, 200, doc="slow MA look-back (e_trend, x_trend)", window=True),
        Gene("bb_window", "int", 10, 60, doc="Bollinger band look-back (e_bb, x_bb)", window=True),
        Gene("bb_alpha", "float", 1.0, 2.5, step=0.1, doc="lower band = MA - bb_alpha x MSTD (e_bb)"),
        Gene("dc_entry_window", "int", 10, 100, doc="Donchian high of this many previous bars (e_breakout)",
             window=True),
        Gene("dc_exit_window", "int", 5, 50, doc="Donchian low of this many previous bars (x_breakdown)",
             window=True),
        Gene("vol_window", "int", 5, 50, doc="volume MA look-back (e_volume)", window=True),
        switch("e_rsi", "entry condition rsi < rsi_lower on (1) or off (0)"),
        switch("e_trend", "entry condition fast > slow on/off"),
        switch("e_bb", "entry condition close < lower band on/off"),
        switch("e_breakout", "entry condition close > previous Donchian high on/off"),
        switch("e_volume", "entry condition volume > its MA on/off"),
        switch("entry_logic", "0: AND of the enabled entry conditions, 1: OR"),
        switch("x_rsi", "exit condition rsi > rsi_upper on/off"),
        switch("x_trend", "exit condition fast < slow on/off"),
        switch("x_bb", "exit condition close > middle band on/off"),
        switch("x_breakdown", "exit condition close < previous Donchian low on/off"),
        switch("exit_logic", "0: AND of the enabled exit conditions, 1: OR"),
        *STOP_GENES,
    )

    trading = TRADING
    export_signals = '''
def signals(ohlcv):
    """The switched-on entry (exit) conditions, combined with AND (ENTRY_LOGIC 0) or OR (1)."""
    close, volume = ohlcv["close"], ohlcv["volume"]
    rsi = vbt.RSI.run(close, window=RSI_WINDOW).rsi
    fast = vbt.MA.run(close, window=FAST_WINDOW).ma
    slow = vbt.MA.run(close, window=SLOW_WINDOW).ma
    bb = vbt.BBANDS.run(close, window=BB_WINDOW, alpha=BB_ALPHA)
    dc_high = ohlcv["high"].vbt.rolling_max(DC_ENTRY_WINDOW).vbt.fshift(1)
    dc_low = ohlcv["low"].vbt.rolling_min(DC_EXIT_WINDOW).vbt.fshift(1)
    vol_ma = vbt.MA.run(volume, window=VOL_WINDOW).ma
    entry_conditions = [
        (E_RSI, rsi < RSI_LOWER),
        (E_TREND, fast > slow),
        (E_BB, close < bb.lower),
        (E_BREAKOUT, close > dc_high),
        (E_VOLUME, volume > vol_ma),
    ]
    exit_conditions = [
        (X_RSI, rsi > RSI_UPPER),
        (X_TREND, fast < slow),
        (X_BB, close > bb.middle),
        (X_BREAKDOWN, close < dc_low),
    ]
    return combine(entry_conditions, ENTRY_LOGIC, close.index), combine(exit_conditions, EXIT_LOGIC, close.index)


def combine(conditions, use_or, index):
    """AND (use_or 0) or OR (1) of the conditions switched on; never true when none is."""
    out = None
    for on, condition in conditions:
        if on >= 0.5:
            out = condition if out is None else (out | condition) if use_or >= 0.5 else (out & condition)
    return pd.Series(False, index=index) if out is None else out
'''
    indicators = (
        Indicator("rsi", "rsi_window"),
        Indicator("sma", "fast_window"),
        Indicator("sma", "slow_window"),
        Indicator("sma", "bb_window"),
        Indicator("mstd", "bb_window"),
        Indicator("max", "dc_entry_window", source="high"),
        Indicator("min", "dc_exit_window", source="low"),
        Indicator("sma", "vol_window", source="volume"),
    )

    kernel_genes = ("rsi_lower", "rsi_upper", "bb_alpha") + ENTRY_SWITCHES + ("entry_logic",) + EXIT_SWITCHES + (
        "exit_logic",
    )

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        from evo.strategies.nb import composite_signals_nb

        composite_signals_nb(cache.values, cache.rows, genes, arrays["close"], arrays["volume"], entries, exits)

    def _repair(self, X: np.ndarray, space: GeneSpace) -> np.ndarray:
        X = fast_below_slow(X, space)
        for switches in (ENTRY_SWITCHES, EXIT_SWITCHES):
            cols = [space.index(g) for g in switches]
            none = ~(X[:, cols] >= 0.5).any(axis=1)
            X[none, cols[0]] = 1.0
        return X

    def _signals(self, ohlcv: pd.DataFrame, params: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        import vectorbt as vbt

        n_bars = len(ohlcv)
        close, volume = ohlcv["close"], ohlcv["volume"]
        rsi = as_2d(vbt.RSI.run(close, window=column(params, "rsi_window", int).tolist()).rsi, n_bars)
        fast = as_2d(vbt.MA.run(close, window=column(params, "fast_window", int).tolist()).ma, n_bars)
        slow = as_2d(vbt.MA.run(close, window=column(params, "slow_window", int).tolist()).ma, n_bars)
        bb = vbt.BBANDS.run(
            close, window=column(params, "bb_window", int).tolist(), alpha=column(params, "bb_alpha").tolist()
        )
        middle, lower = as_2d(bb.middle, n_bars), as_2d(bb.lower, n_bars)
        dc_high = previous_channel(ohlcv["high"], column(params, "dc_entry_window", int), "max")
        dc_low = previous_channel(ohlcv["low"], column(params, "dc_exit_window", int), "min")
        vol_ma = as_2d(vbt.MA.run(volume, window=column(params, "vol_window", int).tolist()).ma, n_bars)
        c = close.to_numpy(dtype=np.float64)[:, None]
        v = volume.to_numpy(dtype=np.float64)[:, None]

        entry_conditions = (
            rsi < column(params, "rsi_lower"),
            fast > slow,
            c < lower,
            c > dc_high,
            v > vol_ma,
        )
        exit_conditions = (
            rsi > column(params, "rsi_upper"),
            fast < slow,
            c > middle,
            c < dc_low,
        )
        entries = combine(entry_conditions, [column(params, g) >= 0.5 for g in ENTRY_SWITCHES],
                          column(params, "entry_logic") >= 0.5)
        exits = combine(exit_conditions, [column(params, g) >= 0.5 for g in EXIT_SWITCHES],
                        column(params, "exit_logic") >= 0.5)
        return entries, exits


def combine(conditions, on, use_or) -> np.ndarray:
    """AND (use_or False) or OR (True) of the enabled conditions, per strategy (column);
    False for a strategy with no condition enabled.

    conditions: (n_bars, n) booleans each; on: (n,) booleans each; use_or: (n,) booleans."""
    all_on = np.logical_and.reduce([cond | ~sw for cond, sw in zip(conditions, on)])
    any_on = np.logical_or.reduce([cond & sw for cond, sw in zip(conditions, on)])
    enabled = np.logical_or.reduce(on)
    return np.where(use_or, any_on, all_on) & enabled
