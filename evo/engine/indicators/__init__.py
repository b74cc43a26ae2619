"""Indicator kernels shared by the fast engine and the families' signal kernels, and the cache
that computes each indicator once per distinct window for a whole population."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from evo.engine.enums import HLC_KINDS, IndicatorKind

#: an indicator kind's name: a field of evo.engine.enums.IndicatorKind
Kind = Literal[IndicatorKind._fields]


@dataclass(frozen=True)
class Indicator:
    """An indicator a signal kernel reads: `kind` of `source`, with its window taken from `gene`.

    Equal to vectorbt: sma/ema = vbt.MA (ewm False/True), mstd/ema_std = vbt.MSTD (ddof 0),
    rsi/ema_rsi = vbt.RSI, atr = vbt.ATR (ewm True, its default), sma_atr = vbt.ATR(ewm=False),
    max/min = `.vbt.rolling_max/min(window)`.
    """

    kind: Kind
    gene: str
    source: str = "close"

    def __post_init__(self) -> None:
        if self.kind not in IndicatorKind._fields:
            raise ValueError(f"unknown indicator kind {self.kind!r}; known: {', '.join(IndicatorKind._fields)}")

    def group(self) -> tuple[str, str]:
        # indicators of the same kind on the same series share rows (fast and slow MA, say)
        return (self.kind, "hlc" if self.kind in HLC_KINDS else self.source)


@dataclass
class IndicatorCache:
    """values[rows[s, j]] is indicator j of strategy s; one row per distinct (kind, source, window)."""

    values: np.ndarray  # (n_rows, n_bars), C order: a strategy reads whole rows
    rows: np.ndarray  # (n_strategies, n_indicators) int64


def distinct_rows(indicators: Sequence[Indicator], X: np.ndarray, names: Sequence[str]) -> int:
    """How many rows `build` will compute: what the cache costs before it is built."""
    seen: set = set()
    for ind in indicators:
        w = X[:, list(names).index(ind.gene)].astype(np.int64)
        seen.update((ind.group(), int(v)) for v in np.unique(w))
    return len(seen)


def build(
    indicators: Sequence[Indicator], arrays: Mapping[str, np.ndarray], X: np.ndarray, names: Sequence[str]
) -> IndicatorCache:
    """Compute every indicator once per distinct window present in the genomes X."""
    n_bars = len(arrays["close"])
    index: dict[tuple, int] = {}
    rows = np.empty((len(X), len(indicators)), dtype=np.int64)
    for j, ind in enumerate(indicators):
        w = X[:, list(names).index(ind.gene)].astype(np.int64)
        uniq, inverse = np.unique(w, return_inverse=True)
        ids = np.empty(len(uniq), dtype=np.int64)
        for k, v in enumerate(uniq):
            key = (ind.group(), int(v))
            if key not in index:
                index[key] = len(index)
            ids[k] = index[key]
        rows[:, j] = ids[inverse]
    from evo.engine.indicators import nb

    names_of_series = sorted({ind.source for ind in indicators} | {"close"})
    series = np.stack([np.ascontiguousarray(arrays[s], dtype=np.float64) for s in names_of_series])
    sources = {ind.group(): ind.source for ind in indicators}
    keys = sorted(index, key=index.get)
    kinds = np.array([getattr(IndicatorKind, k[0][0]) for k in keys], dtype=np.int64)
    src = np.array([names_of_series.index(sources[k[0]]) for k in keys], dtype=np.int64)
    windows = np.array([k[1] for k in keys], dtype=np.int64)
    values = np.empty((len(index), n_bars), dtype=np.float64)
    hlc = [series[names_of_series.index("close")]] * 3
    if "high" in arrays and "low" in arrays:
        hlc = [np.ascontiguousarray(arrays[f], dtype=np.float64) for f in ("high", "low", "close")]
    from evo.engine.inputs import frozen

    nb.fill_rows_nb(*frozen((kinds, src, windows, series, *hlc)), values)
    return IndicatorCache(values, rows)
