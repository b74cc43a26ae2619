"""The market: OHLCV files (or a seeded synthetic market) loaded and validated once per process, and
where its bars split into training, holdout and walk-forward windows."""

from evo.market.load import (
    FIELDS,
    DataError,
    Market,
    build_market,
    check_length,
    fingerprint,
    get_market,
    load_market,
    timestamp,
    validate_ohlcv,
)

__all__ = ["FIELDS", "DataError", "Market", "build_market", "check_length", "fingerprint", "get_market",
           "load_market", "timestamp", "validate_ohlcv"]
