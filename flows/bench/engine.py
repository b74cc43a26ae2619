"""Benchmarks behind the README's performance table (`evo bench`).

Each figure is a median over repeats in one process, and the JSON output says
what was measured on which machine, so a reader can rerun it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
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


def _genomes(family_name: str, n: int, seed: int, trading=()):
    """n seeded random genomes of a family evolving the trading genes `trading` (none: long only, all in;
    None: all it supports). With a direction gene, a third each go long only, short only and both (a
    rounded uniform draw would give short only, the middle value, half of them)."""
    from evo import strategies

    fam = strategies.get(family_name, trading)
    space = fam.space()
    rng = np.random.default_rng(seed)
    X = space.xl + rng.random((n, space.n_var)) * (space.xu - space.xl)
    if "direction" in space.names:
        X[:, space.index("direction")] = np.arange(n) % 3
    return fam, space, space.repair(X)


def _market(n_bars: int, seed: int = 7, n_assets: int = 1):
    from evo.config import DataConfig, SyntheticData
    from evo.market import load_market

    symbols = ["SYN"] if n_assets == 1 else [f"S{a}" for a in range(n_assets)]
    return load_market(DataConfig(synthetic=SyntheticData(n_bars=n_bars, seed=seed, symbols=symbols)))


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

    from evo.config import EvaluationConfig
    from evo.engine import fast, indicators, nb
    from evo.engine.enums import Prices, Signals

    market = _market(n_bars)
    fam, space, X = _genomes(family, n, seed)  # long only, all in, stops from the close: the seeds' rules
    settings = EvaluationConfig(engine="fast", ohlc_stops=False)
    arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
    fast.evaluate_arrays(arrays, fam, X[:4], space.names, settings, market.freq)  # compile / load the cache

    full_t = []
    for _ in range(repeats):
        indicators.ROWS.clear()  # a population's indicators from nothing, each repeat
        t0 = time.perf_counter()
        metrics = fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq)
        full_t.append(time.perf_counter() - t0)

    # (3) the practical limit: the same simulation on signals computed beforehand
    cache = indicators.build(fam.indicators, arrays, X, space.names)
    E = np.empty((n, n_bars), dtype=np.bool_)
    XS = np.empty_like(E)
    fam.fast_signals(cache, X, space.names, arrays, E, XS)
    params = fam.sim_params(X, space.names, settings.init_cash)
    sim = fast.sim_settings(init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage,
                            freq=market.freq)
    close = arrays["close"]
    prices = Prices(close, close, close, close)
    no_signals = np.empty((n, 0), dtype=np.bool_)
    del cache
    nb.simulate_signals_nb(prices, Signals(E[:2], XS[:2], no_signals[:2], no_signals[:2]), params[:2], sim, 1)
    bare_t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bare, _, _ = nb.simulate_signals_nb(prices, Signals(E, XS, no_signals, no_signals), params, sim,
                                            numba.get_num_threads())
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


def signals_benchmark(n: int = 1000, n_bars: int = 87_600, repeats: int = 5, family: str = "rsi_pullback",
                      check_subset: int = 8, seed: int = 0) -> dict:
    """Full-fitness strategy-bars per second through the family path (evo.engine.fast.evaluate_arrays with
    the family's own records): long only, all in, stops from the close (the family without trading genes,
    ohlc_stops off: what evolution ran before them) against every feature on (the family evolving direction,
    size and trailing, random genomes: a third each long, short and both; stops from open/high/low), in
    one process, repeats interleaved. A subset of the all-features metrics and trade fingerprints is
    checked against the vectorbt engine."""
    import numba

    from evo.config import EvaluationConfig
    from evo.engine import fast, indicators, vbt

    market = _market(n_bars)
    arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
    cases = {
        "long_only": (_genomes(family, n, seed, trading=()), EvaluationConfig(ohlc_stops=False)),
        "all_features": (_genomes(family, n, seed, trading=None), EvaluationConfig(ohlc_stops=True)),
    }
    for (fam, space, X), settings in cases.values():
        fast.evaluate_arrays(arrays, fam, X[:4], space.names, settings, market.freq)  # compile / load the cache
    times: dict = {k: [] for k in cases}
    fps = np.empty(n, dtype=np.int64)
    for _ in range(repeats):
        for name, ((fam, space, X), settings) in cases.items():
            indicators.ROWS.clear()  # a population's indicators from nothing, each repeat
            t0 = time.perf_counter()
            out = fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq, fingerprints=fps)
            times[name].append(time.perf_counter() - t0)
            if name == "all_features":
                full = out
    (fam, space, X), settings = cases["all_features"]
    k = min(check_subset, n)
    ref_fps = np.empty(k, dtype=np.int64)
    ref = vbt.evaluate_asset(market.frame(0), fam, space.decode(X[:k]), settings, market.freq,
                             fingerprints_out=ref_fps)
    directions = X[:, space.index("direction")]
    sb = n * n_bars
    lo = sb / statistics.median(times["long_only"])
    al = sb / statistics.median(times["all_features"])
    return {
        "benchmark": "full fitness through the family path, long only vs every trading feature",
        "family": family,
        "strategies": n,
        "bars": n_bars,
        "threads": numba.get_num_threads(),
        "repeats": repeats,
        "long_only_per_s": lo,
        "all_features_per_s": al,
        "all_features_over_long_only": al / lo,
        "direction_shares": [float((directions == d).mean()) for d in range(3)],
        "all_features_equal_vectorbt": bool(np.allclose(full[:k], ref, rtol=1e-9, atol=1e-12, equal_nan=True)
                                            and (fps[:k] == ref_fps).all()),
        "vectorbt_checked": k,
    }


def portfolio_benchmark(n: int = 100, n_assets: int = 10, n_bars: int = 20_000, repeats: int = 5,
                        family: str = "rsi_pullback", seed: int = 0, check_subset: int = 3) -> dict:
    """Seconds to evaluate n genomes on n_assets symbols through evo.engine.evaluate (the path evolution
    uses, the fast engine, the family with every trading gene, OHLC stops) as one shared-cash portfolio
    each (reducer 'portfolio') against n_assets separate backtests (reducer 'mean'), medians of
    interleaved repeats; and the portfolio metrics of a few genomes against the vectorbt engine's."""
    import numba

    from evo.config import EvaluationConfig
    from evo.engine import evaluate, indicators

    market = _market(n_bars, n_assets=n_assets)
    fam, space, X = _genomes(family, n, seed, trading=None)
    params = space.decode(X)
    settings = {"separate": EvaluationConfig(reducer="mean"), "portfolio": EvaluationConfig(reducer="portfolio")}
    for s in settings.values():
        evaluate(market, fam, params[:4], s)  # compile / load the cache
    times: dict = {k: [] for k in settings}
    for _ in range(repeats):
        for name, s in settings.items():
            indicators.ROWS.clear()  # a population's indicators from nothing, each repeat
            t0 = time.perf_counter()
            ev = evaluate(market, fam, params, s)
            times[name].append(time.perf_counter() - t0)
            if name == "portfolio":
                grouped = ev
    k = min(check_subset, n)
    ref = evaluate(market, fam, params[:k], EvaluationConfig(engine="vectorbt", reducer="portfolio"))
    g = statistics.median(times["portfolio"])
    sep = statistics.median(times["separate"])
    return {
        "benchmark": "one shared-cash portfolio over several symbols vs separate backtests, through evo.engine.evaluate",
        "family": family,
        "strategies": n,
        "symbols": n_assets,
        "bars": n_bars,
        "threads": numba.get_num_threads(),
        "repeats": repeats,
        "grouped_seconds": g,
        "separate_seconds": sep,
        "grouped_over_separate": g / sep,
        "grouped_equal_vectorbt": bool(
            np.allclose(grouped.metrics[:k], ref.metrics, rtol=1e-9, atol=1e-12, equal_nan=True)
            and (grouped.asset_fingerprints[:, :k] == ref.asset_fingerprints).all()
        ),
    }


_RSS_SCRIPT = """
import json, sys, time
import numpy as np

def hwm():
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's peak across fork+exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

from evo.flows.bench import engine as bench
from evo.config import EvaluationConfig
from evo.engine import fast
n, n_bars = int(sys.argv[1]), int(sys.argv[2])
market = bench._market(n_bars)
fam, space, X = bench._genomes("rsi_pullback", n, 0)
arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
settings = EvaluationConfig(ohlc_stops=False)
fast.evaluate_arrays(arrays, fam, X[:4], space.names, settings, market.freq)
before = hwm()
t0 = time.perf_counter()
out = fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq)
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
    r = results.get("verdict")
    if r:
        out.append((
            f"the verdict's cost ({r['threads']} threads, medians of {r['repeats']})",
            ["what", "value"],
            [
                [f"CSCV: {r['cscv_phenotypes']} phenotypes, {r['cscv_blocks']} blocks ({r['cscv_splits']} splits)",
                 f"{r['cscv_seconds']:.2f} s"],
                [f"evaluation (full fitness), {r['bars']} bars", f"{r['evaluation_ms_per_strategy']:.3f} ms per strategy"],
                ["the same with the block sums for CSCV, in its own pass",
                 f"{r['evaluation_with_block_sums_ms_per_strategy']:.3f} ms per strategy"],
                ["with / without", f"{r['evaluation_with_block_sums_over_without']:.3f}"],
                [f"block sums stored, {r['cscv_blocks']} blocks", f"{r['block_sums_stored_bytes_per_phenotype']:.0f} bytes per phenotype"],
                ["block sums of a phenotype evaluated without them, at the end of a run",
                 f"{r['block_sums_at_end_ms_per_phenotype']:.3f} ms per phenotype"],
                [f"Monte Carlo risk of one Pareto member, {r['monte_carlo_resamples']} resamples of each window",
                 f"{r['monte_carlo_seconds_per_member']:.2f} s"],
            ],
        ))
    if results.get("cluster"):
        from evo.flows.bench.cluster import table

        out.append(table(results["cluster"]))
    if results.get("pbo_run"):
        from evo.flows.bench.verdict import pbo_run_table

        out.append(pbo_run_table(results["pbo_run"]))
    if results.get("robust"):
        from evo.flows.bench.robust import table as robust_table

        out.append(robust_table(results["robust"]))
    r = results.get("orchestration")
    if r:
        out.append((
            f"orchestration: population {r['population']}, {r['generations']} generations, {r['bars']} bars, "
            f"fast engine, SQLite (medians of {r['repeats']})",
            ["what", "value"],
            [
                ["plain loop (same step functions, no Prefect)", f"{r['plain_seconds']:.2f} s"],
                ["Prefect flow on the ephemeral API", f"{r['prefect_seconds']:.2f} s"],
                ["ratio of whole runs (start and end included)", f"{r['ratio']:.3f}"],
                ["a generation inside the loop, plain / Prefect", f"{r['generation_plain_ms']:.0f} ms / {r['generation_prefect_ms']:.0f} ms"],
                ["ratio of a generation, Prefect over plain", f"{r['generation_ratio']:.3f}"],
                ["evaluation's share of a Prefect generation", f"{100 * r['evaluation_share_prefect']:.0f} %"],
                ["orchestration per generation (whole runs)", f"{r['orchestration_ms_per_generation']:.0f} ms"],
                ["  Prefect CPU in this process, per generation", f"{r['client_cpu_ms_per_generation']:.0f} ms"],
                ["  API server CPU, per generation", f"{r['server_cpu_ms_per_generation']:.0f} ms"],
                ["same checkpoints", str(r["same_result"])],
            ],
        ))
    r = results.get("run")
    if r:
        out.append((
            f"through `evo run`: population {r['population']}, {r['bars']} daily bars, ephemeral API, SQLite "
            f"((wall of {r['generations'][1]} generations - wall of {r['generations'][0]}) / "
            f"{r['generations'][1] - r['generations'][0]}, median of {r['repeats']})",
            ["what", "value"],
            [["per generation", f"{r['ms_per_generation']:.0f} ms"],
             ["runs", ", ".join(f"{x:.0f}" for x in r["runs"])],
             ["between generation commits in the long runs (median)", f"{r['in_loop_ms_per_generation']:.0f} ms"],
             ["runs", ", ".join(f"{x:.0f}" for x in r["in_loop_runs"])]],
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
    r = results.get("signals")
    if r:
        shares = "/".join(f"{100 * x:.0f}" for x in r["direction_shares"])
        out.append((
            f"trading features through the family path: {r['family']}, {r['strategies']} strategies x {r['bars']} bars, "
            f"{r['threads']} threads (medians of {r['repeats']}, interleaved)",
            ["what", "strategy-bars/s"],
            [
                ["long only, all in, stops from the close (no trading genes, ohlc_stops off)", f"{r['long_only_per_s']:.3g}"],
                [f"every feature: direction long/short/both ({shares} %), size, trailing; OHLC stops",
                 f"{r['all_features_per_s']:.3g}"],
                ["every feature / long only", f"{100 * r['all_features_over_long_only']:.0f} %"],
                [f"every feature equals vectorbt, fingerprints too ({r['vectorbt_checked']} strategies)",
                 str(r["all_features_equal_vectorbt"])],
            ],
        ))
    r = results.get("portfolio")
    if r:
        out.append((
            f"one shared-cash portfolio over {r['symbols']} symbols through evo.engine.evaluate: {r['strategies']} "
            f"strategies x {r['bars']} bars, every trading feature, {r['threads']} threads (medians of {r['repeats']}, "
            "interleaved)",
            ["what", "seconds"],
            [
                [f"{r['symbols']} separate backtests (reducer mean)", f"{r['separate_seconds']:.4f}"],
                ["one portfolio with shared cash, equal allocation (reducer portfolio)", f"{r['grouped_seconds']:.4f}"],
                ["portfolio / separate", f"{r['grouped_over_separate']:.2f}x"],
                ["portfolio metrics and fingerprints equal the vectorbt engine's", str(r["grouped_equal_vectorbt"])],
            ],
        ))
    r = results.get("compare")
    if r:
        out.append((
            f"this checkout against {r['baseline']} (medians of {r['repeats']}, interleaved, each side in its own "
            "process)",
            ["case", "strategies x bars", "this s", "baseline s", "throughput this / baseline", "paired",
             "CPU", "same bits"],
            [[name, f"{c['strategies']} x {c['bars']}", f"{c['this_seconds']:.3f}", f"{c['baseline_seconds']:.3f}",
              f"{c['throughput_ratio']:.3f}", f"{c['paired_ratio']:.3f}", f"{c['cpu_ratio']:.3f}",
              str(c["same_shared_metrics_and_fingerprints"])]
             for name, c in r["cases"].items()],
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
