"""The cost of robust fitness (`evo bench --robust`): the same evolution with and without
`algorithm.robustness.aggregate`, as plain runs of the flow's own loop, interleaved."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def _config(pop_size: int, n_bars: int, generations: int, neighbours: int, aggregate: str | None, name: str):
    from evo.config import validate

    robustness = {"neighbours": neighbours} | ({"aggregate": aggregate} if aggregate else {})
    return validate({"name": name, "seed": 5, "data": {"synthetic": {"n_bars": n_bars, "freq": "1h", "seed": 11}},
                     "algorithm": {"pop_size": pop_size, "generations": generations, "robustness": robustness}})


def _one(folder: Path, cfg) -> dict:
    """One run in a fresh SQLite file: its wall time, its generations' own figures, the file's size."""
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    t0 = time.perf_counter()
    drive(cfg, None, None, f"sqlite:///{folder / cfg.name}.db", None, False, Plain())
    return run_figures(folder, cfg.name, time.perf_counter() - t0)


def run_figures(folder: Path, name: str, wall: float) -> dict:
    """A finished run's figures, from its SQLite file `folder/name.db`: the wall time given, its
    generations' own figures, the file's size."""
    from evo.store import Store

    store = Store(f"sqlite:///{folder / name}.db")
    stats = store.generation_stats(store.get_run(name).id)
    store.dispose()
    return {"run_seconds": wall, "generation_seconds": sum(s.seconds for s in stats),
            "evaluation_seconds": sum(s.eval_seconds for s in stats), "evaluated": sum(s.evaluated for s in stats),
            "cache_hits": sum(s.cache_hits for s in stats), "offspring": sum(s.n_offspring for s in stats),
            # SQLite's write-ahead log holds what the open store has not checkpointed yet
            "database_bytes": sum(p.stat().st_size for p in folder.glob(f"{name}.db*"))}


def robust_benchmark(pop_size: int = 100, n_bars: int = 50_000, generations: int = 4, neighbours: int = 8,
                     aggregate: str = "worst", repeats: int = 3) -> dict:
    """Medians over `repeats` (after one warm-up of each, discarded) of whole runs with and without robust
    fitness, and their ratios."""
    runs: dict[str, list[dict]] = {"report_only": [], "robust": []}
    with tempfile.TemporaryDirectory(prefix="evo-bench-robust-") as tmp:
        for rep in range(repeats + 1):
            for key, agg in (("report_only", None), ("robust", aggregate)):
                r = _one(Path(tmp), _config(pop_size, n_bars, generations, neighbours, agg, f"{key}-{rep}"))
                if rep:  # the first of each compiles and warms caches
                    runs[key].append(r)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    ratio = {f: (med["robust"][f] / med["report_only"][f] if med["report_only"][f] else None)
             for f in med["robust"]}
    return {"benchmark": "robust fitness cost", "population": pop_size, "bars": n_bars, "generations": generations,
            "neighbours": neighbours, "aggregate": aggregate, "repeats": repeats, **med, "ratio": ratio}


def table(r: dict) -> tuple[str, list[str], list[list[str]]]:
    """The results as one (title, header, rows) table."""
    a, b, q = r["report_only"], r["robust"], r["ratio"]
    rows = [
        ["new genomes evaluated", f"{a['evaluated']:.0f}", f"{b['evaluated']:.0f}", f"{q['evaluated']:.2f}"],
        ["evaluation seconds", f"{a['evaluation_seconds']:.3f}", f"{b['evaluation_seconds']:.3f}",
         f"{q['evaluation_seconds']:.2f}"],
        ["generations' seconds (vary to select)", f"{a['generation_seconds']:.3f}", f"{b['generation_seconds']:.3f}",
         f"{q['generation_seconds']:.2f}"],
        ["whole run seconds (verdict included)", f"{a['run_seconds']:.2f}", f"{b['run_seconds']:.2f}",
         f"{q['run_seconds']:.2f}"],
        ["database bytes", f"{a['database_bytes']:.0f}", f"{b['database_bytes']:.0f}", f"{q['database_bytes']:.2f}"],
    ]
    return (f"robust fitness ({r['aggregate']}, K = {r['neighbours']}): population {r['population']}, "
            f"{r['generations']} generations, {r['bars']} bars (medians of {r['repeats']})",
            ["what", "report only", "robust", "ratio"], rows)
