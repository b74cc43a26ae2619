"""Each behaviour's block sums of returns (what CSCV needs, evo.oos.cscv), stored as evaluation computes
them: on one evaluation of each behaviour (trade fingerprint) under a key, in `evaluations.blocks`.

A blob is one byte, the number of blocks S, then series after series (a symbol, or the portfolio's one
series) a bit per block (numpy's packbits, little bit order; set: the block is not flat) and, for each
set block, its sum of returns as a little-endian float32 and its sum of squares as the top three bytes of
one (a float with 16 significant bits: a Sharpe ratio depends on it |Sharpe ratio| times less than on
the sum, see evo.oos.cscv.ROUNDING_SLACK). A flat block (no position, every return 0) costs one bit:
strategies out of the market for whole blocks are common. A behaviour's 16 blocks cost 3 bytes and 7 per
traded block; CSCV ranks phenotypes on these values and computes the exact sums of the few whose order
rounding could have changed, and of the chosen ones (evo.oos.cscv.cscv).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sqlalchemy import select

from evo.store.models import evaluations, individuals
from evo.store.sql import chunks

#: how block sums are laid out in a blob: a float32 sum, then the top three bytes of a float32 sum of
#: squares, per traded block
FLOAT = np.dtype("<f4")
PAIR = 7


def _squares_bytes(q: np.ndarray) -> np.ndarray:
    """Sums of squares (>= 0) as the top three bytes of their float32, rounded to nearest: (k, 3) uint8."""
    bits = np.asarray(q, dtype=FLOAT).view(np.uint32).astype(np.uint64)
    top = np.minimum((bits + 0x80) >> 8, 0xFFFFFF).astype(np.uint32)
    return top.view(np.uint8).reshape(-1, 4)[:, :3]


def _squares_of(b: np.ndarray) -> np.ndarray:
    """_squares_bytes back to float64: (k, 3) uint8 -> (k,)."""
    top = b[:, 0].astype(np.uint32) | (b[:, 1].astype(np.uint32) << 8) | (b[:, 2].astype(np.uint32) << 16)
    return (top << 8).view(FLOAT).astype(np.float64)


def rounded(sums: np.ndarray) -> np.ndarray:
    """Block sums (..., 2) as a blob keeps them."""
    sums = np.asarray(sums, dtype=np.float64)
    out = np.empty_like(sums)
    out[..., 0] = sums[..., 0].astype(FLOAT)
    flat = sums[..., 1].reshape(-1)
    out[..., 1] = _squares_of(_squares_bytes(flat)).reshape(sums.shape[:-1])
    return out


def encode(sums: np.ndarray) -> list[bytes]:
    """Behaviours' block sums (k, series, blocks, 2) as k blobs."""
    sums = np.asarray(sums, dtype=np.float64)
    k, n_series, n_blocks, _ = sums.shape
    traded = (sums != 0).any(axis=3)
    masks = np.packbits(traded, axis=2, bitorder="little")
    values = np.empty(sums.shape[:3] + (PAIR,), dtype=np.uint8)
    values[..., :4] = sums[..., 0].astype(FLOAT)[..., None].view(np.uint8)
    values[..., 4:] = _squares_bytes(sums[..., 1].reshape(-1)).reshape(sums.shape[:3] + (3,))
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
        pos = pos + mask_bytes + PAIR * traded[:, a].sum(axis=1)
    ok &= pos == ends

    def pairs(b: np.ndarray) -> np.ndarray:
        b = b.reshape(-1, PAIR)
        return np.column_stack([np.ascontiguousarray(b[:, :4]).view(FLOAT)[:, 0], _squares_of(b[:, 4:])])

    if ok.all():
        out[traded] = pairs(data[is_value])
    else:  # one by one, the good ones
        for r in np.flatnonzero(ok):
            out[r][traded[r]] = pairs(data[starts[r]:ends[r]][is_value[starts[r]:ends[r]]])
        out[~ok] = np.nan
    return out, ok


class BlocksMixin:
    """Store methods for behaviours' block sums (mixed into `Store`)."""

    def forget_stored_behaviours(self) -> None:
        """Read the behaviours with stored sums again (_stored_behaviours): a run starts or resumes."""
        self.__dict__.pop("_blocks_stored", None)

    def _stored_behaviours(self, conn, key_id: int) -> set[int]:
        """The trade fingerprints with block sums stored under a key: read once per process and key (and
        again after forget_stored_behaviours), then kept up to date by this process's commits (another
        process storing the same behaviour meanwhile only costs a second copy; a behaviour believed
        stored and not, its sums computed at the end)."""
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
            # the sums are on one evaluation of each behaviour: most often its first in this run
            trials: dict[tuple, list] = {}
            for r in self._trial_rows(conn, run_id, evaluations.c.blocks):
                t = trials.setdefault(self._trial_ident(r), [r.individual, r.key_id, r.trades, r.blocks])
                if t[3] is None:
                    t[3] = r.blocks
            # else on another run's evaluation (a behaviour this run found in the cache)
            for key_id in {k for _, k, t, b in trials.values() if b is None and t is not None}:
                q = select(evaluations.c.trades, evaluations.c.blocks).where(
                    evaluations.c.key_id == key_id, evaluations.c.blocks.is_not(None))
                found = dict(conn.execute(q).all())
                for t in trials.values():
                    if t[3] is None and t[1] == key_id:
                        t[3] = found.get(t[2])
        return [(i, b) for i, _, _, b in trials.values()]

    def individual_genes(self, ids: list[int]) -> list[dict]:
        """The genes of individuals by id, in the order given."""
        genes = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(ids)), 5000):  # (JSON has no equality in PostgreSQL: no DISTINCT on it)
                q = select(individuals.c.id, individuals.c.genes).where(individuals.c.id.in_(part))
                genes.update(conn.execute(q).all())
        return [genes[i] for i in ids]
