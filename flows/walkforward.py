"""The `walk-forward` flow: one evolution per fold (ordinary, resumable runs), then the stitched test windows."""

# no `from __future__ import annotations`: Prefect builds the parameter model from these annotations

from prefect import flow, get_run_logger

from evo.config import RunConfig
from evo.flows.evolve import database_for, drive
from evo.flows.orchestration import Orchestrated, Plain
from evo.oos import scoring
from evo.oos import walkforward as wf
from evo.run import opening
from evo.store import open_store
from evo.view import summary


@flow(name="walk-forward", flow_run_name="walk-forward {name}", validate_parameters=True, persist_result=False)
def walk_forward(config: RunConfig, name: str = "", db_url: str = "") -> dict:
    """Evolve once per walk-forward fold and report the stitched out-of-sample performance.

    Args:
        config: The run's configuration; validation.holdout and validation.walk_forward define the folds.
        name: The walk-forward's name (its folds are NAME/wf1, NAME/wf2, ...). Empty: the config's name.
        db_url: SQLAlchemy URL of the evo database, without a password. Empty: EVO_DATABASE_URL, then the
            config's storage.url, then sqlite:///evo.db.
    """
    return drive_walk_forward(config, name or None, database_for(db_url or None, config), Orchestrated(get_run_logger()))


def drive_walk_forward(config: RunConfig, name: str | None, database: str, orch: Plain) -> dict:
    """Each fold: an ordinary (resumable) run on its training window, then its chosen strategy on its test
    window; the test windows' returns are stitched (evo.oos.walkforward, evo.oos.scoring)."""
    from evo.engine import fast

    name = name or config.name
    if not name:
        raise ValueError("a walk-forward needs a name")
    config = config.with_overrides(name=name)
    market = opening.prepare(config)
    store = open_store(database, write=True)
    parent = opening.start_walk_forward(config, market, store)
    results, returns, seed = [], [], None
    for fold in wf.plan(config, market):
        child = wf.fold_config(config, name, fold, seed if config.validation.walk_forward.warm_start else None)
        orch.log.info("walk-forward %r: fold %d trains on bars %d-%d, tests on %d-%d",
                      name, fold.number, *fold.train, *fold.test)
        drive(child, None, None, database, None, False, orch)
        ctx, _ = opening.reopen(child.name, database=database)
        described = summary.describe(store, child.name)
        chosen = wf.choose(described["pareto"], [o.model_dump() for o in config.objectives])
        row, rets = scoring.fold_test(ctx, fold, chosen)
        row.update(wf.fold_overfitting(described["verdict"]))
        results.append(row)
        returns.append(rets)
        seed = scoring.survivors_of(ctx)
    result = {
        "mode": config.validation.walk_forward.mode,
        "warm_start": config.validation.walk_forward.warm_start,
        "folds": results,
        "stitched": wf.stitch(returns, fast.ann_factor(market.freq)),
    }
    store.save_validation(parent.id, "walk_forward", 0, result)
    store.update_run(parent.id, status="completed")
    s = result["stitched"]
    orch.log.info("walk-forward %r: stitched out of sample over %d bars: return %.4g, Sharpe %s, P(Sharpe > 0) %.3f",
                  name, s.get("bars", 0), s.get("total_return", float("nan")), s.get("sharpe_ratio"),
                  s.get("prob_sharpe_positive", 0.0))
    return result
