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


def test_baseline_comparison_runs_both_sides_interleaved_and_compares_their_bits():
    """`evo bench --baseline PYTHON` with this interpreter on both sides: each case's two workers give the
    same bits, and the ratios are the medians of the timings it reports."""
    import statistics
    import sys

    from evo.flows.bench.compare import MAIN_CASES, compare_benchmark

    r = compare_benchmark(sys.executable, n=16, n_bars=600, repeats=3)
    assert set(r["cases"]) == set(MAIN_CASES)
    for case, c in r["cases"].items():
        assert c["same_shared_metrics_and_fingerprints"], case
        assert len(c["this_runs"]) == len(c["baseline_runs"]) == 3
        assert c["throughput_ratio"] == pytest.approx(statistics.median(c["baseline_runs"]) / statistics.median(c["this_runs"]))
        assert c["strategies"] == 16 and c["bars"] == (20_000 if case == "portfolio" else 600)
