"""The local Prefect API a command starts when no PREFECT_API_URL is set: Prefect's own server app under
uvicorn, as Prefect's ephemeral mode runs it, but started by evo.

Started by evo rather than by Prefect's client for three reasons: the server runs from Prefect's home,
not the working folder (its plugin loader puts the working folder first on sys.path, so a numpy.py or
pandas.py there would stop it); it is niced (EVO_SERVER_NICE), so its work waits for a core the
evaluation kernels do not use; and the command never imports the server's own modules (FastAPI, its
models), which Prefect's client imports to start one. It starts while the command imports the rest,
and PREFECT_API_URL points every Prefect client of the command (and of what it starts) at it.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

#: settings of the local API server (a user's own setting wins)
SERVER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "2",
    # the event persister writes every event (3 per task run) to the events table, which only the UI's
    # event feed reads, and this server has no UI. Flow runs, task runs, logs and artifacts are recorded.
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
}

_server: "LocalAPI | None" = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _home() -> Path:
    """Prefect's home (PREFECT_HOME, default ~/.prefect), without importing Prefect."""
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


class LocalAPI:
    """One uvicorn process serving Prefect's API on a free loopback port."""

    def __init__(self, nice: int):
        self.nice = nice
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _spawn(self) -> None:
        import importlib.util

        self.port = _free_port()
        spec = importlib.util.find_spec("prefect")
        app_dir = str(Path(spec.origin).parent.parent)
        home = _home()
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **{k: v for k, v in SERVER_SETTINGS.items() if k not in os.environ or k.startswith("PREFECT__")}}
        env.pop("PREFECT_API_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, cwd=home, stdin=subprocess.DEVNULL,
        )
        if self.nice:
            try:
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, self.nice)
            except OSError:  # it died at once: wait() reports that
                pass

    def wait(self, timeout: float) -> None:
        """Until the API answers its health check; a server that exits at once (its port was taken in
        the meantime) is started again on another port."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                if code == 3 and time.monotonic() < deadline:  # uvicorn: the address is in use
                    self._spawn()
                    os.environ["PREFECT_API_URL"] = self.api_url
                    continue
                raise RuntimeError(f"the local Prefect API server exited with code {code}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local Prefect API server did not answer within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(nice: int) -> LocalAPI:
    """Start the local API (once per process) and point PREFECT_API_URL at it; `ready()` waits for it."""
    global _server
    if _server is None:
        _server = LocalAPI(nice)
        _server._spawn()
        os.environ["PREFECT_API_URL"] = _server.api_url
        atexit.register(_server.stop)
    return _server


def ready(timeout: float = 120.0) -> None:
    """Wait until the local API started by `start` answers (no-op when none was started)."""
    if _server is not None:
        _server.wait(timeout)


def server_pid() -> int | None:
    """The local API server's process id, if this process started one."""
    return _server.proc.pid if _server is not None and _server.proc is not None else None
