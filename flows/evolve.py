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
from evo import runs, steps
from evo.config import RunConfig


def _flow_run_name() -> str:
    p = flow_run.parameters
    cfg = p.get("config")
    name = p.get("name") or (cfg.get("name") if isinstance(cfg, dict) else getattr(cfg, "name", None))
    return f"evolve {name or 'run'}"


@flow(name="evolve", flow_run_name=_flow_run_name, validate_parameters=True)
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
    db_url: SQLAlchemy URL; defaults to EVO_DATABASE_URL, then config.storage.url, then sqlite:///evo.db.
    """
    log = get_run_logger()
    if config is None:
        if not name:
            raise ValueError("give a config, or the name of an existing run to continue")
        ctx, store = runs.reopen(name, db_url=db_url, generations=generations)
    else:
        ctx, store = runs.start(config, name=name, db_url=db_url, generations=generations)

    pos = steps.resume_point(ctx)
    survivors, rng, n_eval = pos.survivors, pos.rng_state, pos.n_eval
    if pos.done:
        log.info("run %r: resuming after committed generation %d of %d", ctx.name, pos.done, ctx.target)
    store.update_run(ctx.run_id, status="running")
    try:
        observed = None
        for number in range(pos.done + 1, ctx.target + 1):
            t0 = time.perf_counter()
            off, cached, rng = tasks.vary(ctx, survivors, rng, number)
            unseen = [i for i, h in enumerate(off.hashes) if h not in cached.metrics]
            plan = steps.plan(ctx, off, unseen, observed)
            futures = [
                tasks.evaluate.with_options(
                    retries=ctx.config.evaluation.retries,
                    retry_delay_seconds=ctx.config.evaluation.retry_delay_seconds,
                ).submit(ctx, [off.params[unseen[i]] for i in range(s.start, s.stop)], number, k)
                for k, s in enumerate(plan.slices())
            ]
            chunks = [f.result() for f in futures]
            metrics, per_asset, new = steps.merge_metrics(off, cached, unseen, chunks)
            survivors_next, rng = tasks.select(ctx, survivors, off, metrics, rng, number)
            eval_seconds = sum(c.seconds for c in chunks)
            observed = steps.observed_bytes_per_strategy(chunks, observed)
            stats = steps.generation_stats(
                ctx,
                number,
                survivors_next,
                n_offspring=len(off),
                evaluated=len(unseen),
                cache_hits=len(off) - len(unseen),
                eval_seconds=eval_seconds,
                chunks={**plan.as_stats(), "rss_before_after": [[c.rss_before, c.rss_after] for c in chunks]},
                peak_rss=max([c.rss_after for c in chunks], default=0),
                seconds=time.perf_counter() - t0,
            )
            n_eval += len(off)
            tasks.persist(
                ctx, number, off, metrics, per_asset, new, survivors_next, rng, n_eval, stats, _flow_run_id()
            )
            survivors = survivors_next
            log.info(steps.progress_line(ctx, stats))
    except BaseException:
        store.update_run(ctx.run_id, status="failed")
        raise
    store.update_run(ctx.run_id, status="completed")
    return {"name": ctx.name, "generations_done": ctx.target, "database": store.masked_url}


def _flow_run_id() -> str | None:
    rid = flow_run.id
    return str(rid) if rid else None
