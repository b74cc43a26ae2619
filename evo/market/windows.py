"""Where a market's bars split: the holdout and the walk-forward folds, as bar indices [start, stop).

A strategy scored on a window sees the bars before `stop` for its indicators and trades only in
[start, stop), so an out-of-sample score never uses a bar after the window and never the in-sample
trades.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evo.market.load import DataError, Market, timestamp

MIN_OOS_BARS = 20


def split_index(market: Market, validation) -> int | None:
    """First out-of-sample bar, or None without a holdout."""
    n = market.n_bars
    if validation.holdout_start:
        return int(market.index.searchsorted(timestamp(validation.holdout_start)))
    if validation.holdout:
        return n - int(round(n * validation.holdout))
    return None


def windows(market: Market, validation) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(in-sample window, out-of-sample window or None)."""
    split = split_index(market, validation)
    if split is None:
        return (0, market.n_bars), None
    return (0, split), (split, market.n_bars)


def check(market: Market, validation, max_window: int, min_after_warmup: int = 50) -> None:
    """Both windows must be usable: the in-sample one longer than the largest window, the holdout not empty."""
    (s0, s1), oos = windows(market, validation)
    need = max_window + min_after_warmup
    if s1 - s0 < need:
        raise DataError(
            f"the in-sample part has {s1 - s0} bars (of {market.n_bars}); the largest window ({max_window}) needs "
            f"at least {need}. Shrink validation.holdout, narrow the window bounds or give more data."
        )
    if oos is not None and oos[1] - oos[0] < MIN_OOS_BARS:
        raise DataError(
            f"the holdout has {oos[1] - oos[0]} bars; it needs at least {MIN_OOS_BARS} "
            f"(validation.holdout / holdout_start leave too little)"
        )


@dataclass(frozen=True)
class Fold:
    number: int
    train: tuple[int, int]
    test: tuple[int, int]


def folds(market: Market, validation) -> list[Fold]:
    """Walk-forward folds: the holdout part cut into `folds` consecutive test windows.

    rolling: each fold trains on as many bars as the first, just before its test window;
    anchored: each fold trains on every bar before its test window.
    """
    split = split_index(market, validation)
    if split is None:
        raise DataError("walk-forward needs validation.holdout (or holdout_start): the part cut into test windows")
    k = validation.walk_forward.folds
    edges = np.linspace(split, market.n_bars, k + 1).round().astype(int)
    out = []
    for i in range(k):
        test = (int(edges[i]), int(edges[i + 1]))
        if test[1] - test[0] < MIN_OOS_BARS:
            raise DataError(f"walk-forward fold {i + 1} has a {test[1] - test[0]}-bar test window; use fewer folds")
        start = 0 if validation.walk_forward.mode == "anchored" else test[0] - split
        out.append(Fold(i + 1, (start, test[0]), test))
    return out


