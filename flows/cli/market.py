"""`evo signals`, `evo export`: a run's members taken to the market. Read-only: they never write to the
database (export writes only the file it is asked for)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from evo.flows.cli.common import command, console, database, db_option, text


@command()
def signals(
    name: str = typer.Argument(..., help="Run name."),
    data: List[str] = typer.Option(..., "--data", help="Market data files (the run's symbols, usually with newer bars)."),
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
