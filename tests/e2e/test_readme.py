"""Every command the README tells a user to type, run as the user runs it: a subprocess in an empty folder.

The commands are read from the README itself (its "Quick start" and "Using it" blocks, and every
`evo ...` line of any block), so a command added to the README without a way to run it here fails
`test_every_readme_command_is_covered`. Sizes are made small where the README's own would take
minutes (placeholders and the flags below), never the command itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import EVO, ROOT, evo_env

pytestmark = pytest.mark.slow

README = ROOT / "README.md"


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """(section heading, lines) of every fenced code block."""
    out, section, block = [], "", None
    for line in text.splitlines():
        if line.startswith("#") and block is None:
            section = line.lstrip("#").strip()
        elif line.startswith("```"):
            if block is None:
                block = []
            else:
                out.append((section, block))
                block = None
        elif block is not None:
            block.append(line)
    return out


def _command(line: str) -> str | None:
    """The command on a README line, without its trailing comment (None for comments and blanks)."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    s = re.split(r"\s{2,}#\s", s)[0].strip()
    return s


def readme_commands() -> list[str]:
    """The quick start's and "Using it"'s commands, then every other `evo` line, in README order."""
    seen, out = set(), []
    for section, lines in _blocks(README.read_text()):
        for line in lines:
            cmd = _command(line)
            if cmd is None:
                continue
            if section in ("Quick start", "Using it") or cmd.startswith(("evo ", "make ", "python strategy.py")):
                if cmd not in seen:
                    seen.add(cmd)
                    out.append(cmd)
    return out


# how each README command runs here: a pattern, the arguments to run (small sizes), and what must hold
def _small(cmd: str) -> list[str]:
    args = shlex.split(cmd)
    subst = {"CONFIG": str(ROOT / "examples" / "quick.toml"), "N": "other", "URL": "sqlite:///other.db",
             "NAME": "quick", "...": "show quick"}
    out = []
    for a in args:
        if a.startswith("examples/"):
            a = str(ROOT / a)
        out += shlex.split(subst[a]) if a in subst else [a]
    return out


SMALL = {
    # the README's sizes take minutes; these flags keep the command and shrink the work
    "--generations 20": ["--generations", "2"],
    "--generations 10": ["--generations", "6"],
}


def _shrink(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        pair = " ".join(argv[i:i + 2])
        if pair in SMALL:
            out += SMALL[pair]
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


BENCH_SMALL = ["--n", "60", "--bars", "3000", "--rss-bars", "3000", "--repeats", "1", "--population", "20",
               "--population", "80"]
ORCH_SMALL = ["--n", "24", "--bars", "3000", "--generations", "3", "--run-bars", "1000", "--repeats", "1"]


def _run(argv, cwd, env, timeout=600):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _check_make_demo(cmd, cwd, env, api):
    res = _run(["make", "-f", str(ROOT / "Makefile"), "-o", "install", "demo", f"VENV={sys.prefix}"], cwd, env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "verdict:" in out and "holdout" in out and "report written to" in out
    assert (cwd / "report.html").stat().st_size > 1_000_000 and (cwd / "evo.db").exists()


def _check_make_test(cmd, cwd, env, api):
    """The target runs, from any folder, with this venv: the whole suite is what CI runs (`.ci/run` calls
    `make test`), so here the target runs pytest on one small test file (and skips the kernel warm-up)."""
    target = cmd.split()[1]
    res = _run(["make", "-f", str(ROOT / "Makefile"), "-o", "install", target, f"VENV={sys.prefix}", "WARM=true",
                "PYTEST_ARGS=tests/unit/test_objectives.py -p no:cacheprovider"], cwd, env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert re.search(r"\b3 passed\b", out), out[-3000:]  # the three tests of test_objectives.py ran


def _evo(argv, cwd, env, api=None, timeout=600):
    e = dict(env)
    if api:
        e["PREFECT_API_URL"] = api
    res = _run([EVO, *argv[1:]], cwd, e, timeout)
    return res, res.stdout + res.stderr


def _check_run_quick(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out[-3000:]
    assert "generation 4/4" in out and "verdict:" in out and "stored in sqlite:///evo.db as run 'quick'" in out


def _check_run_full(cmd, cwd, env, api):
    argv = _shrink(_small(cmd))
    res, out = _evo(argv, cwd, env)
    assert res.returncode == 0, out[-3000:]
    assert "generation 2/2" in out and "as run 'other'" in out and (cwd / "other.db").exists()
    assert "seed 7" in out or json.loads(_evo([EVO, "show", "other", "--db", "sqlite:///other.db", "--json"],
                                            cwd, env)[0].stdout)["seed"] == 7


def _check_resume(cmd, cwd, env, api):
    res, out = _evo(_shrink(_small(cmd)), cwd, env)
    assert res.returncode == 0, out[-3000:]
    assert "resuming after committed generation 4" in out and "generation 6/6" in out


def _check_runs(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out
    assert re.search(r"quick\s+│\s+completed\s+│\s+6/6", out), out


def _check_show(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out
    assert out.startswith("quick  completed  generation 6/6") and "Pareto set" in out and "verdict:" in out


def _check_show_json(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out
    s = json.loads(res.stdout)
    assert {"name", "status", "generations_done", "data_fingerprint", "verdict", "cache", "pareto"} <= set(s)
    assert s["name"] == "quick" and s["status"] == "completed" and s["generations_done"] == 6
    assert s["pareto"] and {"id", "genome_hash", "genes", "metrics", "objectives", "oos_metrics", "monte_carlo", "robustness"} <= set(s["pareto"][0])
    assert all(e["genome_hash"].startswith(e["id"]) and len(e["id"]) >= 8 for e in s["pareto"])
    assert {"pbo", "pbo_degradation", "pbo_prob_loss", "spa_pvalue", "refused_by"} <= set(s["verdict"])
    assert 0 <= s["verdict"]["pbo"] <= 1 and 0 <= s["verdict"]["spa_pvalue"] <= 1


def _check_report(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out
    page = (cwd / "report.html").read_text()
    assert "report written to report.html" in out and "Pareto set" in page and "Plotly" in page


def _check_walkforward(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env, timeout=900)
    assert res.returncode == 0, out[-3000:]
    assert "walk-forward quick-wf (rolling)" in out and "stitched out of sample" in out
    assert re.search(r"^│ 3 ", out, re.M), out  # three folds


def _check_serve(cmd, cwd, env, api):
    e = dict(env, PREFECT_API_URL=api)
    log = (cwd / "serve.log").open("w")
    proc = subprocess.Popen([EVO, *_small(cmd)[1:]], cwd=cwd, env=e, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "polling for its scheduled runs" not in (cwd / "serve.log").read_text():
            assert proc.poll() is None, (cwd / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "evo serve did not start"
            time.sleep(0.5)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)  # what systemd or `kill` sends
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    out = (cwd / "serve.log").read_text()
    argv = _small(cmd)
    name = argv[argv.index("--name") + 1] if "--name" in argv else "evolve"
    assert f"serving deployment evolve/{name}" in out and "automations:" in out
    assert code in (0, 130), out[-3000:]
    assert "never awaited" not in out and "Traceback" not in out, out[-3000:]


def _check_heal(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env, api=api)
    assert res.returncode == 0, out
    assert "evo: crash unresponsive runs:" in out and "evo: resume crashed runs:" in out


def _check_bench(cmd, cwd, env, api):
    res, out = _evo([*_small(cmd), *BENCH_SMALL], cwd, env, timeout=900)
    assert res.returncode == 0, out[-3000:]
    assert "strategy-bars/s" in out and "peak RSS" in out and "bookkeeping in the real loop" in out
    assert (cwd / "bench-results" / "bench.json").exists()


def _check_bench_orchestration(cmd, cwd, env, api):
    res, out = _evo([*_small(cmd), *ORCH_SMALL], cwd, env, timeout=900)
    assert res.returncode == 0, out[-3000:]
    results = json.loads((cwd / "bench-results" / "bench.json").read_text())
    r = results["orchestration"]
    assert r["same_result"] is True and r["plain_seconds"] > 0 and r["prefect_seconds"] > 0
    run = results["run"]
    assert len(run["runs"]) == len(run["in_loop_runs"]) == run["repeats"] and min(run["in_loop_runs"]) > 0


def _check_bench_verdict(cmd, cwd, env, api):
    res, out = _evo([*_small(cmd), "--n", "20", "--bars", "3000", "--repeats", "1"], cwd, env, timeout=600)
    assert res.returncode == 0, out[-3000:]
    r = json.loads((cwd / "bench-results" / "bench.json").read_text())["verdict"]
    assert r["cscv_phenotypes"] == 20_000 and r["cscv_splits"] == 12_870 and r["cscv_seconds"] > 0
    assert r["evaluation_ms_per_strategy"] > 0 and r["evaluation_with_block_sums_ms_per_strategy"] > 0
    assert r["evaluation_with_block_sums_over_without"] > 0 and r["block_sums_at_end_ms_per_phenotype"] > 0
    # 16 blocks: a byte for their number, two of bits, 7 bytes per block the strategy traded in
    assert 3 <= r["block_sums_stored_bytes_per_phenotype"] <= 3 + 16 * 7
    assert r["monte_carlo_resamples"] == 1000 and r["monte_carlo_seconds_per_member"] > 0


def _check_bench_pbo_run(cmd, cwd, env, api):
    argv = _small(cmd)
    for flag, small in (("--n", "16"), ("--bars", "1500"), ("--generations", "3")):
        argv[argv.index(flag) + 1] = small
    res, out = _evo([*argv, "--repeats", "1"], cwd, env, timeout=600)
    assert res.returncode == 0, out[-3000:]
    r = json.loads((cwd / "bench-results" / "bench.json").read_text())["pbo_run"]
    with_, without = r["with"], r["without"]
    # the same evolution: the same genomes evaluated; PBO's sums make the database larger
    assert with_["evaluated"] == without["evaluated"] > 0 and r["ratio"]["database_bytes"] > 1
    assert with_["phenotypes"] >= 2 and 0 <= with_["pbo"] <= 1 and with_["pbo_step_seconds"] > 0
    assert 0 <= with_["computed_at_end"] <= with_["phenotypes"] and "PBO's cost" in out


def _check_bench_robust(cmd, cwd, env, api):
    argv = _small(cmd)
    for flag, small in (("--n", "8"), ("--bars", "1000"), ("--generations", "3")):
        argv[argv.index(flag) + 1] = small
    res, out = _evo([*argv, "--repeats", "1"], cwd, env, timeout=600)
    assert res.returncode == 0, out[-3000:]
    r = json.loads((cwd / "bench-results" / "bench.json").read_text())["robust"]
    # K = 8: nine genomes per new one, less those repeated or stored
    assert r["robust"]["evaluated"] + r["robust"]["cache_hits"] == 9 * r["robust"]["offspring"]
    assert r["report_only"]["evaluated"] + r["report_only"]["cache_hits"] == r["report_only"]["offspring"]
    assert r["ratio"]["evaluated"] > 1 and r["ratio"]["run_seconds"] > 0 and "robust fitness" in out


def _check_bench_cluster(cmd, cwd, env, api):
    res, out = _evo([*_small(cmd), "--n", "24", "--bars", "2000", "--generations", "3", "--repeats", "1"], cwd, env,
                    timeout=900)
    assert res.returncode == 0, out[-3000:]
    r = json.loads((cwd / "bench-results" / "bench.json").read_text())["cluster"]
    assert set(r["strategy_bars_per_s"]) == {"thread", "dask1", "dask2"} and min(r["strategy_bars_per_s"].values()) > 0
    assert r["efficiency_2_workers"] > 0 and r["cluster_over_thread_1_worker"] > 0
    # the split of a generation: evaluating and the rest add up to its wall time, per variant
    for k, wall in r["generation_seconds"].items():
        assert r["evaluating_seconds"][k] > 0 and abs(r["evaluating_seconds"][k] + r["outside_evaluation_seconds"][k]
                                                      - wall) <= 0.5 * wall, k
    assert r["two_workers_compute_over_one"] > 0 and r["efficiency_ceiling"] > 0
    # the market reached each worker whole, counted at distributed's comm; generations carry bytes too
    assert r["market_received_bytes_per_worker"] >= r["market_bytes"] > 0
    assert min(r["received_bytes_per_generation"].values()) > 0 and min(r["sent_bytes_per_generation"].values()) > 0
    assert "scaling efficiency" in out


def _check_bench_postgres(cmd, cwd, env, api):
    from tests.conftest import fresh_postgres_database

    argv = _small(cmd)
    with fresh_postgres_database() as url:
        argv[argv.index("--db") + 1] = url
        argv[argv.index("--population") + 1] = "40"
        res, out = _evo(argv, cwd, env, timeout=600)
    assert res.returncode == 0, out[-3000:]
    assert "bookkeeping in the real loop" in out and "postgresql" in out and "strategy-bars/s" not in out


def _check_debug(cmd, cwd, env, api):
    argv = _small(cmd)
    res, out = _evo([EVO, *argv[1:3], "ghost"], cwd, env)  # an error, shown with its traceback
    assert res.returncode != 0 and "Traceback" in res.stderr and "no run named 'ghost'" in res.stderr
    res, out = _evo(argv, cwd, env)
    assert res.returncode == 0 and "quick  completed" in out


def _check_run_on_dask(cmd, cwd, env, api):
    """The multi-host block, on one host: a Dask scheduler and a worker, then `evo run my.toml` through them."""
    import tomllib

    from tests.prefect_server import free_port

    port = free_port()
    d = Path(sys.executable).parent
    procs = [subprocess.Popen([str(d / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        procs.append(subprocess.Popen([str(d / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard"], cwd=cwd, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        cfg = tomllib.loads((ROOT / "examples" / "quick.toml").read_text())
        cfg.update(name="on-dask", execution={"task_runner": "dask", "dask_address": f"tcp://127.0.0.1:{port}"})
        cfg["algorithm"]["generations"] = 2
        import tomli_w

        (cwd / "my.toml").write_text(tomli_w.dumps(cfg))
        res, out = _evo(_small(cmd), cwd, dict(env, EVO_DATABASE_URL=f"sqlite:///{cwd}/dask.db"), timeout=600)
        assert res.returncode == 0, out[-3000:]
        assert "generation 2/2" in out and "as run 'on-dask'" in out and (cwd / "dask.db").exists()
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def _notebook_block() -> str:
    """The README's notebook example: the python block of "From Pareto set to the market"."""
    text = README.read_text()
    start = text.index("```python\n", text.index("### From Pareto set to the market")) + len("```python\n")
    return text[start:text.index("```", start)]


_SHOWN: dict = {}


def _shown(cwd, env) -> dict:
    """`evo show quick --json` once per folder (the run no longer changes once these commands run)."""
    if cwd not in _SHOWN:
        res, out = _evo([EVO, "show", "quick", "--json"], cwd, env)
        assert res.returncode == 0, out
        _SHOWN[cwd] = json.loads(res.stdout)
    return _SHOWN[cwd]


def _with_member(argv: list[str], cwd, env) -> tuple[list[str], dict]:
    s = _shown(cwd, env)
    member = s["pareto"][0]
    subst = {"ID": member["id"], "ISO": s["verdict"]["holdout_start"]}
    return [subst.get(a, a) for a in argv], member


def _check_signals(cmd, cwd, env, api):
    """The notebook block runs first (it writes SYN.csv, the quick run's bars), then the command."""
    res = _run([sys.executable, "-c", _notebook_block()], cwd, env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "Total Return [%]" in res.stdout and (cwd / "SYN.csv").exists()
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out[-3000:]
    ids = [e["id"] for e in _shown(cwd, env)["pareto"]]
    assert "positions after the last bar" in out and all(i in out for i in ids), out


def _check_signals_json(cmd, cwd, env, api):
    argv, member = _with_member(_small(cmd), cwd, env)
    res, out = _evo(argv, cwd, env)
    assert res.returncode == 0, out[-3000:]
    (row,) = json.loads(res.stdout)
    assert row["member"] == member["id"] and row["symbol"] == "SYN" and isinstance(row["position"], float)
    assert {"bar", "order", "side", "entry_price", "bars_held", "stop_loss", "take_profit"} <= set(row)


def _check_export(cmd, cwd, env, api):
    argv, member = _with_member(_small(cmd), cwd, env)
    res, out = _evo(argv, cwd, env)
    assert res.returncode == 0, out[-3000:]
    assert f"member {member['id']}" in out and "import vectorbt as vbt" in (cwd / "strategy.py").read_text()


def _check_exported_script(cmd, cwd, env, api):
    argv, member = _with_member(shlex.split(cmd), cwd, env)
    res = _run([sys.executable, *argv[1:]], cwd, env)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout)
    for name, want in member["oos_metrics"].items():  # the stored holdout metrics
        g = got["metrics"][name]
        assert (g is None and want is None) or g == want or abs(float(g) - float(want)) <= 1e-9 * abs(float(want)), name
    assert isinstance(got["position"], float)


def _check_paper_create(cmd, cwd, env, api):
    argv, _ = _with_member(_small(cmd), cwd, env)  # ISO: the holdout's first bar, inside SYN.csv
    res, out = _evo(argv, cwd, env)
    assert res.returncode == 0, out[-3000:]
    assert "paper book demo of run quick" in out


def _check_paper_tick(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out[-3000:]
    assert re.search(r"paper book demo: [1-9]\d* ledger rows written", out), out
    res, out = _evo(_small(cmd), cwd, env)  # again: nothing new, nothing written
    assert res.returncode == 0 and "paper book demo: 0 ledger rows written" in out, out


def _check_paper_show(cmd, cwd, env, api):
    res, out = _evo(_small(cmd), cwd, env)
    assert res.returncode == 0, out[-3000:]
    s = json.loads(res.stdout)
    assert s["name"] == "demo" and s["run"] == "quick" and s["ledger_rows"] > 0 and s["last"]
    assert [d["member"] for d in s["drift"]] == s["members"]


COMMANDS = [
    (r"make demo", _check_make_demo),
    (r"make test(-fast)?", _check_make_test),
    (r"evo run examples/quick\.toml", _check_run_quick),
    (r"evo run CONFIG --name N --generations 20 --seed 7 --db URL", _check_run_full),
    (r"evo resume quick --generations 10", _check_resume),
    (r"evo runs", _check_runs),
    (r"evo show quick", _check_show),
    (r"evo show quick --json", _check_show_json),
    (r"evo report quick --out report\.html", _check_report),
    (r"evo walkforward examples/quick\.toml --name quick-wf --folds 3", _check_walkforward),
    (r"evo serve( .*)?", _check_serve),
    (r"evo heal", _check_heal),
    (r"evo run my\.toml", _check_run_on_dask),
    (r"evo bench", _check_bench),
    (r"evo bench --orchestration", _check_bench_orchestration),
    (r"evo bench --verdict", _check_bench_verdict),
    (r"evo bench --cluster", _check_bench_cluster),
    (r"evo bench --robust --n \d+ --bars \d+ --generations \d+", _check_bench_robust),
    (r"evo bench --pbo-run --n \d+ --bars \d+ --generations \d+", _check_bench_pbo_run),
    (r"evo bench --no-engine --no-signals --no-portfolio --no-rss --population \d+ --db postgresql://\S+",
     _check_bench_postgres),
    (r"evo --debug \.\.\.", _check_debug),
    (r"evo signals quick --data SYN\.csv", _check_signals),
    (r"evo signals quick --data SYN\.csv --member ID --json", _check_signals_json),
    (r"evo export quick --member ID --out strategy\.py", _check_export),
    (r"python strategy\.py SYN\.csv --start ISO --json", _check_exported_script),
    (r"evo paper create demo --run quick --data SYN\.csv --start ISO", _check_paper_create),
    (r"evo paper tick demo", _check_paper_tick),
    (r"evo paper show demo --json", _check_paper_show),
]


def _checker(cmd: str):
    found = [fn for pattern, fn in COMMANDS if re.fullmatch(pattern, cmd)]
    return found[0] if found else None


def test_every_readme_command_is_covered():
    cmds = readme_commands()
    assert "make demo" in cmds and "evo run examples/quick.toml" in cmds, cmds
    missing = [c for c in cmds if _checker(c) is None]
    assert missing == [], f"README commands this test does not run: {missing}"


#: the README's commands in groups that run in parallel (pytest-xdist); within a group, in README order and
#: in one folder, because a later command reads what an earlier one wrote (run, then resume, show, report)
GROUPS = {
    "quick start": {_check_make_demo, _check_make_test},
    "a run, as Using it goes": {_check_run_quick, _check_resume, _check_runs, _check_show, _check_show_json,
                                _check_report, _check_debug, _check_signals, _check_signals_json, _check_export,
                                _check_exported_script, _check_paper_create, _check_paper_tick, _check_paper_show},
    "a run with every option": {_check_run_full},
    "walk-forward": {_check_walkforward},
    "serving and healing": {_check_serve, _check_heal},
    "the benchmarks": {_check_bench, _check_bench_orchestration, _check_bench_postgres},
    "the cluster benchmark": {_check_bench_cluster},
    "the verdict benchmark": {_check_bench_verdict, _check_bench_robust, _check_bench_pbo_run},
    "the multi-host setup": {_check_run_on_dask},
}


def test_the_groups_hold_every_command():
    assert set().union(*GROUPS.values()) == {fn for _, fn in COMMANDS}


@pytest.mark.long
@pytest.mark.parametrize("group", list(GROUPS))
def test_readme_commands_run_as_a_user_runs_them(tmp_path, prefect_server, group):
    """Each README command of the group, in README order, in one empty folder. The quick start runs as a
    new user runs it, with the local Prefect API evo starts itself; the other groups point PREFECT_API_URL
    at the session's Prefect server, as the README says a user with a server does."""
    env = evo_env(tmp_path, None if group == "quick start" else prefect_server.api_url)
    ran = set()
    for cmd in readme_commands():
        fn = _checker(cmd)
        assert fn is not None, cmd
        if fn in GROUPS[group]:
            fn(cmd, tmp_path, env, prefect_server.api_url)
            ran.add(fn)
    assert ran == GROUPS[group], "a command this test knows is no longer in the README"


def test_the_two_worker_recipe_is_what_the_two_host_test_runs():
    """"Scaling out"'s worker command and extra deployment run in tests/e2e/test_prefect_workers.py (two
    namespace hosts), read from the README; here: they are found, and prefect.yaml takes the deployment."""
    import yaml

    from tests.e2e.test_prefect_workers import POOL, _scaling_out

    worker, deployment = _scaling_out()
    assert worker[:3] == ["prefect", "worker", "start"], worker
    assert worker[worker.index("--pool") + 1] == POOL and worker[worker.index("--limit") + 1] == "1", worker
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text() + deployment)
    assert [d["name"] for d in project["deployments"]] == ["evolve", "continue-default", "other"]
    other = project["deployments"][-1]
    assert other["work_pool"]["name"] == POOL and other["parameters"] == {"name": "other"}
