"""Scoring strategies on bars evolution never saw: the holdout (and the verdict), and walk-forward folds."""

from __future__ import annotations

import numpy as np

from evo.config import codec
from evo.config.metrics import METRICS, SLOT
from evo.oos import bootstrap, cscv, robustness, verdict
from evo.oos import walkforward as wf
from evo.run import process
from evo.run.context import RunContext, evaluation_key, oos_evaluation_key
from evo.run.generation import evaluate, lookup, merge
from evo.search.algorithm import decode_checkpoint, pareto_mask
from evo.search.neighbours import genome_rng, neighbours_of
from evo.search.population import Population
from evo.store import EvaluationRows


def score(ctx: RunContext, pop: Population, window: tuple[int, int], key: str) -> Population:
    """`pop` (genes and hashes) with its metrics on a window: from the store where it holds them under
    `key`, else evaluated (`evaluated` marks those) and stored under `key`."""
    pop = lookup(ctx, pop, key)
    space = process.space_for(ctx)
    unseen = np.flatnonzero(pop.evaluated)
    pop = merge(pop, [evaluate(ctx, space.decode(pop.X[unseen]), window)] if len(unseen) else [])
    new = pop[pop.evaluated]
    process.store_for(ctx).save_evaluations(ctx.config.strategy.family, key, EvaluationRows(
        new.hash.tolist(), space.genes_json(new.X), METRICS, new.metrics, new.per_asset.tolist(), new.trades.tolist()))
    return pop


def genomes(ctx: RunContext, X: np.ndarray) -> Population:
    """Genomes as a population: genes and hashes."""
    return Population.of(X, hash=process.space_for(ctx).hashes(X) if len(X) else [])


def asset_returns(ctx: RunContext, x: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Per-bar returns of one genome over a window, averaged over the symbols (equal weights), or its
    portfolio's (reducer 'portfolio')."""
    from evo.engine import fast

    market = process.market_for(ctx)
    family = process.family_for(ctx)
    names = process.space_for(ctx).names
    if ctx.config.evaluation.reducer == "portfolio":  # the returns fitness was computed from
        return fast.portfolio_returns_of([market.arrays(a) for a in range(market.n_assets)], family, x, names,
                                         ctx.config.evaluation, market.freq, window)
    return np.mean(
        [fast.returns_of(market.arrays(a), family, x, names, ctx.config.evaluation, market.freq, window)
         for a in range(market.n_assets)],
        axis=0,
    )


def buy_and_hold_returns(ctx: RunContext, window: tuple[int, int]) -> np.ndarray:
    """Per-bar returns of buying at the window's first close and holding: an equal-weight portfolio
    (rebalanced every bar) over several symbols; the first bar returns 0."""
    market = process.market_for(ctx)
    start, stop = window
    out = []
    for a in range(market.n_assets):
        close = np.asarray(market.arrays(a)["close"][start:stop], dtype=np.float64)
        out.append(np.concatenate([[0.0], close[1:] / close[:-1] - 1]))
    return np.mean(out, axis=0)


def phenotype_sums(ctx: RunContext, X: np.ndarray, window: tuple[int, int], n_blocks: int) -> np.ndarray:
    """Block sums [len(X), series, blocks, 3] (sum, sum of squares, count) of genomes' returns on a window,
    per symbol (the portfolio reducer: its one series), for CSCV: the fast engine's evaluation pass, as
    evolution computes them (evo.engine.evaluate with edges)."""
    from evo.engine import evaluate as engine_evaluate

    market = process.market_for(ctx)
    edges = cscv.block_edges(window[1] - window[0], n_blocks)
    settings = ctx.config.evaluation.model_copy(update={"engine": "fast"})
    ev = engine_evaluate(market, process.family_for(ctx), process.space_for(ctx).decode(X), settings, window,
                         edges=edges)
    out = np.empty(ev.blocks.shape[:-1] + (3,))
    out[..., :2] = ev.blocks
    out[..., 2] = np.diff(edges)
    return out


def pbo(ctx: RunContext) -> dict:
    """The probability of backtest overfitting over every distinct behaviour the run evaluated on its
    training window (evo.oos.cscv), with what the report draws; null fields with a reason when PBO is
    off, the run tried fewer than two behaviours or its window is too short for the blocks.

    Each behaviour's block sums are the ones its evaluation stored (evo.store.blocks, float32); those of
    behaviours evaluated without them (before they were stored, or by the vectorbt engine) are computed
    here, and so are the exact sums of the behaviours CSCV needs them of (evo.oos.cscv.cscv)."""
    from evo.engine import fast
    from evo.store import blocks

    n_blocks = ctx.config.validation.cscv_blocks
    empty = {"pbo": None, "pbo_degradation": None, "pbo_prob_loss": None}
    if n_blocks == 0:
        return {**empty, "pbo_detail": {"reason": "validation.cscv_blocks = 0: PBO not computed"}}
    store = process.store_for(ctx)
    trials = store.trial_blocks(ctx.run_id)
    if len(trials) < 2:
        return {**empty, "pbo_detail": {"reason": f"{len(trials)} distinct behaviour(s) tried: CSCV needs two"}}
    n_bars = ctx.window[1] - ctx.window[0]
    if n_bars < 2 * n_blocks:
        return {**empty, "pbo_detail": {"reason": f"a training window shorter than {2 * n_blocks} bars"}}
    market = process.market_for(ctx)
    n_series = 1 if ctx.config.evaluation.reducer == "portfolio" else market.n_assets
    ids = [i for i, _ in trials]

    def exact(rows) -> np.ndarray:
        genes = store.individual_genes([ids[r] for r in rows])
        return phenotype_sums(ctx, process.space_for(ctx).encode(genes), ctx.window, n_blocks)

    sums = np.empty((len(trials), n_series, n_blocks, 3))
    sums[..., 2] = np.diff(cscv.block_edges(n_bars, n_blocks))
    # a blob for another number of blocks or symbols (another config on the same data) is computed again
    sums[..., :2], ok = blocks.decode([b or b"" for _, b in trials], n_series, n_blocks)
    missing = np.flatnonzero(~ok)
    if len(missing):
        sums[missing] = exact(missing)
    is_exact = np.zeros(len(trials), dtype=bool)
    is_exact[missing] = True
    result = cscv.cscv(sums, ctx.config.evaluation.reducer, exact=exact, is_exact=is_exact)
    out = cscv.summary(result, fast.ann_factor(market.freq))
    # behaviours whose sums were computed here: stored without them, or in doubt after rounding
    out["pbo_detail"]["computed_at_end"] = len(missing) + result.exact_sums
    return out


def reality_check(ctx: RunContext, holdout_returns: list[np.ndarray] | None) -> dict:
    """Hansen's SPA test of the Pareto set's holdout returns (asset_returns of each member) against
    buy-and-hold's, seeded by the run."""
    v = ctx.config.validation
    nulls = {"spa_pvalue": None, "spa_pvalue_lower": None, "spa_pvalue_upper": None}
    if not holdout_returns or ctx.oos_window[1] - ctx.oos_window[0] < 3:
        return nulls
    return bootstrap.spa(np.nan_to_num(np.stack(holdout_returns, axis=1)), buy_and_hold_returns(ctx, ctx.oos_window),
                         block=v.bootstrap_block, reps=v.monte_carlo_resamples,
                         seed=np.random.default_rng([ctx.config.seed, 1]))


def member_seed(ctx: RunContext, genome_hash: str, purpose: int) -> np.random.Generator:
    """The generator of one statistic of one member: seeded by the run's seed, the statistic and the
    genome (not its place in the Pareto set, which the display may order otherwise)."""
    return genome_rng(ctx.config.seed, genome_hash, purpose)


def monte_carlo(ctx: RunContext, X: np.ndarray, hashes, holdout_returns: list[np.ndarray] | None) -> list[dict]:
    """Monte Carlo risk (evo.oos.bootstrap.monte_carlo) of each Pareto member on the holdout (its
    returns given, None without a holdout) and, for comparison, in sample, seeded by member_seed."""
    v = ctx.config.validation
    out = []
    for i, (x, h) in enumerate(zip(X, hashes)):
        row = {}
        for k, name in enumerate(("holdout", "in_sample")):
            r = asset_returns(ctx, x, ctx.window) if name == "in_sample" else (
                None if holdout_returns is None else holdout_returns[i])
            row[name] = None if r is None else bootstrap.monte_carlo(
                r, block=v.bootstrap_block, reps=v.monte_carlo_resamples, ruin=v.ruin_drawdown,
                seed=member_seed(ctx, h, 2 + k))
        out.append(row)
    return out


def neighbourhood(ctx: RunContext, X: np.ndarray, hashes) -> list[dict | None]:
    """Each Pareto member's neighbours (evo.search.neighbours, the ones robust fitness uses) evaluated on
    the training window. Evaluated here and not stored: a report-only run's store holds only the genomes
    evolution tried (with `aggregate` it holds these too; evaluating K per member again costs little)."""
    r = ctx.config.algorithm.robustness
    if r.neighbours == 0 or len(X) == 0:
        return [None] * len(X)
    space = process.space_for(ctx)
    near = neighbours_of(space, X, hashes, r, ctx.config.seed)
    metrics = evaluate(ctx, space.decode(near), ctx.window).metrics
    return [robustness.spread(metrics[i * r.neighbours:(i + 1) * r.neighbours], ctx.config.objectives,
                              ctx.config.constraints) for i in range(len(X))]


def _plain(row: np.ndarray) -> dict:
    """One row of metrics by name, as JSON for people (evo.config.codec: NaN as null)."""
    return codec.encode(dict(zip(METRICS, row.tolist())), nan=None)


def validate(ctx: RunContext, number: int) -> dict:
    """Score generation `number`'s Pareto set on the holdout and judge the best in-sample strategy.

    Both sets of metrics are stored (evaluations under the in-sample and the holdout keys); the
    verdict goes to the validations table.
    """
    from evo.engine import fast

    store = process.store_for(ctx)
    rec = store.generation(ctx.run_id, number)
    if rec is None:
        raise RuntimeError(f"run {ctx.name!r} has no generation {number} to validate")
    state = decode_checkpoint(rec.checkpoint, process.space_for(ctx).n_var, ctx.n_obj, ctx.n_constr).pop
    off = genomes(ctx, state.X[pareto_mask(state)])
    market = process.market_for(ctx)
    is_metrics = score(ctx, off, ctx.window, rec.evaluation_key).metrics
    oos_key = oos_evaluation_key(ctx)
    oos_metrics = score(ctx, off, ctx.oos_window, oos_key).metrics if oos_key is not None and len(off) else None
    sharpe = SLOT["sharpe_ratio"]
    trials = np.array(store.trial_metrics(ctx.run_id, "sharpe_ratio"))
    if len(off) == 0 or not np.isfinite(is_metrics[:, sharpe]).any():
        result = {"verdict": "no evidence of edge", "deflated_sharpe": 0.0, "n_trials": int(len(trials)),
                  "reason": "no feasible strategy with a finite Sharpe ratio",
                  "threshold": ctx.config.validation.edge_probability}
    else:
        best = int(np.nanargmax(is_metrics[:, sharpe]))
        rets = asset_returns(ctx, off.X[best], ctx.window)  # the candidate's in-sample return series
        v = verdict.verdict(rets, float(is_metrics[best, sharpe]), trials, fast.ann_factor(market.freq),
                               ctx.config.validation.edge_probability, off.hash[best])
        result = v.as_dict()
    result.update(pbo(ctx))
    holdout_returns = None if ctx.oos_window is None else [asset_returns(ctx, x, ctx.oos_window) for x in off.X]
    result.update(reality_check(ctx, holdout_returns))
    risks = monte_carlo(ctx, off.X, off.hash, holdout_returns)
    spreads = neighbourhood(ctx, off.X, off.hash)
    result.update(
        generation=number,
        window=list(ctx.window),
        holdout=None if ctx.oos_window is None else list(ctx.oos_window),
        holdout_start=None if ctx.oos_window is None else str(market.index[ctx.oos_window[0]]),
        pareto=[
            {
                "genome_hash": off.hash[i],
                "in_sample": _plain(is_metrics[i]),
                "out_of_sample": None if oos_metrics is None else _plain(oos_metrics[i]),
                "monte_carlo": risks[i],
                "robustness": spreads[i],
            }
            for i in range(len(off))
        ],
    )
    v = ctx.config.validation
    result = verdict.judge(result, v.edge_probability, v.pbo_max, v.spa_alpha)
    store.save_validation(ctx.run_id, "holdout", number, result)
    return result


def fold_test(ctx: RunContext, fold, chosen: dict) -> tuple[dict, np.ndarray]:
    """The fold's chosen strategy on its test window: (its row of the walk-forward result, its returns)."""
    market = process.market_for(ctx)
    x = process.space_for(ctx).encode([chosen["genes"]])[0]
    off = Population.of(x[None, :], hash=[chosen["genome_hash"]])
    test_metrics = score(ctx, off, fold.test, evaluation_key(ctx.config, ctx.fingerprint, fold.test)).metrics
    row = {
        "fold": fold.number,
        "run": ctx.name,
        "train": list(fold.train),
        "test": list(fold.test),
        "test_start": str(market.index[fold.test[0]]),
        "genes": chosen["genes"],
        "in_sample": chosen["metrics"],
        "test_window": wf.metrics_dict(test_metrics[0]),
    }
    return row, asset_returns(ctx, x, fold.test)


def survivors_of(ctx: RunContext) -> list:
    """The last committed generation's survivors, as genomes: the next fold's warm start."""
    last = process.store_for(ctx).last_generation(ctx.run_id)
    return decode_checkpoint(last.checkpoint, process.space_for(ctx).n_var, ctx.n_obj, ctx.n_constr).pop.X.tolist()
