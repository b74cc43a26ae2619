"""Non-finite floats in JSON, declared once.

JSON has no NaN or infinity. What evo writes to read back itself (checkpoints, members' objectives)
holds them as the strings 'nan', 'inf' and '-inf' (Python's repr of them), so a value comes back bit
for bit. What evo writes for people and scripts (`evo show --json`, validation results) holds NaN as
null, which every JSON reader takes as "no value", and infinities as the same strings.

Standard library only: every layer imports it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

#: the text of each non-finite float (what repr gives) and back
NON_FINITE: dict[str, float] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(v: Any, *, nan: Any = "nan") -> Any:
    """`v` (a float, or lists, tuples and dicts of floats and other JSON values) with every
    non-finite float replaced: NaN by `nan` ('nan', or None for people), infinities by 'inf'/'-inf'.
    Tuples come back as lists, as JSON would have them."""
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return nan if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: encode(x, nan=nan) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode(x, nan=nan) for x in v]
    return v


def decode(v: Any) -> float:
    """One float from what `encode` wrote: a number, 'nan', 'inf' or '-inf', or None (NaN)."""
    if v is None:
        return math.nan
    return float(v)  # float() reads 'nan', 'inf' and '-inf' exactly as repr wrote them


def row_json(values: Iterable[float], finite: bool | None = None) -> str:
    """A list of floats as JSON text, non-finite values as `encode` writes them; `finite=True` says
    the caller already knows every value is finite (the common case, formatted without a check)."""
    values = list(values)
    if finite is None:
        finite = all(math.isfinite(v) for v in values)
    if finite:  # json.dumps gives floats their repr too; this skips its per-value dispatch
        return "[" + ",".join(map(repr, values)) + "]"
    import json

    return json.dumps(encode(values))
