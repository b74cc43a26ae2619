"""A real `prefect server start` on a free port (of loopback, or of a given address), for tests that run `evo`
in subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class PrefectServer:
    def __init__(self, home: Path, database_url: str | None = None, host: str = "127.0.0.1"):
        self.home = home
        self.host = host
        self.port = free_port(host)
        self.api_url = f"http://{host}:{self.port}/api"
        self.database_url = database_url
        self.proc: subprocess.Popen | None = None
        self.log = home / "server.log"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVO_"))}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        )
        if self.database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
        return env

    def start(self, timeout: float = 120) -> "PrefectServer":
        self.home.mkdir(parents=True, exist_ok=True)
        prefect = str(Path(sys.executable).parent / "prefect")
        self.proc = subprocess.Popen(
            [prefect, "server", "start", "--host", self.host, "--port", str(self.port), "--no-ui", "--analytics-off"],
            env=self.env(), stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"prefect server did not answer within {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def serving(cwd: Path, api_url: str, args: list[str], log_name: str = "serve.log", command: tuple = ("serve",),
            **env: str):
    """`evo serve ARGS` (`evo COMMAND... ARGS`) against `api_url` until the block ends; yields (process, log
    path, marker).

    The process and everything it started carry EVO_TEST_MARK=marker (tests.helpers.marked_processes).
    On exit it gets SIGTERM, then SIGKILL for its whole process group.
    """
    from tests.helpers import EVO, MARK, evo_env

    mark = uuid.uuid4().hex
    (cwd / "serve-home").mkdir(exist_ok=True)
    log_path = cwd / log_name
    log = log_path.open("w")
    e = evo_env(cwd / "serve-home", api_url, PREFECT_RUNNER_POLL_FREQUENCY="1", **{MARK: mark}, **env)
    proc = subprocess.Popen([EVO, *command, *args], cwd=cwd, env=e, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc, log_path, mark
    finally:
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        log.close()


def wait(predicate, timeout: float, what: str, every: float = 0.5):
    """predicate()'s first truthy value, polling every `every` seconds for at most `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def client(api_url: str):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api_url)


def deployment(api_url: str, name: str, proc=None, log: Path | None = None, timeout: float = 120,
               flow: str = "evolve"):
    """Wait for deployment FLOW/NAME to exist (while `proc`, if given, is alive)."""

    def found():
        if proc is not None:
            assert proc.poll() is None, log.read_text()[-3000:] if log else "serve exited"
        try:
            with client(api_url) as c:
                return c.read_deployment_by_name(f"{flow}/{name}")
        except Exception:
            return None

    return wait(found, timeout, f"deployment {flow}/{name}")


def final_state(api_url: str, flow_run_id, timeout: float = 180):
    def done():
        with client(api_url) as c:
            fr = c.read_flow_run(flow_run_id)
        return fr if fr.state and fr.state.is_final() else None

    return wait(done, timeout, f"flow run {flow_run_id} to finish")


ERROR_LINES = ("Traceback", "ERROR", "Can't evaluate bulk DML")


def errors_in(log: Path) -> list[str]:
    """Lines of a log that report an error."""
    return [ln for ln in log.read_text().splitlines() if any(e in ln for e in ERROR_LINES)]


# ---------------------------------------------------------------------------------------------
# one server for the whole session

#: where the session's shared server is described (set by the controller for every worker)
SHARED_DIR = "EVO_TEST_SHARED_DIR"


def shared_folder() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="evo-test-shared-"))


def shared_server() -> PrefectServer:
    """The session's shared Prefect server (PostgreSQL-backed when EVO_TEST_POSTGRES_URL is set), started by
    whichever worker asks first; the others wait on a lock and find it described in server.json."""
    import fcntl
    import json

    from evo.config.settings import settings

    folder = Path(settings().test_shared_dir or shared_folder())
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = folder / "server.json"
        if state.exists():
            d = json.loads(state.read_text())
            server = PrefectServer(Path(d["home"]), d.get("database_url"))
            server.port, server.api_url = d["port"], d["api_url"]
            return server
        database_url = admin = None
        pg = settings().test_postgres_url
        if pg:  # Prefect's SQLite backend locks under load (prefect #18934): use PostgreSQL where we can
            admin, database_url = _new_postgres_database(pg)
        server = PrefectServer(folder / "home", database_url).start()
        state.write_text(json.dumps({"home": str(server.home), "port": server.port, "api_url": server.api_url,
                                     "pid": server.proc.pid, "database_url": database_url, "admin": admin}))
        return server


def _new_postgres_database(pg_url: str) -> tuple[str, str]:
    """(admin DSN, asyncpg URL) of a new, empty PostgreSQL database for the shared server."""
    import psycopg
    from sqlalchemy.engine import make_url

    from evo.store.url import normalize

    admin = make_url(normalize(pg_url))
    name = f"evo_t_prefect_{uuid.uuid4().hex[:10]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    return dsn + f"#{name}", url


def stop_shared() -> None:
    """Stop the session's shared server, if one was started, and drop its database."""
    import json
    import shutil

    from evo.config.settings import settings

    folder = settings().test_shared_dir
    if not folder or not (Path(folder) / "server.json").exists():
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        return
    d = json.loads((Path(folder) / "server.json").read_text())
    try:
        os.killpg(d["pid"], signal.SIGTERM)
        for _ in range(100):
            os.kill(d["pid"], 0)
            time.sleep(0.2)
        os.killpg(d["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    if d.get("admin"):
        import psycopg

        dsn, name = d["admin"].rsplit("#", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(folder, ignore_errors=True)
