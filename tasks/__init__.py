"""Prefect tasks: thin wrappers that call one evo step and return plain data.

Results are not cached or persisted by Prefect (nothing is ever pickled to disk for a later process
to load): the evo store is the record, and a retried step recomputes from its plain-data inputs.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from evo.oos import scoring
from evo.run import cluster, faults, generation


@task(name="vary", cache_policy=NO_CACHE, persist_result=False, task_run_name="vary g{number}")
def vary(ctx, state, number: int, new_data: bool = False, workers=None):
    """Offspring genomes (crossover, mutation, repair, dedupe) and what the store already knows of them,
    chunked for `workers` (a cluster's) when given; with new_data, the survivors to evaluate again on
    changed market data."""
    return (generation.reevaluation if new_data else generation.vary)(ctx, state, number, workers)


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False, task_run_name="evaluate g{number} chunk {chunk}")
def evaluate(ctx, params, number: int, chunk: int):
    """Metrics of one chunk of unseen offspring; retried on failure (see RunConfig.evaluation.retries)."""
    return generation.evaluate_chunk(cluster.unsealed(ctx), cluster.unsealed(params), number, chunk)


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False,
      task_run_name="evaluate g{number} on the Dask cluster")
def evaluate_on_cluster(ctx, items, number: int, client):
    """Metrics of every chunk of unseen offspring, each chunk a Dask task on the cluster (one task run,
    not one per chunk: Dask reschedules a lost worker's chunks and retries a failing one)."""
    ev, ex = ctx.config.evaluation, ctx.config.execution
    return cluster.fan_out(client, generation.evaluate_chunk, ctx, items, number, retries=ev.retries,
                           wait_seconds=ex.worker_wait_seconds)


@task(name="select", cache_policy=NO_CACHE, persist_result=False, task_run_name="select g{gen.number}")
def select(ctx, gen):
    """NSGA-II survival: rank and crowding over survivors + offspring."""
    return generation.select(ctx, gen)


@task(name="persist", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=1,
      task_run_name="persist g{gen.number}")
def persist(ctx, gen, owner: str, flow_run_id: str | None):
    """One transaction: offspring, evaluations, survivors, stats and checkpoint (if `owner` holds the run)."""
    return generation.persist(ctx, gen, owner=owner, flow_run_id=flow_run_id, on_stage=faults.persist_hook(gen.number))


@task(name="validate", cache_policy=NO_CACHE, persist_result=False, retries=1, task_run_name="validate g{number}")
def validate(ctx, number: int):
    """The Pareto set on the holdout, and the deflated-Sharpe verdict on the best in-sample strategy."""
    return scoring.validate(ctx, number)
