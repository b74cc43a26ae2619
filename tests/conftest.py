"""Shared test setup: an isolated Prefect home, quiet Prefect logs, small configs."""

from __future__ import annotations

import os
import tempfile

# before anything imports prefect
_PREFECT_HOME = tempfile.mkdtemp(prefix="evo-test-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.pop("EVO_DATABASE_URL", None)
for _k in [k for k in os.environ if k.startswith("EVO_FAULT_")]:
    os.environ.pop(_k)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for every in-process flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path}/evo.db"


def small_config(**over):
    """A config that evolves in a second or two per generation."""
    from evo.config import validate

    d = {
        "name": "t",
        "seed": 5,
        "data": {"synthetic": {"n_bars": 1500, "freq": "1h", "seed": 11}},
        "strategy": {"family": "rsi_pullback", "bounds": {"slow_window": [20, 100]}},
        "objectives": [
            {"metric": "sharpe_ratio", "direction": "max"},
            {"metric": "max_drawdown", "direction": "max"},
        ],
        "constraints": [{"metric": "n_trades", "op": ">=", "value": 3}],
        "algorithm": {"pop_size": 12, "generations": 3},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return validate(d)
