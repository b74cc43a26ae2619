"""The probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, Lopez de Prado & Zhu, "The Probability of Backtest Overfitting", Journal of
Computational Finance (2017). The training window is cut into S contiguous blocks; each of the
C(S, S/2) ways to pick half of them is an in-sample set, the other half its out-of-sample set. On each
split the phenotype with the best in-sample Sharpe ratio is chosen and its Sharpe ratio's relative rank
among all phenotypes out of sample is turned into a logit; PBO is the share of splits whose logit is
<= 0 (the in-sample best is at or below the out-of-sample median).

A Sharpe ratio over any union of blocks follows exactly from the blocks' sums, sums of squares and
counts of bar returns, so the phenotypes' returns are read once and kept as S x 3 numbers each.
Evaluation computes them in its own pass and the store keeps them rounded to float32 (evo.store.blocks):
the ranking (which phenotype is chosen, and its relative rank) is over those values, and the chosen
phenotypes' in- and out-of-sample Sharpe ratios (the degradation, the probability of loss) come from
their exact sums (`cscv(..., exact=...)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from evo.engine.inputs import block_edges  # noqa: F401  (the blocks CSCV cuts, as evaluation sums them)


def block_sums(returns: np.ndarray, n_blocks: int) -> np.ndarray:
    """(sum, sum of squares, count) of each block of each row of `returns` ([..., bars]): shape [..., S, 3].
    A NaN return (no value to return from) counts as a flat bar, 0."""
    from evo.engine.fast import sums_by_block

    return sums_by_block(returns, block_edges(np.shape(returns)[-1], n_blocks))


def sharpe_from_sums(s, q, n):
    """Per-bar Sharpe ratio (ddof 1) of returns with sum s, sum of squares q and count n.

    A series without variance (a strategy flat on those bars) has Sharpe ratio 0: it neither ranks
    above nor below the others by luck of a zero division."""
    s, q, n = np.broadcast_arrays(np.asarray(s, float), np.asarray(q, float), np.asarray(n, float))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = (q - s * mean) / (n - 1)
        out = mean / np.sqrt(var)
    return np.where((var > 0) & np.isfinite(out), out, 0.0)


def splits(n_blocks: int) -> np.ndarray:
    """The in-sample block sets of CSCV, one row per split: C(S, S/2) rows of S booleans."""
    if n_blocks % 2:
        raise ValueError(f"cscv needs an even number of blocks, got {n_blocks}")
    rows = list(combinations(range(n_blocks), n_blocks // 2))
    m = np.zeros((len(rows), n_blocks), dtype=bool)
    for i, c in enumerate(rows):
        m[i, list(c)] = True
    return m


def _reduce(sr: np.ndarray, reducer: str) -> np.ndarray:
    """Per-symbol Sharpe ratios [..., N, A] to one per phenotype, as the run reduces its fitness."""
    if sr.shape[-1] == 1:
        return sr[..., 0]
    if reducer == "median":
        return np.median(sr, axis=-1)
    if reducer == "worst":
        return sr.min(axis=-1)
    return sr.mean(axis=-1)


@dataclass
class CSCV:
    """The outcome of CSCV: per split, the chosen phenotype, its in- and out-of-sample Sharpe ratio
    (per bar) and the logit of its out-of-sample relative rank."""

    chosen: np.ndarray
    is_sharpe: np.ndarray
    oos_sharpe: np.ndarray
    logits: np.ndarray
    n_phenotypes: int
    n_blocks: int
    exact_sums: int = 0  # phenotypes whose exact sums were computed (rounded ones whose order was in doubt, the chosen)

    @property
    def pbo(self) -> float:
        """The probability of backtest overfitting: the share of splits with logit <= 0."""
        return float(np.mean(self.logits <= 0))

    @property
    def degradation(self) -> float:
        """Slope of the least-squares line of out-of-sample on in-sample Sharpe ratio over the splits
        (the paper's performance degradation; negative: a better in-sample pick does worse after)."""
        x, y = self.is_sharpe, self.oos_sharpe
        dx = x - x.mean()
        denom = float(dx @ dx)
        return float(dx @ (y - y.mean()) / denom) if denom > 0 else math.nan

    @property
    def prob_loss(self) -> float:
        """The share of splits whose chosen phenotype loses out of sample (Sharpe ratio < 0)."""
        return float(np.mean(self.oos_sharpe < 0))


#: how far a Sharpe ratio (per bar, x) from stored block sums (evo.store.blocks: sums rounded to float32,
#: within u = 2^-24 of themselves; sums of squares to 16 significant bits, within v = 2^-16) may be from
#: the exact one: c0 (1 + |x|)^3 + c1 |x| (1 + x^2), for (c0, c1) = ROUNDING_SLACK. A half of N bars with
#: sum S, sum of squares Q and V = Q - S^2 / N has dx/dS = (1 + x^2 N / (N - 1)) / (N sd) and dx/dQ =
#: -x / (2 V); rounding moves S by at most u times the sum of its blocks' |sums|, which is at most
#: sqrt(N Q) (Cauchy-Schwarz), and Q by at most v Q; with Q / V = 1 + x^2 (N - 1) / N, x moves by at most
#: u sqrt(1 + x^2) (1 + 1.01 x^2) + v |x| (1 + x^2) / 2. These constants allow 16 and 8 times that.
ROUNDING_SLACK = np.array([2.0 ** -20, 2.0 ** -14])


def cscv(sums: np.ndarray, reducer: str = "mean", exact=None, is_exact=None) -> CSCV:
    """CSCV over phenotypes' block sums [N, A, S, 3] (A symbols; the portfolio reducer passes its one
    series as A = 1), every phenotype over the same bars. Ties in the out-of-sample ranking share their
    average rank; the relative rank is rank / (N + 1), as in the paper.

    exact: None (`sums` are exact), or a function of phenotype indices giving their exact sums [k, A, S,
    3] where `sums` are rounded to float32 (as stored), except the rows `is_exact` marks. A split whose
    outcome rounding could have changed (evo.oos.nb.cscv_nb: a rival within the rounding's slack in
    sample, or enough phenotypes within it out of sample to move the rank across the median) is done
    again with the exact sums of the phenotypes involved, until none is left; the chosen phenotypes'
    in- and out-of-sample Sharpe ratios then come from their exact sums. PBO, the chosen phenotypes,
    the degradation and the probability of loss are then those of the exact sums; a logit may still
    differ from the exact one by the few ranks of phenotypes whose Sharpe ratios agree to about 6
    significant digits, where that cannot move it across the median."""
    from evo.oos import nb

    sums = np.array(sums, dtype=np.float64)
    if sums.ndim == 3:
        sums = sums[:, None]
    n, _, s_blocks, _ = sums.shape
    if n < 2:
        raise ValueError("cscv needs at least two phenotypes")
    in_sets = np.array([np.flatnonzero(row) for row in splits(s_blocks)], dtype=np.int64)
    counts = np.ascontiguousarray(sums[0, 0, :, 2])
    k = len(in_sets)
    chosen, is_sr, oos_sr, logits = np.empty(k, dtype=np.int64), np.empty(k), np.empty(k), np.empty(k)
    known = np.ones(n, dtype=bool) if exact is None else (
        np.zeros(n, dtype=bool) if is_exact is None else np.array(is_exact, dtype=bool))
    todo = np.arange(k)
    while len(todo):
        sq = np.ascontiguousarray(sums[..., :2].transpose(3, 1, 2, 0))  # [2, A, S, N]: phenotypes innermost
        part = np.zeros(len(todo), dtype=nb.split_dt)
        involved = np.zeros(n, dtype=np.bool_)
        nb.cscv_nb(sq, counts, np.ascontiguousarray(in_sets[todo]), nb.REDUCERS[reducer], known, ROUNDING_SLACK,
                   part, involved)
        for whole, field in zip((chosen, is_sr, oos_sr, logits), ("chosen", "is_sr", "oos_sr", "logit")):
            whole[todo] = part[field]
        unsure = part["unsure"]
        need = np.flatnonzero(involved & ~known)
        if not len(need):
            break
        sums[need] = np.asarray(exact(need), dtype=np.float64)
        known[need] = True
        todo = todo[unsure]
    if exact is not None:
        rows, at = np.unique(chosen, return_inverse=True)
        fresh = rows[~known[rows]]
        if len(fresh):
            sums[fresh] = np.asarray(exact(fresh), dtype=np.float64)
        known[fresh] = True
        is_sr, oos_sr = chosen_sharpe(sums[rows][at], in_sets, reducer)
    computed = 0 if exact is None else int(known.sum()) - (0 if is_exact is None else int(np.sum(is_exact)))
    return CSCV(chosen, is_sr, oos_sr, logits, n, s_blocks, computed)


def chosen_sharpe(sums: np.ndarray, in_sets: np.ndarray, reducer: str) -> tuple[np.ndarray, np.ndarray]:
    """(in-sample, out-of-sample) reduced Sharpe ratios of split k's phenotype, whose sums [A, S, 3] are
    sums[k], on split k's in-sample blocks in_sets[k] and on the others."""
    inside = np.zeros((len(in_sets), sums.shape[2]), dtype=bool)
    np.put_along_axis(inside, in_sets, True, axis=1)
    out = []
    for mask in (inside, ~inside):
        part = np.einsum("kasc,ks->kac", sums, mask.astype(np.float64))
        out.append(_reduce(sharpe_from_sums(part[..., 0], part[..., 1], part[..., 2]), reducer))
    return out[0], out[1]


def summary(result: CSCV, ann_factor: float, max_points: int = 400, bins: int = 20) -> dict:
    """The verdict's PBO fields and what the report draws: a histogram of the logits and (at most
    max_points, evenly spaced) of the splits' in- and out-of-sample annualised Sharpe ratios."""
    k = math.sqrt(ann_factor)
    counts, edges = np.histogram(result.logits, bins=bins)
    pick = np.unique(np.linspace(0, len(result.logits) - 1, min(max_points, len(result.logits))).astype(int))
    return {
        "pbo": result.pbo,
        "pbo_degradation": result.degradation,
        "pbo_prob_loss": result.prob_loss,
        "pbo_detail": {
            "phenotypes": result.n_phenotypes,
            "blocks": result.n_blocks,
            "splits": int(len(result.logits)),
            "logit_histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
            "is_sharpe": (result.is_sharpe[pick] * k).tolist(),
            "oos_sharpe": (result.oos_sharpe[pick] * k).tolist(),
            "method": "CSCV (Bailey, Borwein, Lopez de Prado & Zhu 2017)",
        },
    }
