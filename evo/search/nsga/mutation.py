"""Polynomial mutation on arrays: pymoo 0.6.2's `Mutation.do` with `PM`, the same arithmetic and
the same random draws in the same order and shapes."""

from __future__ import annotations

import numpy as np


def pm(X: np.ndarray, xl: np.ndarray, xu: np.ndarray, rng: np.random.Generator, eta: float = 20.0,
       prob_var: float | None = None, prob: float = 0.9) -> np.ndarray:
    """Mutated copy of X (n, n_var). Each individual is mutated with probability `prob` (PM's
    default 0.9), each of its genes with `prob_var` (default min(0.5, 1 / n_var))."""
    n, n_var = X.shape
    Xf = X.astype(float)
    if prob_var is None:
        prob_var = min(0.5, 1 / n_var)
    Xp = _mut_pm(Xf, xl, xu, np.full(n, eta), np.full(n, prob_var), rng)
    mut = rng.random(size=n) <= np.full(n, prob)
    out = np.array(X, dtype=X.dtype, copy=True)
    out[mut] = Xp[mut]
    return out


def _mut_pm(X, xl, xu, eta, prob, rng):
    # pymoo.operators.mutation.pm.mut_pm (at_least_once=False), operation for operation
    n, n_var = X.shape
    Xp = np.full(X.shape, np.inf)
    mut = rng.random((n, n_var)) < (np.ones(n) * prob)[:, None]  # mut_binomial
    mut[:, xl == xu] = False
    Xp[:, :] = X

    _xl = np.repeat(xl[None, :], X.shape[0], axis=0)[mut]
    _xu = np.repeat(xu[None, :], X.shape[0], axis=0)[mut]
    X = X[mut]
    eta = np.tile(eta[:, None], (1, n_var))[mut]

    delta1 = (X - _xl) / (_xu - _xl)
    delta2 = (_xu - X) / (_xu - _xl)
    mut_pow = 1.0 / (eta + 1.0)

    rand = rng.random(X.shape)
    mask = rand <= 0.5
    mask_not = np.logical_not(mask)
    deltaq = np.zeros(X.shape)
    with np.errstate(invalid="ignore"):
        xy = 1.0 - delta1
        val = 2.0 * rand + (1.0 - 2.0 * rand) * (np.power(xy, (eta + 1.0)))
        d = np.power(val, mut_pow) - 1.0
        deltaq[mask] = d[mask]
        xy = 1.0 - delta2
        val = 2.0 * (1.0 - rand) + 2.0 * (rand - 0.5) * (np.power(xy, (eta + 1.0)))
        d = 1.0 - (np.power(val, mut_pow))
        deltaq[mask_not] = d[mask_not]

    _Y = X + deltaq * (_xu - _xl)
    _Y[_Y < _xl] = _xl[_Y < _xl]
    _Y[_Y > _xu] = _xu[_Y > _xu]
    Xp[mut] = _Y

    # set_to_bounds_if_outside
    XL = np.repeat(xl[None, :], Xp.shape[0], axis=0)
    Xp[Xp < XL] = XL[Xp < XL]
    XU = np.repeat(xu[None, :], Xp.shape[0], axis=0)
    Xp[Xp > XU] = XU[Xp > XU]
    return Xp
