"""RunConfig: one pydantic model for a whole run.

It is read from TOML, it is the `evolve` flow's parameter schema (the Prefect
UI form), and it is stored with the run. `RunConfig()` with no arguments is
the embedded default that `make demo` runs.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evo.config.errors import ConfigError
from evo.config.metrics import MetricName

#: the trading genes a family may evolve (evo.strategies.base.TRADING_GENES), in gene order
TRADING_GENES = ("direction", "size", "sl_trail")
TradingGene = Literal["direction", "size", "sl_trail"]


# Bounds every number must keep so that numpy, numba, SQLite and PostgreSQL can all hold it:
# seeds go to numpy's SeedSequence (non-negative) and a BIGINT column, counts to INTEGER columns.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
#: runs.name is VARCHAR(200); a walk-forward's folds are named NAME/wfK with K <= 50
NAME_MAX = 190
SYMBOL_MAX = 64
#: the largest population and bar count a run may ask for (memory, not arithmetic, is the limit)
POP_MAX = 100_000
BARS_MAX = 20_000_000


def check_text(value: str, what: str, max_len: int) -> str:
    """A name that prints safely in a terminal, in rich markup (escaped) and in HTML (escaped).

    Refused: empty, padded with spaces, too long, or holding control, format (bidi), private
    or unassigned characters. Returns the value, or raises ValueError saying what is wrong.
    """
    if not value.strip():
        raise ValueError(f"{what} is empty")
    if value != value.strip():
        raise ValueError(f"{what} starts or ends with spaces")
    if len(value) > max_len:
        raise ValueError(f"{what} has {len(value)} characters; at most {max_len}")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValueError(f"{what} contains the control or invisible character U+{ord(ch):04X}")
    return value


class _Model(BaseModel):
    # no NaN or infinity anywhere: every float of a config is finite
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SyntheticData(_Model):
    """A seeded regime-switching market (bull, bear and choppy regimes of GBM)."""

    n_bars: int = Field(6000, ge=50, le=BARS_MAX, description="Bars per symbol.")
    freq: str = Field("1h", description="Bar frequency, a pandas offset like '1h' or '1D'.")
    start: str = Field("2020-01-01", description="Timestamp of the first bar.")
    symbols: list[str] = Field(
        default_factory=lambda: ["SYN"], min_length=1, max_length=100, description="One market per symbol."
    )
    seed: int = Field(7, ge=0, le=INT64_MAX, description="Seed of the market generator (independent of the run seed).")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        for s in v:
            check_text(s, f"symbol {s!r}", SYMBOL_MAX)
        if len(set(v)) != len(v):
            raise ValueError("symbols are not distinct")
        return v


class DataConfig(_Model):
    """Market data: files (CSV or Parquet, one symbol per file) or a synthetic market."""

    paths: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="OHLCV files. Columns open, high, low, close, volume and a datetime index "
        "(first column, or one named date/datetime/timestamp/time). Several files make a multi-asset market.",
    )
    synthetic: SyntheticData | None = Field(
        default_factory=SyntheticData, description="Used when no paths are given."
    )
    freq: str | None = Field(None, description="Bar frequency for annualisation; inferred from the index if empty.")
    start: str | None = Field(None, description="Drop bars before this timestamp.")
    end: str | None = Field(None, description="Drop bars after this timestamp.")

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        if self.paths and self.synthetic is not None:
            # a TOML that names files means files; the synthetic default only fills an empty section
            object.__setattr__(self, "synthetic", None)
        if not self.paths and self.synthetic is None:
            raise ValueError("give data.paths or data.synthetic")
        for p in self.paths:
            if not p.strip() or "\x00" in p:
                raise ValueError(f"data.paths holds an empty or unusable path {p!r}")
        return self


class StrategyConfig(_Model):
    family: str = Field(
        "rsi_pullback", min_length=1, max_length=200,
        description="Strategy family (evo.strategies), or a user family as 'package.module:ClassName'.",
    )
    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Per-gene [low, high] overriding the family's bounds."
    )
    trading: list[TradingGene] | None = Field(
        None, max_length=len(TRADING_GENES),
        description="Trading genes evolved with the rules: direction (long, short or both), size (the fraction of "
        "the cash an entry commits), sl_trail (a trailing stop-loss). Default: every one the family supports; "
        "[]: none (long only, all in, as before these genes existed).",
    )

    @field_validator("trading")
    @classmethod
    def _trading_distinct(cls, v):
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"trading genes listed twice: {v}")
        return v

    @field_validator("bounds")
    @classmethod
    def _bounds_ordered(cls, v: dict) -> dict:
        for name, (lo, hi) in v.items():
            if not lo < hi:
                raise ValueError(f"bounds for gene {name!r} are inverted or empty: [{lo}, {hi}]")
        return v


class Objective(_Model):
    metric: MetricName = Field(description="Metric to optimise.")
    direction: Literal["max", "min"] = Field(description="max or min. max_drawdown is <= 0: maximise it.")
    ref: float | None = Field(
        None, ge=-1e12, le=1e12, description="Hypervolume reference in metric units (default per metric)."
    )


class Constraint(_Model):
    metric: MetricName
    op: Literal[">=", "<="]
    value: float = Field(ge=-1e12, le=1e12)


class RobustnessConfig(_Model):
    """Neighbouring genes of each final Pareto member, evaluated on the training window for the report;
    with `aggregate`, of every genome evolution tries, and what it competes with."""

    neighbours: int = Field(8, ge=0, le=1000, description="Seeded neighbours per Pareto member (0: none).")
    radius: float = Field(
        0.05, gt=0, le=1, description="How far a neighbour moves each gene: up to this fraction of the gene's "
        "range, snapped to its grid."
    )
    flip: float = Field(
        0.1, ge=0, le=1, description="Probability that a neighbour changes a switch or a choice of at most three "
        "values (sl_trail, direction) to another value."
    )
    aggregate: Literal["worst", "median"] | None = Field(
        None, description="Robust fitness: the objectives a genome competes with in NSGA-II become the worst (in "
        "each objective's direction) or the median over itself and its neighbours on the training window, and it "
        "is feasible only if it is feasible itself and the same aggregate of each constraint is met. Each new genome costs "
        "neighbours + 1 evaluations, less those in the cache. Empty: report only."
    )

    @model_validator(mode="after")
    def _aggregate_needs_neighbours(self) -> "RobustnessConfig":
        if self.aggregate is not None and self.neighbours == 0:
            raise ValueError(f"aggregate = {self.aggregate!r} needs neighbours >= 1 (it aggregates over them)")
        return self


class AlgorithmConfig(_Model):
    name: Literal["nsga2"] = "nsga2"
    pop_size: int = Field(64, ge=4, le=POP_MAX, description="Survivors per generation.")
    n_offsprings: int | None = Field(
        None, ge=1, le=POP_MAX, description="Offspring per generation (default pop_size)."
    )
    generations: int = Field(
        12, ge=1, le=1_000_000,
        description="Total generations of the run; generation 1 is the initial population. "
        "`evo run --generations`, `evo resume --generations` and the flow's `generations` override it.",
    )
    sampling: Literal["lhs", "random"] = "lhs"
    crossover_prob: float = Field(0.9, ge=0, le=1)
    crossover_eta: float = Field(15.0, gt=0, le=1e6)
    mutation_eta: float = Field(20.0, gt=0, le=1e6)
    mutation_prob: float | None = Field(None, ge=0, le=1, description="Per-gene probability (default 1/n_genes).")
    distinct_trades: bool = Field(
        True, description="Keep behavioural copies out of the survivors: of several genomes whose training-window "
        "trades are identical (the same bars, directions and sizes), only the first competes; copies only fill "
        "the population when too few others remain (false: pymoo's NSGA-II, where every genome competes).",
    )
    robustness: RobustnessConfig = Field(default_factory=RobustnessConfig)
    seed_population: list[list[float]] | None = Field(
        None, max_length=POP_MAX,
        description="Genomes (in gene order) the first generation starts from; the rest is sampled. "
        "Walk-forward's warm start sets it to the previous fold's survivors."
    )


class EvaluationConfig(_Model):
    engine: Literal["fast", "vectorbt"] = Field(
        "fast", description="fast: fused numba kernels; vectorbt: Portfolio.from_signals (the reference)."
    )
    # a cash near the smallest float underflows to 0 once a size gene takes a fraction of it
    init_cash: float = Field(10_000.0, ge=1e-6, le=1e15, description="Initial cash of each backtest.")
    fees: float = Field(0.001, ge=0, lt=1, description="Fraction of each order's value.")
    slippage: float = Field(0.0005, ge=0, lt=1, description="Fraction of price paid on each fill.")
    reducer: Literal["mean", "median", "worst", "portfolio"] = Field(
        "mean", description="How a multi-asset market makes fitness: mean, median or worst (per metric the worst "
        "asset: the minimum of a maximised objective) of per-symbol backtests, or portfolio: one portfolio over all "
        "symbols with shared cash, equal allocation by value."
    )
    ohlc_stops: bool = Field(
        True, description="Stops fill within the bar from its open, high and low (false: from the close only, "
        "as before this switch existed)."
    )
    memory_budget_mb: float | None = Field(
        None, ge=1, le=1e9, description="Memory for evaluation; default memory_fraction of available memory."
    )
    memory_fraction: float = Field(0.5, ge=0.01, le=0.9, description="Share of available memory for evaluation.")
    max_parallel: int = Field(2, ge=1, le=1024, description="Evaluate chunks running at once (vectorbt engine).")
    max_chunk_size: int | None = Field(
        None, ge=1, le=INT32_MAX,
        description="Upper bound on strategies per evaluate task (default: as many as memory allows).",
    )
    retries: int = Field(2, ge=0, le=100, description="Prefect retries of a failed evaluate chunk.")
    retry_delay_seconds: float = Field(1.0, ge=0, le=3600)


class WalkForwardConfig(_Model):
    """Walk-forward validation: `evo walkforward` evolves once per fold and stitches the test windows."""

    folds: int = Field(3, ge=1, le=50, description="Test windows, one after the other, covering the holdout part.")
    mode: Literal["rolling", "anchored"] = Field(
        "rolling", description="rolling: each fold trains on the bars just before its test window, as many as the "
        "first fold; anchored: each fold trains on every bar before its test window."
    )
    warm_start: bool = Field(False, description="A fold starts from the previous fold's survivors instead of a fresh sample.")


class ValidationConfig(_Model):
    """What evolution never sees, and how the winners are judged on it."""

    holdout: float | None = Field(
        0.3, gt=0, lt=1, description="Fraction of the last bars kept out of evolution (empty: no holdout)."
    )
    holdout_start: str | None = Field(None, description="Or the first timestamp of the holdout (overrides holdout).")
    oos_each_generation: bool = Field(
        False, description="Also score each generation's Pareto set out of sample (monitoring only: never used to select)."
    )
    edge_probability: float = Field(
        0.95, gt=0.5, lt=1, description="Deflated Sharpe ratio needed for the verdict 'edge'."
    )
    cscv_blocks: int = Field(
        16, ge=0, le=20, multiple_of=2,
        description="Contiguous blocks of the training window for the probability of backtest overfitting "
        "(CSCV): C(S, S/2) splits, 12,870 at 16; 0: no PBO (evaluation then sums no blocks).",
    )
    pbo_max: float = Field(
        0.5, gt=0, le=1, description="Highest probability of backtest overfitting the verdict 'edge' accepts."
    )
    spa_alpha: float = Field(
        0.05, gt=0, lt=1, description="Level of Hansen's SPA test against buy-and-hold the verdict 'edge' needs."
    )
    bootstrap_block: int = Field(
        20, ge=1, le=10_000, description="Mean block length in bars of the stationary bootstrap (SPA, Monte Carlo)."
    )
    monte_carlo_resamples: int = Field(
        1000, ge=10, le=100_000, description="Stationary-bootstrap resamples per Pareto member (Monte Carlo) and of the SPA test."
    )
    ruin_drawdown: float = Field(
        0.5, gt=0, le=1, description="Drawdown (a positive fraction) the Monte Carlo counts as ruin."
    )
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)
    window: tuple[int, int] | None = Field(
        None, description="Bars [start, stop) evolution trains on, overriding the holdout split "
        "(walk-forward sets it for each fold's run)."
    )

    @field_validator("window")
    @classmethod
    def _window_fits(cls, v):
        if v is not None and v[1] > BARS_MAX:
            raise ValueError(f"window must end by bar {BARS_MAX}, got {list(v)}")
        return v

    @field_validator("window")
    @classmethod
    def _window_order(cls, v):
        if v is not None and not 0 <= v[0] < v[1]:
            raise ValueError(f"window must be [start, stop) with 0 <= start < stop, got {list(v)}")
        return v


class ExecutionConfig(_Model):
    """Where evaluate chunks run. Resource settings: they never change what a run computes."""

    task_runner: Literal["thread", "process", "dask"] = Field(
        "thread", description="thread: a thread pool in the flow's process; process: a process pool; "
        "dask: Dask workers via prefect-dask (a local cluster, or dask_address)."
    )
    workers: int = Field(2, ge=1, le=1024, description="Pool size, or the number of local Dask worker processes.")
    dask_address: str | None = Field(
        None, max_length=500,
        description="Address of an existing Dask scheduler (tcp://host:8786); empty: start a LocalCluster.",
    )
    worker_wait_seconds: float = Field(
        60.0, ge=0, le=86_400,
        description="How long a generation waits while the Dask cluster has no worker before the run fails "
        "(it resumes later with `evo resume`).",
    )


class StorageConfig(_Model):
    url: str | None = Field(
        None,
        max_length=2000,
        description="SQLAlchemy URL without a password (the config is stored and shown). --db and "
        "EVO_DATABASE_URL take precedence; default sqlite:///evo.db.",
    )


class RunConfig(_Model):
    """Everything a run needs: data, strategy space, objectives, algorithm, evaluation, storage."""

    name: str | None = Field(
        None, description=f"Run name (unique in the database; at most {NAME_MAX} printable characters). "
        "Default: the config file's stem."
    )
    seed: int = Field(42, ge=0, le=INT64_MAX, description="Seed of the evolution.")
    data: DataConfig = Field(default_factory=DataConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    objectives: list[Objective] = Field(
        default_factory=lambda: [
            Objective(metric="sharpe_ratio", direction="max"),
            Objective(metric="max_drawdown", direction="max"),
        ],
        min_length=1,
    )
    constraints: list[Constraint] = Field(
        default_factory=lambda: [Constraint(metric="n_trades", op=">=", value=10)], max_length=50
    )
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else check_text(v, "run name", NAME_MAX)

    @field_validator("objectives")
    @classmethod
    def _distinct(cls, v: list[Objective]) -> list[Objective]:
        seen = [o.metric for o in v]
        dup = sorted({m for m in seen if seen.count(m) > 1})
        if dup:
            raise ValueError(f"objective metric(s) listed twice: {dup}")
        return v

    # -- identity -------------------------------------------------------------------------------
    def identity(self) -> dict:
        """The part of the config that decides the run's trajectory.

        Excluded: the name, the storage URL, the generation count (a run can be
        extended) and resource settings (memory, parallelism, retries, where
        chunks run), which change how fast a run goes but never what it computes.
        """
        d = self.model_dump(mode="json")
        d.pop("name")
        d.pop("storage")
        d.pop("execution")
        # where the files are is not what they are: the data fingerprint is checked separately
        d["data"].pop("paths")
        d["algorithm"].pop("generations")
        if d["algorithm"]["robustness"]["aggregate"] is None:  # report only: identical to configs before it
            d["algorithm"]["robustness"].pop("aggregate")
        # how the winners are judged afterwards does not change what evolution does
        for k in ("oos_each_generation", "edge_probability", "walk_forward"):
            d["validation"].pop(k)
        for k in ("memory_budget_mb", "memory_fraction", "max_parallel", "max_chunk_size", "retries", "retry_delay_seconds"):
            d["evaluation"].pop(k)
        return d

    def identity_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def with_overrides(self, *, name: str | None = None, generations: int | None = None, seed: int | None = None) -> "RunConfig":
        d = self.model_dump()
        if name is not None:
            d["name"] = name
        if generations is not None:
            d["algorithm"]["generations"] = generations
        if seed is not None:
            d["seed"] = seed
        return validate(d)


def _format(err: ValidationError, source: str | None) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"field '{loc}': {msg}")
    where = f"{source}: " if source else ""
    return where + "; ".join(lines)


#: fields added after runs were stored, with the value that reproduces what those runs did: a stored
#: config without them continues as it started (a new config gets the new defaults)
LEGACY = {("evaluation", "ohlc_stops"): False, ("strategy", "trading"): [], ("algorithm", "distinct_trades"): False}


def stored(data: dict, source: str | None = None) -> RunConfig:
    """A run's stored config (RunConfig.model_dump), with LEGACY values for the fields it predates."""
    data = json.loads(json.dumps(data))
    for (section, key), value in LEGACY.items():
        data.setdefault(section, {}).setdefault(key, value)
    return validate(data, source)


def validate(data: dict, source: str | None = None) -> RunConfig:
    """Validate a plain dict; a ConfigError names every offending field."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e, source)) from None


def load(path: str | Path) -> RunConfig:
    """Read a TOML file. Relative data paths are resolved against the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    data.setdefault("name", path.stem)
    paths = data.get("data", {}).get("paths")
    if isinstance(paths, list):
        data["data"]["paths"] = [
            str((path.parent / p).resolve()) if isinstance(p, str) and not Path(p).is_absolute() and "://" not in p else p
            for p in paths
        ]
    return validate(data, source=str(path))
