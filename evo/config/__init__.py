"""What everything reads: the run's schema (`RunConfig`), the metric table, the environment settings and
the error types. Pure declarations: pydantic and the standard library, nothing that computes."""

from evo.config.schema import (
    INT32_MAX,
    INT64_MAX,
    LEGACY,
    NAME_MAX,
    SYMBOL_MAX,
    TRADING_GENES,
    AlgorithmConfig,
    ConfigError,
    Constraint,
    DataConfig,
    EvaluationConfig,
    ExecutionConfig,
    Objective,
    RunConfig,
    StorageConfig,
    StrategyConfig,
    SyntheticData,
    ValidationConfig,
    WalkForwardConfig,
    check_text,
    load,
    stored,
    validate,
)

__all__ = [
    "INT32_MAX", "INT64_MAX", "LEGACY", "NAME_MAX", "SYMBOL_MAX", "TRADING_GENES", "AlgorithmConfig", "ConfigError",
    "Constraint", "DataConfig", "EvaluationConfig", "ExecutionConfig", "Objective", "RunConfig", "StorageConfig",
    "StrategyConfig", "SyntheticData", "ValidationConfig", "WalkForwardConfig", "check_text", "load", "stored",
    "validate",
]
