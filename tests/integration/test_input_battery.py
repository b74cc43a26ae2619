"""Bad input, by class: every kind is refused before anything is written, in one line that names the field,
file or option, with exit code 2 and no traceback.

The commands run in-process through the typer app (the same code path as the `evo` script, minus the
interpreter start); tests/integration/test_bad_input.py runs a sample of them as real subprocesses.
Each case also checks that nothing was written: no database file where none was, no run row, and a
database of another application left byte for byte as it was.
"""

from __future__ import annotations

import copy
import hashlib
import math
import sqlite3
from pathlib import Path

import pytest
import tomli_w
from typer.testing import CliRunner

from tests.conftest import small_config

BASE = small_config().model_dump(mode="json", exclude_none=True)


def _set(d: dict, dotted: str, value) -> dict:
    d = copy.deepcopy(d)
    *path, last = dotted.split(".")
    cur = d
    for p in path:
        cur = cur.setdefault(p, {})
    cur[last] = value
    return d


def _composite(d: dict) -> dict:
    d = copy.deepcopy(d)
    d["strategy"] = {"family": "composite"}
    return d


# (id, config dict, what the one error line must contain)
CONFIG = [
    ("seed negative", _set(BASE, "seed", -1), ["field 'seed'"]),
    ("seed beyond 64 bits", _set(BASE, "seed", 2**64), ["field 'seed'"]),
    ("seed not a number", _set(BASE, "seed", "abc"), ["field 'seed'"]),
    ("market seed negative", _set(BASE, "data.synthetic.seed", -5), ["field 'data.synthetic.seed'"]),
    ("bars below 50", _set(BASE, "data.synthetic.n_bars", 10), ["field 'data.synthetic.n_bars'"]),
    ("bars beyond memory", _set(BASE, "data.synthetic.n_bars", 10**9), ["field 'data.synthetic.n_bars'"]),
    ("bars past 2262", _set(_set(BASE, "data.synthetic.n_bars", 5_000_000), "data.synthetic.freq", "1D"),
     ["field 'data.synthetic.n_bars'", "2262"]),
    ("frequency zero", _set(BASE, "data.synthetic.freq", "0s"), ["field 'data.synthetic.freq'", "positive"]),
    ("frequency negative", _set(BASE, "data.synthetic.freq", "-1h"), ["field 'data.synthetic.freq'"]),
    ("frequency unparsable", _set(BASE, "data.synthetic.freq", "soon"), ["field 'data.synthetic.freq'"]),
    ("market start unparsable", _set(BASE, "data.synthetic.start", "yesterday-ish"), ["field 'data.synthetic.start'"]),
    ("no symbols", _set(BASE, "data.synthetic.symbols", []), ["field 'data.synthetic.symbols'"]),
    ("symbols repeated", _set(BASE, "data.synthetic.symbols", ["A", "A"]), ["field 'data.synthetic.symbols'", "distinct"]),
    ("symbol with a control character", _set(BASE, "data.synthetic.symbols", ["A\x1b[31m"]), ["field 'data.synthetic.symbols'", "U+001B"]),
    ("data frequency zero", _set(BASE, "data.freq", "0s"), ["field 'data.freq'"]),
    ("data start unparsable", _set(BASE, "data.start", "yesterday-ish"), ["field 'data.start'", "yesterday-ish"]),
    ("data end unparsable", _set(BASE, "data.end", "not a date"), ["field 'data.end'"]),
    ("data end before start", _set(_set(BASE, "data.start", "2021-01-01"), "data.end", "2020-01-01"), ["field 'data.end'", "before"]),
    ("unknown family", _set(BASE, "strategy.family", "nope"), ["field 'strategy.family'", "unknown strategy family"]),
    ("user family that cannot import", _set(BASE, "strategy.family", "no_such_module_x:Fam"), ["field 'strategy.family'", "cannot import"]),
    ("unknown gene", _set(BASE, "strategy.bounds", {"rsi_windw": [5, 30]}), ["field 'strategy.bounds'", "rsi_windw"]),
    ("inverted bounds", _set(BASE, "strategy.bounds", {"rsi_window": [30, 5]}), ["field 'strategy.bounds'", "inverted"]),
    ("negative window", _set(BASE, "strategy.bounds", {"rsi_window": [-5, 10]}), ["field 'strategy.bounds'", "at least 1 bar"]),
    ("zero window", _set(BASE, "strategy.bounds", {"fast_window": [0, 10]}), ["field 'strategy.bounds'", "at least 1 bar"]),
    ("fractional integer bounds", _set(BASE, "strategy.bounds", {"rsi_window": [5.5, 20]}), ["field 'strategy.bounds'", "integer"]),
    ("infinite bound", _set(BASE, "strategy.bounds", {"vol_mult": [0, math.inf]}), ["field 'strategy.bounds"]),
    ("NaN bound", _set(BASE, "strategy.bounds", {"vol_mult": [math.nan, 1]}), ["field 'strategy.bounds"]),
    ("switch gene beyond 0/1", _set(_composite(BASE), "strategy.bounds", {"e_rsi": [0, 5]}), ["field 'strategy.bounds'", "e_rsi"]),
    ("stop-loss beyond 100 %", _set(BASE, "strategy.bounds", {"sl_stop": [0.1, 2]}), ["field 'strategy.bounds'", "sl_stop"]),
    ("window beyond any market", _set(BASE, "strategy.bounds", {"slow_window": [20, 1e12]}), ["field 'strategy.bounds'", "slow_window"]),
    ("no objectives", _set(BASE, "objectives", []), ["field 'objectives'"]),
    ("unknown metric", _set(BASE, "objectives", [{"metric": "sharp", "direction": "max"}]), ["field 'objectives.0.metric'"]),
    ("bad direction", _set(BASE, "objectives", [{"metric": "sharpe_ratio", "direction": "up"}]), ["field 'objectives.0.direction'"]),
    ("objective twice", _set(BASE, "objectives", [{"metric": "sharpe_ratio", "direction": "max"}] * 2), ["field 'objectives'", "twice"]),
    ("infinite reference", _set(BASE, "objectives", [{"metric": "sharpe_ratio", "direction": "max", "ref": math.inf}]), ["field 'objectives.0.ref'"]),
    ("constraint operator", _set(BASE, "constraints", [{"metric": "n_trades", "op": ">", "value": 1}]), ["field 'constraints.0.op'"]),
    ("constraint NaN", _set(BASE, "constraints", [{"metric": "n_trades", "op": ">=", "value": math.nan}]), ["field 'constraints.0.value'"]),
    ("constraint huge", _set(BASE, "constraints", [{"metric": "n_trades", "op": ">=", "value": 1e300}]), ["field 'constraints.0.value'"]),
    ("population below 4", _set(BASE, "algorithm.pop_size", 3), ["field 'algorithm.pop_size'"]),
    ("population beyond memory", _set(BASE, "algorithm.pop_size", 10**7), ["field 'algorithm.pop_size'"]),
    ("generations zero", _set(BASE, "algorithm.generations", 0), ["field 'algorithm.generations'"]),
    ("generations beyond INTEGER", _set(BASE, "algorithm.generations", 2**40), ["field 'algorithm.generations'"]),
    ("offspring zero", _set(BASE, "algorithm.n_offsprings", 0), ["field 'algorithm.n_offsprings'"]),
    ("crossover probability above 1", _set(BASE, "algorithm.crossover_prob", 1.5), ["field 'algorithm.crossover_prob'"]),
    ("crossover eta zero", _set(BASE, "algorithm.crossover_eta", 0), ["field 'algorithm.crossover_eta'"]),
    ("mutation eta infinite", _set(BASE, "algorithm.mutation_eta", math.inf), ["field 'algorithm.mutation_eta'"]),
    ("mutation probability negative", _set(BASE, "algorithm.mutation_prob", -0.1), ["field 'algorithm.mutation_prob'"]),
    ("seed genome of the wrong length", _set(BASE, "algorithm.seed_population", [[1.0, 2.0]]), ["field 'algorithm.seed_population'", "2 genes"]),
    ("seed genome with infinity", _set(BASE, "algorithm.seed_population", [[math.inf] * 9]), ["field 'algorithm.seed_population"]),
    ("unknown sampling", _set(BASE, "algorithm.sampling", "sobol"), ["field 'algorithm.sampling'"]),
    ("unknown engine", _set(BASE, "evaluation.engine", "gpu"), ["field 'evaluation.engine'"]),
    ("no cash", _set(BASE, "evaluation.init_cash", 0), ["field 'evaluation.init_cash'"]),
    ("infinite cash", _set(BASE, "evaluation.init_cash", math.inf), ["field 'evaluation.init_cash'"]),
    ("fees of 100 %", _set(BASE, "evaluation.fees", 1), ["field 'evaluation.fees'"]),
    ("negative slippage", _set(BASE, "evaluation.slippage", -0.1), ["field 'evaluation.slippage'"]),
    ("unknown reducer", _set(BASE, "evaluation.reducer", "max"), ["field 'evaluation.reducer'"]),
    ("memory budget zero", _set(BASE, "evaluation.memory_budget_mb", 0), ["field 'evaluation.memory_budget_mb'"]),
    ("memory fraction 95 %", _set(BASE, "evaluation.memory_fraction", 0.95), ["field 'evaluation.memory_fraction'"]),
    ("no parallel chunk", _set(BASE, "evaluation.max_parallel", 0), ["field 'evaluation.max_parallel'"]),
    ("chunk size zero", _set(BASE, "evaluation.max_chunk_size", 0), ["field 'evaluation.max_chunk_size'"]),
    ("negative retries", _set(BASE, "evaluation.retries", -1), ["field 'evaluation.retries'"]),
    ("retry delay of years", _set(BASE, "evaluation.retry_delay_seconds", 1e9), ["field 'evaluation.retry_delay_seconds'"]),
    ("holdout of everything", _set(BASE, "validation.holdout", 1.0), ["field 'validation.holdout'"]),
    ("holdout zero", _set(BASE, "validation.holdout", 0), ["field 'validation.holdout'"]),
    ("holdout start unparsable", _set(BASE, "validation.holdout_start", "someday"), ["field 'validation.holdout_start'"]),
    ("edge probability below a coin", _set(BASE, "validation.edge_probability", 0.4), ["field 'validation.edge_probability'"]),
    ("no walk-forward fold", _set(BASE, "validation.walk_forward.folds", 0), ["field 'validation.walk_forward.folds'"]),
    ("window reversed", _set(BASE, "validation.window", [900, 100]), ["field 'validation.window'"]),
    ("window before bar 0", _set(BASE, "validation.window", [-1, 100]), ["field 'validation.window'"]),
    ("window after the data", _set(BASE, "validation.window", [0, 100_000]), ["field 'validation.window'", "ends after"]),
    ("unknown task runner", _set(BASE, "execution.task_runner", "gpu"), ["field 'execution.task_runner'"]),
    ("no workers", _set(BASE, "execution.workers", 0), ["field 'execution.workers'"]),
    ("dask address", _set(BASE, "execution.dask_address", "not an address"), ["field 'execution.dask_address'"]),
    ("password in storage.url", _set(BASE, "storage.url", "postgresql://u:s3cr3t@h/db"), ["field 'storage.url'", "password"]),
    ("password query in storage.url", _set(BASE, "storage.url", "postgresql://u@h/db?password=s3cr3t"), ["field 'storage.url'", "password"]),
    ("in-memory storage.url", _set(BASE, "storage.url", "sqlite://"), ["field 'storage.url'", "in-memory"]),
    ("unsupported storage.url", _set(BASE, "storage.url", "mysql://u@h/db"), ["field 'storage.url'", "unsupported"]),
    ("name of 10,000 characters", _set(BASE, "name", "x" * 10_000), ["field 'name'", "at most 190"]),
    ("name with a bell", _set(BASE, "name", "ding\x07"), ["field 'name'", "U+0007"]),
    ("name with a bidi override", _set(BASE, "name", "abc\u202edef"), ["field 'name'", "U+202E"]),
    ("name padded with spaces", _set(BASE, "name", " padded "), ["field 'name'", "spaces"]),
    ("name of spaces", _set(BASE, "name", "   "), ["field 'name'", "empty"]),
    ("unknown key", _set(BASE, "nonsense", 1), ["field 'nonsense'", "Extra inputs"]),
    ("unknown nested key", _set(BASE, "algorithm.bogus", 1), ["field 'algorithm.bogus'"]),
    ("wrong type", _set(BASE, "algorithm.pop_size", "many"), ["field 'algorithm.pop_size'"]),
]

SECRET = "s3cr3t"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run `evo ARGS` in-process from an empty folder; returns (exit code, stdout, stderr)."""
    from evo.flows.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVO_DATABASE_URL", raising=False)

    def run(*args):
        r = CliRunner().invoke(app, list(args))
        return r.exit_code, r.stdout, r.stderr

    return run


def _one_line(code, out, err, expect):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for e in expect:
        assert e in lines[0], (e, lines[0])
    assert "Traceback" not in out + err and SECRET not in out + err


@pytest.mark.parametrize("case, config, expect", CONFIG, ids=[c[0] for c in CONFIG])
def test_bad_config_is_refused_before_anything_is_written(cli, tmp_path, case, config, expect):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(config))
    code, out, err = cli("run", str(path), "--db", f"sqlite:///{tmp_path}/evo.db")
    _one_line(code, out, err, [str(path), *expect])
    assert not (tmp_path / "evo.db").exists()


def _foreign_db(path: Path) -> str:
    """Another application's SQLite database, with a `runs` table of its own."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, athlete TEXT, km REAL)")
    con.execute("INSERT INTO runs (athlete, km) VALUES ('ana', 10.5)")
    con.commit()
    con.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


QUICK = str(Path(__file__).resolve().parents[2] / "examples" / "quick.toml")

CLI = [
    ("--generations zero", ["run", QUICK, "--generations", "0"], ["field 'algorithm.generations'"]),
    ("--generations negative", ["run", QUICK, "--generations", "-3"], ["field 'algorithm.generations'"]),
    ("--seed negative", ["run", QUICK, "--seed", "-1"], ["field 'seed'"]),
    ("--name empty", ["run", QUICK, "--name", "  "], ["field 'name'"]),
    ("--name with markup and a bell", ["run", QUICK, "--name", "[/]\x07"], ["field 'name'", "U+0007"]),
    ("--db in memory", ["run", QUICK, "--db", "sqlite://"], ["in-memory SQLite"]),
    ("--db unparsable", ["run", QUICK, "--db", "not a url"], ["cannot parse database URL"]),
    ("--db unsupported backend", ["run", QUICK, "--db", "mysql://u@h/db"], ["unsupported database backend 'mysql'"]),
    ("--db unreachable, password hidden", ["run", QUICK, "--db", f"postgresql://u:{SECRET}@127.0.0.1:1/x"],
     ["cannot reach database", "u:***@127.0.0.1:1"]),
    ("--db unreachable, password query hidden", ["run", QUICK, "--db", f"postgresql://u@127.0.0.1:1/x?password={SECRET}"],
     ["cannot reach database", "password=***"]),
    ("config file missing", ["run", "nope.toml"], ["nope.toml: config file not found"]),
    ("config not TOML", ["run", "{notoml}"], ["not valid TOML"]),
    ("config is a folder", ["run", "{folder}"], ["config file not found"]),
    ("resume of an unknown run", ["resume", "ghost", "--db", "sqlite:///{tmp}/evo.db"], ["no run named 'ghost'"]),
    ("show on no database", ["show", "ghost", "--db", "sqlite:///{tmp}/typo.db"], ["no evo database at", "typo.db"]),
    ("runs on no database", ["runs", "--db", "sqlite:///{tmp}/typo.db"], ["no evo database at"]),
    ("report on no database", ["report", "ghost", "--db", "sqlite:///{tmp}/typo.db"], ["no evo database at"]),
    ("--db under a file", ["run", QUICK, "--db", "sqlite:///{notoml}/evo.db"], ["notoml.toml is a file, not a folder"]),
    ("--db in a missing folder", ["run", QUICK, "--db", "sqlite:///{tmp}/nowhere/evo.db"], ["the folder", "nowhere does not exist"]),
    ("--db that is a folder", ["run", QUICK, "--db", "sqlite:///{folder}"], ["is a folder, not a SQLite file"]),
    ("bad EVO_ variable", ["runs", "--env", "EVO_LEASE_SECONDS=-5"], ["EVO_LEASE_SECONDS", "greater than 0", "'-5'"]),
    ("serve with a bad cron", ["serve", "--cron", "every hour", "--db", "sqlite:///{tmp}/evo.db"], ["--cron", "not a cron"]),
    ("serve with cron and interval", ["serve", "--cron", "0 * * * *", "--interval", "60"], ["--cron or --interval"]),
    ("serve continuing a bad name", ["serve", "--continue-run", "a\x1bb"], ["--continue-run", "U+001B"]),
    ("walkforward with no fold", ["walkforward", QUICK, "--folds", "0"], ["field 'validation.walk_forward.folds'"]),
    ("walkforward sideways", ["walkforward", QUICK, "--mode", "sideways"], ["field 'validation.walk_forward.mode'"]),
]


@pytest.mark.parametrize("case, args, expect", CLI, ids=[c[0] for c in CLI])
def test_bad_command_line_is_refused(cli, tmp_path, monkeypatch, case, args, expect):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notoml.toml").write_text("this is = = not toml")
    subst = {"{tmp}": str(tmp_path), "{notoml}": str(tmp_path / "notoml.toml"), "{folder}": str(tmp_path / "folder")}
    argv = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    if "--env" in argv:  # an environment variable, not an option
        i = argv.index("--env")
        key, value = argv.pop(i + 1).split("=", 1)
        argv.pop(i)
        monkeypatch.setenv(key, value)
    before = sorted(p.name for p in tmp_path.iterdir())
    _one_line(*cli(*argv), expect)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created: no database, no file


@pytest.mark.parametrize("command", [["run", QUICK], ["resume", "x"], ["show", "x"], ["runs"], ["report", "x"]])
def test_a_database_of_another_application_is_refused_untouched(cli, tmp_path, command):
    path = tmp_path / "app.db"
    digest = _foreign_db(path)
    code, out, err = cli(*command, "--db", f"sqlite:///{path}")
    _one_line(code, out, err, ["holds tables that are not evo's", "'runs'"] if command[0] in ("run", "resume") else ["app.db"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm, no journal


@pytest.mark.parametrize("command", [["run", QUICK], ["show", "x"]])
def test_a_file_that_is_not_a_database_is_named(cli, tmp_path, command):
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 100)
    _one_line(*cli(*command, "--db", f"sqlite:///{path}"), ["notes.db", "is not a SQLite database"])
    assert path.read_text() == "shopping list\n" * 100


HEADER = "timestamp,open,high,low,close,volume\n"


def _bars(n: int, t0: int, step: int) -> list[str]:
    return [f"{t0 + i * step},{100 + i % 7},{101 + i % 7},{99 + i % 7},{100 + i % 7},{1000 + i}" for i in range(n)]


DATA = [
    ("epoch seconds and milliseconds mixed", HEADER + "\n".join(_bars(300, 1_600_000_000, 3600) + _bars(300, 1_700_000_000_000, 3_600_000)),
     ["data.csv", "row 301", "not in the unit of the others"]),
    ("numbers that are not epoch timestamps", HEADER + "\n".join(_bars(600, 20210101, 1)), ["data.csv", "not epoch seconds"]),
    ("symbol with a control character", "symbol," + HEADER + "\n".join("A\x1b[2J," + b for b in _bars(600, 1_600_000_000, 3600)),
     ["data.csv", "symbol", "U+001B"]),
]


@pytest.mark.parametrize("case, body, expect", DATA, ids=[c[0] for c in DATA])
def test_bad_market_data_is_refused(cli, tmp_path, case, body, expect):
    (tmp_path / "data.csv").write_text(body)
    cfg = _set(BASE, "data", {"paths": [str(tmp_path / "data.csv")]})
    (tmp_path / "c.toml").write_text(tomli_w.dumps(cfg))
    _one_line(*cli("run", str(tmp_path / "c.toml"), "--db", f"sqlite:///{tmp_path}/evo.db"), expect)
    assert not (tmp_path / "evo.db").exists()
