"""Stale numba caches of kernels that call kernels in other files are dropped."""

from __future__ import annotations

import numpy as np

from evo.engine.jit import drop_stale_cache


def test_cached_kernels_are_dropped_when_a_dependency_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    mod = tmp_path / "fam_nb.py"
    dep = tmp_path / "engine_nb.py"
    mod.write_text("# kernels\n")
    dep.write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    files = [cache / "fam_nb.k-10.py311.nbi", cache / "fam_nb.k-10.py311.1.nbc"]
    other = cache / "engine_nb.k-3.py311.nbi"
    for f in files + [other]:
        f.write_text("compiled")

    drop_stale_cache(str(mod), str(dep))  # first sight: no stamp, so the cache cannot be trusted
    assert not any(f.exists() for f in files) and other.exists()

    for f in files:
        f.write_text("compiled again")
    drop_stale_cache(str(mod), str(dep))  # unchanged dependency: keep
    assert all(f.exists() for f in files)

    dep.write_text("x = 2\n")
    drop_stale_cache(str(mod), str(dep))  # changed dependency: drop
    assert not any(f.exists() for f in files) and other.exists()


def _readonly(a: np.ndarray) -> np.ndarray:
    v = np.array(a)
    v.flags.writeable = False
    return v


def _kernels():
    """Every numba dispatcher of evo's kernel modules, by name."""
    import numba

    from evo.engine import nb as engine_nb
    from evo.engine.indicators import nb as indicators_nb
    from evo.strategies import nb as strategies_nb

    return {f"{m.__name__}.{k}": v for m in (engine_nb, indicators_nb, strategies_nb) for k, v in vars(m).items()
            if isinstance(v, numba.core.registry.CPUDispatcher)}


def _compiled() -> dict:
    return {k: len(d.signatures) for k, d in _kernels().items()}


def test_read_only_and_writable_inputs_run_the_same_compiled_kernels():
    """An array's mutability is part of its numba type: a read-only market (deserialised on a Dask worker, or a
    user's buffer) must not compile the simulation again. Each entry point runs once with writable inputs,
    then with read-only ones (and a mix): no kernel gains a specialisation."""
    from evo import strategies
    from evo.config import EvaluationConfig
    from evo.engine import fast, simulate_portfolio, simulate_signals

    rng = np.random.default_rng(1)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0))
    high, low = close * 1.01, close * 0.99
    entries, exits = rng.random((n, 3)) < 0.1, rng.random((n, 3)) < 0.1
    arrays = {"open": close[:, 0].copy(), "high": high[:, 0].copy(), "low": low[:, 0].copy(),
              "close": close[:, 0].copy(), "volume": rng.uniform(1, 2, n)}
    kw = dict(init_cash=1e4, fees=0.001, slippage=0.0, freq="1h", sl_stop=0.02)

    def run(ro):
        f = _readonly if ro else np.array
        simulate_signals(f(close[:, 0]), f(entries), exits, open=f(close[:, 0]), high=high[:, 0], low=f(low[:, 0]), **kw)
        simulate_signals(f(close[:, 0]), entries, f(exits), **kw)
        simulate_portfolio(f(close), f(entries[:, :2]), exits[:, :2], high=f(high), low=low, open=close, **kw)
        for name in ("rsi_pullback", "trend"):  # a fused family and one simulated block by block
            fam = strategies.get(name)
            space = fam.space()
            X = space.repair(space.xl + np.random.default_rng(2).random((4, space.n_var)) * (space.xu - space.xl))
            market = {k: f(v) for k, v in arrays.items()}
            settings = EvaluationConfig(engine="fast", ohlc_stops=True)
            fast.evaluate_arrays(market, fam, X, space.names, settings, "1h", (50, n))
            fast.block_sums_of(market, fam, X, space.names, settings, "1h", (50, n), np.array([0, 100, 250]))
            fast.returns_of(market, fam, X[0], space.names, settings, "1h", (50, n))
            fast.portfolio_returns_of([market, market], fam, X[0], space.names, settings, "1h", (50, n))
            fast.evaluate_portfolio([market, market], fam, X, space.names, settings, "1h", (50, n))

    run(False)
    before = _compiled()
    run(True)
    after = _compiled()
    assert {k: (before[k], v) for k, v in after.items() if v != before.get(k)} == {}
    # a family's fused kernel and the kernels given signals simulate with the same compiled column (and
    # group): at most one of each, whichever of them compiled it in this process
    assert after["evo.engine.nb.simulate_column_nb"] <= 1 and after["evo.engine.nb.simulate_group_nb"] <= 1
