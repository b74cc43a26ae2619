"""`evo serve` (a deployment served from this process) and `evo heal` (the automations that heal crashed runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from evo.flows.cli.common import api_ready, command, database, db_option, flow_db_param, prefect_env, text


@command()
def serve(
    *,  # typer passes options by name
    config: Optional[Path] = typer.Option(None, "--config", help="TOML whose RunConfig is the form's default (default: the embedded default)."),
    name: str = typer.Option("evolve", "--name", help="Deployment name."),
    cron: Optional[str] = typer.Option(None, "--cron", help="Schedule: a cron expression, e.g. '0 * * * *'."),
    interval: Optional[float] = typer.Option(None, "--interval", min=1, max=366 * 86400, help="Schedule: every this many seconds."),
    continue_run: Optional[str] = typer.Option(None, "--continue-run", help="Each run continues this evo run (scheduled continuation)."),
    by: int = typer.Option(5, "--by", min=1, max=1_000_000, help="With --continue-run: generations added per run."),
    reevaluate_on_new_data: bool = typer.Option(True, "--reevaluate-on-new-data/--refuse-new-data", help="With --continue-run: re-evaluate the survivors when the market data changed."),
    limit: int = typer.Option(1, "--limit", min=1, max=1000, help="Concurrent runs of this deployment (1: scheduled runs never overlap)."),
    heal: bool = typer.Option(True, "--heal/--no-heal", help="Reschedule this deployment's runs when they crash (see `evo heal`)."),
    notify: Optional[str] = typer.Option(None, "--notify", help="A Prefect notification block ('custom-webhook/NAME', "
                                         "'slack-webhook/NAME'): each run's end (its verdict or failure) is sent through it."),
    db: Optional[str] = db_option(),
) -> None:
    """Serve the `evolve` flow as a Prefect deployment from this process (Ctrl-C or SIGTERM stops it)."""
    from evo import config as cfgmod
    from evo.store import url as urls

    if cron and interval:
        raise cfgmod.ConfigError("give --cron or --interval, not both")
    cfg = None
    if continue_run:
        try:
            cfgmod.check_text(continue_run, "--continue-run", cfgmod.NAME_MAX)
        except ValueError as e:
            raise cfgmod.ConfigError(str(e)) from None
        params: dict = {"name": continue_run, "extend_by": by, "reevaluate_on_new_data": reevaluate_on_new_data}
        description = f"Continues run {continue_run!r} by {by} generation(s) per run."
    else:
        cfg = cfgmod.load(config) if config is not None else cfgmod.RunConfig(name="default")
        params = {"config": cfg.model_dump(mode="json"), "name": cfg.name}
        description = "Evolve a Pareto set of trading strategies; the form is RunConfig."
    url = database(db, cfg)
    _prepare_serving(params, db, url, cron)
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType

    from evo.flows import heal as healing
    from evo.flows.evolve import evolve

    api_ready()
    if heal:
        try:
            done = healing.install()
            typer.echo("automations: " + ", ".join(f"{n!r} {what}" for n, what in done))
        except Exception as e:  # e.g. the ephemeral API has no automations service
            typer.echo(f"warning: automations not installed ({type(e).__name__}); crashed runs will not heal",
                       err=True)
    if notify:
        from evo.flows.paper import notify_automation

        done = healing.install([notify_automation(notify)])
        typer.echo("automations: " + ", ".join(f"{n!r} {what}" for n, what in done))
    typer.echo(f"serving deployment evolve/{text(name)} (database {urls.mask(url)})")
    _serve(
        evolve,
        name=name,
        cron=cron,
        interval=interval,
        parameters=params,
        description=description,
        tags=[healing.TAG, healing.HEAL_TAG] if heal else [healing.TAG],
        concurrency_limit=ConcurrencyLimitConfig(limit=limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def _prepare_serving(params: dict, db: str | None, url: str, cron: str | None) -> None:
    """What every serving command does before Prefect starts: the database URL as a flow parameter (one
    with a password goes to the flow runs through the environment), SIGTERM stops it as Ctrl-C does,
    Prefect's environment, and the cron expression checked."""
    if db:
        db_url = flow_db_param(url)
        if db_url:
            params["db_url"] = db_url
    _stop_on_sigterm()
    prefect_env()
    if cron:
        _check_cron(cron)


def _check_cron(expr: str) -> None:
    """Prefect's own rule for a cron schedule, checked before anything is registered."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    from evo.config import ConfigError

    try:
        CronSchedule(cron=expr)
    except ValidationError:
        raise ConfigError(f"--cron {expr!r} is not a cron expression like '0 * * * *'") from None


def _stop_on_sigterm() -> None:
    """Until the runner installs its own handler, SIGTERM stops `evo serve` as Ctrl-C does (exit 130, the
    watcher ends what it started) instead of killing it mid-start."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _serve(flow, name: str, **deployment) -> None:
    """What `flow.serve` does, with one difference: SIGTERM stops the runner cleanly.

    Prefect's runner answers SIGTERM by scheduling its async stop on another event loop from inside the
    signal handler, which leaves `Runner.astop` unawaited (a RuntimeWarning on every shutdown). Here the
    handler schedules `astop` on the loop the runner runs in, as Ctrl-C's path ends: polling stops, the
    runs in progress are cancelled, the deployment is paused.
    """
    import asyncio

    from prefect.runner import Runner

    class _Runner(Runner):
        def handle_sigterm(self, *args, **kwargs) -> None:
            loop = asyncio.get_running_loop()  # the signal arrives in the thread that runs start()
            self._stop_task = loop.create_task(self.astop())

    runner = _Runner(name=name, pause_on_shutdown=True)
    runner.add_flow(flow, name=name, **deployment)
    typer.echo(f"polling for its scheduled runs; start one with `prefect deployment run '{flow.name}/{text(name)}'`")
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        pass
    typer.echo("stopped", err=True)


@command("heal")
def heal_command() -> None:
    """Install (or update) the two automations that heal crashed runs on the Prefect server at
    PREFECT_API_URL: runs without a heartbeat for 90 s become Crashed; Crashed runs of evo deployments
    are rescheduled and resume. `evo serve` does this itself; run it once for `prefect deploy` setups."""

    from evo.store import url as urls

    if not os.environ.get("PREFECT_API_URL"):
        raise urls.URLError("set PREFECT_API_URL to the Prefect server whose runs should heal")
    prefect_env(reaper=False)
    from evo.flows import heal as healing

    for n, what in healing.install():
        typer.echo(f"{n}: {what}")

