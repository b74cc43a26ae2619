"""A SIGKILL of any evo process leaves nothing of its own running: the ephemeral Prefect API server,
a serve's flow runs and pools die with it (evo.flows.reaper).

Only the evo process itself is killed (not its process group): that is what leaves orphans.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import psutil
import pytest

from evo.config.settings import Settings
from tests.conftest import small_config
from tests.helpers import EVO, MARK, evo_env, marked_processes, wait_until_gone, write_config

pytestmark = pytest.mark.slow


def _start(args, tmp_path, **env):
    mark = uuid.uuid4().hex
    log = (tmp_path / f"{args[0]}.log").open("w")
    proc = subprocess.Popen([EVO, *args], cwd=tmp_path, env=evo_env(tmp_path, None, **{MARK: mark}, **env),
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, mark, log


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _children(mark: str, proc) -> list[int]:
    return [p for p in marked_processes(mark) if p != proc.pid]


@pytest.mark.parametrize("command", ["run", "walkforward"])
def test_sigkill_of_run_or_walkforward_leaves_no_process(tmp_path, command):
    cfg = small_config(algorithm={"pop_size": 6, "generations": 3},
                       validation={"holdout": 0.3, "walk_forward": {"folds": 2}})
    path = write_config(tmp_path / "c.toml", cfg)
    hold = tmp_path / "hold.txt"
    proc, mark, log = _start([command, str(path), "--db", f"sqlite:///{tmp_path}/evo.db"], tmp_path,
                             EVO_TEST_HOLD="between@1", EVO_TEST_HOLD_FILE=str(hold))
    try:
        _wait_for(lambda: hold.exists() or proc.poll() is not None, 240, "generation 1 to be committed")
        assert proc.poll() is None, (tmp_path / f"{command}.log").read_text()[-3000:]
        # the ephemeral API server (and the reaper that watches over it) run beside the evo process
        assert _children(mark, proc), "expected the ephemeral Prefect server among the evo process's children"
        servers = [psutil.Process(p) for p in _children(mark, proc)
                   if "uvicorn" in " ".join(psutil.Process(p).cmdline())]
        assert len(servers) == 1
        # niced, so that its work waits for a core the evaluation does not use; no event persister (no UI)
        assert servers[0].nice() == Settings.model_fields["server_nice"].default == 10
        assert servers[0].environ()["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"].lower() == "false"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert wait_until_gone(mark, 30) == []
    finally:
        for p in marked_processes(mark):
            os.kill(p, signal.SIGKILL)
        log.close()


def test_sigkill_of_serve_leaves_no_process(tmp_path):
    proc, mark, log = _start(["serve", "--name", "orphans"], tmp_path, PREFECT_RUNNER_POLL_FREQUENCY="1")
    try:
        _wait_for(lambda: "serving deployment" in (tmp_path / "serve.log").read_text() or proc.poll() is not None,
                  180, "evo serve to start")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        assert _children(mark, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert wait_until_gone(mark, 30) == []
    finally:
        for p in marked_processes(mark):
            os.kill(p, signal.SIGKILL)
        log.close()
