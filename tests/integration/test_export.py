"""`evo export`: the exported script, run as a subprocess that cannot import evo, reproduces the member's
stored in-sample and holdout metrics for every built-in family (shorts, sizing, trailing and OHLC stops on)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evo import strategies
from tests.conftest import small_config
from tests.integration.test_market import _csv, evo

pytestmark = pytest.mark.slow

#: the scripts run with evo unimportable (only vectorbt, numpy, pandas and the standard library), all in one
#: subprocess (vectorbt imports once): each invocation is `python FILE ARGS...` through runpy, its stdout kept
RUNNER = """
import contextlib, io, json, runpy, sys
sys.modules['evo'] = None
outputs = []
for argv in json.loads(sys.argv[1]):
    sys.argv = argv
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        runpy.run_path(argv[0], run_name='__main__')
    outputs.append(json.loads(buf.getvalue()))
print(json.dumps(outputs))
"""
ALLOWED = {"argparse", "json", "math", "pathlib", "numpy", "pandas", "vectorbt"}


def _close(got: dict, want: dict, label: str):
    assert set(got) == set(want), label
    for name, w in want.items():
        g = got[name]
        g = float(g) if isinstance(g, str) else g  # "inf", "-inf"
        w = float(w) if isinstance(w, str) else w
        if w is None or g is None:  # NaN
            assert g is None and w is None, (label, name, g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=f"{label}: {name}")


def _export_all(tmp):
    """A small run per built-in family on GOOG, its first Pareto member exported, and each script run on
    the training window and on the holdout: {family: (member, source, in-sample output, holdout output)}."""
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.store import open_store
    from evo.view.summary import describe

    url = f"sqlite:///{tmp}/evo.db"
    data = _csv(tmp / "data", "GOOG", 1500)
    index = pd.read_csv(data, index_col=0, parse_dates=True).index
    members, runs = {}, []
    for family in strategies.names():
        bounds = {"direction": [0, 2] if family == "composite" else [1, 2]}  # shorts (and reversals)
        cfg = small_config(name=family, data={"paths": [str(data)], "synthetic": None},
                           strategy={"family": family, "bounds": bounds},
                           evaluation={"ohlc_stops": True}, algorithm={"pop_size": 8, "generations": 1},
                           constraints=[{"metric": "n_trades", "op": ">=", "value": 1}])
        drive(cfg, None, None, url, None, False, Plain())
        s = describe(open_store(url, write=False), family)
        member = s["pareto"][0]
        out = tmp / family / "strategy.py"
        res = evo(["export", family, "--member", member["id"], "--out", str(out), "--db", url], tmp)
        assert res.exit_code == 0, res.output
        split = s["verdict"]["holdout"][0]
        runs += [[str(out), str(data), "--end", index[split - 1].isoformat(), "--json"],
                 [str(out), str(data), "--start", index[split].isoformat(), "--json"]]
        members[family] = (member, out.read_text())
    res = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(runs)], cwd=tmp, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    outputs = json.loads(res.stdout)
    return {f: (*members[f], outputs[2 * i], outputs[2 * i + 1]) for i, f in enumerate(members)}


def test_exported_script_reproduces_in_sample_and_holdout(tmp_path):
    """Every built-in family in one test: its runs, exports and one subprocess for all the scripts are built
    once (a parametrized test would build them on every test worker)."""
    for family, result in _export_all(tmp_path).items():
        _check_family(family, *result)


def _check_family(family, member, source, train, holdout):
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= ALLOWED, (family, imported)
    names = [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]
    assert len(names) == len(set(names)), (family, names)  # each constant says one thing
    for gene, value in member["genes"].items():  # the genes as named constants
        assert f"\n{gene.upper()} = {value!r}\n" in source
    assert member["metrics"]["n_trades"] >= 1 and member["oos_metrics"]
    _close(train["metrics"], member["metrics"], f"{family} in sample")
    _close(holdout["metrics"], member["oos_metrics"], f"{family} holdout")
    assert isinstance(train["position"], float) and isinstance(holdout["position"], float)


def test_user_family_refused_in_one_line(tmp_path):
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.store import open_store
    from evo.view.summary import describe

    url = f"sqlite:///{tmp_path}/evo.db"
    cfg = small_config(strategy={"family": "tests.user_families:SmaCross", "bounds": {}},
                       algorithm={"pop_size": 8, "generations": 1})
    drive(cfg, None, None, url, None, False, Plain())
    member = describe(open_store(url, write=False), "t")["pareto"][0]["id"]
    res = evo(["export", "t", "--member", member, "--out", str(tmp_path / "s.py"), "--db", url], tmp_path)
    assert res.exit_code == 2 and "cannot be exported" in res.output and not (tmp_path / "s.py").exists()
