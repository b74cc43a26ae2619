"""The `evo` command line: one module per command group, all registered on one typer app.

It lives in flows/ because its commands start Prefect flows; evo/ stays free of Prefect.
"""

from __future__ import annotations

import os
import sys

from evo.flows.cli import run, inspect, market, serve, bench  # noqa: F401, I001  (each registers its commands, in this order)
from evo.flows.cli.common import app


def main() -> None:
    # The current folder is never put on the import path (a tasks.py, rich.py or pandas.py there would
    # shadow real modules), neither here nor in the Python processes evo starts (`python -m ...`).
    # A user family in the current folder is found by evo.strategies itself.
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted; `evo resume NAME` continues from the last committed generation", file=sys.stderr)
        sys.exit(130)


__all__ = ["app", "main"]
