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
    """Compute every indicator once per distinct window present in the genomes X, reusing the rows this
    process computed before on the same series (see RowStore)."""
    from evo.engine.indicators import nb
    from evo.engine.inputs import frozen

    keys_of: list[tuple[list[tuple], np.ndarray]] = []  # per indicator: its distinct keys, each genome's
    wanted: dict[tuple, None] = {}
    for ind in indicators:
        w = X[:, list(names).index(ind.gene)].astype(np.int64)
        uniq, inverse = np.unique(w, return_inverse=True)
        keys = [(ind.group(), int(v)) for v in uniq]
        wanted.update(dict.fromkeys(keys))
        keys_of.append((keys, inverse))
    names_of_series = sorted({ind.source for ind in indicators} | {"close"})
    series = np.stack([np.ascontiguousarray(arrays[s], dtype=np.float64) for s in names_of_series])
    hlc = [series[names_of_series.index("close")]] * 3
    if "high" in arrays and "low" in arrays:
        hlc = [np.ascontiguousarray(arrays[f], dtype=np.float64) for f in ("high", "low", "close")]
    sources = {ind.group(): ind.source for ind in indicators}

    def fill(keys: list[tuple], out: np.ndarray) -> None:
        kinds = np.array([getattr(IndicatorKind, k[0][0]) for k in keys], dtype=np.int64)
        src = np.array([names_of_series.index(sources[k[0]]) for k in keys], dtype=np.int64)
        windows = np.array([k[1] for k in keys], dtype=np.int64)
        nb.fill_rows_nb(*frozen((kinds, src, windows, series, *hlc)), out)

    values, index = ROWS.rows(list(wanted), (names_of_series, series, hlc), fill)
    rows = np.empty((len(X), len(indicators)), dtype=np.int64)
    for j, (keys, inverse) in enumerate(keys_of):
        rows[:, j] = np.array([index[k] for k in keys], dtype=np.int64)[inverse]
    return IndicatorCache(values, rows)


class RowStore:
    """Indicator rows kept between evaluations in this process, per series (a market window's bars).

    A run evaluates its genomes on the same bars generation after generation, and the windows its
    genomes carry repeat: kept rows are reused, and only the windows not met yet are computed. A row's
    values depend only on its kind, window and series, so a kept row equals a new one bit for bit.
    Series are told apart by their content (a hash of every array the rows read). The rows of all
    series together stay within EVO_INDICATOR_CACHE_MB; a series whose rows would not fit is computed
    as if nothing were kept, and the series used least recently make room first."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._blocks: dict[bytes, _Block] = {}  # least recently used first

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()

    def rows(self, keys: list[tuple], series, fill) -> tuple[np.ndarray, dict[tuple, int]]:
        """(values, index): values[index[k]] is row k for every key in `keys`; fill(keys, out) computes
        rows into out."""
        from evo.config.settings import settings

        n_bars = series[1].shape[1]
        budget = int(settings().indicator_cache_mb * 2**20)
        row = 8 * n_bars
        if len(keys) * row > budget:  # not even this evaluation's rows fit: keep nothing
            alone = _Block(n_bars)
            alone.add(keys, fill, len(keys))
            return alone.values, alone.index
        tag = _content(series)
        with self._lock:
            block = self._blocks.pop(tag, None) or _Block(n_bars)
            missing = [k for k in keys if k not in block.index]
            if missing:
                if block.nbytes(len(missing)) > budget:  # this series alone would outgrow it: start again
                    block, missing = _Block(n_bars), list(keys)
                kept = sum(b.nbytes() for b in self._blocks.values())
                while self._blocks and kept + block.nbytes(len(missing)) > budget:
                    kept -= self._blocks.pop(next(iter(self._blocks))).nbytes()
                block.add(missing, fill, budget // row)
            self._blocks[tag] = block  # most recently used last
            return block.values, block.index


class _Block:
    """One series' rows: values[:len(index)] filled, index from key to row."""

    def __init__(self, n_bars: int) -> None:
        self.values = np.empty((0, n_bars))
        self.index: dict[tuple, int] = {}

    def nbytes(self, more: int = 0) -> int:
        """Bytes it holds (its array, filled or not), or would hold with `more` rows added."""
        return max(len(self.index) + more, len(self.values)) * 8 * self.values.shape[1]

    def add(self, keys: list[tuple], fill, most: int) -> None:
        """Compute `keys` into new rows; the array grows (doubling, to at most `most` rows) when full.
        Rows handed out before stay valid: they keep the old array alive and are never written again."""
        used = len(self.index)
        if used + len(keys) > len(self.values):
            grown = np.empty((max(used + len(keys), min(2 * len(self.values), most)), self.values.shape[1]))
            grown[:used] = self.values[:used]
            self.values = grown
        fill(keys, self.values[used:used + len(keys)])
        self.index.update((k, used + i) for i, k in enumerate(keys))


def _content(series) -> bytes:
    """A digest of the series the rows are computed from: their names and every value."""
    import hashlib

    names, stacked, hlc = series
    h = hashlib.blake2b(repr((names, stacked.shape)).encode(), digest_size=16)
    for a in (stacked, *hlc):
        h.update(np.ascontiguousarray(a).view(np.uint8))
    return h.digest()


#: this process's kept indicator rows
ROWS = RowStore()
