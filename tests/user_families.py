"""User-defined families for the tests: `evo.strategies.get("tests.user_families:SmaCross")`.

SmaCross is correct (its numba kernel equals its vectorbt reference bit for bit); BrokenSmaCross has
a kernel that differs from its reference on some bars, so the parity check must refuse it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit, prange

from evo.engine.indicators import Indicator
from evo.strategies import Family, Gene
from evo.strategies.base import as_2d, column


@njit(cache=True)
def sma_cross_row_nb(fast, slow, entries, exits, broken):
    """Cross of fast over slow: `fast > slow` now and NOT `fast > slow` on the bar before.

    broken=True writes "fast > slow on the bar before" as `not (fast <= slow)`, which is not the
    same where the previous slow MA is still NaN (warm-up): on the first bar of the slow MA the
    correct rule enters if fast > slow, the broken one does not."""
    for i in range(entries.shape[0]):
        was_above = False
        was_below = False
        if i > 0:
            if broken:
                was_above = not (fast[i - 1] <= slow[i - 1])
            else:
                was_above = fast[i - 1] > slow[i - 1]
            was_below = fast[i - 1] < slow[i - 1]
        entries[i] = fast[i] > slow[i] and not was_above
        exits[i] = fast[i] < slow[i] and not was_below


@njit(cache=True, parallel=True)
def sma_cross_signals_nb(values, rows, entries, exits, broken):
    for s in prange(entries.shape[0]):
        sma_cross_row_nb(values[rows[s, 0]], values[rows[s, 1]], entries[s], exits[s], broken)


class SmaCross(Family):
    """Enter when the fast SMA crosses above the slow SMA, exit when it crosses below.

    Indicators: fast = vbt.MA(close, fast_window), slow = vbt.MA(close, slow_window).
    Rules (NaN compares False):
      entry = fast > slow  and  not (fast > slow on the previous bar)
      exit  = fast < slow  and  not (fast < slow on the previous bar)
    so the first bar with both MAs defined enters if fast > slow. Stops sl_stop / tp_stop.
    Repair: fast_window < slow_window.
    """

    name = "sma_cross"
    genes = (
        Gene("fast_window", "int", 3, 30, doc="fast SMA", window=True),
        Gene("slow_window", "int", 20, 120, doc="slow SMA", window=True),
        Gene("sl_stop", "float", 0.01, 0.2, step=0.005),
        Gene("tp_stop", "float", 0.01, 0.4, step=0.005),
    )
    indicators = (Indicator("sma", "fast_window"), Indicator("sma", "slow_window"))
    trading = frozenset({"direction"})  # long, short or both: the crosses trade either way

    _broken = False

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        sma_cross_signals_nb(cache.values, cache.rows, entries, exits, self._broken)

    def _repair(self, X, space):
        f, s = space.index("fast_window"), space.index("slow_window")
        lo, hi = np.minimum(X[:, f], X[:, s]), np.maximum(X[:, f], X[:, s])
        hi = np.where(lo == hi, hi + 1, hi)
        X[:, f], X[:, s] = lo, hi
        return X

    def _signals(self, ohlcv: pd.DataFrame, params) -> tuple[np.ndarray, np.ndarray]:
        import vectorbt as vbt

        n = len(ohlcv)
        fast = as_2d(vbt.MA.run(ohlcv["close"], window=column(params, "fast_window", int).tolist()).ma, n)
        slow = as_2d(vbt.MA.run(ohlcv["close"], window=column(params, "slow_window", int).tolist()).ma, n)
        above, below = fast > slow, fast < slow
        was_above = np.vstack([np.zeros((1, above.shape[1]), bool), above[:-1]])
        was_below = np.vstack([np.zeros((1, below.shape[1]), bool), below[:-1]])
        return above & ~was_above, below & ~was_below


class BrokenSmaCross(SmaCross):
    """SmaCross whose kernel tests the previous bar with `not <=` where the reference uses `>`
    (equal except on NaN): it misses the entry on the first bar of the slow MA."""

    name = "broken_sma_cross"
    _broken = True


class NoKernelSmaCross(SmaCross):
    """A family with a reference but no fast kernel: refused (the fast engine is the default)."""

    name = "no_kernel_sma_cross"
    _fast_signals = Family._fast_signals


class NotAFamily:
    genes = SmaCross.genes


#: a script that marks the page if it ever runs: the report must show it as text
PAYLOAD = "<script>document.body.dataset.pwned=1</script>"
PAYLOAD_IMG = "<img src=x onerror=document.body.dataset.pwned=1>"


class HostileSmaCross(SmaCross):
    """SmaCross with one more gene whose name is a script (its kernel never reads it): a report of it must
    show the name as text."""

    name = "hostile_sma_cross"
    genes = (*SmaCross.genes, Gene(PAYLOAD, "float", 0.0, 1.0, step=0.5))
