"""The cost of the verdict's statistics (`evo bench --verdict`): CSCV at its budgeted size, and the
end-of-run pass that gives CSCV every phenotype's block sums, against the evaluation it repeats."""

from __future__ import annotations

import statistics
import time

import numpy as np

from evo.flows.bench.engine import _genomes, _market


def verdict_benchmark(n: int = 1000, n_bars: int = 87_600, phenotypes: int = 20_000, blocks: int = 16,
                      repeats: int = 3, family: str = "rsi_pullback", seed: int = 0) -> dict:
    """Seconds of CSCV over `phenotypes` phenotypes' block sums at `blocks` blocks; and per strategy on
    `n_bars` bars, the seconds of the block-sum pass (evo.engine.fast.block_sums_of) beside those of the
    full fitness evaluation (evo.engine.fast.evaluate_arrays) of the same n genomes."""
    import numba

    from evo.config import EvaluationConfig
    from evo.engine import fast, indicators
    from evo.oos import cscv

    rng = np.random.default_rng(seed)
    sums = cscv.block_sums(rng.normal(0, 0.01, (phenotypes, blocks * 40)), blocks)
    cscv.cscv(sums[:4])  # compile or load the kernel
    cscv_t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cscv.cscv(sums)
        cscv_t.append(time.perf_counter() - t0)

    market = _market(n_bars)
    fam, space, X = _genomes(family, n, seed)
    settings = EvaluationConfig(engine="fast")
    arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
    edges = cscv.block_edges(n_bars, blocks)
    fast.evaluate_arrays(arrays, fam, X[:4], space.names, settings, market.freq)
    fast.block_sums_of(arrays, fam, X[:4], space.names, settings, market.freq, None, edges)
    # Monte Carlo risk of one Pareto member, as validation runs it: the stationary bootstrap of its bar
    # returns on the training window and on the holdout (the defaults: a 30 % holdout, 1000 resamples of
    # mean block 20); the cost depends on the bars, not the values, so the market's own returns serve
    from evo.config.schema import ValidationConfig
    from evo.oos import bootstrap

    v = ValidationConfig()
    close = np.asarray(arrays["close"], dtype=np.float64)
    returns = np.diff(close) / close[:-1]
    cut = int(len(returns) * (1 - v.holdout))
    windows = (returns[:cut], returns[cut:])
    bootstrap.monte_carlo(returns[:100], block=v.bootstrap_block, reps=10, ruin=v.ruin_drawdown, seed=0)
    mc_t = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for w in windows:
            bootstrap.monte_carlo(w, block=v.bootstrap_block, reps=v.monte_carlo_resamples, ruin=v.ruin_drawdown,
                                  seed=r)
        mc_t.append(time.perf_counter() - t0)
    eval_t, sums_t, kept_t = [], [], []
    for _ in range(repeats):  # interleaved: the shared machine's load hits both alike
        indicators.ROWS.clear()  # the evaluation computes its indicators from nothing
        t0 = time.perf_counter()
        fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq)
        eval_t.append(time.perf_counter() - t0)
        # at the end of a run the process has kept the rows evolution computed (within
        # EVO_INDICATOR_CACHE_MB): the block sums then compute no indicator
        t0 = time.perf_counter()
        fast.block_sums_of(arrays, fam, X, space.names, settings, market.freq, None, edges)
        kept_t.append(time.perf_counter() - t0)
        indicators.ROWS.clear()
        t0 = time.perf_counter()
        fast.block_sums_of(arrays, fam, X, space.names, settings, market.freq, None, edges)
        sums_t.append(time.perf_counter() - t0)
    return {
        "benchmark": "verdict cost",
        "threads": numba.get_num_threads(),
        "repeats": repeats,
        "cscv_phenotypes": phenotypes,
        "cscv_blocks": blocks,
        "cscv_splits": int(len(cscv.splits(blocks))),
        "cscv_seconds": statistics.median(cscv_t),
        "strategies": n,
        "bars": n_bars,
        "evaluation_ms_per_strategy": 1e3 * statistics.median(eval_t) / n,
        "block_sums_ms_per_strategy": 1e3 * statistics.median(sums_t) / n,
        "block_sums_over_evaluation": statistics.median(sums_t) / statistics.median(eval_t),
        "block_sums_kept_rows_ms_per_strategy": 1e3 * statistics.median(kept_t) / n,
        "block_sums_kept_rows_over_evaluation": statistics.median(kept_t) / statistics.median(eval_t),
        "monte_carlo_resamples": v.monte_carlo_resamples,
        "monte_carlo_seconds_per_member": statistics.median(mc_t),
    }
