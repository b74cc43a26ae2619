"""Opening a run: validate everything first, then create or reopen its row.

Bad input must write nothing, so the config, the family, the market data and
the database are all checked before the first INSERT. Reopening a run checks
that the config decides the same trajectory and that the data is unchanged.
"""

from __future__ import annotations

from evo.config import ConfigError, RunConfig, stored
from evo.config.errors import BudgetError, RunError
from evo.market import DataError, Market, check_length, get_market, windows
from evo.run import cluster, preflight
from evo.run.context import RunContext, evaluation_key, run_windows
from evo.run.lease import check_not_busy
from evo.store import RunRecord, Store, StoreError, open_store
from evo.store import url as urls







def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        path = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, path + ".")
        elif va != vb:
            out.append(path)
    return out






def prepare(config: RunConfig) -> Market:
    """Check that a config can run: every field, the family and its bounds, the data and its windows.
    Writes nothing."""
    space = preflight.check(config)
    market = get_market(config.data)
    check_length(market, space.max_window())
    check_memory(config, market, space)
    train, _ = run_windows(config, market)
    if train[1] > market.n_bars:
        raise ConfigError(f"field 'validation.window': {list(train)} ends after the market's {market.n_bars} bars")
    if config.validation.window is None:
        windows.check(market, config.validation, space.max_window())
    else:
        check_length_window(train, space.max_window())
    return market


def check_memory(config: RunConfig, market: Market, space) -> None:
    """The evaluation budget must hold at least one strategy: the planner can always shrink chunks to that."""
    from evo.run.chunking import plan_for
    from evo.strategies import get

    try:
        plan_for(1, market.n_bars, market.n_assets, config.evaluation, None, len(get(config.strategy.family).indicators))
    except BudgetError as e:
        field = "evaluation.memory_budget_mb" if config.evaluation.memory_budget_mb else "evaluation.memory_fraction"
        raise ConfigError(f"field '{field}': {e}") from None


def check_length_window(window: tuple[int, int], max_window: int, min_after_warmup: int = 50) -> None:
    if window[1] < max_window + min_after_warmup:
        raise DataError(f"window {list(window)} leaves too few bars before its end for the largest window ({max_window})")


def start(
    config: RunConfig,
    *,
    database: str,
    name: str | None = None,
    generations: int | None = None,
    check_only: bool = False,
    allow_new_data: bool = False,
) -> tuple[RunContext, Store] | None:
    """Create the run, or reopen it when a run of that name has the same config.

    `database` is the resolved URL (evo.store.url.resolve). With `check_only`, do every check
    (config, data, database, name, a busy run) and write nothing, not even the schema. Otherwise
    the only write is creating a new run's row; changing an existing run (its generation target)
    waits for its lease.
    """
    name = name or config.name
    if not name:
        raise ConfigError("field 'name': a run needs a name (--name or name = ... in the config)")
    config = config.with_overrides(name=name, generations=generations)
    market = prepare(config)
    store = open_store(database, write=True) if not check_only else _existing(database)
    existing = store.get_run(name) if store is not None else None
    if existing is None:
        if check_only:
            return None
        try:
            return _context(_create(store, name, config, market), store, config, market), store
        except StoreError:
            existing = store.get_run(name)  # another process created it a moment ago
            if existing is None:
                raise
    if existing.config_hash != config.identity_hash():
        fields = _diff(stored(existing.config, source=f"run {name!r}").identity(), config.identity())
        raise RunError(
            f"run {name!r} already exists with a different config (differs in: {', '.join(fields) or 'config'}); "
            f"use another --name, or `evo resume {name}`"
        )
    _check_data(existing, market, allow_new_data)
    _check_target(store, existing, config.algorithm.generations, generations is not None)
    if check_only:
        check_not_busy(store, existing)
        return None
    return _context(existing, store, config, market), store


def _existing(database: str) -> Store | None:
    """The evo database at `database` if there is one (an older schema is migrated), or None when there
    is none yet: then nothing is created. One that is not evo's is refused untouched."""
    store = Store(database)
    if not store.holds_tables():
        if store.sqlite_path is not None:  # the run would create it: the file system must let it
            urls.check_sqlite_path(store.sqlite_path)
        return None
    store.migrate()  # refuses foreign tables and a newer schema before any write
    return store


def _check_target(store: Store, run: RunRecord, target: int, explicit: bool) -> None:
    """A run's generation target can grow, never fall below what is committed."""
    last = store.last_generation(run.id)
    done = last.number if last else 0
    if target < done:
        how = f"--generations {target}" if explicit else f"algorithm.generations = {target}"
        raise RunError(
            f"run {run.name!r} has already committed {done} generations; {how} would lower its target "
            f"below that (give {done} or more)"
        )


def exists(name: str | None, database: str) -> bool:
    return bool(name) and open_store(database, write=True).get_run(name) is not None


def reopen(
    name: str,
    *,
    database: str,
    generations: int | None = None,
    check_only: bool = False,
    allow_new_data: bool = False,
    write: bool = True,
) -> tuple[RunContext, Store] | None:
    """Reopen an existing run from its stored config (what `evo resume` does).

    With `allow_new_data`, market data whose content changed is accepted: the
    run then re-evaluates its survivors on it before evolving further. With
    write=False (a report), the database is only read; a missing database is
    never created.
    """
    store = open_store(database, write=False) if not write else _existing(database)
    existing = store.get_run(name) if store is not None else None
    if existing is None:
        raise RunError(f"no run named {name!r} in {urls.mask(database)}")
    target = generations if generations is not None else existing.generations_target
    config = stored(existing.config, source=f"run {name!r}").with_overrides(generations=target)
    market = prepare(config)
    _check_data(existing, market, allow_new_data)
    _check_target(store, existing, target, generations is not None)
    if check_only:
        check_not_busy(store, existing)
        cluster.preflight(config)  # its Dask scheduler answers and its workers can import its family
        return None
    return _context(existing, store, config, market), store


def _create(store: Store, name: str, config: RunConfig, market: Market) -> RunRecord:
    return store.create_run(
        name=name,
        config=config.model_dump(mode="json"),
        config_hash=config.identity_hash(),
        family=config.strategy.family,
        data_fingerprint=market.fingerprint,
        evaluation_key=evaluation_key(config, market.fingerprint, run_windows(config, market)[0]),
        seed=config.seed,
        generations_target=config.algorithm.generations,
    )


def _check_data(run: RunRecord, market: Market, allow_new_data: bool = False) -> None:
    if run.data_fingerprint != market.fingerprint and not allow_new_data:
        raise RunError(
            f"run {run.name!r} was evolved on data {run.data_fingerprint[:12]} but the data is now "
            f"{market.fingerprint[:12]}; continue it with reevaluate_on_new_data (its survivors are "
            f"re-evaluated on the new data first), or start a new run"
        )


def _context(rec: RunRecord, store: Store, config: RunConfig, market: Market) -> RunContext:
    """The run as this process will advance it: the target is the config's (written under the lease)."""
    train, holdout = run_windows(config, market)
    return RunContext(
        run_id=rec.id,
        name=rec.name,
        database=urls.safe(store.url),
        config=config,
        fingerprint=market.fingerprint,
        evaluation_key=evaluation_key(config, market.fingerprint, train),
        target=config.algorithm.generations,
        window=train,
        oos_window=holdout,
    )






def set_target(store: Store, ctx: RunContext, owner: str) -> None:
    """Record the generation target, as the lease holder `owner`."""
    if store.get_run(ctx.name).generations_target != ctx.target:
        store.update_run(ctx.run_id, owner=owner, generations_target=ctx.target)


def start_walk_forward(config: RunConfig, market: Market, store: Store) -> RunRecord:
    """The walk-forward's own row (its folds are runs of their own): created once, checked after."""
    existing = store.get_run(config.name)
    if existing is None:
        return store.create_run(
            name=config.name,
            config=config.model_dump(mode="json"),
            config_hash=config.identity_hash(),
            family=config.strategy.family,
            data_fingerprint=market.fingerprint,
            evaluation_key=evaluation_key(config, market.fingerprint, (0, market.n_bars)),
            seed=config.seed,
            generations_target=0,
        )
    if existing.config_hash != config.identity_hash() or existing.generations_target != 0:
        raise RunError(f"a run named {config.name!r} already exists and is not this walk-forward; use another --name")
    _check_data(existing, market)
    return existing
