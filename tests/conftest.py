"""Shared test setup: an isolated Prefect home, quiet Prefect logs, small configs."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid

# before anything imports prefect
_PREFECT_HOME = tempfile.mkdtemp(prefix="evo-test-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.pop("EVO_DATABASE_URL", None)
for _k in [k for k in os.environ if k.startswith(("EVO_FAULT_", "EVO_TEST_HOLD", "EVO_TEST_BARRIER"))]:
    os.environ.pop(_k)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for every in-process flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


from evo.config.settings import settings as _settings  # noqa: E402

PG_URL = _settings().test_postgres_url


@contextlib.contextmanager
def fresh_postgres_database():
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    from evo.store.url import normalize

    if not PG_URL:
        if _settings().require_postgres:
            pytest.fail("EVO_REQUIRE_POSTGRES=1 but EVO_TEST_POSTGRES_URL is not set")
        pytest.skip("EVO_TEST_POSTGRES_URL is not set (CI sets it; see .ci/run)")
    admin = make_url(normalize(PG_URL))
    name = f"evo_t_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:  # set but unreachable: a failure, never a skip
        pytest.fail(f"EVO_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """The same test on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/evo.db"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
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


@pytest.fixture(scope="session")
def prefect_server():
    """One real Prefect server for the whole test session, shared by every pytest-xdist worker: started by
    the first test that needs it, stopped (and its PostgreSQL database dropped) when the session ends."""
    from tests.prefect_server import shared_server

    return shared_server()


#: fixtures that start a Prefect API: a test using one is slow (it belongs to `make test`, not `make test-fast`)
SERVER_FIXTURES = {"prefect_harness", "prefect_server"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items[:] = long_tests_first(items, workers(config))


def workers(config) -> int:
    """How many pytest-xdist workers share the collection: each worker collects, and the order its
    collection takes is the one the scheduler hands out, so the count comes from xdist's workerinput there
    (a worker's `numprocesses` option is None)."""
    n = getattr(config, "workerinput", {}).get("workercount") or getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) and n > 0 else 1


def long_tests_first(items: list, k: int) -> list:
    """The order for xdist's worksteal scheduler, which hands each of k workers one contiguous block of
    the collection and lets idle workers steal from the end of busy ones' blocks: the tests marked `long`
    are dealt to the fronts of the blocks, so they start at once and on different workers, and the short
    tests queued behind them can be stolen. Without xdist (k = 1) they simply run first."""
    long = [i for i in items if i.get_closest_marker("long")]
    short = [i for i in items if not i.get_closest_marker("long")]
    sizes, left = [], len(items)
    for b in range(k):  # the block sizes worksteal cuts: len(pending) // nodes remaining
        sizes.append(left // (k - b))
        left -= sizes[-1]
    blocks: list[list] = [[] for _ in range(k)]
    for j, item in enumerate(long):
        blocks[j % k].append(item)
    rest = iter(short)
    for b in range(k):
        blocks[b] += [next(rest) for _ in range(max(0, sizes[b] - len(blocks[b])))]
    blocks[-1] += list(rest)
    return [i for block in blocks for i in block]


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist): it owns the shared server
        from tests.prefect_server import SHARED_DIR, shared_folder

        os.environ[SHARED_DIR] = str(shared_folder())


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        from tests.prefect_server import stop_shared

        stop_shared()


# where the suite's time goes: one JSON line per test (settings' test_timeline)
_TIMELINE = _settings().test_timeline
if _TIMELINE:
    import json as _json
    import resource as _resource
    import time as _time

    def _cpu() -> tuple[float, float]:
        s, c = _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        t0, (s0, c0) = _time.time(), _cpu()
        yield
        t1, (s1, c1) = _time.time(), _cpu()
        with open(_TIMELINE, "a") as f:
            f.write(_json.dumps({"test": item.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER", "-"),
                                 "start": t0, "end": t1, "cpu": s1 - s0, "children": c1 - c0}) + "\n")
