"""`evo runs`, `evo show`, `evo report`: read-only commands (they never create or migrate a database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from evo.flows.cli.common import command, console, database, db_option, text


@command("runs")
def list_runs(db: Optional[str] = db_option()) -> None:
    """List runs in the database."""
    from rich.table import Table

    from evo.view import summary

    t = Table("name", "status", "generations", "family", "data", "created")
    for r in summary.list_runs(database(db)):
        t.add_row(text(r["name"]), r["status"], f"{r['generations_done']}/{r['generations_target']}",
                  text(r["family"]), r["data_fingerprint"][:12], r["created_at"][:19])
    console().print(t)


@command()
def show(
    name: str = typer.Argument(..., help="Run name."),
    db: Optional[str] = db_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (name, status, generations_done, data_fingerprint, pareto)."),
) -> None:
    """Show a run: status, generations and its Pareto set."""
    from evo.view import summary

    s = summary.summary(name, database(db))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
    else:
        summary.print_summary(s)


@command()
def report(
    name: str = typer.Argument(..., help="Run name."),
    out: Path = typer.Option(Path("report.html"), "--out", help="The HTML file to write."),
    db: Optional[str] = db_option(),
) -> None:
    """Write one self-contained HTML report of a run (Pareto front in and out of sample, curves, verdict)."""
    from evo.view.report import write_report

    path = write_report(name, database(db), out)
    typer.echo(f"report written to {path}")

