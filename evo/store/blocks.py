"""Each behaviour's block sums of returns (what CSCV needs, evo.oos.cscv), stored as evaluation computes
them: on one evaluation of each behaviour (trade fingerprint) under a key, in `evaluations.blocks`.

A blob is one byte, the number of blocks S, then series after series (a symbol, or the portfolio's one
series) a bit per block (numpy's packbits, little bit order; set: the block is not flat) and the (sum,
sum of squares) of the set blocks as little-endian float32. A flat block (no position, every return 0)
costs one bit: strategies out of the market for whole blocks are common. Rounded to float32 (7
significant digits), a behaviour's 16 blocks cost 3 bytes and 8 per traded block; CSCV ranks phenotypes
on these values and computes the exact sums of the few whose order rounding could have changed, and of
the chosen ones (evo.oos.cscv.cscv).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sqlalchemy import select

from evo.store.models import evaluations, individuals
from evo.store.sql import chunks

#: how block sums are laid out in a blob
FLOAT = np.dtype("<f4")


def encode(sums: np.ndarray) -> list[bytes]:
    """Behaviours' block sums (k, series, blocks, 2) as k blobs."""
    sums = np.asarray(sums, dtype=np.float64)
    k, n_series, n_blocks, _ = sums.shape
    traded = (sums != 0).any(axis=3)
    masks = np.packbits(traded, axis=2, bitorder="little")
    values = sums.astype(FLOAT)
    head = bytes([n_blocks])
    out = []
    for r in range(k):
        parts = [head]
        for a in range(n_series):
            parts.append(masks[r, a].tobytes())
            parts.append(values[r, a][traded[r, a]].tobytes())
        out.append(b"".join(parts))
    return out


def decode(blobs: Sequence[bytes], n_series: int, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """(the (len(blobs), series, blocks, 2) float64 block sums of blobs, flat blocks 0; which blobs hold
    n_series series of n_blocks blocks: the others' rows are NaN). All blobs at once: a run's are tens of
    thousands."""
    n = len(blobs)
    out = np.zeros((n, n_series, n_blocks, 2))
    if n == 0:
        return out, np.zeros(0, dtype=bool)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    ok = lengths > 0
    ok[ok] = data[starts[ok]] == n_blocks
    if not ok.any():
        out[:] = np.nan
        return out, ok
    mask_bytes = (n_blocks + 7) // 8
    is_value = np.ones(len(data), dtype=bool)  # the float32 bytes, once the header and masks are cut out
    is_value[starts[lengths > 0]] = False
    pos = starts + 1
    traded = np.zeros((n, n_series, n_blocks), dtype=bool)
    for a in range(n_series):
        ok &= pos + mask_bytes <= ends
        at = np.where(ok, pos, 0)[:, None] + np.arange(mask_bytes)
        traded[:, a] = np.unpackbits(data[at], axis=1, count=n_blocks, bitorder="little").astype(bool)
        traded[~ok, a] = False
        is_value[at[ok].ravel()] = False
        pos = pos + mask_bytes + 2 * FLOAT.itemsize * traded[:, a].sum(axis=1)
    ok &= pos == ends
    if ok.all():
        out[traded] = data[is_value].view(FLOAT).reshape(-1, 2)
    else:  # one by one, the good ones
        for r in np.flatnonzero(ok):
            part = data[starts[r]:ends[r]][is_value[starts[r]:ends[r]]]
            out[r][traded[r]] = part.view(FLOAT).reshape(-1, 2)
        out[~ok] = np.nan
    return out, ok


class BlocksMixin:
    """Store methods for behaviours' block sums (mixed into `Store`)."""

    def _stored_behaviours(self, conn, key_id: int) -> set[int]:
        """The trade fingerprints with block sums stored under a key: read once per process and key, then
        kept up to date by this process's commits (another process storing the same behaviour meanwhile
        only costs a second copy)."""
        known = self.__dict__.setdefault("_blocks_stored", {})
        if key_id not in known:
            q = select(evaluations.c.trades).where(evaluations.c.key_id == key_id, evaluations.c.blocks.is_not(None))
            known[key_id] = set(conn.execute(q).scalars())
        return known[key_id]

    def _blobs(self, conn, key_id: int, trades: Sequence[int | None], blocks: Mapping[int, np.ndarray]
               ) -> tuple[list[bytes | None], set[int]]:
        """(a blob or None per new evaluation, the fingerprints they store): the first evaluation of each
        behaviour in `blocks` that has none stored under the key gets its sums."""
        if not blocks:
            return [None] * len(trades), set()
        stored = self._stored_behaviours(conn, key_id)
        out: list = []  # fingerprints to store, then their blobs
        new: set[int] = set()
        for t in trades:
            if t is None or t in stored or t in new or t not in blocks:
                out.append(None)
            else:
                new.add(t)
                out.append(t)
        fresh = [t for t in out if t is not None]
        blobs = iter(encode(np.stack([blocks[t] for t in fresh])) if fresh else ())
        return [None if t is None else next(blobs) for t in out], new

    def _committed_blobs(self, key_id: int, new: set[int]) -> None:
        known = self.__dict__.get("_blocks_stored", {})
        if key_id in known:
            known[key_id] |= new

    def trial_blocks(self, run_id: int) -> list[tuple[int, bytes | None]]:
        """(individual id, block-sums blob or None) of every distinct behaviour the run evaluated (the
        `_trials` of evo.store.results, in their order): None where no sums are stored (evaluated before
        they were, or by the vectorbt engine)."""
        with self.engine.connect() as conn:
            trials = [(r.individual, r.key_id, r.trades) for r in self._trials(conn, run_id)]
            found: dict[tuple[int, int], bytes] = {}
            for key_id in {k for _, k, t in trials if t is not None}:
                q = select(evaluations.c.trades, evaluations.c.blocks).where(
                    evaluations.c.key_id == key_id, evaluations.c.blocks.is_not(None))
                for t, blob in conn.execute(q):
                    found.setdefault((key_id, t), blob)
        return [(i, None if t is None else found.get((k, t))) for i, k, t in trials]

    def individual_genes(self, ids: list[int]) -> list[dict]:
        """The genes of individuals by id, in the order given."""
        genes = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(ids)), 5000):  # (JSON has no equality in PostgreSQL: no DISTINCT on it)
                q = select(individuals.c.id, individuals.c.genes).where(individuals.c.id.in_(part))
                genes.update(conn.execute(q).all())
        return [genes[i] for i in ids]
