"""Property: a config that passes every check runs; one that cannot run is refused before anything is written.

Configs are drawn from the schema itself: every number within its field's own bounds (read from the
pydantic model, so a new field is drawn too), every literal from its choices, strings from a mix of
valid and invalid values. Only the sizes that decide run time are capped (bars, population), and
each config runs one generation of the flow's own loop (`drive` with plain calls, no Prefect).
"""

from __future__ import annotations

import math
import typing
import uuid

import annotated_types
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from evo.config import ConfigError, RunConfig
from evo.config.settings import settings as evo_settings
from evo.market import DataError
from evo.search.objectives import METRICS

pytestmark = pytest.mark.slow

#: run time is the only reason to narrow the schema's bounds
CAPS = {"n_bars": (50, 2500), "pop_size": (4, 12), "n_offsprings": (1, 12), "generations": (1, 1),
        # the verdict's resamples, neighbours and CSCV splits (C(20, 10) = 184,756 at 20 blocks)
        "monte_carlo_resamples": (10, 300), "neighbours": (0, 4), "cscv_blocks": (2, 12)}

#: (valid, invalid) values of the string fields; an invalid one is drawn one time in five
STRINGS = {
    "freq": (["1h", "15min", "1D", "30s", "1ns"], ["0s", "-1h", "soon"]),
    "start": (["2020-01-01", "2021-06-30 12:00", "2020-01-01T00:00:00+02:00"], ["yesterday-ish", "NaT", "1677-09-21"]),
    "end": (["2030-01-01", "2020-02-01"], ["later", "2019-01-01"]),
    "holdout_start": (["2020-01-20", "2020-01-01 05:00"], ["someday", "2300-01-01"]),
    "family": (["rsi_pullback", "mean_reversion", "trend", "breakout", "composite", "tests.user_families:SmaCross"],
               ["nope"]),
    "name": (["run", "a/b", "[/]", "x" * 190, "ünï ✓"], ["x" * 191, "tab\there"]),
    "dask_address": (["tcp://127.0.0.1:8786"], ["nope"]),
    "symbols": (["SYN", "A", "B"], ["B\x1b", ""]),
}


def _string(name: str) -> st.SearchStrategy:
    valid, invalid = STRINGS.get(name, (["x"], []))
    options = [st.sampled_from(valid)] * 4 + ([st.sampled_from(invalid)] if invalid else [])
    return st.one_of(*options)


def _bounds(field) -> tuple[float | None, float | None, bool, bool]:
    lo = hi = None
    lo_open = hi_open = False
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
    return lo, hi, lo_open, hi_open


def _number(name: str, kind: type, field) -> st.SearchStrategy:
    lo, hi, lo_open, hi_open = _bounds(field)
    if name in CAPS:
        lo, hi = max(lo if lo is not None else CAPS[name][0], CAPS[name][0]), min(hi if hi is not None else CAPS[name][1], CAPS[name][1])
    if kind is int:
        return st.integers(min_value=None if lo is None else int(lo) + lo_open,
                           max_value=None if hi is None else int(hi) - hi_open)
    return st.floats(min_value=lo, max_value=hi, exclude_min=lo_open, exclude_max=hi_open,
                     allow_nan=False, allow_infinity=False)


def _for(name: str, annotation, field) -> st.SearchStrategy:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, __import__("types").UnionType):
        inner = [a for a in args if a is not type(None)]
        return st.one_of(st.none(), _for(name, inner[0], field))
    if origin is typing.Literal:
        return st.sampled_from(args)
    if isinstance(annotation, type) and issubclass(annotation, __import__("pydantic").BaseModel):
        return _model(annotation)
    if annotation is bool:
        return st.booleans()
    if annotation in (int, float):
        return _number(name, annotation, field)
    if annotation is str:
        return _string(name)
    if origin is list and name == "symbols":
        return st.lists(_string("symbols"), min_size=1, max_size=3)
    if origin is list and name == "seed_population":
        return st.lists(st.lists(st.floats(-100, 300, allow_nan=False), min_size=8, max_size=10), max_size=3)
    if origin is list and name == "paths":
        return st.just([])
    if origin is list and name == "trading":  # the trading genes, an unknown one, repeats
        return st.lists(st.sampled_from([*typing.get_args(args[0]), "leverage"]), max_size=3)
    if origin is tuple and name == "window":
        return st.tuples(st.integers(-5, 2500), st.integers(-5, 2600))
    if origin is dict and name == "bounds":
        gene = st.sampled_from(["rsi_window", "fast_window", "slow_window", "vol_mult", "sl_stop", "atr_window", "e_rsi",
                                "direction", "size"])
        pair = st.tuples(st.floats(-10, 400, allow_nan=False), st.floats(-10, 400, allow_nan=False))
        return st.dictionaries(gene, pair, max_size=2)
    raise NotImplementedError(f"no strategy for field {name}: {annotation}")


def _model(model) -> st.SearchStrategy:
    fields = {}
    for name, f in model.model_fields.items():
        if name in ("objectives", "constraints"):
            continue
        fields[name] = _for(name, f.annotation, f)
    return st.fixed_dictionaries({}, optional=fields)


objective = st.fixed_dictionaries({
    "metric": st.sampled_from(METRICS), "direction": st.sampled_from(["max", "min"]),
}, optional={"ref": st.floats(-1e12, 1e12, allow_nan=False)})
constraint = st.fixed_dictionaries({
    "metric": st.sampled_from(METRICS), "op": st.sampled_from([">=", "<="]), "value": st.floats(-1e12, 1e12, allow_nan=False),
})

configs = st.builds(
    lambda base, objs, cons, synth: {
        **base,
        "objectives": list({o["metric"]: o for o in objs}.values()),
        "constraints": cons,
        "data": {**base.get("data", {}), "paths": [], "synthetic": synth},
        "algorithm": {**base.get("algorithm", {}), "generations": 1},
        "storage": {},
        "execution": {},
    },
    _model(RunConfig),
    st.lists(objective, min_size=1, max_size=3),
    st.lists(constraint, max_size=2),
    _model(RunConfig.model_fields["data"].annotation.model_fields["synthetic"].annotation.__args__[0]),
)


@pytest.mark.long
@settings(max_examples=evo_settings().property_examples or 100, deadline=None,
          derandomize=not evo_settings().property_examples,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(configs)
def test_a_config_that_passes_every_check_runs_one_generation(tmp_path, d):
    from evo.run import opening
    from evo.config import validate
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    d["name"] = d.get("name") or f"p{uuid.uuid4().hex[:6]}"
    url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.db"
    try:
        cfg = validate(d)
        opening.prepare(cfg)
    except (ConfigError, DataError, opening.RunError) as e:  # refused: one line, naming what is wrong
        assert "\n" not in str(e) and str(e)
        event(f"refused: {str(e).split(':')[0][:40]}")
        return
    event("ran")
    out = drive(cfg, None, None, url, None, False, Plain())
    assert out["generations_done"] == 1
    assert math.isfinite(float(out.get("generations_done", 0)))
