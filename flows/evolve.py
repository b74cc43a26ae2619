"""The `evolve` flow: generations of vary -> evaluate x chunks -> select -> persist.

Starting the flow with a run name that already has committed generations
continues from the last one. That single rule covers `evo resume`, a Prefect
UI retry, flow `retries` and re-triggering a deployment.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

import tasks
from evo import faults, runs, steps
from evo.config import RunConfig
from evo.store import has_password


def _flow_run_name() -> str:
    p = flow_run.parameters
    cfg = p.get("config")
    name = p.get("name") or (cfg.get("name") if isinstance(cfg, dict) else getattr(cfg, "name", None))
    return f"evolve {name or 'run'}"


@flow(name="evolve", flow_run_name=_flow_run_name, validate_parameters=True, persist_result=False)
def evolve(
    config: RunConfig | None = None,
    name: str | None = None,
    generations: int | None = None,
    db_url: str | None = None,
) -> dict:
    """Evolve a Pareto set of strategies; resumes when the run already exists.

    config: the run's configuration (omit it to continue the run `name` with its stored config).
    name: run name, unique in the database; defaults to config.name.
    generations: total generations to reach (extends a finished run).
    db_url: SQLAlchemy URL without a password (parameters are stored by Prefect); defaults to
        EVO_DATABASE_URL, then config.storage.url, then sqlite:///evo.db.
    """
    log = get_run_logger()
    if has_password(db_url):
        # Prefect stores flow parameters and shows them in the UI
        raise ValueError("db_url must not contain a password: set EVO_DATABASE_URL in the worker's environment instead")
    if config is None:
        if not name:
            raise ValueError("give a config, or the name of an existing run to continue")
        ctx, store = runs.reopen(name, db_url=db_url, generations=generations)
    else:
        ctx, store = runs.start(config, name=name, db_url=db_url, generations=generations)

    with runs.hold(ctx, store) as owner:  # one process advances a run at a time
        state = steps.resume_point(ctx)
        if state.done:
            log.info("run %r: resuming after committed generation %d of %d", ctx.name, state.done, ctx.target)
        store.update_run(ctx.run_id, status="running")
        try:
            for number in range(state.done + 1, ctx.target + 1):
                state = generation(ctx, number, state, owner)
                log.info(steps.progress_line(ctx, state.stats))
                faults.hold_if("between", number)
        except BaseException:
            store.update_run(ctx.run_id, status="failed")
            raise
        store.update_run(ctx.run_id, status="completed")
    return {"name": ctx.name, "generations_done": ctx.target, "database": store.masked_url}


def generation(ctx, number: int, state: steps.Resume, owner: str) -> steps.Resume:
    """One generation: vary, evaluate the unseen offspring chunk by chunk, select, persist."""
    t0 = time.perf_counter()
    off, cached, rng = tasks.vary(ctx, state.survivors, state.rng_state, number)
    unseen = [i for i, h in enumerate(off.hashes) if h not in cached.metrics]
    plan = steps.plan(ctx, off, unseen, state.observed_bytes)
    evaluate = tasks.evaluate.with_options(
        retries=ctx.config.evaluation.retries, retry_delay_seconds=ctx.config.evaluation.retry_delay_seconds
    )
    futures = [
        evaluate.submit(ctx, [off.params[unseen[i]] for i in range(s.start, s.stop)], number, k)
        for k, s in enumerate(plan.slices())
    ]
    chunks = [f.result() for f in futures]
    metrics, per_asset, new = steps.merge_metrics(off, cached, unseen, chunks)
    survivors, rng = tasks.select(ctx, state.survivors, off, metrics, rng, number)
    stats = steps.generation_stats(
        ctx,
        number,
        survivors,
        n_offspring=len(off),
        evaluated=len(unseen),
        cache_hits=len(off) - len(unseen),
        eval_seconds=sum(c.seconds for c in chunks),
        chunks={**plan.as_stats(), "rss_before_after": [[c.rss_before, c.rss_after] for c in chunks]},
        peak_rss=max([c.rss_after for c in chunks], default=0),
        seconds=time.perf_counter() - t0,
    )
    n_eval = state.n_eval + len(off)
    tasks.persist(ctx, number, off, metrics, per_asset, new, survivors, rng, n_eval, stats, _flow_run_id(), owner)
    return steps.Resume(number, survivors, rng, n_eval, steps.observed_bytes_per_strategy(chunks, state.observed_bytes), stats)


def _flow_run_id() -> str | None:
    rid = flow_run.id
    return str(rid) if rid else None
