"""Hosts for the tests: Linux network namespaces on one bridge, each with its own address.

`Hosts(n)` makes n namespaces, each joined to a bridge in the test's own namespace by a veth pair,
so the test (the flow's "host") reaches every one of them at 10.X.Y.(10+i) and they reach each other.
`run(i, argv, hide=folder)` starts a command in host i through `ip netns exec`; with `hide`, under
`unshare -m` with an empty tmpfs mounted over that folder, so the command cannot see what is in it;
with `hostname`, in a UTS namespace of its own under that host name (what `socket.gethostname()` says there).
Leaving the `with` block (also on failure) kills every process started and deletes the namespaces,
the veth pairs and the bridge. Needs root (CI runs as root); `available()` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def available() -> str | None:
    """None if namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"evoprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError) as e:
        return f"`ip netns add` is not permitted here: {getattr(e, 'stderr', '') or e}".strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


class Hosts:
    """n network namespaces on one bridge; see the module's docstring."""

    def __init__(self, n: int):
        self.n = n
        tag = f"{os.getpid() % 100000:05d}{random.randint(0, 99):02d}"
        self.bridge = f"evb{tag}"  # interface names: at most 15 characters
        self.names = [f"evo-{tag}-{i}" for i in range(n)]
        self.veths = [f"ev{tag}h{i}" for i in range(n)]
        # a /24 of its own, so that concurrent test sessions on one machine never share one
        self.net = f"10.{random.randint(64, 250)}.{random.randint(0, 255)}"
        self.gateway = f"{self.net}.1"
        self.procs: list[subprocess.Popen] = []

    def address(self, i: int) -> str:
        return f"{self.net}.{10 + i}"

    def __enter__(self) -> "Hosts":
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, (ns, veth) in enumerate(zip(self.names, self.veths)):
                _ip("netns", "add", ns)
                _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}n")
                _ip("link", "set", veth, "master", self.bridge)
                _ip("link", "set", veth, "up")
                _ip("link", "set", f"{veth}n", "netns", ns)
                _ip("-n", ns, "link", "set", f"{veth}n", "name", "eth0")
                _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "route", "add", "default", "via", self.gateway)
        except BaseException:
            self.close()
            raise
        return self

    def run(self, i: int, argv: list[str], *, env: dict | None = None, hide: Path | None = None,
            log: Path | None = None, hostname: str | None = None) -> subprocess.Popen:
        """Start `argv` in host i (hiding the folder `hide` behind an empty tmpfs, named `hostname`); its
        output goes to `log`."""
        if hide is not None:
            script = f"mount -t tmpfs evo-hidden {shlex.quote(str(hide))} && exec \"$@\""
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]
        if hostname is not None:
            argv = ["unshare", "-u", "sh", "-c", f"hostname {shlex.quote(hostname)} && exec \"$@\"", "sh", *argv]
        out = open(log, "ab") if log is not None else subprocess.DEVNULL
        try:
            p = subprocess.Popen(["ip", "netns", "exec", self.names[i], *argv], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if log is not None:
                out.close()
        self.procs.append(p)
        return p

    @contextlib.contextmanager
    def reachable(self, host: str, port: int) -> Iterator[tuple[str, int]]:
        """A TCP service of this namespace that listens on `host` (e.g. 127.0.0.1), made reachable from
        the hosts: yields the bridge address and port that forward to it."""
        listener = socket.create_server((self.gateway, 0))
        stop = threading.Event()
        opened: list[socket.socket] = []

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        def serve() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                try:
                    upstream = socket.create_connection((host, port))
                except OSError:
                    conn.close()
                    continue
                opened.extend((conn, upstream))
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=pipe, args=(a, b), daemon=True).start()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            yield self.gateway, listener.getsockname()[1]
        finally:
            stop.set()
            t.join()
            listener.close()
            for c in opened:  # a kept-alive connection would hold the server's shutdown
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # whatever is still in a namespace (a child that left the process group) goes with it
        for ns in self.names:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(0.1)
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for veth in self.veths:
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def __exit__(self, *exc) -> None:
        self.close()
