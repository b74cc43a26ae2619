"""The seams: the library never imports Prefect, the config is a pure schema, the layers point down.

`lint-imports` checks the library's contracts (pyproject.toml, [tool.importlinter]); the layers above
it (flows over tasks over the library), which live outside evo/ in the repository, are read here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    """Every contract declared in pyproject.toml is checked and kept."""
    import tomllib

    declared = [c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]]
    res = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    for name in declared:
        assert f"{name} KEPT" in res.stdout, f"contract {name!r} was not reported kept:\n{res.stdout[-3000:]}"


def _imports(folder: str) -> dict[str, set[str]]:
    out = {}
    for path in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names |= {f"{node.module}.{a.name}" for a in node.names}
        out[str(path.relative_to(ROOT))] = names
    return out


def test_layers_above_the_library_point_down():
    for path, names in _imports("evo").items():
        bad = {n for n in names if n.startswith(("evo.flows", "evo.tasks", "prefect"))}
        assert not bad, f"{path} imports {sorted(bad)}: the library never reaches up"
    for path, names in _imports("tasks").items():
        bad = {n for n in names if n.startswith("evo.flows")}
        assert not bad, f"{path} imports {sorted(bad)}: tasks do not know the flows"
    for path, names in _imports("migrations").items():
        bad = {n for n in names if n.startswith(("evo.flows", "evo.tasks", "prefect"))}
        assert not bad, f"{path} imports {sorted(bad)}"


def test_sql_lives_in_the_store():
    """Only evo/store/ talks SQL (and the migrations, which create the schema)."""
    for folder in ("evo", "flows", "tasks"):
        for path, names in _imports(folder).items():
            if path.startswith(("evo/store/",)):
                continue
            bad = {n for n in names if n.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3", "alembic")}
            assert not bad, f"{path} imports {sorted(bad)}"


def test_every_environment_variable_is_a_declared_setting():
    """An EVO_* name in any string of the code or the tests is a field of evo.config.settings.Settings (or a
    prefix the tests clear), so no variable is read ad hoc."""
    import re

    from evo.config.settings import variables

    declared = {v for v, _, _ in variables()}
    prefixes = {"EVO_", "EVO_FAULT_", "EVO_TEST_HOLD", "EVO_TEST_BARRIER"}  # cleared wholesale by tests/conftest.py
    undeclared = set()
    for folder in ("evo", "flows", "tasks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for name in re.findall(r"\bEVO_[A-Z_]*", node.value):
                        if name not in declared and name not in prefixes:
                            undeclared.add(f"{path.relative_to(ROOT)}: {name}")
    assert not undeclared, sorted(undeclared)
