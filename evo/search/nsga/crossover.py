"""Simulated binary crossover on arrays: pymoo 0.6.2's `Crossover.do` with `SBX` (two parents,
two children), the same arithmetic and the same random draws in the same order and shapes."""

from __future__ import annotations

import numpy as np


def sbx(X: np.ndarray, xl: np.ndarray, xu: np.ndarray, rng: np.random.Generator, *, prob: float = 0.9,
        eta: float = 15.0, prob_var: float = 0.5, prob_exch: float = 1.0, prob_bin: float = 0.5) -> np.ndarray:
    """Children of the matings X (2, n_matings, n_var): children 1 of every mating, then children 2.

    A mating crosses with probability `prob`; one that does not passes its parents on unchanged.
    """
    n_parents, n_matings, n_var = X.shape
    Xp = np.empty((2, n_matings, n_var), dtype=X.dtype)
    cross = rng.random(n_matings) < np.full(n_matings, prob)
    if np.any(cross):
        Q = _sbx(X, xl, xu, rng, n_matings=n_matings, eta=eta, prob_var=prob_var, prob_exch=prob_exch, prob_bin=prob_bin)
        Xp[:, cross] = Q[:, cross]
    Xp[:, ~cross] = X[:, ~cross]
    return Xp.reshape(-1, X.shape[-1])


def _sbx(X, xl, xu, rng, *, n_matings, eta, prob_var, prob_exch, prob_bin):
    # SimulatedBinaryCrossover._do
    size = (n_matings, 1)
    eta, prob_var, prob_exch, prob_bin = (np.full(size, v) for v in (eta, prob_var, prob_exch, prob_bin))
    rand = rng.random((len(prob_bin), 1))
    prob_bin[rand > prob_exch] = 0.0
    return _cross_sbx(X.astype(float), xl, xu, eta, prob_var, prob_bin, rng)


def _cross_sbx(X, xl, xu, eta, prob_var, prob_bin, rng, eps=1.0e-14):
    # pymoo.operators.crossover.sbx.cross_sbx, operation for operation
    n_parents, n_matings, n_var = X.shape
    cross = rng.random((n_matings, n_var)) < prob_var
    too_close = np.abs(X[0] - X[1]) <= eps
    cross[too_close] = False
    cross[:, xl == xu] = False

    p1 = X[0][cross]
    p2 = X[1][cross]
    sm = p1 < p2
    y1 = np.where(sm, p1, p2)
    y2 = np.where(sm, p2, p1)

    _xl = np.repeat(xl[None, :], n_matings, axis=0)[cross]
    _xu = np.repeat(xu[None, :], n_matings, axis=0)[cross]
    eta = eta.repeat(n_var, axis=1)[cross]
    prob_bin = prob_bin.repeat(n_var, axis=1)[cross]

    rand = rng.random(len(eta))

    def calc_betaq(beta):
        alpha = 2.0 - np.power(beta, -(eta + 1.0))
        mask, mask_not = (rand <= (1.0 / alpha)), (rand > (1.0 / alpha))
        betaq = np.zeros(mask.shape)
        betaq[mask] = np.power((rand * alpha), (1.0 / (eta + 1.0)))[mask]
        betaq[mask_not] = np.power((1.0 / (2.0 - rand * alpha)), (1.0 / (eta + 1.0)))[mask_not]
        return betaq

    delta = y2 - y1
    beta = 1.0 + (2.0 * (y1 - _xl) / delta)
    betaq = calc_betaq(beta)
    c1 = 0.5 * ((y1 + y2) - betaq * delta)
    beta = 1.0 + (2.0 * (_xu - y2) / delta)
    betaq = calc_betaq(beta)
    c2 = 0.5 * ((y1 + y2) + betaq * delta)

    child1 = np.where(sm, c1, c2)
    child2 = np.where(sm, c2, c1)
    b = np.bitwise_xor(rng.random(len(prob_bin)) < prob_bin, X[0, cross] > X[1, cross])
    child1, child2 = np.where(b, (child2, child1), (child1, child2))

    Q = np.copy(X)
    Q[0, cross] = child1
    Q[1, cross] = child2
    Q[0] = _clamp(Q[0], xl, xu)
    Q[1] = _clamp(Q[1], xl, xu)
    return Q


def _clamp(Xp, xl, xu):
    # pymoo.operators.repair.bounds_repair.repair_clamp
    XL = np.tile(xl, (len(Xp), 1))
    XU = np.tile(xu, (len(Xp), 1))
    I = np.where(Xp < XL)  # noqa: E741
    Xp[I] = XL[I]
    I = np.where(Xp > XU)  # noqa: E741
    Xp[I] = XU[I]
    return Xp
