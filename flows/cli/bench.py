"""`evo bench`: the figures of the README's performance table, measured on the code users run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evo.flows.cli.common import api_ready, command, console, prefect_env


@command()
def bench(
    *,  # typer passes options by name
    engine: bool = typer.Option(True, "--engine/--no-engine", help="Evaluation throughput (fast engine, seeds' vectorbt pattern, bare kernel)."),
    signals: bool = typer.Option(True, "--signals/--no-signals", help="Full fitness long only against every simulation option (shorts, percent sizes, OHLC and trailing stops)."),
    portfolio: bool = typer.Option(True, "--portfolio/--no-portfolio", help="One shared-cash portfolio over 10 symbols against 10 separate backtests."),
    rss: bool = typer.Option(True, "--rss/--no-rss", help="Peak RSS of a fresh process at 1,000 and 10,000 strategies."),
    generation: bool = typer.Option(True, "--generation/--no-generation", help="A generation's bookkeeping (vary, select, persist: everything but evaluation) in the real loop at populations 100, 1,000 and 10,000, beside pymoo's own loop (about a minute)."),
    cluster: bool = typer.Option(False, "--cluster", help="Only the Dask path: the same evolution on 1 and 2 single-threaded Dask workers beside the thread path (--n, --bars, --generations, --repeats): scaling efficiency, the cluster path's cost per generation, the bytes that travel."),
    orchestration: bool = typer.Option(False, "--orchestration", help="Only the Prefect overhead: the same evolution through the flow and as a plain loop, then `evo run` itself (about 6 minutes)."),
    verdict: bool = typer.Option(False, "--verdict", help="Only the verdict's cost: CSCV over 20,000 phenotypes at 16 blocks, the evaluation with and without the block sums it computes for CSCV, their stored bytes, and one Pareto member's Monte Carlo risk (--n, --bars)."),
    pbo_run: bool = typer.Option(False, "--pbo-run", help="Only PBO's cost in whole runs: `evo run` of the same evolution with and without PBO (validation.cscv_blocks 16 and 0): seconds, database bytes (--n population, --bars, --generations, --repeats; at 1,000, 87,600 and 100, about 4 minutes a pair)."),
    robust: bool = typer.Option(False, "--robust", help="Only robust fitness's cost: the same evolution with and without algorithm.robustness.aggregate = 'worst' (K = 8), as plain runs (--n population, --bars, --generations, --repeats)."),
    n: int = typer.Option(1000, "--n", min=1, max=1_000_000, help="Strategies (engine, orchestration) / individuals (persist)."),
    bars: int = typer.Option(87_600, "--bars", min=300, max=10_000_000, help="Bars for the throughput and orchestration benchmarks."),
    run_bars: int = typer.Option(5000, "--run-bars", min=300, max=10_000_000, help="Daily bars of the `evo run` measurement of --orchestration."),
    rss_bars: int = typer.Option(100_000, "--rss-bars", min=300, max=10_000_000, help="Bars for the peak-RSS benchmark."),
    generations: int = typer.Option(20, "--generations", min=3, max=10_000, help="Generations of the orchestration benchmark."),
    repeats: int = typer.Option(5, "--repeats", min=1, max=100),
    db: Optional[str] = typer.Option(None, "--db", help="Database for --generation (default: a temporary SQLite file per population; give an empty one)."),
    sizes: list[int] = typer.Option([100, 1000, 10_000], "--population", min=4, max=100_000, help="Populations for --generation (repeat the option)."),
    out: Path = typer.Option(Path("bench-results/bench.json"), "--out", help="Where to write the JSON results."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Only this checkout's fast engine against another's: the Python of that checkout's environment (e.g. a worktree of the commit before a change). Full fitness long only and with every trading feature (--n, --bars) and the portfolio, each side in a process of its own, repeats interleaved."),
) -> None:
    """Measure the figures in the README's performance table (medians over repeats, one run)."""
    from rich.table import Table

    from evo.flows.bench import engine as b

    results: dict = {}
    if baseline:
        from evo.flows.bench.compare import compare_benchmark

        results["compare"] = compare_benchmark(baseline, n=n, n_bars=bars, repeats=repeats)
    elif verdict:
        from evo.flows.bench.verdict import verdict_benchmark

        results["verdict"] = verdict_benchmark(n=n, n_bars=bars, repeats=min(repeats, 3))
    elif pbo_run:
        prefect_env()
        from evo.flows.bench.verdict import pbo_run_benchmark

        results["pbo_run"] = pbo_run_benchmark(pop_size=n, n_bars=bars, generations=generations,
                                               repeats=min(repeats, 3))
    elif robust:
        from evo.flows.bench.robust import robust_benchmark

        results["robust"] = robust_benchmark(pop_size=n, n_bars=bars, generations=generations, repeats=min(repeats, 3))
    elif cluster:
        prefect_env()
        from evo.flows.bench.cluster import cluster_benchmark

        api_ready()
        results["cluster"] = cluster_benchmark(pop_size=n, n_bars=bars, generations=generations,
                                               repeats=min(repeats, 3))
    elif orchestration:
        prefect_env()
        from evo.flows.bench.orchestration import orchestration_benchmark, run_benchmark

        api_ready()
        results["orchestration"] = orchestration_benchmark(
            pop_size=n, generations=generations, n_bars=bars, repeats=min(repeats, 3)
        )
        results["run"] = run_benchmark(pop_size=n, n_bars=run_bars, repeats=repeats)
    else:
        if engine:
            results["engine"] = b.engine_benchmark(n=n, n_bars=bars, repeats=repeats)
        if signals:
            results["signals"] = b.signals_benchmark(n=n, n_bars=bars, repeats=repeats)
        if portfolio:
            results["portfolio"] = b.portfolio_benchmark(n=min(n, 100), repeats=repeats)
        if rss:
            results["rss"] = [b.rss_benchmark(k, rss_bars) for k in (1000, 10_000)]
        if generation:
            from evo.flows.bench.orchestration import generation_benchmark

            results["generation"] = generation_benchmark(database=db, sizes=sizes)
    show = console()
    for title, head, rows in b.tables(results):
        t = Table(*head, title=title, title_justify="left")
        for row in rows:
            t.add_row(*row)
        show.print(t)
    b.write_json(results, out)
    typer.echo(f"wrote {out}")

