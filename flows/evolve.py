"""The `evolve` flow: generations of vary -> evaluate x chunks -> select -> persist.

Starting the flow with a run name that already has committed generations
continues from the last one. That single rule covers `evo resume`, a Prefect
UI retry, flow `retries`, re-triggering a deployment and scheduled
continuation (`extend_by`).
"""

# no `from __future__ import annotations` here: Prefect builds the flow's parameter model from these
# annotations in the process that runs a deployment, and strings would not resolve there
import time

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from evo import faults, monitor, runs, steps
from evo.config import RunConfig
from evo.store import has_password
from flows.orchestration import Orchestrated, Plain


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
    extend_by: int | None = None,
    reevaluate_on_new_data: bool = False,
) -> dict:
    """Evolve a Pareto set of strategies; resumes when the run already exists.

    config: the run's configuration (omit it to continue the run `name` with its stored config,
        or to start `name` with the embedded default config if it does not exist).
    name: run name, unique in the database; defaults to config.name.
    generations: total generations to reach (extends a finished run).
    db_url: SQLAlchemy URL without a password (parameters are stored by Prefect); defaults to
        EVO_DATABASE_URL, then config.storage.url, then sqlite:///evo.db.
    extend_by: continue by this many generations from wherever the run stands (scheduled continuation).
    reevaluate_on_new_data: when the market data changed since the last generation, re-evaluate the
        survivors on it first (one extra generation) instead of refusing to continue.
    """
    if has_password(db_url):
        # Prefect stores flow parameters and shows them in the UI
        raise ValueError("db_url must not contain a password: set EVO_DATABASE_URL in the worker's environment instead")
    return drive(config, name, generations, db_url, extend_by, reevaluate_on_new_data, Orchestrated(get_run_logger()))


def drive(
    config: RunConfig | None,
    name: str | None,
    generations: int | None,
    db_url: str | None,
    extend_by: int | None,
    reevaluate_on_new_data: bool,
    orch: Plain,
) -> dict:
    """The whole run: open it, hold its lease, catch up on new data, then generation after generation."""
    log = orch.log
    if config is None and not runs.exists(name, db_url):
        if not name:
            raise ValueError("give a config, or the name of a run")
        log.info("run %r does not exist yet: starting it with the embedded default config", name)
        config = RunConfig(name=name)
    if config is None:
        ctx, store = runs.reopen(name, db_url=db_url, generations=generations, allow_new_data=reevaluate_on_new_data)
    else:
        ctx, store = runs.start(
            config, name=name, db_url=db_url, generations=generations, allow_new_data=reevaluate_on_new_data
        )

    with runs.hold(ctx, store) as owner, orch.session(ctx):  # one process advances a run at a time
        state = steps.resume_point(ctx)
        new_data = state.done > 0 and store.get_run(ctx.name).data_fingerprint != ctx.fingerprint
        if extend_by is not None:
            ctx = runs.with_target(ctx, state.done + extend_by + (1 if new_data else 0))
        runs.set_target(store, ctx)
        if state.done:
            log.info("run %r: resuming after committed generation %d of %d", ctx.name, state.done, ctx.target)
        store.update_run(ctx.run_id, status="running")
        orch.started(ctx, store, state.done)
        try:
            for number in range(state.done + 1, ctx.target + 1):
                if new_data:
                    log.warning("run %r: market data changed; generation %d re-evaluates the survivors on it",
                                ctx.name, number)
                    state = reevaluation(ctx, number, state, owner, orch)
                    new_data = False
                else:
                    state = generation(ctx, number, state, owner, orch)
                log.info(steps.progress_line(ctx, state.stats))
                for w in monitor.warnings_for(state.survivors, state.stats, ctx.config.objectives,
                                              *steps.memory_totals()):
                    log.warning(w)
                if ctx.config.validation.oos_each_generation and ctx.oos_window and number < ctx.target:
                    orch.validate(ctx, number)  # monitoring: stored, never used to select
                orch.generation_done(ctx, store, state.stats)
                faults.hold_if("between", number)
                faults.crash_if("between", number, ctx.name)
            verdict = orch.validate(ctx, ctx.target)
            log.info(steps.verdict_line(verdict))
        except BaseException:
            store.update_run(ctx.run_id, status="failed")
            raise
        store.update_run(ctx.run_id, status="completed")
        orch.finished(ctx, store)
    return {"name": ctx.name, "generations_done": ctx.target, "database": store.masked_url}


def generation(ctx, number: int, state: steps.Resume, owner: str, orch: Plain) -> steps.Resume:
    """One generation: vary, evaluate the unseen offspring chunk by chunk, select, persist."""
    t0 = time.perf_counter()
    off, cached, rng = orch.vary(ctx, state.survivors, state.rng_state, number)
    return _evaluate_select_persist(ctx, number, state, owner, orch, off, cached, rng, state.survivors, t0)


def reevaluation(ctx, number: int, state: steps.Resume, owner: str, orch: Plain) -> steps.Resume:
    """The survivors evaluated on new market data and ranked again; the run moves onto the new data."""
    t0 = time.perf_counter()
    off = steps.survivors_as_offspring(ctx, state.survivors)
    cached = steps.lookup(ctx, off)
    return _evaluate_select_persist(ctx, number, state, owner, orch, off, cached, state.rng_state, None, t0,
                                    new_data=True)


def _evaluate_select_persist(ctx, number, state, owner, orch, off, cached, rng, parents, t0, new_data=False):
    unseen = [i for i, h in enumerate(off.hashes) if h not in cached.metrics]
    plan = steps.plan(ctx, off, unseen, state.observed_bytes)
    chunks = orch.evaluate(ctx, [[off.params[unseen[i]] for i in range(s.start, s.stop)] for s in plan.slices()], number)
    metrics, per_asset, new = steps.merge_metrics(off, cached, unseen, chunks)
    survivors, rng = orch.select(ctx, parents, off, metrics, rng, number)
    extra = {"reevaluated": True, "data_fingerprint": ctx.fingerprint} if new_data else {}
    stats = steps.generation_stats(
        ctx,
        number,
        survivors,
        n_offspring=len(off),
        evaluated=len(unseen),
        cache_hits=len(off) - len(unseen),
        eval_seconds=sum(c.seconds for c in chunks),
        chunks={
            **plan.as_stats(),
            "rss_before_after": [[c.rss_before, c.rss_after] for c in chunks],
            "workers": [[c.pid, c.market_loads] for c in chunks],
        },
        peak_rss=max([c.rss_after for c in chunks], default=0),
        seconds=time.perf_counter() - t0,
        **extra,
    )
    n_eval = state.n_eval + len(off)
    orch.persist(ctx, number, off, metrics, per_asset, new, survivors, rng, n_eval, stats, owner, new_data)
    observed = steps.observed_bytes_per_strategy(chunks, state.observed_bytes)
    return steps.Resume(number, survivors, rng, n_eval, observed, stats)
