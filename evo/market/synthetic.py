"""A seeded synthetic market: regime-switching geometric Brownian motion with intrabar ranges and volume."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evo.config import SyntheticData
from evo.market.load import timestamp

#: (drift per bar in units of sigma, sigma multiplier) of the bull, bear and choppy regimes
_REGIMES = np.array([[0.04, 0.8], [-0.05, 1.3], [0.0, 1.0]])
_STAY = 0.995  # regimes last ~200 bars on average


def synthetic_frames(spec: SyntheticData) -> dict[str, pd.DataFrame]:
    """Regime-switching geometric Brownian motion with intrabar ranges and volume.

    Deterministic for a given spec; every symbol gets its own regime path.
    """
    rng = np.random.default_rng(spec.seed)
    index = pd.date_range(timestamp(spec.start), periods=spec.n_bars, freq=pd.Timedelta(spec.freq), name="time")
    base_sigma = 0.01 * np.sqrt(pd.Timedelta(spec.freq) / pd.Timedelta("1h"))
    frames = {}
    for sym in spec.symbols:
        n = spec.n_bars
        u = rng.random(n)
        jump = rng.integers(0, 3, n)
        regime = np.empty(n, dtype=np.int64)
        r = 2
        for t in range(n):
            if u[t] > _STAY:
                r = int(jump[t])
            regime[t] = r
        drift, mult = _REGIMES[regime, 0], _REGIMES[regime, 1]
        sigma = base_sigma * mult
        ret = drift * sigma + sigma * rng.standard_normal(n) - 0.5 * sigma**2
        close = 100.0 * np.exp(np.cumsum(ret))
        gap = sigma * 0.1 * rng.standard_normal(n)
        open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(gap)
        wick = np.abs(rng.standard_normal((2, n))) * sigma * 0.5
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        volume = np.round(1e4 * np.exp(0.3 * rng.standard_normal(n)) * (1 + 20 * np.abs(ret)), 2)
        frames[sym] = pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
        )
    return frames
