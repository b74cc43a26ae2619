"""The population record and the one codec of non-finite floats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evo.config import codec
from evo.config.metrics import N_METRICS
from evo.search.algorithm import decode_floats, encode_floats
from evo.search.population import Population


def test_rows_keep_every_field_together():
    pop = Population.of(np.arange(8.0).reshape(4, 2), hash=["a", "b", "c", "d"], trades=[1, None, 3, 4],
                        F=np.arange(4.0)[:, None], per_asset=[np.ones((2, N_METRICS)), None, None, np.zeros((2, N_METRICS))])
    sub = pop[np.array([3, 0])]
    assert sub.hash.tolist() == ["d", "a"] and sub.trades.tolist() == [4, 1]
    assert sub.X.tolist() == [[6.0, 7.0], [0.0, 1.0]] and sub.F[:, 0].tolist() == [3.0, 0.0]
    assert sub.per_asset[0].shape == (2, N_METRICS) and not sub.per_asset[0].any() and sub.per_asset[1].all()
    assert sub.metrics.shape == (2, N_METRICS) and np.isnan(sub.metrics).all()  # unknown until evaluated
    F, h = pop.get("F", "hash")
    assert F is pop.F and h is pop.hash and pop.get("X") is pop.X
    both = Population.merge(pop[:1], pop[2:])
    assert both.hash.tolist() == ["a", "c", "d"] and both.trades.tolist() == [1, 3, 4]
    assert pop[pop.hash == "b"].trades.tolist() == [None]


def test_set_checks_the_number_of_rows():
    pop = Population.of(np.zeros((3, 1)))
    assert pop.set(rank=[0, 1, 2]).rank.tolist() == [0.0, 1.0, 2.0] and np.isnan(pop.rank).all()
    with pytest.raises(ValueError, match="rank"):
        pop.set(rank=[0, 1])


@pytest.mark.parametrize("value, text", [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_codec_round_trips_each_non_finite_value(value, text):
    assert codec.encode(value) == text and codec.encode(value, nan=None) == (None if text == "nan" else text)
    back = codec.decode(json.loads(json.dumps(codec.encode(value))))
    assert (math.isnan(back) and math.isnan(value)) or back == value
    assert math.isnan(codec.decode(None))


def test_codec_matches_what_checkpoints_and_members_always_held():
    """The JSON text of checkpoints and stored objectives is unchanged (stored checkpoints compare equal)."""
    a = np.array([[0.1, np.inf], [np.nan, -2.5], [-np.inf, 1e-300]])
    assert encode_floats(a) == [[0.1, "inf"], ["nan", -2.5], ["-inf", 1e-300]]
    assert encode_floats(np.array([1.5, 2.0])) == [1.5, 2.0]
    np.testing.assert_array_equal(decode_floats(json.loads(json.dumps(encode_floats(a))), 2), a)
    assert codec.row_json([1.5, -0.25]) == "[1.5,-0.25]"
    assert codec.row_json([1.5, math.nan, -math.inf]) == '[1.5, "nan", "-inf"]'
    assert codec.encode({"a": [1.0, (math.inf,)], "b": "x"}, nan=None) == {"a": [1.0, ["inf"]], "b": "x"}
