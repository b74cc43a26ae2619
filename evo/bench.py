"""Benchmarks behind the README's performance table (`evo bench`).

Each figure is a median over repeats in one process, and the JSON output says
what was measured on which machine, so a reader can rerun it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def machine() -> dict:
    import psutil

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
    }


def _genomes(family_name: str, n: int, seed: int):
    from evo import strategies

    fam = strategies.get(family_name)
    space = fam.space()
    rng = np.random.default_rng(seed)
    X = space.repair(space.xl + rng.random((n, space.n_var)) * (space.xu - space.xl))
    return fam, space, X


def _market(n_bars: int, seed: int = 7):
    from evo.config import DataConfig, SyntheticData
    from evo.data import load_market

    return load_market(DataConfig(synthetic=SyntheticData(n_bars=n_bars, seed=seed)))


def seeds_pattern(ohlcv, family, params, settings, freq) -> np.ndarray:
    """The research notes' "vectorized" evaluation: vectorbt indicators per individual, a DataFrame
    built column by column, one `Portfolio.from_signals`, then the metrics."""
    import pandas as pd
    import vectorbt as vbt

    from evo.engine.vbt import portfolio_metrics

    entries = pd.DataFrame(index=ohlcv.index)
    exits = pd.DataFrame(index=ohlcv.index)
    for i, p in enumerate(params):
        e, x = family.reference_signals(ohlcv, p)
        entries[f"strategy_{i}"] = e
        exits[f"strategy_{i}"] = x
    sl, tp = family.stops(params)
    pf = vbt.Portfolio.from_signals(
        ohlcv["close"], entries, exits, init_cash=settings.init_cash, fees=settings.fees,
        slippage=settings.slippage, sl_stop=sl.reshape(1, -1), tp_stop=tp.reshape(1, -1), freq=freq,
    )
    return portfolio_metrics(pf)


def engine_benchmark(
    n: int = 1000, n_bars: int = 87_600, repeats: int = 5, seeds_subset: int = 40, family: str = "rsi_pullback",
    seed: int = 0,
) -> dict:
    """Strategy-bars per second of (1) the fast engine's full fitness, (2) the seeds' vectorbt
    pattern on a subset of the same genomes, (3) the bare simulation kernel on precomputed signals."""
    import numba

    from evo import indicators
    from evo.config import EvaluationConfig
    from evo.engine import fast, nb

    market = _market(n_bars)
    fam, space, X = _genomes(family, n, seed)
    settings = EvaluationConfig(engine="fast")
    arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
    fast.evaluate_arrays(arrays, fam, X[:4], space.names, settings, market.freq)  # compile / load the cache

    full_t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        metrics = fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq)
        full_t.append(time.perf_counter() - t0)

    # (3) the practical limit: the same simulation on signals computed beforehand
    cache = indicators.build(fam.indicators, arrays, X, space.names)
    E = np.empty((n, n_bars), dtype=np.bool_)
    XS = np.empty_like(E)
    fam.fast_signals(cache, X, space.names, arrays, E, XS)
    sl, tp = fam.stop_arrays(X, space.names)
    del cache
    bare_t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bare = nb.simulate_signals_nb(
            arrays["close"], E, XS, sl, tp, settings.init_cash, settings.fees, settings.slippage,
            fast.ann_factor(market.freq), numba.get_num_threads(),
        )
        bare_t.append(time.perf_counter() - t0)
    del E, XS

    # (2) the seeds' pattern on a subset, extrapolated per strategy-bar
    params = space.decode(X[:seeds_subset])
    ohlcv = market.frame(0)
    seeds_pattern(ohlcv, fam, params[:2], settings, market.freq)  # vectorbt's own first-call compile
    seeds_t = []
    for _ in range(max(1, repeats // 2)):
        t0 = time.perf_counter()
        ref = seeds_pattern(ohlcv, fam, params, settings, market.freq)
        seeds_t.append(time.perf_counter() - t0)
    agree = bool(np.allclose(ref, metrics[:seeds_subset], rtol=1e-9, atol=1e-12, equal_nan=True))

    sb = n * n_bars
    full = sb / statistics.median(full_t)
    bare_rate = sb / statistics.median(bare_t)
    seeds = seeds_subset * n_bars / statistics.median(seeds_t)
    return {
        "benchmark": "evaluation throughput",
        "family": family,
        "strategies": n,
        "bars": n_bars,
        "threads": numba.get_num_threads(),
        "repeats": repeats,
        "full_fitness_per_s": full,
        "seeds_pattern_per_s": seeds,
        "seeds_pattern_subset": seeds_subset,
        "bare_kernel_per_s": bare_rate,
        "full_over_seeds": full / seeds,
        "full_over_bare": full / bare_rate,
        "seeds_metrics_equal_fast": agree,
        "bare_metrics_equal_full": bool(np.allclose(bare, metrics, rtol=0, atol=0, equal_nan=True)),
    }


_RSS_SCRIPT = """
import json, sys, time
import numpy as np

def hwm():
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's peak across fork+exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

from evo import bench
from evo.config import EvaluationConfig
from evo.engine import fast
n, n_bars = int(sys.argv[1]), int(sys.argv[2])
market = bench._market(n_bars)
fam, space, X = bench._genomes("rsi_pullback", n, 0)
arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
fast.evaluate_arrays(arrays, fam, X[:4], space.names, EvaluationConfig(), market.freq)
before = hwm()
t0 = time.perf_counter()
out = fast.evaluate_arrays(arrays, fam, X, space.names, EvaluationConfig(), market.freq)
dt = time.perf_counter() - t0
peak = hwm()
print(json.dumps({"peak_rss": peak, "rss_before": before, "seconds": dt, "finite_sharpe": int(np.isfinite(out[:, 1]).sum())}))
"""


def rss_benchmark(n: int, n_bars: int = 100_000) -> dict:
    """Peak RSS of a fresh process that evaluates n strategies x n_bars with the fast engine."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(n), str(n_bars)], capture_output=True, text=True, timeout=1800
    )
    if res.returncode != 0:
        raise RuntimeError(f"RSS benchmark failed: {res.stderr.strip().splitlines()[-1:]}")
    r = json.loads(res.stdout.strip().splitlines()[-1])
    return {
        "benchmark": "peak RSS, fast engine",
        "strategies": n,
        "bars": n_bars,
        "peak_rss_mb": r["peak_rss"] / 2**20,
        "rss_before_evaluation_mb": r["rss_before"] / 2**20,
        "seconds": r["seconds"],
        "strategy_bars_per_s": n * n_bars / r["seconds"],
    }


def _zdt1(X: np.ndarray) -> np.ndarray:
    f1 = X[:, 0]
    g = 1 + 9 * X[:, 1:].mean(axis=1)
    return np.column_stack([f1, g * (1 - np.sqrt(f1 / g))])


def _cpu_ms(fn):
    t0 = time.process_time()
    out = fn()
    return out, 1000 * (time.process_time() - t0)


def _pymoo_generations(n: int, generations: int, seed: int, eliminate_duplicates: bool):
    """CPU ms of pymoo's own NSGA2 ask (mating) and tell (survival and bookkeeping) per generation
    after the first, on a 9-gene ZDT1 with pymoo's default operators."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.sampling.rnd import FloatRandomSampling

    problem = Problem(n_var=9, n_obj=2, xl=0.0, xu=1.0)
    # random sampling: pymoo's LHS costs 20 n x n distance matrices once, which is not a generation
    algo = NSGA2(pop_size=n, sampling=FloatRandomSampling(), eliminate_duplicates=eliminate_duplicates)
    algo.setup(problem, seed=seed)
    off = algo.ask()
    off.set("F", _zdt1(off.get("X")))
    algo.tell(infills=off)
    ask, tell = [], []
    for _ in range(generations):
        off, t = _cpu_ms(algo.ask)
        ask.append(t)
        off.set("F", _zdt1(off.get("X")))
        _, t = _cpu_ms(lambda: algo.tell(infills=off))  # noqa: B023
        tell.append(t)
    return ask, tell


def write_json(results: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"machine": machine(), **results}, indent=2))


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The results of `evo bench` as (title, header, rows) tables, in the order they were measured."""
    out = []
    r = results.get("orchestration")
    if r:
        out.append((
            f"orchestration: population {r['population']}, {r['generations']} generations, {r['bars']} bars, "
            f"fast engine, SQLite (medians of {r['repeats']})",
            ["what", "value"],
            [
                ["plain loop (same step functions, no Prefect)", f"{r['plain_seconds']:.2f} s"],
                ["Prefect flow on the ephemeral API", f"{r['prefect_seconds']:.2f} s"],
                ["ratio", f"{r['ratio']:.3f}"],
                ["orchestration per generation", f"{r['orchestration_ms_per_generation']:.0f} ms"],
                ["  Prefect CPU in this process, per generation", f"{r['client_cpu_ms_per_generation']:.0f} ms"],
                ["  API server CPU, per generation", f"{r['server_cpu_ms_per_generation']:.0f} ms"],
                ["same checkpoints", str(r["same_result"])],
            ],
        ))
    r = results.get("engine")
    if r:
        out.append((
            f"evaluation: {r['family']}, {r['strategies']} strategies x {r['bars']} bars, {r['threads']} threads",
            ["what", "strategy-bars/s"],
            [
                ["1. fast engine, full fitness (indicators, signals, simulation, metrics)", f"{r['full_fitness_per_s']:.3g}"],
                [f"2. seeds' vectorbt pattern ({r['seeds_pattern_subset']} strategies, per strategy-bar)",
                 f"{r['seeds_pattern_per_s']:.3g}"],
                ["3. bare fused kernel on precomputed signals", f"{r['bare_kernel_per_s']:.3g}"],
                ["1 / 2", f"{r['full_over_seeds']:.0f}x"],
                ["1 / 3", f"{100 * r['full_over_bare']:.0f} %"],
                ["same metrics (1 vs 2, 1 vs 3)", f"{r['seeds_metrics_equal_fast']}, {r['bare_metrics_equal_full']}"],
            ],
        ))
    rows = results.get("rss")
    if rows:
        out.append((
            "peak RSS of a fresh process, fast engine",
            ["strategies x bars", "peak RSS", "RSS before", "seconds", "strategy-bars/s"],
            [[f"{r['strategies']} x {r['bars']}", f"{r['peak_rss_mb']:.0f} MB", f"{r['rss_before_evaluation_mb']:.0f} MB",
              f"{r['seconds']:.2f}", f"{r['strategy_bars_per_s']:.3g}"] for r in rows],
        ))
    r = results.get("generation")
    if r:
        rows = []
        for n, st in r["steps"].items():
            rows.append([str(n), *(f"{st[k]:.1f}" for k in ("vary", "select", "persist", "other", "bookkeeping")),
                         f"{r['pymoo_ms'][n]:.1f}", f"{st['evaluate']:.1f}"])
        out.append((
            f"a generation's bookkeeping in the real loop, CPU ms per generation ({r['backend']}, {r['bars']} bars; "
            "evaluation apart; medians)",
            ["population", "vary", "select", "persist", "loop", "bookkeeping", "pymoo's own loop", "evaluate (this thread)"],
            rows,
        ))
        out.append((
            "growth k (t ~ n^k) between populations (n log n is k ~ 1.1 from 1,000 to 10,000)",
            ["populations", "vary", "select", "persist", "bookkeeping", "pymoo's own loop"],
            [[k, *(f"{g[s]:.2f}" for s in ("vary", "select", "persist", "bookkeeping", "pymoo"))] for k, g in r["growth"].items()],
        ))
    return out
