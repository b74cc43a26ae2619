"""Prefect tasks: thin wrappers that unpack arguments, call `evo.steps`, and return plain data.

Results are not cached or persisted by Prefect (nothing is ever pickled to disk
for a later process to load): the evo store is the record, and a retried step
recomputes from its plain-data inputs.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from evo import faults, steps


@task(name="vary", cache_policy=NO_CACHE, persist_result=False, task_run_name="vary g{number}")
def vary(ctx, survivors, rng, number: int):
    """Offspring genomes (crossover, mutation, repair, dedupe) and their cached metrics."""
    off, rng = steps.vary(ctx, survivors, rng)
    return off, steps.lookup(ctx, off), rng


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False, task_run_name="evaluate g{number} chunk {chunk}")
def evaluate(ctx, params, number: int, chunk: int):
    """Metrics of one chunk of unseen offspring; retried on failure (see RunConfig.evaluation.retries)."""
    faults.maybe_fail_evaluate(ctx, number, chunk)
    return steps.evaluate(ctx, params)


@task(name="select", cache_policy=NO_CACHE, persist_result=False, task_run_name="select g{number}")
def select(ctx, survivors, off, metrics, rng, number: int):
    """NSGA-II survival: rank and crowding over survivors + offspring."""
    return steps.select(ctx, survivors, off, metrics, rng)


@task(name="persist", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=1, task_run_name="persist g{number}")
def persist(ctx, number: int, off, metrics, per_asset, new, state, rng, n_eval, stats, flow_run_id, owner, new_data=None):
    """One transaction: offspring, evaluations, survivors, stats and checkpoint (if this process holds the run)."""
    return steps.persist(
        ctx, number, off, metrics, per_asset, new, state, rng, n_eval, stats,
        flow_run_id=flow_run_id, lease_owner=owner, new_data=new_data, on_stage=faults.persist_hook(number),
    )


@task(name="validate", cache_policy=NO_CACHE, persist_result=False, retries=1, task_run_name="validate g{number}")
def validate(ctx, number: int):
    """The Pareto set on the holdout, and the deflated-Sharpe verdict on the best in-sample strategy."""
    return steps.validate(ctx, number)
