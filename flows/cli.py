"""The `evo` command line. Imports are lazy so that `evo --help` answers at once.

It lives in flows/ because `run` and `resume` start the Prefect flow; evo/
stays free of Prefect.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Evolve Pareto sets of trading strategies (NSGA-II + vectorbt + Prefect, stored in SQL).",
)

_DEBUG = False
DbOpt = typer.Option(None, "--db", help="SQLAlchemy URL (default: EVO_DATABASE_URL, then sqlite:///evo.db).")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    global _DEBUG
    _DEBUG = debug


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from evo.config import ConfigError
    from evo.data import DataError
    from evo.runs import RunError
    from evo.store import StoreError

    return (ConfigError, DataError, RunError, StoreError, KeyError, MemoryError)


def _guard(fn, *args, **kwargs):
    """Run fn; a known user error becomes one line on stderr and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except typer.Exit:
        raise
    except _user_errors() as e:
        if _DEBUG:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        _fail(str(msg))
    except Exception as e:
        if _DEBUG:
            raise
        _fail(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''} (run with --debug for the traceback)", 1)


def _quiet_prefect() -> None:
    # one line per generation, not per task run; the shutdown of the ephemeral API server
    # logs harmless flush errors at ERROR level
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its ephemeral API 20 s to start (its first start also migrates its database);
    # on a busy 2-core machine that was seen to run out, failing a run that had not begun
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _run_flow(**params) -> dict:
    _quiet_prefect()
    from evo.store import has_password
    from flows.evolve import evolve

    if has_password(params.get("db_url")):
        # flow parameters are stored by Prefect: a URL with a password travels in the environment
        os.environ["EVO_DATABASE_URL"] = params.pop("db_url")
    return evolve(**params)


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="TOML config (default: the embedded default config)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: config name or file stem)."),
    db: Optional[str] = DbOpt,
    generations: Optional[int] = typer.Option(None, "--generations", help="Total generations (>= 1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the evolution."),
) -> None:
    """Start a run (or continue it, if a run of that name has the same config)."""

    def go():
        from evo import config as cfgmod
        from evo import runs

        cfg = cfgmod.load(config) if config is not None else cfgmod.RunConfig(name="default")
        cfg = cfg.with_overrides(name=name, seed=seed, generations=generations)
        # every check (config, data, database, name) before Prefect starts; writes nothing
        runs.start(cfg, db_url=db, check_only=True)
        out = _run_flow(config=cfg, name=cfg.name, db_url=db)
        _print_result(out["name"], db)

    _guard(go)


@app.command()
def resume(
    name: str = typer.Argument(..., help="Run name."),
    db: Optional[str] = DbOpt,
    generations: Optional[int] = typer.Option(None, "--generations", help="New total generations (extends a finished run)."),
) -> None:
    """Continue a run from its last committed generation."""

    def go():
        from evo import runs

        # unknown run, changed data, a busy run, a bad --generations: fail before Prefect starts
        runs.reopen(name, db_url=db, generations=generations, check_only=True)
        out = _run_flow(config=None, name=name, db_url=db, generations=generations)
        _print_result(out["name"], db)

    _guard(go)


@app.command("runs")
def list_runs(db: Optional[str] = DbOpt) -> None:
    """List runs in the database."""

    def go():
        from rich.console import Console
        from rich.table import Table

        from evo import summary

        rows = summary.list_runs(db)
        t = Table("name", "status", "generations", "family", "data", "created")
        for r in rows:
            t.add_row(r["name"], r["status"], f"{r['generations_done']}/{r['generations_target']}", r["family"], r["data_fingerprint"][:12], r["created_at"][:19])
        Console().print(t)

    _guard(go)


@app.command()
def show(
    name: str = typer.Argument(..., help="Run name."),
    db: Optional[str] = DbOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (name, status, generations_done, data_fingerprint, pareto)."),
) -> None:
    """Show a run: status, generations and its Pareto set."""

    def go():
        from evo import summary

        s = summary.summary(name, db)
        if as_json:
            typer.echo(json.dumps(s, indent=2))
        else:
            summary.print_summary(s)

    _guard(go)


@app.command()
def walkforward(
    config: Path = typer.Argument(..., help="TOML config; validation.holdout and validation.walk_forward set the folds."),
    name: Optional[str] = typer.Option(None, "--name", help="Name (its folds are NAME/wf1, NAME/wf2, ...)."),
    db: Optional[str] = DbOpt,
    folds: Optional[int] = typer.Option(None, "--folds", help="Override validation.walk_forward.folds."),
    mode: Optional[str] = typer.Option(None, "--mode", help="rolling or anchored."),
) -> None:
    """Walk-forward validation: evolve per fold, score each fold's choice on the next bars, stitch them."""

    def go():
        from evo import config as cfgmod
        from evo import runs

        cfg = cfgmod.load(config)
        d = cfg.model_dump(mode="json")
        if name:
            d["name"] = name
        if folds is not None:
            d["validation"]["walk_forward"]["folds"] = folds
        if mode is not None:
            d["validation"]["walk_forward"]["mode"] = mode
        cfg = cfgmod.validate(d, source=str(config))
        market = runs.prepare(cfg)
        from evo import validation

        validation.folds(market, cfg.validation)  # refuse impossible folds before Prefect starts
        _quiet_prefect()
        from evo.store import has_password
        from flows.walkforward import walk_forward

        db_url = db
        if has_password(db):
            os.environ["EVO_DATABASE_URL"] = db
            db_url = None
        result = walk_forward(config=cfg, name=cfg.name, db_url=db_url)
        _print_walk_forward(cfg.name, result)

    _guard(go)


def _print_walk_forward(name: str, r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from evo.summary import _fmt

    console = Console(width=None if sys.stdout.isatty() else 120)
    t = Table("fold", "trains on bars", "tests on bars", "test from", "sharpe in", "sharpe test", "return test",
              "trades test", title=f"walk-forward {name} ({r['mode']}{', warm start' if r['warm_start'] else ''})",
              title_justify="left")
    for f in r["folds"]:
        t.add_row(str(f["fold"]), f"{f['train'][0]}-{f['train'][1]}", f"{f['test'][0]}-{f['test'][1]}",
                  f["test_start"][:19], _fmt(f["in_sample"]["sharpe_ratio"]), _fmt(f["test_window"]["sharpe_ratio"]),
                  _fmt(f["test_window"]["total_return"]), _fmt(f["test_window"]["n_trades"]))
    console.print(t)
    s = r["stitched"]
    console.print(
        f"stitched out of sample, {s.get('bars', 0)} bars: return {_fmt(s.get('total_return'))}, "
        f"Sharpe {_fmt(s.get('sharpe_ratio'))}, max drawdown {_fmt(s.get('max_drawdown'))}, "
        f"P(Sharpe > 0) {_fmt(s.get('prob_sharpe_positive'))}"
    )


@app.command()
def report(
    name: str = typer.Argument(..., help="Run name."),
    out: Path = typer.Option(Path("report.html"), "--out", help="The HTML file to write."),
    db: Optional[str] = DbOpt,
) -> None:
    """Write one self-contained HTML report of a run (Pareto front in and out of sample, curves, verdict)."""

    def go():
        from evo.report import write_report

        path = write_report(name, db, out)
        typer.echo(f"report written to {path}")

    _guard(go)


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML whose RunConfig is the form's default (default: the embedded default)."),
    name: str = typer.Option("evolve", "--name", help="Deployment name."),
    cron: Optional[str] = typer.Option(None, "--cron", help="Schedule: a cron expression, e.g. '0 * * * *'."),
    interval: Optional[float] = typer.Option(None, "--interval", help="Schedule: every this many seconds."),
    continue_run: Optional[str] = typer.Option(None, "--continue-run", help="Each run continues this evo run (scheduled continuation)."),
    by: int = typer.Option(5, "--by", min=1, help="With --continue-run: generations added per run."),
    reevaluate_on_new_data: bool = typer.Option(True, "--reevaluate-on-new-data/--refuse-new-data", help="With --continue-run: re-evaluate the survivors when the market data changed."),
    limit: int = typer.Option(1, "--limit", min=1, help="Concurrent runs of this deployment (1: scheduled runs never overlap)."),
    db: Optional[str] = DbOpt,
) -> None:
    """Serve the `evolve` flow as a Prefect deployment from this process (Ctrl-C stops it)."""

    def go():
        from evo import config as cfgmod
        from evo.store import has_password, mask_url

        if cron and interval:
            raise cfgmod.ConfigError("give --cron or --interval, not both")
        params: dict = {}
        if continue_run:
            params = {"name": continue_run, "extend_by": by, "reevaluate_on_new_data": reevaluate_on_new_data}
            description = f"Continues run {continue_run!r} by {by} generation(s) per run."
        else:
            cfg = cfgmod.load(config) if config is not None else cfgmod.RunConfig(name="default")
            params = {"config": cfg.model_dump(mode="json"), "name": cfg.name}
            description = "Evolve a Pareto set of trading strategies; the form is RunConfig."
        if db:
            if has_password(db):
                os.environ["EVO_DATABASE_URL"] = db  # flow runs inherit it; Prefect never stores it
            else:
                params["db_url"] = db
        _quiet_prefect()
        from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
        from prefect.deployments.runner import EntrypointType

        from flows.evolve import evolve

        typer.echo(f"serving deployment evolve/{name} (database {mask_url(db or os.environ.get('EVO_DATABASE_URL') or 'sqlite:///evo.db')})")
        evolve.serve(
            name=name,
            cron=cron,
            interval=interval,
            parameters=params,
            description=description,
            tags=["evo"],
            global_limit=ConcurrencyLimitConfig(limit=limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
            entrypoint_type=EntrypointType.MODULE_PATH,
        )

    _guard(go)


@app.command()
def bench(
    engine: bool = typer.Option(True, "--engine/--no-engine", help="Evaluation throughput (fast engine, seeds' vectorbt pattern, bare kernel)."),
    rss: bool = typer.Option(True, "--rss/--no-rss", help="Peak RSS at 1,000 and 10,000 strategies x 100,000 bars."),
    persist: bool = typer.Option(True, "--persist/--no-persist", help="Time persisting one generation."),
    generation: bool = typer.Option(True, "--generation/--no-generation", help="CPU of NSGA-II's vary and select at populations 100, 1,000 and 10,000, beside pymoo's own loop (about 20 s)."),
    orchestration: bool = typer.Option(False, "--orchestration", help="Only the Prefect overhead: the same evolution through the flow and as a plain loop (about 3 minutes)."),
    n: int = typer.Option(1000, "--n", min=1, help="Strategies (engine) / individuals (persist)."),
    bars: int = typer.Option(87_600, "--bars", min=100, help="Bars for the throughput benchmark."),
    repeats: int = typer.Option(5, "--repeats", min=1),
    db: Optional[str] = typer.Option(None, "--db", help="Database for --persist (default: a temporary SQLite file)."),
    out: Path = typer.Option(Path("bench-results/bench.json"), "--out", help="Where to write the JSON results."),
) -> None:
    """Measure the figures in the README's performance table (medians over repeats, one run)."""

    def go():
        nonlocal engine, rss, persist, generation  # --orchestration turns them off below
        from rich.console import Console
        from rich.table import Table

        from evo import bench as b

        console = Console(width=None if sys.stdout.isatty() else 120)
        results: dict = {}
        if orchestration:
            _quiet_prefect()
            from flows.bench import orchestration_benchmark

            r = results["orchestration"] = orchestration_benchmark(pop_size=n, n_bars=bars, repeats=max(1, min(repeats, 3)))
            t = Table("what", "value", title=f"orchestration: population {r['population']}, {r['generations']} generations, {r['bars']} bars, fast engine, SQLite (medians of {r['repeats']})", title_justify="left")
            t.add_row("plain loop (same step functions, no Prefect)", f"{r['plain_seconds']:.2f} s")
            t.add_row("Prefect flow on the ephemeral API", f"{r['prefect_seconds']:.2f} s")
            t.add_row("ratio", f"{r['ratio']:.3f}")
            t.add_row("orchestration per generation", f"{r['orchestration_ms_per_generation']:.0f} ms")
            t.add_row("  Prefect CPU in this process, per generation", f"{r['client_cpu_ms_per_generation']:.0f} ms")
            t.add_row("  API server CPU, per generation", f"{r['server_cpu_ms_per_generation']:.0f} ms")
            t.add_row("same checkpoints", str(r["same_result"]))
            console.print(t)
            engine = rss = persist = generation = False
        if engine:
            r = results["engine"] = b.engine_benchmark(n=n, n_bars=bars, repeats=repeats)
            t = Table("what", "strategy-bars/s", title=f"evaluation: {r['family']}, {r['strategies']} strategies x {r['bars']} bars, {r['threads']} threads", title_justify="left")
            t.add_row("1. fast engine, full fitness (indicators, signals, simulation, metrics)", f"{r['full_fitness_per_s']:.3g}")
            t.add_row(f"2. seeds' vectorbt pattern ({r['seeds_pattern_subset']} strategies, per strategy-bar)", f"{r['seeds_pattern_per_s']:.3g}")
            t.add_row("3. bare fused kernel on precomputed signals", f"{r['bare_kernel_per_s']:.3g}")
            t.add_row("1 / 2", f"{r['full_over_seeds']:.0f}x")
            t.add_row("1 / 3", f"{100 * r['full_over_bare']:.0f} %")
            t.add_row("same metrics (1 vs 2, 1 vs 3)", f"{r['seeds_metrics_equal_fast']}, {r['bare_metrics_equal_full']}")
            console.print(t)
        if rss:
            rows = [b.rss_benchmark(k) for k in (1000, 10_000)]
            results["rss"] = rows
            t = Table("strategies x bars", "peak RSS", "RSS before", "seconds", "strategy-bars/s", title="peak RSS of a fresh process, fast engine", title_justify="left")
            for r in rows:
                t.add_row(f"{r['strategies']} x {r['bars']}", f"{r['peak_rss_mb']:.0f} MB", f"{r['rss_before_evaluation_mb']:.0f} MB", f"{r['seconds']:.2f}", f"{r['strategy_bars_per_s']:.3g}")
            console.print(t)
        if persist:
            r = results["persist"] = b.persist_benchmark(db, n=n, repeats=max(repeats, 5))
            t = Table("backend", "individuals", "median", "min", "max", title="persist one generation (one transaction)", title_justify="left")
            t.add_row(r["backend"], str(r["individuals"]), f"{r['median_ms']:.1f} ms", f"{r['min_ms']:.1f} ms", f"{r['max_ms']:.1f} ms")
            console.print(t)
        if generation:
            r = results["generation"] = b.generation_benchmark()
            t = Table("path", "population", "vary", "select", "vary + select", "growth k (t ~ n^k) from the size before",
                      title="NSGA-II bookkeeping per generation, CPU ms (evaluation excluded; medians)", title_justify="left")
            for path, by_n in r["steps"].items():
                prev = None
                for n_, v in by_n.items():
                    k = r["growth"][path].get(f"{prev}-{n_}") if prev is not None else None
                    t.add_row(path, str(n_), f"{v['vary_ms']:.2f}", f"{v['select_ms']:.2f}", f"{v['total_ms']:.2f}",
                              "" if k is None else f"vary {k['vary_ms']:.2f}, select {k['select_ms']:.2f}")
                    prev = n_
            console.print(t)
        b.write_json(results, out)
        typer.echo(f"wrote {out}")

    _guard(go)


def _print_result(name: str, db: str | None) -> None:
    from evo import summary

    summary.print_summary(summary.summary(name, db))


def main() -> None:
    # like `python -m`: a user family named "mymodule:MyFamily" in the config may live in the current folder
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted; `evo resume NAME` continues from the last committed generation", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
