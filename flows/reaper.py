"""Nothing left behind: when an evo command dies, even by SIGKILL, the processes it started die with it.

A command that starts processes (Prefect's ephemeral API server, `evo serve`'s flow runs, process or
Dask pools) first calls `start()`. That tags the command's environment with EVO_SESSION=<token>,
which every process it starts inherits, and launches a watcher in a session of its own (so a kill of
the command's process group does not take it along). The watcher polls the command's process; once
it is gone it sends SIGTERM, then SIGKILL, to every process whose environment carries the token, and
exits. It needs Linux's /proc; elsewhere `start()` does nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

ENV = "EVO_SESSION"

# stdlib only, run with `python -I -S`: it must start fast and never import the user's folder
_WATCHER = r"""
import os, signal, sys, time
pid, started, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
me = os.getpid()
tag = ("%s=%s" % (sys.argv[4], token)).encode()

def alive():
    # the same process (pid and start time), and not a zombie waiting for its parent to reap it
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19] == started and fields[0] != "Z"
    except (OSError, IndexError):
        return False

def tagged():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me:
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if tag in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
    return out

while alive():
    time.sleep(0.2)
for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
    procs = tagged()
    if not procs:
        break
    for p in procs:
        try:
            os.kill(p, sig)
        except OSError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and tagged():
        time.sleep(0.1)
"""


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def start() -> None:
    """Tag this process's future children and watch over them (once per process)."""
    from evo.config.settings import settings

    if settings().session_pid == os.getpid():
        return
    started = _start_time(os.getpid())
    if started is None:  # no /proc: not Linux
        return
    token = uuid.uuid4().hex
    os.environ[ENV] = token
    os.environ[f"{ENV}_PID"] = str(os.getpid())
    subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _WATCHER, str(os.getpid()), started, token, ENV],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
