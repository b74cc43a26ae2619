"""Bad input: the CLI exits 2 with one line naming the problem, shows no traceback, and creates no run."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import small_config
from tests.helpers import evo, write_config

pytestmark = pytest.mark.slow

HEADER = "date,open,high,low,close,volume\n"


def _csv_rows(n=400, start_price=100.0):
    rows = []
    p = start_price
    for i in range(n):
        p *= 1.0 + (0.01 if i % 7 < 4 else -0.012)
        rows.append(f"2021-01-{1 + i // 24:02d} {i % 24:02d}:00:00,{p:.4f},{p * 1.01:.4f},{p * 0.99:.4f},{p:.4f},{1000 + i}")
    return rows


def _write_data(tmp_path, body: str | bytes, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def _with_row(rows, i, **cols):
    date, o, h, lo, c, v = rows[i].split(",")
    d = dict(date=date, open=o, high=h, low=lo, close=c, volume=v)
    d.update(cols)
    rows = list(rows)
    rows[i] = ",".join(d[k] for k in ("date", "open", "high", "low", "close", "volume"))
    return rows


def _data_case(body_fn, expect):
    return ("data", body_fn, expect)


ROWS = _csv_rows()
DATA_CASES = {
    "missing file": (None, ["missing.csv: file not found"]),
    "empty file": (lambda: b"", ["data.csv: file is empty"]),
    "malformed csv": (lambda: HEADER + "2021-01-01,1,2\n\"unterminated,1,2,3,4,5\n", ["data.csv"]),
    "missing columns": (lambda: "date,open,high,low,close\n2021-01-01,1,1,1,1\n", ["data.csv", "missing column(s) ['volume']"]),
    "nan price": (lambda: HEADER + "\n".join(_with_row(ROWS, 41, close="")), ["data.csv", "row 42", "close is nan"]),
    "inf price": (lambda: HEADER + "\n".join(_with_row(ROWS, 9, high="inf")), ["data.csv", "row 10", "high is inf"]),
    "zero price": (lambda: HEADER + "\n".join(_with_row(ROWS, 99, low="0")), ["data.csv", "row 100", "low is 0.0", "positive"]),
    "negative price": (lambda: HEADER + "\n".join(_with_row(ROWS, 7, open="-3")), ["data.csv", "row 8", "open is -3.0"]),
    "duplicate timestamp": (lambda: HEADER + "\n".join(ROWS[:50] + ROWS[49:]), ["data.csv", "row 51", "duplicate timestamp"]),
    "unsorted timestamps": (lambda: HEADER + "\n".join(ROWS[:30] + [ROWS[31], ROWS[30]] + ROWS[32:]), ["data.csv", "row 32", "unsorted"]),
    "too few bars": (lambda: HEADER + "\n".join(ROWS[:120]), ["120 bars", "largest window (100)"]),
}

CONFIG_CASES = {
    "unknown family": ({"strategy": {"family": "nope"}}, ["field 'strategy.family'", "unknown strategy family 'nope'"]),
    "unknown metric": ({"objectives": [{"metric": "sharp", "direction": "max"}]}, ["field 'objectives.0.metric'"]),
    "inverted gene bounds": ({"strategy": {"family": "rsi_pullback", "bounds": {"rsi_window": [30, 5]}}},
                             ["field 'strategy.bounds'", "rsi_window", "inverted"]),
    "population below 4": ({"algorithm": {"pop_size": 3}}, ["field 'algorithm.pop_size'", "greater than or equal to 4"]),
    "generations below 1": ({"algorithm": {"generations": 0}}, ["field 'algorithm.generations'"]),
    "robust fitness without neighbours": ({"algorithm": {"robustness": {"neighbours": 0, "aggregate": "worst"}}},
                                          ["field 'algorithm.robustness'", "aggregate = 'worst' needs neighbours >= 1"]),
}


def _assert_one_line_error(res, expect, *, forbid=()):
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for e in expect:
        assert e in lines[0], (e, lines[0])
    assert "Traceback" not in out
    for f in forbid:
        assert f not in out


def _no_runs(url):
    eng = create_engine(url)
    try:
        if "runs" not in inspect(eng).get_table_names():
            return True
        with eng.connect() as c:
            return c.execute(text("SELECT COUNT(*) FROM runs")).scalar_one() == 0
    finally:
        eng.dispose()


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_market_data(tmp_path, case):
    body_fn, expect = DATA_CASES[case]
    path = tmp_path / "missing.csv" if body_fn is None else _write_data(tmp_path, body_fn())
    cfg = small_config(data={"paths": [str(path)], "synthetic": None}, strategy={"family": "rsi_pullback", "bounds": {"slow_window": [20, 100]}})
    url = f"sqlite:///{tmp_path}/evo.db"
    res = evo(["run", str(write_config(tmp_path / "c.toml", cfg)), "--db", url], tmp_path, timeout=120)
    _assert_one_line_error(res, expect)
    assert _no_runs(url)


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config(tmp_path, case):
    import tomli_w

    fragment, expect = CONFIG_CASES[case]
    d = small_config().model_dump(mode="json", exclude_none=True)
    for k, v in fragment.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) else v
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(d))
    url = f"sqlite:///{tmp_path}/evo.db"
    res = evo(["run", str(path), "--db", url], tmp_path, timeout=120)
    _assert_one_line_error(res, [str(path)] + expect)
    assert _no_runs(url)


def test_generations_flag_below_one(tmp_path):
    url = f"sqlite:///{tmp_path}/evo.db"
    path = write_config(tmp_path / "c.toml", small_config())
    _assert_one_line_error(evo(["run", str(path), "--db", url, "--generations", "0"], tmp_path), ["field 'algorithm.generations'"])
    assert _no_runs(url)


@pytest.mark.parametrize("nice", ["-1", "20", "ten", "1.5"])
def test_bad_server_niceness(tmp_path, nice):
    url = f"sqlite:///{tmp_path}/evo.db"
    path = write_config(tmp_path / "c.toml", small_config())
    res = evo(["run", str(path), "--db", url], tmp_path, timeout=120, EVO_SERVER_NICE=nice)
    _assert_one_line_error(res, ["EVO_SERVER_NICE", repr(nice)])
    assert _no_runs(url)


def test_a_database_folder_without_write_permission(tmp_path):
    """Refused in one line, exit 2, nothing created. Root may write anywhere, so as root the command runs
    without the capabilities that bypass file permissions (setpriv): still root, so it reads the checkout
    wherever it is, but the folder's mode (r-x) binds it."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="evo-perm-"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        prefix = []
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv (util-linux) to drop privileges")
            prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
        res = evo(["run", "--db", f"sqlite:///{locked}/evo.db"], base, timeout=120, _prefix=prefix)
        _assert_one_line_error(res, ["no permission to write in the folder", str(locked)])
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unreachable_database_and_its_password_stays_hidden(tmp_path):
    path = write_config(tmp_path / "c.toml", small_config())
    res = evo(["run", str(path), "--db", "postgresql://evo:s3cr3t-pw@127.0.0.1:1/nowhere"], tmp_path, timeout=120)
    _assert_one_line_error(res, ["cannot reach database postgresql+psycopg://evo:***@127.0.0.1:1/nowhere"], forbid=["s3cr3t-pw"])


def test_schema_newer_than_the_code(tmp_path, sqlite_url):
    from evo.store import Store

    s = Store(sqlite_url)
    s.migrate()
    with s.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    s.dispose()
    res = evo(["run", str(write_config(tmp_path / "c.toml", small_config())), "--db", sqlite_url], tmp_path)
    _assert_one_line_error(res, ["schema revision 9999", "newer than this version of evo"])
    assert _no_runs(sqlite_url)


def test_resume_of_an_unknown_run(tmp_path, sqlite_url):
    _assert_one_line_error(evo(["resume", "ghost", "--db", sqlite_url], tmp_path), ["no run named 'ghost'"])
    assert _no_runs(sqlite_url)


def test_same_name_with_a_different_config(tmp_path, sqlite_url):
    from evo.run import opening

    opening.start(small_config(), database=sqlite_url)  # the run exists (no generation needed)
    other = small_config(evaluation={"fees": 0.01})
    res = evo(["run", str(write_config(tmp_path / "c.toml", other)), "--db", sqlite_url], tmp_path)
    _assert_one_line_error(res, ["run 't' already exists with a different config", "evaluation.fees"])
    eng = create_engine(sqlite_url)
    with eng.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM runs")).scalar_one() == 1
    eng.dispose()


def test_debug_shows_the_traceback(tmp_path):
    res = evo(["--debug", "resume", "ghost", "--db", f"sqlite:///{tmp_path}/evo.db"], tmp_path)
    assert res.returncode != 0 and "Traceback" in res.stderr and "no run named 'ghost'" in res.stderr
