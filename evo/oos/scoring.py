"""Scoring strategies on bars evolution never saw: the holdout (and the verdict), and walk-forward folds."""

from __future__ import annotations

import numpy as np

from evo.config.metrics import METRICS, SLOT
from evo.oos import verdict
from evo.oos import walkforward as wf
from evo.run import process
from evo.run.context import RunContext, evaluation_key, oos_evaluation_key
from evo.run.generation import Offspring, evaluate, lookup, merge
from evo.search.algorithm import decode_checkpoint, pareto_mask


def score(ctx: RunContext, off: Offspring, window: tuple[int, int], key: str) -> tuple[np.ndarray, list, np.ndarray]:
    """(metrics, per-asset metrics, which are new) of genomes on a window: from the store where they exist
    under `key`, else evaluated; new ones are stored under `key`."""
    cached = lookup(ctx, off, key)
    unseen = [i for i, h in enumerate(off.hashes) if h not in cached.metrics]
    results = [evaluate(ctx, [off.params[i] for i in unseen], window)] if unseen else []
    metrics, per_asset, new, trades = merge(off, cached, unseen, results)
    process.store_for(ctx).save_evaluations(
        ctx.config.strategy.family,
        [(off.hashes[i], off.params[i], key, metrics[i].tolist(), per_asset[i], trades[i])
         for i in range(len(off)) if new[i]],
    )
    return metrics, per_asset, new


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


def _finite(row) -> list:
    """JSON has no NaN or infinity."""
    return [None if not np.isfinite(v) else float(v) for v in row]


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
    off = Offspring.of(state.X[pareto_mask(state)], process.space_for(ctx))
    market = process.market_for(ctx)
    is_metrics, _, _ = score(ctx, off, ctx.window, rec.evaluation_key)
    oos_key = oos_evaluation_key(ctx)
    oos_metrics = score(ctx, off, ctx.oos_window, oos_key)[0] if oos_key is not None and len(off) else None
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
                               ctx.config.validation.edge_probability, off.hashes[best])
        result = v.as_dict()
    result.update(
        generation=number,
        window=list(ctx.window),
        holdout=None if ctx.oos_window is None else list(ctx.oos_window),
        holdout_start=None if ctx.oos_window is None else str(market.index[ctx.oos_window[0]]),
        pareto=[
            {
                "genome_hash": off.hashes[i],
                "in_sample": dict(zip(METRICS, _finite(is_metrics[i]))),
                "out_of_sample": None if oos_metrics is None else dict(zip(METRICS, _finite(oos_metrics[i]))),
            }
            for i in range(len(off))
        ],
    )
    store.save_validation(ctx.run_id, "holdout", number, result)
    return result


def fold_test(ctx: RunContext, fold, chosen: dict) -> tuple[dict, np.ndarray]:
    """The fold's chosen strategy on its test window: (its row of the walk-forward result, its returns)."""
    market = process.market_for(ctx)
    x = process.space_for(ctx).encode([chosen["genes"]])[0]
    off = Offspring(X=x[None, :], params=[chosen["genes"]], hashes=[chosen["genome_hash"]])
    test_metrics, _, _ = score(ctx, off, fold.test, evaluation_key(ctx.config, ctx.fingerprint, fold.test))
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
