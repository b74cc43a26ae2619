"""`evo run`, `evo resume`, `evo walkforward`: commands that advance runs through the Prefect flows."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from evo.flows.cli.common import api_ready, command, console, database, db_option, flow_db_param, prefect_env, text


@contextlib.contextmanager
def named(path: Path | None):
    """A config error found after the schema (family, dates, URL) names the file, as the schema's do."""
    from evo.config import ConfigError

    try:
        yield
    except ConfigError as e:
        if path is None or str(e).startswith(f"{path}: "):
            raise
        raise ConfigError(f"{path}: {e}") from None


def _run_flow(**params) -> dict:
    prefect_env()
    from prefect import tags

    from evo.flows.evolve import evolve
    from evo.flows.heal import TAG

    api_ready()
    with tags(TAG):  # heartbeats of a tagged run are watched by the `evo heal` automation
        return evolve(**{k: v for k, v in params.items() if v is not None})


@command()
def run(
    config: Optional[Path] = typer.Argument(None, help="TOML config (default: the embedded default config)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: config name or file stem)."),
    db: Optional[str] = db_option(),
    generations: Optional[int] = typer.Option(None, "--generations", help="Total generations (>= 1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the evolution."),
) -> None:
    """Start a run (or continue it, if a run of that name has the same config)."""
    from evo import config as cfgmod
    from evo.run import cluster, opening

    cfg = cfgmod.load(config) if config is not None else cfgmod.RunConfig(name="default")
    cfg = cfg.with_overrides(name=name, seed=seed, generations=generations)
    url = database(db, cfg)
    # every check (config, a Dask cluster, data, database, name) before Prefect starts; writes nothing
    with named(config):
        cluster.preflight(cfg)
        opening.start(cfg, database=url, check_only=True)
    out = _run_flow(config=cfg, name=cfg.name, db_url=flow_db_param(url))
    print_result(out["name"], url)


@command()
def resume(
    name: str = typer.Argument(..., help="Run name."),
    db: Optional[str] = db_option(),
    generations: Optional[int] = typer.Option(
        None, "--generations", help="New total generations (extends a finished run; never below what is committed)."
    ),
) -> None:
    """Continue a run from its last committed generation."""
    from evo.run import opening

    url = database(db)
    # unknown run, changed data, a busy run, a bad --generations: fail before Prefect starts
    opening.reopen(name, database=url, generations=generations, check_only=True)
    out = _run_flow(config=None, name=name, db_url=flow_db_param(url), generations=generations)
    print_result(out["name"], url)


@command()
def walkforward(
    config: Path = typer.Argument(..., help="TOML config; validation.holdout and validation.walk_forward set the folds."),
    name: Optional[str] = typer.Option(None, "--name", help="Name (its folds are NAME/wf1, NAME/wf2, ...)."),
    db: Optional[str] = db_option(),
    folds: Optional[int] = typer.Option(None, "--folds", help="Override validation.walk_forward.folds."),
    mode: Optional[str] = typer.Option(None, "--mode", help="rolling or anchored."),
) -> None:
    """Walk-forward validation: evolve per fold, score each fold's choice on the next bars, stitch them."""
    from evo import config as cfgmod
    from evo.market import windows
    from evo.run import opening

    cfg = cfgmod.load(config)
    d = cfg.model_dump(mode="json")
    if name:
        d["name"] = name
    if folds is not None:
        d["validation"]["walk_forward"]["folds"] = folds
    if mode is not None:
        d["validation"]["walk_forward"]["mode"] = mode
    cfg = cfgmod.validate(d, source=str(config))
    url = database(db, cfg)
    with named(config):
        market = opening.prepare(cfg)
    windows.folds(market, cfg.validation)  # refuse impossible folds before Prefect starts
    prefect_env()
    from prefect import tags

    from evo.flows.heal import TAG
    from evo.flows.walkforward import walk_forward

    with tags(TAG):
        api_ready()
        result = walk_forward(config=cfg, name=cfg.name, db_url=flow_db_param(url) or "")
    print_walk_forward(cfg.name, result)


def print_walk_forward(name: str, r: dict) -> None:
    from rich.table import Table

    from evo.view.summary import fmt

    t = Table("fold", "trains on bars", "tests on bars", "test from", "sharpe in", "sharpe test", "return test",
              "trades test", title=f"walk-forward {text(name)} ({r['mode']}{', warm start' if r['warm_start'] else ''})",
              title_justify="left")
    for f in r["folds"]:
        t.add_row(str(f["fold"]), f"{f['train'][0]}-{f['train'][1]}", f"{f['test'][0]}-{f['test'][1]}",
                  f["test_start"][:19], fmt(f["in_sample"]["sharpe_ratio"]), fmt(f["test_window"]["sharpe_ratio"]),
                  fmt(f["test_window"]["total_return"]), fmt(f["test_window"]["n_trades"]))
    out = console()
    out.print(t)
    s = r["stitched"]
    out.print(
        f"stitched out of sample, {s.get('bars', 0)} bars: return {fmt(s.get('total_return'))}, "
        f"Sharpe {fmt(s.get('sharpe_ratio'))}, max drawdown {fmt(s.get('max_drawdown'))}, "
        f"P(Sharpe > 0) {fmt(s.get('prob_sharpe_positive'))}"
    )


def print_result(name: str, url: str) -> None:
    from evo.view import summary

    summary.print_summary(summary.summary(name, url))
