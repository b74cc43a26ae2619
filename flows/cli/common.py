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


def command(name: str | None = None):
    """Register an `evo` command whose body runs inside the one error handling every command shares
    (as Prefect's `with_cli_exception_handling`): every EVO_* variable is checked before the body runs;
    a `UserError` becomes its one line on stderr and exit 2; anything else one line naming its type and
    exit 1 (`--debug`: the traceback)."""

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

        return app.command(name)(handled)

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
    # Prefect gives its ephemeral API 20 s to start (its first start also migrates its database);
    # on a busy 2-core machine that was seen to run out, failing a run that had not begun
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # heartbeats every 30 s: the "crash unresponsive evo runs" automation (`evo heal`) waits 90 s
    from evo.flows.heal import HEARTBEAT_SECONDS

    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    if not os.environ.get("PREFECT_API_URL"):
        # Prefect's ephemeral API records task runs one event at a time by default; in batches its CPU per
        # generation halved here (96 -> 47 ms at 4 task runs), CPU that competes with the evaluation
        for k, v in EPHEMERAL_SERVER.items():
            os.environ.setdefault(k, v)
        _ephemeral_server_outside_the_working_folder()


#: settings of the ephemeral API server evo starts (a user's own setting wins)
EPHEMERAL_SERVER = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "2",
    # the event persister writes every event (3 per task run) to the events table, which only the UI's
    # event feed reads, and the ephemeral API has no UI; off, the server's CPU per generation fell from
    # ~50 to ~36 ms here. Flow runs, task runs, logs and artifacts are recorded as before.
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
}

def server_nice() -> int:
    from evo.config.settings import settings

    return settings().server_nice


def _ephemeral_server_outside_the_working_folder() -> None:
    """Prefect's ephemeral API server, started in Prefect's home instead of the working folder.

    The server loads its plugins through prefect.utilities.importtools, which puts the working folder
    first on sys.path: a numpy.py or pandas.py there would be imported by the server and stop it. The
    instance registered here is the one Prefect's client asks for (SubprocessASGIServer keeps one per
    port); it runs Prefect's own command, from another folder.
    """
    import subprocess
    import sys

    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    nice = server_nice()

    class _Server(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            home = get_current_settings().home
            home.mkdir(parents=True, exist_ok=True)
            proc = subprocess.Popen(
                args=[sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
                      "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
                      "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
                env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                     "PREFECT__SERVER_FINAL": "1",
                     **get_current_settings().to_environment_variables(exclude_unset=True)},
                cwd=home,
            )
            if nice:
                import psutil

                try:
                    psutil.Process(proc.pid).nice(nice)
                except psutil.Error:  # it died at once: Prefect's start-up check reports that
                    pass
            return proc

    if None not in SubprocessASGIServer._instances:
        _Server()


def console():
    from evo.view.text import console as make

    return make()


def text(value) -> str:
    """A user string (a run name, a symbol, a gene name) made safe inside rich markup."""
    from evo.view.text import markup

    return markup(value)
