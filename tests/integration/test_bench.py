"""`evo bench --generation` measures the real loop: its figures add up and respond to the work done."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


def test_generation_benchmark_measures_the_steps_of_the_real_loop(tmp_path):
    from evo.flows.bench.orchestration import generation_benchmark, real_loop_steps

    rows = real_loop_steps(30, 4, 300, f"sqlite:///{tmp_path}/a.db")
    assert len(rows) == 3  # generation 1 (the sample) is left out
    for r in rows:
        assert r["vary"] > 0 and r["select"] > 0 and r["persist"] > 0 and r["evaluate"] > 0
        assert r["bookkeeping"] == pytest.approx(r["total"] - r["evaluate"])
        assert r["other"] == pytest.approx(r["bookkeeping"] - r["vary"] - r["select"] - r["persist"])
    r = generation_benchmark(sizes=(20, 80), n_bars=300, generations={20: 3, 80: 3})
    assert sorted(r["steps"]) == [20, 80] and r["backend"] == "sqlite"
    # more individuals cost more to store, and pymoo's own loop is measured beside it
    assert r["steps"][80]["persist"] > r["steps"][20]["persist"]
    assert all(v > 0 for v in r["pymoo_ms"].values())
    g = r["growth"]["20-80"]
    assert g["persist"] == pytest.approx(math.log(r["steps"][80]["persist"] / r["steps"][20]["persist"]) / math.log(4))
