"""Strategy families by name: `evo.strategies.get("rsi_pullback")`."""

from __future__ import annotations

from evo.strategies.base import Family, Gene, GeneSpace, genome_hash
from evo.strategies.rsi_pullback import RsiPullback

_FAMILIES: dict[str, type[Family]] = {cls.name: cls for cls in (RsiPullback,)}


def names() -> list[str]:
    return sorted(_FAMILIES)


def get(name: str) -> Family:
    """The family registered under `name`; a KeyError names the known ones."""
    try:
        return _FAMILIES[name]()
    except KeyError:
        raise KeyError(f"unknown strategy family {name!r}; known: {', '.join(names())}") from None


__all__ = ["Family", "Gene", "GeneSpace", "genome_hash", "get", "names"]
