"""Stale numba caches of kernels that call kernels in other files are dropped."""

from __future__ import annotations

from evo.engine.jit import drop_stale_cache


def test_cached_kernels_are_dropped_when_a_dependency_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    mod = tmp_path / "fam_nb.py"
    dep = tmp_path / "engine_nb.py"
    mod.write_text("# kernels\n")
    dep.write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    files = [cache / "fam_nb.k-10.py311.nbi", cache / "fam_nb.k-10.py311.1.nbc"]
    other = cache / "engine_nb.k-3.py311.nbi"
    for f in files + [other]:
        f.write_text("compiled")

    drop_stale_cache(str(mod), str(dep))  # first sight: no stamp, so the cache cannot be trusted
    assert not any(f.exists() for f in files) and other.exists()

    for f in files:
        f.write_text("compiled again")
    drop_stale_cache(str(mod), str(dep))  # unchanged dependency: keep
    assert all(f.exists() for f in files)

    dep.write_text("x = 2\n")
    drop_stale_cache(str(mod), str(dep))  # changed dependency: drop
    assert not any(f.exists() for f in files) and other.exists()
