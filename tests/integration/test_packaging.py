"""The installed distribution: one import name (`evo`), every package and data file of the repository in it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

#: where each repository folder lands in the distribution
LAYOUT = {"evo": "evo", "flows": "evo/flows", "tasks": "evo/tasks", "migrations": "evo/migrations"}


def test_the_wheel_holds_only_evo_and_every_package_of_the_repository(tmp_path):
    # built from a copy: setuptools writes build/ into the tree it builds, and files a stale build/ keeps
    # would reach the wheel
    import shutil

    src, had_build = tmp_path / "src", (ROOT / "build").exists()
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", "bench-results"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                          "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert had_build or not (ROOT / "build").exists()  # nothing written into the checkout
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"evo"}, top
    expected = set()
    for folder, target in LAYOUT.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            expected.add(f"{target}/{rel.as_posix()}/__init__.py".replace("/./", "/"))
        for py in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in py.parts:
                expected.add(f"{target}/{py.relative_to(ROOT / folder).as_posix()}")
    expected.add("evo/migrations/script.py.mako")
    assert expected - set(names) == set()


@pytest.mark.long
def test_a_working_folder_with_tasks_rich_and_pandas_modules_shadows_nothing(tmp_path):
    """invoke and celery users have a tasks.py; a rich.py or pandas.py must not be imported either."""
    from tests.conftest import small_config
    from tests.helpers import evo, write_config

    for mod in ("tasks", "rich", "pandas", "flows", "migrations", "numpy"):
        (tmp_path / f"{mod}.py").write_text(f"raise SystemExit('the working folder\\'s {mod}.py was imported')\n")
    cfg = write_config(tmp_path / "c.toml", small_config(algorithm={"pop_size": 6, "generations": 1}))
    res = evo(["run", str(cfg), "--db", f"sqlite:///{tmp_path}/evo.db"], tmp_path, api_url=None)  # its own local API
    assert res.returncode == 0, res.stdout + res.stderr
    assert "was imported" not in res.stdout + res.stderr
    show = evo(["show", "t", "--db", f"sqlite:///{tmp_path}/evo.db"], tmp_path)
    assert show.returncode == 0 and "t  completed" in show.stdout, show.stdout + show.stderr
