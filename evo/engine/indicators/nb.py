"""Numba kernels on 1-D float64 arrays equal to vectorbt 1.2's default-engine MA, MSTD, RSI, BBANDS,
ATR and rolling max/min (minp=window, adjust=False, ddof=0 defaults), NaNs included; no vectorbt import."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from evo.engine import enums as _enums
from evo.engine.enums import IndicatorKind
from evo.engine.jit import drop_stale_cache

# numba caches this module's kernels keyed on this file only; the indicator kinds are compiled in as constants
drop_stale_cache(__file__, _enums.__file__)

# vectorbt.generic.nb._INV_COND_TOL: when a rolling sum of squares shrinks by more than
# this factor in one step, the running value has lost its precision and is recomputed.
_INV_COND_TOL = np.finfo(np.float64).eps * 1e3


@njit(cache=True)
def _check_window(window: int) -> None:
    # Deliberately not vectorbt's behaviour: for window 0 it returns nonsense (an all-NaN MA,
    # an EWM with alpha=2, rolling max = the input), so a bad gene should fail loudly here.
    if window < 1:
        raise ValueError("window must be >= 1")


@njit(cache=True)
def _ieee_div(a: float, b: float) -> float:
    """a / b with NumPy's semantics (inf or NaN on zero), as vectorbt divides whole arrays.

    Numba's default error model raises ZeroDivisionError on a scalar `/ 0.0` instead."""
    if b == 0.0:
        if a != a or a == 0.0:
            return np.nan
        if (a > 0.0) == (np.copysign(1.0, b) > 0.0):
            return np.inf
        return -np.inf
    return a / b


# ############# moving averages ############# #


@njit(cache=True)
def rolling_mean_nb(a: np.ndarray, window: int) -> np.ndarray:
    """Rolling mean with minp=window, NaNs skipped and counted out of the window.

    This is the default (Rust) engine's arithmetic: one running sum, the new value added
    and then the leaving one subtracted. vectorbt's numba `rolling_mean_1d_nb` instead
    differences a cumulative sum; the two differ by ~1e-12 relative in general, and on a
    stretch of equal values longer than the window the running sum keeps a tiny residual
    where the cumulative difference is exactly 0, which decides whether RSI there is
    NaN (0/0, numba engine) or a finite value (Rust engine, and this kernel)."""
    _check_window(window)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    total = 0.0
    count = 0
    for i in range(n):
        if not np.isnan(a[i]):
            total += a[i]
            count += 1
        if i >= window and not np.isnan(a[i - window]):
            total -= a[i - window]
            count -= 1
        if count < window:
            out[i] = np.nan
        else:
            out[i] = total / count
    return out


@njit(cache=True)
def ewm_mean_nb(a: np.ndarray, span: int) -> np.ndarray:
    """EWM mean with alpha=2/(span+1), minp=span, adjust=False (vectorbt `ewm_mean_1d_nb`)."""
    _check_window(span)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    minp = span
    com = (span - 1) / 2.0
    alpha = 1.0 / (1.0 + com)
    old_wt_factor = 1.0 - alpha
    new_wt = alpha
    weighted_avg = a[0]
    nobs = 0 if np.isnan(weighted_avg) else 1
    out[0] = weighted_avg if nobs >= minp else np.nan
    old_wt = 1.0
    for i in range(1, n):
        cur = a[i]
        is_observation = not np.isnan(cur)
        if is_observation:
            nobs += 1
        if not np.isnan(weighted_avg):
            # A NaN still ages the old weight, so the next observation counts for more.
            old_wt *= old_wt_factor
            if is_observation:
                # skipping equal values keeps a constant series exactly constant
                if weighted_avg != cur:
                    weighted_avg = ((old_wt * weighted_avg) + (new_wt * cur)) / (old_wt + new_wt)
                old_wt = 1.0
        elif is_observation:
            weighted_avg = cur
        out[i] = weighted_avg if nobs >= minp else np.nan
    return out


@njit(cache=True)
def ma_nb(a: np.ndarray, window: int, ewm: bool) -> np.ndarray:
    """`vbt.MA.run(a, window=window, ewm=ewm).ma`: rolling or EWM mean, minp=window, adjust=False."""
    if ewm:
        return ewm_mean_nb(a, window)
    return rolling_mean_nb(a, window)


# ############# moving standard deviation ############# #


@njit(cache=True)
def _add_var_nb(val, nobs, mean, m2, comp, unstable):
    # pandas' Kahan-compensated Welford update, step for step as vectorbt has it.
    if np.isnan(val):
        return nobs, mean, m2, comp, unstable
    prev_m2 = m2
    nobs += 1.0
    prev_mean = mean - comp
    y = val - comp
    delta = y - mean
    comp = delta + mean - y
    mean += delta / nobs
    m2 += (val - prev_mean) * (val - mean)
    if prev_m2 * _INV_COND_TOL > m2:
        unstable = True
    return nobs, mean, m2, comp, unstable


@njit(cache=True)
def _remove_var_nb(val, nobs, mean, m2, comp, unstable):
    if np.isnan(val):
        return nobs, mean, m2, comp, unstable
    prev_m2 = m2
    nobs -= 1.0
    if nobs:
        prev_mean = mean - comp
        y = val - comp
        delta = y - mean
        comp = delta + mean - y
        mean -= delta / nobs
        m2 -= (val - prev_mean) * (val - mean)
        if prev_m2 * _INV_COND_TOL > m2:
            unstable = True
    else:
        mean = 0.0
        m2 = 0.0
        unstable = False
    return nobs, mean, m2, comp, unstable


@njit(cache=True)
def rolling_std_nb(a: np.ndarray, window: int, ddof: int = 0) -> np.ndarray:
    """Rolling std with minp=window (vectorbt `rolling_std_1d_nb`)."""
    _check_window(window)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    mean = 0.0
    m2 = 0.0
    nobs = 0.0
    comp_add = 0.0
    comp_remove = 0.0
    unstable = False
    for i in range(n):
        if i > 0:
            if i >= window:
                nobs, mean, m2, comp_remove, unstable = _remove_var_nb(
                    a[i - window], nobs, mean, m2, comp_remove, unstable
                )
            nobs, mean, m2, comp_add, unstable = _add_var_nb(a[i], nobs, mean, m2, comp_add, unstable)
        if i == 0 or unstable:
            # Rare (first bar, or a large value just left the window and m2 cancelled
            # catastrophically): re-accumulate this window from scratch, as vectorbt does,
            # so the rounding afterwards stays identical to vectorbt's.
            mean = 0.0
            m2 = 0.0
            nobs = 0.0
            comp_add = 0.0
            comp_remove = 0.0
            for j in range(max(0, i - window + 1), i + 1):
                nobs, mean, m2, comp_add, unstable = _add_var_nb(a[j], nobs, mean, m2, comp_add, unstable)
            unstable = False
        if nobs >= window and nobs > ddof:
            # np.sqrt, not math.sqrt: a slightly negative m2 gives NaN as in vectorbt, not an error
            out[i] = np.sqrt(m2 / (nobs - ddof))
        else:
            out[i] = np.nan
    return out


@njit(cache=True)
def ewm_std_nb(a: np.ndarray, span: int, ddof: int = 0) -> np.ndarray:
    """EWM std with minp=span, adjust=False (vectorbt `ewm_std_1d_nb`).

    ddof=0 is the weighted population std (pandas `bias=True`); ddof>=1 scales the
    variance by n_eff / (n_eff - ddof) with n_eff = sum_wt**2 / sum_wt2 (ddof=1 is pandas
    `bias=False`), NaN where that is not positive."""
    _check_window(span)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    minp = span
    com = (span - 1) / 2.0
    alpha = 1.0 / (1.0 + com)
    old_wt_factor = 1.0 - alpha
    new_wt = alpha
    mean = a[0]
    nobs = 0 if np.isnan(mean) else 1
    if nobs >= minp and ddof < 1 and np.isfinite(a[0]):
        out[0] = 0.0
    else:
        out[0] = np.nan
    cov = 0.0
    sum_wt = 1.0
    sum_wt2 = 1.0
    old_wt = 1.0
    for i in range(1, n):
        cur = a[i]
        is_observation = not np.isnan(cur)
        if is_observation:
            nobs += 1
        if not np.isnan(mean):
            sum_wt *= old_wt_factor
            sum_wt2 *= old_wt_factor * old_wt_factor
            old_wt *= old_wt_factor
            if is_observation:
                old_mean = mean
                if mean != cur:
                    mean = ((old_wt * old_mean) + (new_wt * cur)) / (old_wt + new_wt)
                # vectorbt keeps pandas' ewmcov form with x == y; (d * d) reproduces its rounding
                cov = (
                    (old_wt * (cov + ((old_mean - mean) * (old_mean - mean))))
                    + (new_wt * ((cur - mean) * (cur - mean)))
                ) / (old_wt + new_wt)
                sum_wt += new_wt
                sum_wt2 += new_wt * new_wt
                old_wt += new_wt
                sum_wt /= old_wt
                sum_wt2 /= old_wt * old_wt
                old_wt = 1.0
        elif is_observation:
            mean = cur
        if nobs > 0 and nobs >= minp and np.isfinite(mean):
            if ddof == 0:
                var = cov
            else:
                numerator = sum_wt * sum_wt
                denominator = numerator - ddof * sum_wt2
                if denominator > 0.0:
                    var = (numerator / denominator) * cov
                else:
                    var = np.nan
            out[i] = np.sqrt(var)
        else:
            out[i] = np.nan
    return out


@njit(cache=True)
def mstd_nb(a: np.ndarray, window: int, ewm: bool, ddof: int = 0) -> np.ndarray:
    """`vbt.MSTD.run(a, window=window, ewm=ewm, ddof=ddof).mstd`.

    vectorbt's default is ddof=0 (population std) for both MSTD and BBANDS, unlike
    pandas' rolling std (ddof=1); minp=window, adjust=False."""
    if ewm:
        return ewm_std_nb(a, window, ddof)
    return rolling_std_nb(a, window, ddof)


# ############# composite indicators ############# #


@njit(cache=True)
def rsi_nb(close: np.ndarray, window: int, ewm: bool) -> np.ndarray:
    """`vbt.RSI.run(close, window=window, ewm=ewm).rsi`.

    Gains and losses come from `close.diff()` (NaN on the first bar, so the first
    RSI value is at index `window`), each smoothed by `ma_nb`. RSI is 100 when the
    average loss is 0 and NaN when both averages are 0 (a flat window)."""
    n = close.shape[0]
    up = np.empty(n, dtype=np.float64)
    down = np.empty(n, dtype=np.float64)
    if n > 0:
        up[0] = np.nan
        down[0] = np.nan
    for i in range(1, n):
        d = close[i] - close[i - 1]
        # NaN fails both comparisons and stays NaN, as with vectorbt's set_by_mask
        up[i] = 0.0 if d < 0 else d
        down[i] = 0.0 if d > 0 else abs(d)
    roll_up = ma_nb(up, window, ewm)
    roll_down = ma_nb(down, window, ewm)
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        rs = _ieee_div(roll_up[i], roll_down[i])
        out[i] = 100.0 - 100.0 / (1.0 + rs)
    return out


@njit(cache=True)
def bbands_nb(close: np.ndarray, window: int, ewm: bool, alpha: float, ddof: int = 0):
    """`vbt.BBANDS.run(close, window=window, ewm=ewm, alpha=alpha, ddof=ddof)` as
    (middle, upper, lower) = (MA, MA + alpha*MSTD, MA - alpha*MSTD).

    vectorbt's defaults are window=20, ewm=False, alpha=2, ddof=0 (population std)."""
    middle = ma_nb(close, window, ewm)
    mstd = mstd_nb(close, window, ewm, ddof)
    n = close.shape[0]
    upper = np.empty(n, dtype=np.float64)
    lower = np.empty(n, dtype=np.float64)
    for i in range(n):
        upper[i] = middle[i] + alpha * mstd[i]
        lower[i] = middle[i] - alpha * mstd[i]
    return middle, upper, lower


@njit(cache=True)
def true_range_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range: high - low on the first bar, then max(high - low, |high - prev close|, |low - prev close|)."""
    n = high.shape[0]
    tr = np.empty(n, dtype=np.float64)
    for i in range(n):
        m = high[i] - low[i]
        if i > 0:
            tr2 = abs(high[i] - close[i - 1])
            tr3 = abs(low[i] - close[i - 1])
            # Python's max(tr1, tr2, tr3), which vectorbt (numba and Rust) uses: a later
            # NaN never wins a `>` comparison, so a NaN previous close falls back to
            # high - low, while a NaN high or low (tr1 NaN) makes the bar's TR NaN.
            if tr2 > m:
                m = tr2
            if tr3 > m:
                m = tr3
        tr[i] = m
    return tr


@njit(cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int, ewm: bool):
    """`vbt.ATR.run(high, low, close, window=window, ewm=ewm)` as (tr, atr), atr = ma_nb(tr).

    Note vectorbt's ATR defaults to ewm=True (window=14), unlike MA/MSTD/RSI/BBANDS."""
    tr = true_range_nb(high, low, close)
    return tr, ma_nb(tr, window, ewm)


# ############# rolling extremes ############# #


@njit(cache=True)
def _rolling_extreme_nb(a: np.ndarray, window: int, is_max: bool) -> np.ndarray:
    _check_window(window)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    # Monotonic deque of indices (ring buffer): O(T) instead of vectorbt's O(T * window)
    # scan. Popping only strictly dominated values keeps the oldest of equal values at
    # the front, which is the one vectorbt's first-wins scan returns.
    dq = np.empty(window, dtype=np.int64)
    head = 0
    size = 0
    nancnt = 0
    for i in range(n):
        if i >= window:
            if np.isnan(a[i - window]):
                nancnt -= 1
            if size > 0 and dq[head] == i - window:
                head = (head + 1) % window
                size -= 1
        v = a[i]
        if np.isnan(v):
            nancnt += 1
        else:
            while size > 0:
                back = a[dq[(head + size - 1) % window]]
                if (back < v) if is_max else (back > v):
                    size -= 1
                else:
                    break
            dq[(head + size) % window] = i
            size += 1
        # minp=window: a full window with no NaN in it
        if i + 1 < window or nancnt > 0:
            out[i] = np.nan
        else:
            out[i] = a[dq[head]]
    return out


@njit(cache=True)
def rolling_max_nb(a: np.ndarray, window: int) -> np.ndarray:
    """`pd.Series(a).vbt.rolling_max(window)`: default minp=None means minp=window, so
    NaN until the window is full and wherever the window holds a NaN."""
    return _rolling_extreme_nb(a, window, True)


@njit(cache=True)
def rolling_min_nb(a: np.ndarray, window: int) -> np.ndarray:
    """`pd.Series(a).vbt.rolling_min(window)`: default minp=None means minp=window, so
    NaN until the window is full and wherever the window holds a NaN."""
    return _rolling_extreme_nb(a, window, False)


# ############# many windows at once ############# #

@njit(cache=True)
def _one_nb(kind: int, src: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Indicator `kind` (an IndicatorKind code) of `src`, or of high, low and close (HLC_KINDS)."""
    if kind == IndicatorKind.sma or kind == IndicatorKind.ema:
        return ma_nb(src, window, kind == IndicatorKind.ema)
    if kind == IndicatorKind.mstd or kind == IndicatorKind.ema_std:
        return mstd_nb(src, window, kind == IndicatorKind.ema_std, 0)
    if kind == IndicatorKind.rsi or kind == IndicatorKind.ema_rsi:
        return rsi_nb(src, window, kind == IndicatorKind.ema_rsi)
    if kind == IndicatorKind.atr or kind == IndicatorKind.sma_atr:
        return atr_nb(high, low, close, window, kind == IndicatorKind.atr)[1]
    if kind == IndicatorKind.max:
        return rolling_max_nb(src, window)
    return rolling_min_nb(src, window)


@njit(cache=True, parallel=True)
def fill_rows_nb(kinds, sources, windows, series, high, low, close, out):
    """out[r] = indicator kinds[r] of series[sources[r]] with windows[r], rows in parallel."""
    for r in prange(out.shape[0]):
        out[r] = _one_nb(kinds[r], series[sources[r]], high, low, close, windows[r])
