"""What a process builds once per run and keeps: the store, the gene space, the optimiser, the market.

A step may run in the flow's process, a pool process or a Dask worker; each builds these from the
RunContext on first use (never receives them as arguments) and keeps them for the next call.
"""

from __future__ import annotations

import threading

from evo import strategies
from evo.market import Market, get_market
from evo.run.context import RunContext
from evo.search.algorithm import Optimizer
from evo.store import Store
from evo.store import url as urls
from evo.strategies.base import Family, GeneSpace

_lock = threading.Lock()
_stores: dict[str, Store] = {}
_optimizers: dict[tuple, Optimizer] = {}


def store_for(ctx: RunContext) -> Store:
    with _lock:
        s = _stores.get(ctx.database)
        if s is None:
            s = _stores[ctx.database] = Store(urls.real(ctx.database))
        return s


def family_for(ctx: RunContext) -> Family:
    return strategies.get(ctx.config.strategy.family, ctx.config.strategy.trading)


def space_for(ctx: RunContext) -> GeneSpace:
    return family_for(ctx).space(ctx.config.strategy.bounds)


def market_for(ctx: RunContext) -> Market:
    """The run's market, loaded once per process; refused if its content is not the run's."""
    return get_market(ctx.config.data, ctx.fingerprint)


def optimizer_for(ctx: RunContext) -> Optimizer:
    key = (ctx.config.identity_hash(), ctx.config.algorithm.model_dump_json())
    with _lock:
        opt = _optimizers.get(key)
        if opt is None:
            opt = _optimizers[key] = Optimizer(space_for(ctx), ctx.n_obj, ctx.n_constr, ctx.config.algorithm)
        return opt


def memory_totals() -> tuple[int, int]:
    """(total, available) memory of this machine, for the monitor's memory-pressure warning."""
    import psutil

    vm = psutil.virtual_memory()
    return vm.total, vm.available
