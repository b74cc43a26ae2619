"""`evo signals`, `evo export`, `evo paper`: a run's members taken to the market. signals and export only
read the database (export writes only the file it is asked for); `evo paper create` and `tick` write the
paper book and its ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from evo.flows.cli.common import app, command, console, database, db_option, text


@command()
def signals(
    name: str = typer.Argument(..., help="Run name."),
    data: List[str] = typer.Option(..., "--data", help="Market data files (the run's symbols, usually with newer bars), "
                                   "or one module:function loader returning {symbol: OHLCV DataFrame}."),
    member: Optional[List[str]] = typer.Option(None, "--member", help="A member id (`evo show` lists them); "
                                               "repeat for several. Default: the final Pareto set."),
    db: Optional[str] = db_option(),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list: member, symbol, bar, position, order, ..."),
) -> None:
    """What each member holds after the last bar, what the last bar ordered, and the stops for the next bar."""
    from evo.live import signals as sig
    from evo.live.members import open_run
    from evo.view.summary import fmt

    run = open_run(name, database(db))
    chosen = run.members(member)
    rows = sig.signals(run, chosen, sig.load_data(run, data))
    if as_json:
        from evo.config import codec

        typer.echo(json.dumps(codec.encode(rows, nan=None), indent=2))
        return
    from rich.table import Table

    t = Table("member", "symbol", "bar", "position", "side", "entry", "bars held", "last order", "stop-loss",
              "take-profit", title=f"{text(name)}: positions after the last bar, stops for the next")
    for r in rows:
        stop = fmt(r["stop_loss"]) + (" (trailing)" if r["trailing"] and r["stop_loss"] is not None else "")
        t.add_row(r["member"], text(r["symbol"]), r["bar"][:19], fmt(r["position"]), r["side"], fmt(r["entry_price"]),
                  str(r["bars_held"]), fmt(r["order"]), stop, fmt(r["take_profit"]))
    console().print(t)


@command()
def export(
    name: str = typer.Argument(..., help="Run name."),
    member: str = typer.Option(..., "--member", help="The member's id (`evo show` lists them)."),
    out: Path = typer.Option(Path("strategy.py"), "--out", help="The Python file to write."),
    db: Optional[str] = db_option(),
) -> None:
    """Write one member as a standalone Python script (vectorbt, numpy and pandas only) that reproduces its backtest."""
    from evo.live.export import export as write
    from evo.live.members import open_run

    run = open_run(name, database(db))
    m = run.member(member)
    path = write(run, m, out)
    typer.echo(f"member {m.id} of run {name} written to {path}; run it: python {path} DATA.csv... --json")


paper_app = typer.Typer(no_args_is_help=True, help="Paper books: a run's members traded forward on new bars.")
app.add_typer(paper_app, name="paper")


@command("create", on=paper_app)
def paper_create(
    name: str = typer.Argument(..., help="The book's name."),
    run: str = typer.Option(..., "--run", help="The run whose members it trades."),
    data: List[str] = typer.Option(..., "--data", help="Market data files (the run's symbols), or one module:function "
                                   "loader returning {symbol: OHLCV DataFrame}; read on every tick."),
    member: Optional[List[str]] = typer.Option(None, "--member", help="A member id; repeat. Default: the final Pareto set."),
    start: Optional[str] = typer.Option(None, "--start", help="Trade from this bar (default: the bar after the data's last)."),
    db: Optional[str] = db_option(),
) -> None:
    """Create a paper book in the evo database."""
    from evo.live import paper

    book = paper.create(database(db), name, run, data, member or [], start)
    typer.echo(f"paper book {name} of run {run}: {len(book.members)} members, trading from {book.start}")


@command("tick", on=paper_app)
def paper_tick(name: str = typer.Argument(..., help="The book's name."), db: Optional[str] = db_option()) -> None:
    """Append the new bars to the book's ledger (idempotent), then judge each member's drift."""
    from evo.live import paper

    url = database(db)
    r = paper.tick(url, name)
    ids = dict(zip(paper.full_members(url, name), paper.show(url, name)["members"]))
    drifting = [ids[d["member"]] for d in r["drift"] if d["drift"]]
    typer.echo(f"paper book {name}: {r['rows']} ledger rows written, last bar {r['last_bar']}; "
               f"drift: {', '.join(drifting) or 'none'}")


@command("show", on=paper_app)
def paper_show(
    name: str = typer.Argument(..., help="The book's name."),
    db: Optional[str] = db_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a paper book: its members' last ledger rows and their drift."""
    from evo.live import paper
    from evo.view.summary import fmt, money

    s = paper.show(database(db), name)
    if as_json:
        from evo.config import codec

        typer.echo(json.dumps(codec.encode(s, nan=None), indent=2))
        return
    from rich.table import Table

    t = Table("member", "symbol", "bar", "position", "cash", "equity", "paper bars", "z", "drift",
              title=f"paper book {text(name)} (run {text(s['run'])}), from {s['start'][:19]}")
    drift = {d["member"]: d for d in s["drift"]}
    for r in s["last"]:
        d = drift[r["member"]]
        t.add_row(r["member"], text(r["symbol"]), r["bar"][:19], fmt(r["position"]), money(r["cash"]), money(r["equity"]),
                  str(d["bars"]), fmt(d["z"]), "yes" if d["drift"] else "no")
    console().print(t)


@command("serve", on=paper_app)
def paper_serve(
    *,
    name: str = typer.Argument(..., help="The book's name; also the deployment's (paper-tick/NAME)."),
    cron: Optional[str] = typer.Option(None, "--cron", help="Schedule: a cron expression, e.g. '*/5 * * * *'."),
    interval: Optional[float] = typer.Option(None, "--interval", min=1, max=366 * 86400, help="Schedule: every this many seconds."),
    notify: Optional[str] = typer.Option(None, "--notify", help="A Prefect notification block ('custom-webhook/NAME', "
                                         "'slack-webhook/NAME'): each drift breach is sent through it once."),
    db: Optional[str] = db_option(),
) -> None:
    """Serve the book's ticks as a Prefect deployment on a schedule (Ctrl-C or SIGTERM stops it)."""
    from evo import config as cfgmod
    from evo.flows.cli.common import api_ready
    from evo.flows.cli.serve import _prepare_serving, _serve
    from evo.live import paper
    from evo.store import url as urls

    if bool(cron) == bool(interval):
        raise cfgmod.ConfigError("give --cron or --interval (one of them)")
    url = database(db)
    paper.full_members(url, name)  # the book exists: refused in one line before anything is served
    params: dict = {"book": name}
    _prepare_serving(params, db, url, cron)
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType

    from evo.flows import heal as healing
    from evo.flows.paper import notify_automation, paper_tick

    api_ready()
    if notify:
        done = healing.install([notify_automation(notify)])
        typer.echo("automations: " + ", ".join(f"{n!r} {what}" for n, what in done))
    typer.echo(f"serving deployment paper-tick/{text(name)} (database {urls.mask(url)})")
    _serve(paper_tick, name=name, cron=cron, interval=interval, parameters=params,
           description=f"Ticks paper book {name!r}: its new bars into its ledger, drift judged.", tags=[healing.TAG],
           concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
           entrypoint_type=EntrypointType.MODULE_PATH)
