"""The `evolve` flow: generations of vary -> evaluate x chunks -> select -> persist.

Starting the flow with a run name that already has committed generations
continues from the last one. That single rule covers `evo resume`, a Prefect
UI retry, flow `retries`, re-triggering a deployment and scheduled
continuation (`extend_by`).
"""

# no `from __future__ import annotations` here: Prefect builds the flow's parameter model from these
# annotations in the process that runs a deployment, and strings would not resolve there
import contextlib
import gc
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from evo import tasks
from evo.config import RunConfig
from evo.config.errors import first_line
from evo.flows import heal
from evo.flows.orchestration import Orchestrated, Plain
from evo.run import faults, generation, lease, opening, process
from evo.run.context import with_target
from evo.store import url as urls
from evo.view import monitor
from evo.view.formatting import progress_line, verdict_line


def _flow_run_name() -> str:
    p = flow_run.parameters
    cfg = p.get("config")
    name = p.get("name") or (cfg.get("name") if isinstance(cfg, dict) else getattr(cfg, "name", None))
    return f"evolve {name or 'run'}"


@flow(name="evolve", flow_run_name=_flow_run_name, validate_parameters=True, persist_result=False)
def evolve(
    config: RunConfig | None = None,
    name: str = "",
    generations: Annotated[int, Field(ge=0, le=1_000_000)] = 0,
    db_url: str = "",
    extend_by: Annotated[int, Field(ge=0, le=1_000_000)] = 0,
    reevaluate_on_new_data: bool = False,
) -> dict:
    """Evolve a Pareto set of trading strategies; a run that exists continues from its last committed generation.

    Args:
        config: The run's configuration. Leave it empty to continue the run `name` with the config stored
            with it (or to start `name` with the embedded default config if no such run exists yet).
        name: The run's name, unique in the database. Empty: the config's name.
        generations: The run's total number of generations, counted from its first: it overrides the
            config's algorithm.generations, and extends a finished run. 0: keep the config's (or, for a
            run that exists, its current target).
        db_url: SQLAlchemy URL of the evo database, without a password (Prefect stores parameters).
            Empty: EVO_DATABASE_URL in the environment of the process running the flow, then the
            config's storage.url, then sqlite:///evo.db.
        extend_by: Generations to add to the run from wherever it stands (scheduled continuation);
            overrides `generations`. 0: off.
        reevaluate_on_new_data: When the market data changed since the run's last generation,
            re-evaluate its survivors on the new data first (one extra generation) instead of stopping.
    """
    heal.check_attempts(flow_run.id)
    database = database_for(db_url or None, config)
    return drive(config, name or None, generations or None, database, extend_by or None, reevaluate_on_new_data,
                 Orchestrated(get_run_logger()))


def database_for(db_url: str | None, config: RunConfig | None) -> str:
    """The flow's database: its `db_url`, else EVO_DATABASE_URL, else the config's storage.url, else the default."""
    if urls.has_secret(db_url):
        # Prefect stores flow parameters and shows them in the UI
        raise ValueError(f"db_url must not contain a password: set {urls.ENV} in the worker's environment instead")
    return urls.resolve(db_url, config.storage.url if config is not None else None)


def drive(
    config: RunConfig | None,
    name: str | None,
    generations: int | None,
    database: str,
    extend_by: int | None,
    reevaluate_on_new_data: bool,
    orch: Plain,
) -> dict:
    """The whole run: open it, hold its lease, catch up on new data, then generation after generation.

    `database` is the resolved URL (see `database_for`)."""
    log = orch.log
    if config is None and not opening.exists(name, database):
        if not name:
            raise ValueError("give a config, or the name of a run")
        log.info("run %r does not exist yet: starting it with the embedded default config", name)
        config = RunConfig(name=name)
    if config is None:
        ctx, store = opening.reopen(name, database=database, generations=generations,
                                 allow_new_data=reevaluate_on_new_data)
    # the cluster is checked (its scheduler answers, its workers import the family) before a run is written
    with orch.session(config if config is not None else ctx.config):
        if config is not None:
            ctx, store = opening.start(
                config, name=name, database=database, generations=generations,
                allow_new_data=reevaluate_on_new_data,
            )
        return _advance(ctx, store, extend_by, orch, log)


def _advance(ctx, store, extend_by: int | None, orch: Plain, log) -> dict:
    """Hold the run's lease, catch up on new data, then generation after generation."""
    with lease.hold(ctx, store) as owner, fewer_collections():  # one process advances a run
        faults.crash_if("start", 0, ctx.name)
        state = generation.resume_point(ctx)
        new_data = state.done > 0 and store.get_run(ctx.name).data_fingerprint != ctx.fingerprint
        orch.ship(ctx)
        if extend_by is not None:
            ctx = with_target(ctx, state.done + extend_by + (1 if new_data else 0))
        opening.set_target(store, ctx, owner)
        if state.done:
            log.info("run %r: resuming after committed generation %d of %d", ctx.name, state.done, ctx.target)
        store.update_run(ctx.run_id, owner=owner, status="running")
        orch.started(ctx, store, state.done)
        try:
            for number in range(state.done + 1, ctx.target + 1):
                if new_data:
                    log.warning("run %r: market data changed; generation %d re-evaluates the survivors on it",
                                ctx.name, number)
                state = one_generation(ctx, state, number, owner, orch, new_data)
                new_data = False
                log.info(progress_line(ctx.target, state.stats))
                for w in monitor.warnings_for(state.survivors, state.stats, ctx.config.objectives,
                                              *process.memory_totals()):
                    log.warning(w)
                if ctx.config.validation.oos_each_generation and ctx.oos_window and number < ctx.target:
                    orch.call(tasks.validate, ctx, number)  # monitoring: stored, never used to select
                orch.generation_done(ctx, store, state.stats)
                faults.hold_if("between", number)
                faults.crash_if("between", number, ctx.name)
            log.info("validating generation %d's Pareto set: holdout, verdict tests, Monte Carlo risk, neighbours",
                     ctx.target)
            verdict = orch.call(tasks.validate, ctx, ctx.target)
            log.info(verdict_line(verdict))
        except BaseException as e:
            _mark_failed(store, ctx, owner, log)
            if isinstance(e, Exception):  # not an interrupt: the run ended
                orch.failed(ctx, e)
            raise
        store.update_run(ctx.run_id, owner=owner, status="completed")
        orch.finished(ctx, store)
    return {"name": ctx.name, "generations_done": ctx.target, "database": store.masked_url}


@contextlib.contextmanager
def fewer_collections(threshold: int = 50_000):
    """Run the loop with Python's cyclic collector triggered 70 times less often.

    A generation allocates hundreds of thousands of short-lived objects (rows, JSON, lists); at the
    default threshold (700) the collector ran hundreds of times per generation, and its full passes
    scan every live object, which grows with the population, so persist grew faster than n log n.
    Nothing the loop makes is cyclic garbage that must go sooner; the thresholds are restored after
    the run.
    """
    old = gc.get_threshold()
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _mark_failed(store, ctx, owner: str, log) -> None:
    """Record the failure if the database still answers; never hide the error that got us here."""
    try:
        store.update_run(ctx.run_id, owner=owner, status="failed")
    except Exception as e:
        log.warning("run %r: could not record its failure (%s)", ctx.name,
                    urls.scrub(first_line(e), [store.url]))


def one_generation(ctx, state: generation.Resume, number: int, owner: str, orch: Plain,
                   new_data: bool = False) -> generation.Resume:
    """vary (or, on new market data, the survivors again), evaluate the unseen offspring chunk by chunk,
    select, persist: one task each, exchanging one Generation record."""
    gen = orch.call(tasks.vary, ctx, state, number, new_data, orch.workers(ctx, number))
    gen = generation.merged(gen, orch.map(tasks.evaluate, ctx, generation.chunks(ctx, gen), number))
    gen = orch.call(tasks.select, ctx, gen)
    orch.call(tasks.persist, ctx, gen, owner, orch.flow_run_id())
    return generation.advanced(gen, state)
