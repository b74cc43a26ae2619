"""Each built-in family's `export_signals` (its signals written out for `evo export`) equals its reference
signals, bit for bit, on genomes from across its gene space."""

import numpy as np
import pandas as pd
import pytest

from evo import strategies
from evo.live.export import metric_definitions


def _run_template(family, params: dict, frame: pd.DataFrame):
    import vectorbt as vbt

    scope = {"vbt": vbt, "np": np, "pd": pd, **{k.upper(): v for k, v in params.items()}}
    exec(type(family).export_signals, scope)
    return scope["signals"](frame)


@pytest.mark.parametrize("name", strategies.names())
def test_export_signals_equal_the_reference(name):
    family = strategies.get(name)
    space = family.space()
    frame = strategies.check_frame(space)
    rng = np.random.default_rng(3)
    X = space.repair(np.vstack([space.xl, space.xu, space.xl + rng.random((6, space.n_var)) * (space.xu - space.xl)]))
    params = space.decode(X)
    ref_e, ref_x = family.reference_signals(frame, params)
    for j, p in enumerate(params):
        e, x = _run_template(family, p, frame)
        assert e.dtype == bool and x.dtype == bool
        np.testing.assert_array_equal(e.to_numpy(), ref_e.iloc[:, j].to_numpy(), err_msg=f"entries {p}")
        np.testing.assert_array_equal(x.to_numpy(), ref_x.iloc[:, j].to_numpy(), err_msg=f"exits {p}")
        assert ref_e.iloc[:, j].any() or ref_x.iloc[:, j].any()


def test_metric_definitions_are_the_tables_references():
    from evo.config.metrics import TABLE

    defs = metric_definitions()
    assert list(defs) == [m.name for m in TABLE]
    assert defs["total_return"] == "pf.total_return()" and defs["n_trades"] == "pf.trades.count()"
