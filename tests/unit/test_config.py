"""Unit tests for evo.config: TOML loading, validation messages, identity, overrides."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pydantic
import pytest

from evo.config import ConfigError, RunConfig, load, validate
from evo.market import load_market

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


# ---------------------------------------------------------------------------------------------
# the example files


def test_default_toml_equals_embedded_default():
    cfg = load(EXAMPLES / "default.toml")
    assert cfg.model_dump() == RunConfig(name="default").model_dump()
    assert cfg.identity_hash() == RunConfig().identity_hash()


def test_quick_toml_loads():
    cfg = load(EXAMPLES / "quick.toml")
    assert cfg.name == "quick"
    assert cfg.seed == 1
    assert cfg.algorithm.pop_size == 24
    assert cfg.algorithm.generations == 4
    assert cfg.strategy.family == "rsi_pullback"
    assert cfg.strategy.bounds == {"slow_window": (20.0, 120.0)}
    assert cfg.data.paths == []
    assert cfg.data.synthetic is not None
    assert cfg.data.synthetic.n_bars == 3000
    assert cfg.data.synthetic.seed == 3
    assert [(c.metric, c.op, c.value) for c in cfg.constraints] == [("n_trades", ">=", 5.0)]
    assert [(o.metric, o.direction) for o in cfg.objectives] == [
        ("sharpe_ratio", "max"),
        ("max_drawdown", "max"),
    ]


def test_embedded_default_values():
    cfg = RunConfig()
    assert cfg.name is None
    assert cfg.seed == 42
    assert cfg.algorithm.pop_size == 64
    assert cfg.data.paths == []
    assert cfg.data.synthetic is not None and cfg.data.synthetic.symbols == ["SYN"]
    assert validate({}).model_dump() == cfg.model_dump()


# ---------------------------------------------------------------------------------------------
# validation errors name the field


def _objs(*metrics: str) -> list[dict]:
    return [{"metric": m, "direction": "max"} for m in metrics]


INVALID = [
    pytest.param({"algorithm": {"pop_size": 3}}, ["algorithm.pop_size", "4"], id="pop_size<4"),
    pytest.param({"algorithm": {"generations": 0}}, ["algorithm.generations"], id="generations=0"),
    pytest.param({"algorithm": {"crossover_prob": 1.5}}, ["algorithm.crossover_prob"], id="crossover_prob>1"),
    pytest.param({"algorithm": {"name": "ga"}}, ["algorithm.name"], id="unknown-algorithm"),
    pytest.param({"algorithm": {"bogus": 1}}, ["algorithm.bogus", "Extra inputs"], id="nested-extra-key"),
    pytest.param({"strategy": {"family": "nope"}}, ["strategy.family", "nope"], id="unknown-family"),
    pytest.param({"strategy": {"family": "nope"}}, ["'strategy.family'", "unknown strategy family", "nope"], id="unknown-family-msg"),
    pytest.param({"objectives": _objs("sharp_ratio")}, ["objectives.0.metric"], id="unknown-metric"),
    pytest.param(
        {"objectives": [*_objs("sharpe_ratio"), {"metric": "max_drawdown", "direction": "up"}]},
        ["objectives.1.direction"],
        id="bad-direction",
    ),
    pytest.param({"objectives": []}, ["objectives"], id="no-objectives"),
    pytest.param(
        {"objectives": _objs("sharpe_ratio", "max_drawdown", "sharpe_ratio")},
        ["objectives", "listed twice", "sharpe_ratio"],
        id="duplicate-metric",
    ),
    pytest.param(
        {"constraints": [{"metric": "n_trades", "op": ">", "value": 1}]}, ["constraints.0.op"], id="bad-constraint-op"
    ),
    pytest.param(
        {"strategy": {"bounds": {"rsi_window": [30, 5]}}}, ["strategy", "rsi_window", "inverted"], id="inverted-bounds"
    ),
    pytest.param(
        {"strategy": {"bounds": {"rsi_window": [10, 10]}}}, ["strategy", "rsi_window", "empty"], id="empty-bounds"
    ),
    pytest.param(
        {"strategy": {"bounds": {"rsi_windw": [5, 30]}}}, ["strategy", "unknown gene", "rsi_windw"], id="unknown-gene"
    ),
    pytest.param(
        {"strategy": {"bounds": {"rsi_window": [5.5, 20]}}},
        ["strategy", "rsi_window", "integer"],
        id="fractional-int-bounds",
    ),
    pytest.param({"nonsense": 1}, ["nonsense", "Extra inputs"], id="unknown-top-level-key"),
    pytest.param({"evaluation": {"fees": 1.0}}, ["evaluation.fees"], id="fees=1"),
    pytest.param({"evaluation": {"fees": 2.5}}, ["evaluation.fees"], id="fees>1"),
    pytest.param({"evaluation": {"fees": -0.01}}, ["evaluation.fees"], id="fees<0"),
    pytest.param({"evaluation": {"slippage": 1}}, ["evaluation.slippage"], id="slippage=1"),
    pytest.param({"evaluation": {"max_parallel": 0}}, ["evaluation.max_parallel"], id="max_parallel=0"),
    pytest.param({"data": {"synthetic": {"n_bars": 10}}}, ["data.synthetic.n_bars"], id="synthetic-n_bars<50"),
    pytest.param({"data": {"synthetic": None}}, ["data", "data.paths or data.synthetic"], id="no-data-source"),
    pytest.param({"seed": "abc"}, ["seed"], id="seed-not-int"),
]


@pytest.mark.parametrize(("fragment", "expected"), INVALID)
def test_invalid_config_names_field(fragment, expected):
    # the schema, then the checks that need the family registry (what `evo.run.opening.prepare` runs first)
    from evo.run import preflight

    with pytest.raises(ConfigError) as ei:
        preflight.check(validate(copy.deepcopy(fragment)))
    msg = str(ei.value)
    assert msg.startswith("field '"), msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_config_error_lists_every_offending_field():
    with pytest.raises(ConfigError) as ei:
        validate({"algorithm": {"pop_size": 1, "generations": 0}, "evaluation": {"fees": 3}})
    msg = str(ei.value)
    for loc in ("algorithm.pop_size", "algorithm.generations", "evaluation.fees"):
        assert f"field '{loc}'" in msg
    assert msg.count("field '") == 3


def test_valid_bounds_accepted():
    cfg = validate({"strategy": {"bounds": {"rsi_window": [7, 21], "vol_mult": [0.5, 1.5]}}})
    assert cfg.strategy.bounds == {"rsi_window": (7.0, 21.0), "vol_mult": (0.5, 1.5)}


# ---------------------------------------------------------------------------------------------
# load()


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as ei:
        load(path)
    assert str(path) in str(ei.value)
    assert "not found" in str(ei.value)


def test_load_directory_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path)


def test_load_invalid_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = 1\n[algorithm\npop_size = 8\n")
    with pytest.raises(ConfigError) as ei:
        load(path)
    assert str(path) in str(ei.value)
    assert "not valid TOML" in str(ei.value)


def test_load_invalid_value_names_file_and_field(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[algorithm]\npop_size = 2\n")
    with pytest.raises(ConfigError) as ei:
        load(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: ")
    assert "algorithm.pop_size" in msg


def _write_csv(path: Path, n: int = 80) -> None:
    lines = ["date,open,high,low,close,volume"]
    for i in range(n):
        ts = f"2021-01-{1 + i // 24:02d} {i % 24:02d}:00:00"
        p = 100 + i
        lines.append(f"{ts},{p},{p + 2},{p - 2},{p + 1},{10 * (i + 1)}")
    path.write_text("\n".join(lines) + "\n")


def test_load_resolves_relative_paths_against_toml_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    csv = tmp_path / "data" / "BTC.csv"
    _write_csv(csv)
    toml = tmp_path / "cfg" / "my_run.toml"
    toml.write_text('[data]\npaths = ["../data/BTC.csv"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter

    cfg = load(toml)
    assert cfg.data.paths == [str(csv.resolve())]
    assert Path(cfg.data.paths[0]).is_absolute()
    assert cfg.data.synthetic is None  # files given: no synthetic market
    assert cfg.name == "my_run"

    market = load_market(cfg.data)
    assert market.symbols == ("BTC",)
    assert market.n_bars == 80
    assert market.close[0, 0] == 101.0


def test_load_relative_path_in_same_folder_and_absolute_kept(tmp_path, monkeypatch):
    _write_csv(tmp_path / "a.csv")
    other = tmp_path / "sub" / "b.csv"
    other.parent.mkdir()
    _write_csv(other)
    toml = tmp_path / "run.toml"
    toml.write_text(f'[data]\npaths = ["a.csv", "{other}"]\n')
    monkeypatch.chdir(other.parent)
    cfg = load(toml)
    assert cfg.data.paths == [str((tmp_path / "a.csv").resolve()), str(other)]


def test_load_keeps_explicit_name(tmp_path):
    toml = tmp_path / "file_stem.toml"
    toml.write_text('name = "explicit"\nseed = 3\n')
    cfg = load(toml)
    assert cfg.name == "explicit"
    assert cfg.seed == 3


def test_load_accepts_str_path(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("seed = 9\n")
    cfg = load(str(toml))
    assert (cfg.name, cfg.seed) == ("s", 9)


# ---------------------------------------------------------------------------------------------
# identity


def _variant(base: RunConfig, **changes) -> RunConfig:
    """A copy of `base` with dotted-path changes, e.g. `**{"algorithm.pop_size": 8}`."""
    d = base.model_dump()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = d
        for p in parents:
            node = node[p]
        node[leaf] = value
    return validate(d)


BASE = RunConfig(name="base")

SAME_IDENTITY = {
    "name": {"name": "another"},
    "name-none": {"name": None},
    "storage.url": {"storage.url": "postgresql://u@h/db"},
    "generations": {"algorithm.generations": 500},
    "max_parallel": {"evaluation.max_parallel": 16},
    "memory_budget_mb": {"evaluation.memory_budget_mb": 1234.0},
    "memory_fraction": {"evaluation.memory_fraction": 0.2},
    "retries": {"evaluation.retries": 7},
    "retry_delay_seconds": {"evaluation.retry_delay_seconds": 30.0},
}

CHANGED_IDENTITY = {
    "seed": {"seed": 43},
    "fees": {"evaluation.fees": 0.002},
    "slippage": {"evaluation.slippage": 0.0},
    "objectives": {"objectives": _objs("sharpe_ratio", "total_return")},
    "objective-direction": {"objectives": [{"metric": "sharpe_ratio", "direction": "min"}, *_objs("max_drawdown")]},
    "bounds": {"strategy.bounds": {"rsi_window": (5, 20)}},
    "pop_size": {"algorithm.pop_size": 32},
    "constraints": {"constraints": []},
    "synthetic-seed": {"data.synthetic.seed": 8},
    "data.start": {"data.start": "2020-02-01"},
    "ohlc_stops": {"evaluation.ohlc_stops": False},
    "reducer": {"evaluation.reducer": "portfolio"},
    "trading": {"strategy.trading": ["direction"]},
    "no-trading": {"strategy.trading": []},
}


@pytest.mark.parametrize("changes", list(SAME_IDENTITY.values()), ids=list(SAME_IDENTITY))
def test_identity_unchanged(changes):
    other = _variant(BASE, **changes)
    assert other.model_dump() != BASE.model_dump()  # the change did happen
    assert other.identity() == BASE.identity()
    assert other.identity_hash() == BASE.identity_hash()


@pytest.mark.parametrize("changes", list(CHANGED_IDENTITY.values()), ids=list(CHANGED_IDENTITY))
def test_identity_changed(changes):
    other = _variant(BASE, **changes)
    assert other.identity() != BASE.identity()
    assert other.identity_hash() != BASE.identity_hash()


def test_identity_ignores_data_paths(tmp_path):
    a = validate({"data": {"paths": ["/old/place/BTC.csv"]}})
    b = validate({"data": {"paths": ["/new/place/BTC.csv"]}})
    assert a.identity() == b.identity()
    assert a.identity_hash() == b.identity_hash()
    # but a file market is not the synthetic one
    assert a.identity_hash() != RunConfig().identity_hash()


def test_identity_hash_is_stable_sha256():
    h = RunConfig().identity_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert RunConfig().identity_hash() == h
    assert validate(RunConfig().model_dump()).identity_hash() == h
    ident = RunConfig().identity()
    for key in ("name", "storage"):
        assert key not in ident
    assert "generations" not in ident["algorithm"]
    assert "paths" not in ident["data"]
    assert ident["seed"] == 42


# ---------------------------------------------------------------------------------------------
# with_overrides and immutability


def test_with_overrides_applies_values():
    base = RunConfig(name="a")
    new = base.with_overrides(name="b", generations=30, seed=5)
    assert (new.name, new.algorithm.generations, new.seed) == ("b", 30, 5)
    # everything else as before
    rest = new.model_dump()
    expected = base.model_dump()
    expected["name"], expected["seed"] = "b", 5
    expected["algorithm"]["generations"] = 30
    assert rest == expected
    # the original is untouched
    assert (base.name, base.algorithm.generations, base.seed) == ("a", 12, 42)


def test_with_overrides_none_keeps_values():
    base = RunConfig(name="a", seed=3)
    assert base.with_overrides().model_dump() == base.model_dump()


def test_with_overrides_generations_and_name_keep_identity_seed_changes_it():
    base = RunConfig(name="a")
    assert base.with_overrides(generations=99, name="z").identity_hash() == base.identity_hash()
    assert base.with_overrides(seed=1).identity_hash() != base.identity_hash()


@pytest.mark.parametrize("generations", [0, -3])
def test_with_overrides_revalidates(generations):
    with pytest.raises(ConfigError, match=r"algorithm\.generations"):
        RunConfig().with_overrides(generations=generations)


def test_run_config_is_frozen():
    cfg = RunConfig()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.seed = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.algorithm.pop_size = 8  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.evaluation = cfg.evaluation  # type: ignore[misc]
    assert cfg.seed == 42
    assert cfg.algorithm.pop_size == 64


# ---------------------------------------------------------------------------------------------
# the switches that change fitness (issue 14): new defaults for new runs, stored runs keep theirs


def test_new_runs_get_ohlc_stops_and_every_trading_gene():
    cfg = RunConfig()
    assert cfg.evaluation.ohlc_stops is True and cfg.strategy.trading is None and cfg.evaluation.reducer == "mean"


def test_a_stored_config_that_predates_the_switches_keeps_the_old_behaviour():
    from evo.config import LEGACY, stored

    old = RunConfig(name="old").model_dump(mode="json")
    del old["evaluation"]["ohlc_stops"], old["strategy"]["trading"]
    cfg = stored(old)
    assert cfg.evaluation.ohlc_stops is False and cfg.strategy.trading == []
    assert validate(old).evaluation.ohlc_stops is True  # a new config with the same fields: the new defaults
    # a stored config that has them keeps its own values
    new = RunConfig(name="new", evaluation={"ohlc_stops": True}, strategy={"trading": ["size"]}).model_dump(mode="json")
    assert stored(new) == validate(new)
    assert {k for _, k in LEGACY} == {"ohlc_stops", "trading", "distinct_trades"}


@pytest.mark.parametrize("trading, expected", [
    (["direction", "direction"], "listed twice"),
    (["leverage"], "'direction', 'size' or 'sl_trail'"),
])
def test_bad_trading_genes_are_refused_naming_the_field(trading, expected):
    with pytest.raises(ConfigError, match=rf"strategy.trading.*{expected}"):
        validate({"strategy": {"trading": trading}})


def test_trading_names_are_the_families():
    from evo.config import TRADING_GENES
    from evo.strategies.base import TRADING_GENES as GENES

    assert tuple(GENES) == TRADING_GENES


def test_the_readme_lists_every_environment_variable():
    """The README's table of EVO_* variables is the settings model's, row for row."""
    import re
    from pathlib import Path

    from evo.config.settings import variables

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("<!-- settings:", 1)[1].split("<!-- /settings -->", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| `")]
    listed = [re.match(r"\| `([A-Z_]+)` \| `?([^|`]*)`? \| (.*) \|$", r).groups() for r in rows]
    assert listed == [(v, d, doc) for v, d, doc in variables()]


def test_settings_follow_the_environment_as_it_changes(monkeypatch):
    from evo.config.errors import SettingsError
    from evo.config.settings import settings

    monkeypatch.setenv("EVO_HEAL_ATTEMPTS", "3")
    assert settings().heal_attempts == 3
    assert settings() is settings()  # unchanged environment: validated once
    monkeypatch.setenv("EVO_HEAL_ATTEMPTS", "5")
    assert settings().heal_attempts == 5
    monkeypatch.setenv("EVO_HEAL_ATTEMPTS", "many")
    with pytest.raises(SettingsError, match="EVO_HEAL_ATTEMPTS"):
        settings()
    with pytest.raises(SettingsError):  # still refused when asked again
        settings()
    monkeypatch.delenv("EVO_HEAL_ATTEMPTS")
    assert settings().heal_attempts == type(settings()).model_fields["heal_attempts"].default
