"""What every `evo` command shares: the typer app, one-line errors, the database option, Prefect's settings.

Imports of evo, pandas or Prefect happen inside the commands, so that `evo --help` answers at once.
"""

from __future__ import annotations

import functools
import os

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Evolve Pareto sets of trading strategies (NSGA-II + vectorbt + Prefect, stored in SQL).",
)

state = {"debug": False, "urls": []}  # --debug, and the database URLs in play (their secrets are scrubbed)

DB_HELP = "SQLAlchemy URL (default: EVO_DATABASE_URL, then the config's storage.url, then sqlite:///evo.db)."


def db_option():
    return typer.Option(None, "--db", help=DB_HELP)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")) -> None:
    state["debug"] = debug


def printable(msg: str) -> str:
    """One line, with control and bidi characters shown as escapes and database secrets as ***."""
    from evo.store import url as urls
    from evo.view.text import printable as safe

    msg = urls.scrub(str(msg), state["urls"] + [urls.env_url_unchecked()])
    return safe(" ".join(msg.split("\n")))


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {printable(msg)}", err=True)
    raise typer.Exit(code)


def command(name: str | None = None, on: typer.Typer | None = None):
    """Register an `evo` command whose body runs inside the one error handling every command shares
    (as Prefect's `with_cli_exception_handling`): every EVO_* variable is checked before the body runs;
    a `UserError` becomes its one line on stderr and exit 2; anything else one line naming its type and
    exit 1 (`--debug`: the traceback). `on`: a command group (default: the top level)."""

    def register(fn):
        @functools.wraps(fn)
        def handled(*args, **kwargs):
            from evo.config.errors import UserError, first_line
            from evo.config.settings import settings

            try:
                settings()
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except UserError as e:
                if state["debug"]:
                    raise
                fail(str(e))
            except Exception as e:
                if state["debug"]:
                    raise
                fail(f"{type(e).__name__}: {first_line(e)} (run with --debug for the traceback)", 1)

        return (on or app).command(name)(handled)

    return register


def database(db: str | None, config=None) -> str:
    """The command's database URL: --db, then EVO_DATABASE_URL, then the config's storage.url, then the default."""
    from evo.store import url as urls

    url = urls.resolve(db, config.storage.url if config is not None else None)
    state["urls"].append(url)
    return url


def flow_db_param(url: str) -> str | None:
    """The flow's `db_url` parameter for `url`: Prefect stores parameters, so a URL with a password
    goes to the flow through the environment instead (EVO_DATABASE_URL, which the flow reads)."""
    from evo.store import url as urls

    if urls.has_secret(url):
        os.environ[urls.ENV] = url
        return None
    return url


def prefect_env(reaper: bool = True) -> None:
    """Settings for a command that runs flows; call it before Prefect is imported.

    With `reaper`, the processes this command starts die with it, even when it is killed.
    """
    if reaper:
        from evo.flows import reaper as r

        r.start()
    # one line per generation, not per task run; the shutdown of the ephemeral API server
    # logs harmless flush errors at ERROR level
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the local API's first start also migrates its database; on a busy 2-core machine 20 s (Prefect's
    # default) was seen to run out, failing a run that had not begun
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # heartbeats every 30 s: the "crash unresponsive evo runs" automation (`evo heal`) waits 90 s
    from evo.flows.heal import HEARTBEAT_SECONDS

    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    if not os.environ.get("PREFECT_API_URL"):
        from evo.flows import ephemeral

        ephemeral.start(server_nice())


def api_ready() -> None:
    """Wait for the local Prefect API `prefect_env` started (if it started one): call it right before the
    first flow runs, so that the server starts while the command imports Prefect and the flows."""
    from evo.flows import ephemeral

    ephemeral.ready(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))


def server_nice() -> int:
    from evo.config.settings import settings

    return settings().server_nice


def console():
    from evo.view.text import console as make

    return make()


def text(value) -> str:
    """A user string (a run name, a symbol, a gene name) made safe inside rich markup."""
    from evo.view.text import markup

    return markup(value)
