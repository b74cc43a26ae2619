"""The cost of the verdict's statistics: CSCV at its budgeted size, the block sums evaluation computes
for it in its own pass, what they take stored, and one Pareto member's Monte Carlo risk
(`evo bench --verdict`); and PBO's cost in whole runs, with it and without (`evo bench --pbo-run`)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from evo.flows.bench.engine import _genomes, _market


def verdict_benchmark(n: int = 1000, n_bars: int = 87_600, phenotypes: int = 20_000, blocks: int = 16,
                      repeats: int = 3, family: str = "rsi_pullback", seed: int = 0) -> dict:
    """Seconds of CSCV over `phenotypes` phenotypes' block sums at `blocks` blocks; and per strategy on
    `n_bars` bars, the full fitness evaluation (evo.engine.fast.evaluate_arrays) of n genomes with and
    without the block sums it computes for CSCV in the same pass, the bytes those take stored
    (evo.store.blocks), and the block sums of a phenotype computed at the end of a run (one evaluated
    without them)."""
    import numba

    from evo.config import EvaluationConfig
    from evo.engine import fast, indicators
    from evo.oos import cscv
    from evo.store import blocks as stored

    rng = np.random.default_rng(seed)
    sums = cscv.block_sums(rng.normal(0, 0.01, (phenotypes, blocks * 40)), blocks)
    cscv.cscv(sums[:4])  # compile or load the kernel
    cscv_t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cscv.cscv(sums)
        cscv_t.append(time.perf_counter() - t0)

    market = _market(n_bars)
    fam, space, X = _genomes(family, n, seed)
    settings = EvaluationConfig(engine="fast")
    arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
    edges = cscv.block_edges(n_bars, blocks)
    fast.evaluate_arrays(arrays, fam, X[:4], space.names, settings, market.freq)
    fast.block_sums_of(arrays, fam, X[:4], space.names, settings, market.freq, None, edges)
    # Monte Carlo risk of one Pareto member, as validation runs it: the stationary bootstrap of its bar
    # returns on the training window and on the holdout (the defaults: a 30 % holdout, 1000 resamples of
    # mean block 20); the cost depends on the bars, not the values, so the market's own returns serve
    from evo.config.schema import ValidationConfig
    from evo.oos import bootstrap

    v = ValidationConfig()
    close = np.asarray(arrays["close"], dtype=np.float64)
    returns = np.diff(close) / close[:-1]
    cut = int(len(returns) * (1 - v.holdout))
    windows = (returns[:cut], returns[cut:])
    bootstrap.monte_carlo(returns[:100], block=v.bootstrap_block, reps=10, ruin=v.ruin_drawdown, seed=0)
    mc_t = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for w in windows:
            bootstrap.monte_carlo(w, block=v.bootstrap_block, reps=v.monte_carlo_resamples, ruin=v.ruin_drawdown,
                                  seed=r)
        mc_t.append(time.perf_counter() - t0)
    eval_t, with_t, sums_t = [], [], []
    sums = np.empty((len(X), blocks, 2))
    for _ in range(max(repeats, 5)):  # interleaved: the shared machine's load hits both alike
        for out, kw in ((eval_t, {}), (with_t, {"edges": edges, "blocks": sums})):
            indicators.ROWS.clear()  # the evaluation computes its indicators from nothing
            t0 = time.perf_counter()
            fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq, **kw)
            out.append(time.perf_counter() - t0)
        # a phenotype evaluated without them, at the end of a run: the process has kept the rows
        # evolution computed (within EVO_INDICATOR_CACHE_MB), so no indicator is computed again
        t0 = time.perf_counter()
        fast.block_sums_of(arrays, fam, X, space.names, settings, market.freq, None, edges)
        sums_t.append(time.perf_counter() - t0)
    blob_bytes = [len(b) for b in stored.encode(sums[:, None])]
    return {
        "benchmark": "verdict cost",
        "threads": numba.get_num_threads(),
        "repeats": repeats,
        "cscv_phenotypes": phenotypes,
        "cscv_blocks": blocks,
        "cscv_splits": int(len(cscv.splits(blocks))),
        "cscv_seconds": statistics.median(cscv_t),
        "strategies": n,
        "bars": n_bars,
        "evaluation_ms_per_strategy": 1e3 * statistics.median(eval_t) / n,
        "evaluation_with_block_sums_ms_per_strategy": 1e3 * statistics.median(with_t) / n,
        "evaluation_with_block_sums_over_without": statistics.median(with_t) / statistics.median(eval_t),
        "block_sums_stored_bytes_per_phenotype": float(np.mean(blob_bytes)),
        "block_sums_at_end_ms_per_phenotype": 1e3 * statistics.median(sums_t) / n,
        "monte_carlo_resamples": v.monte_carlo_resamples,
        "monte_carlo_seconds_per_member": statistics.median(mc_t),
    }


def pbo_run_benchmark(pop_size: int = 1000, n_bars: int = 87_600, generations: int = 100, repeats: int = 1) -> dict:
    """PBO's cost in whole runs: `evo run` as a user types it (Prefect's ephemeral API, SQLite), of the
    embedded default's family, objectives and validation on a synthetic market of `n_bars` hourly bars,
    with PBO (validation.cscv_blocks = 16, the default) and without it (0), interleaved, after one
    warm-up pair (none for one repeat: a quick check); medians over `repeats`. Also each run's generation figures, its database's bytes, the
    seconds of the verdict's PBO step alone (evo.oos.scoring.pbo again on the finished run) and what CSCV
    found."""
    import subprocess
    import sys

    from evo.flows.bench.robust import run_figures
    from evo.oos import scoring
    from evo.run.opening import reopen
    evo = str(Path(sys.executable).parent / "evo")
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="evo-bench-pbo-") as tmp:
        folder = Path(tmp)
        for key, blocks in (("without", 0), ("with", 16)):
            (folder / f"{key}.toml").write_text(
                f"[data.synthetic]\nn_bars = {n_bars}\n\n[algorithm]\npop_size = {pop_size}\n"
                f"generations = {generations}\n\n[validation]\ncscv_blocks = {blocks}\n")
        first = 0 if repeats == 1 else 1  # the warm-up pair compiles and warms caches
        for rep in range(1 - first, repeats + 1):
            pairs = (("without", 0), ("with", 16)) if rep % 2 == 0 else (("with", 16), ("without", 0))
            for key, blocks in pairs:
                name = f"{key}-{rep}"
                url = f"sqlite:///{folder / name}.db"
                t0 = time.perf_counter()
                res = subprocess.run([evo, "run", f"{key}.toml", "--name", name, "--db", url], cwd=folder,
                                     capture_output=True, text=True)
                wall = time.perf_counter() - t0
                if res.returncode != 0:
                    raise RuntimeError(f"evo run failed: {res.stderr.strip().splitlines()[-1:]}")
                r = run_figures(folder, name, wall)
                if blocks:
                    ctx, store = reopen(name, database=url, write=False)
                    t0 = time.perf_counter()
                    found = scoring.pbo(ctx)
                    r["pbo_step_seconds"] = time.perf_counter() - t0
                    r["phenotypes"] = found["pbo_detail"]["phenotypes"]
                    r["computed_at_end"] = found["pbo_detail"]["computed_at_end"]
                    r["pbo"] = found["pbo"]
                    store.dispose()
                if rep:
                    runs[key].append(r)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    ratio = {f: med["with"][f] / med["without"][f] for f in med["without"] if med["without"][f]}
    return {"benchmark": "PBO cost in whole runs", "population": pop_size, "bars": n_bars,
            "generations": generations, "repeats": repeats, **med, "ratio": ratio}


def pbo_run_table(r: dict) -> tuple[str, list[str], list[list[str]]]:
    """The results as one (title, header, rows) table."""
    a, b, q = r["without"], r["with"], r["ratio"]
    rows = [
        ["`evo run` seconds (the verdict included)", f"{a['run_seconds']:.1f}", f"{b['run_seconds']:.1f}",
         f"{q['run_seconds']:.3f}"],
        ["generations' seconds", f"{a['generation_seconds']:.1f}", f"{b['generation_seconds']:.1f}",
         f"{q['generation_seconds']:.3f}"],
        ["evaluation seconds", f"{a['evaluation_seconds']:.2f}", f"{b['evaluation_seconds']:.2f}",
         f"{q['evaluation_seconds']:.3f}"],
        ["database bytes", f"{a['database_bytes']:.0f}", f"{b['database_bytes']:.0f}", f"{q['database_bytes']:.3f}"],
        ["PBO step alone (seconds)", "", f"{b['pbo_step_seconds']:.2f}", ""],
        ["behaviours tried / block sums computed at the end", "",
         f"{b['phenotypes']:.0f} / {b['computed_at_end']:.0f}", ""],
        ["PBO", "", f"{b['pbo']:.3f}", ""],
    ]
    return (f"PBO's cost: population {r['population']}, {r['generations']} generations, {r['bars']} bars "
            f"(medians of {r['repeats']})", ["what", "without PBO", "with PBO", "ratio"], rows)
