"""Lazy regularisation on the Dirac-GAN: R1 / R2 applied on every k-th step only, with weight k * gamma.

StyleGAN2 penalises D every 16 minibatches with the penalty scaled by 16 (the trainer's `penalty_interval`,
applied on the step with `step % k == 0`, the first of each period). The official R3GAN code's maintainers suggest
it to cut the cost of R1 + R2, and warn that the convergence theory then no longer holds. This module makes the
warning precise on the game of `dirac`: one period of k steps is the map

    x  ->  S_0^(k-1) S_(k gamma) x      (near the equilibrium (0, 0); S_g = the step Jacobian at penalty weight g)

and lazy regularisation converges locally iff the spectral radius of that product is below 1. The step Jacobians
come in closed form (`step_jacobian`); `period_jacobian_autograd` differentiates k real steps through the autograd
vector field instead, and the tests check that the two agree and that simulated trajectories shrink at the rate the
spectral radius says.

A necessary condition in closed form: the free steps of the alternating scheme have determinant 1 and the penalised
one 1 - 2 h k c (c = dirac.damping(penalty, gamma)), so det(period) = 1 - 2 k h c and convergence needs k h c < 1:
the penalty, applied once per period with k times the weight, overshoots when k > 1 / (h c) (simultaneous steps:
det = (1 + h^2 a^2)^(k-1) (1 + h^2 a^2 - 2 k h c), the same bound as h -> 0). The rotation of the free steps can
break convergence earlier; `largest_stable_interval` finds where.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..choices import require_choice, require_positive
from .dirac import DTYPE, F_PRIME_0, SCHEMES, damping, update_step, vector_field


def _check_interval(k: int) -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"the penalty interval k must be a whole number >= 1, got {k!r}")
    return int(k)


def step_jacobian(penalty: str, gamma: float, h: float, scheme: str = "simultaneous") -> np.ndarray:
    """The Jacobian at (0, 0) of one step of size h, (theta, psi) order, penalty weight gamma (0 = no penalty).

    With a = f'(0) and c = damping(penalty, gamma), the field's Jacobian is J = [[0, -a], [a, -2c]] (GAN and RpGAN
    alike). simultaneous: I + h J. alternating (psi first, then theta at the new psi):
        psi'   = h a theta + (1 - 2 h c) psi
        theta' = theta - h a psi' = (1 - h^2 a^2) theta - h a (1 - 2 h c) psi,    determinant 1 - 2 h c.
    """
    require_choice("scheme", scheme, SCHEMES)
    require_positive("h", h)
    a, c = F_PRIME_0, damping(penalty, gamma)
    if scheme == "simultaneous":
        return np.eye(2) + h * np.array([[0.0, -a], [a, -2.0 * c]])
    return np.array([[1.0 - (h * a) ** 2, -h * a * (1.0 - 2.0 * h * c)], [h * a, 1.0 - 2.0 * h * c]])


def period_jacobian(penalty: str, gamma: float, h: float, k: int, scheme: str = "simultaneous") -> np.ndarray:
    """Closed form: S_0^(k-1) S_(k gamma), the Jacobian of one period of k lazy steps at the equilibrium."""
    k = _check_interval(k)
    penalised = step_jacobian(penalty, k * gamma, h, scheme)
    free = step_jacobian(penalty, 0.0, h, scheme)
    return np.linalg.matrix_power(free, k - 1) @ penalised


def period_map(loss: str, penalty: str, gamma: float, h: float, k: int, scheme: str = "simultaneous"):
    """x -> x after one period: a step with the penalty at weight k gamma, then k - 1 steps without (the trainer's
    order). Differentiable in x."""
    k = _check_interval(k)
    require_choice("scheme", scheme, SCHEMES)
    penalised, free = vector_field(loss, penalty, k * gamma), vector_field(loss, "none", 0.0)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = update_step(x, penalised, h, scheme)
        for _ in range(k - 1):
            x = update_step(x, free, h, scheme)
        return x

    return run


def period_jacobian_autograd(loss: str, penalty: str, gamma: float, h: float, k: int,
                             scheme: str = "simultaneous") -> np.ndarray:
    """The period's Jacobian at (0, 0) by autograd through k real steps of the autograd vector field."""
    jac = torch.autograd.functional.jacobian(period_map(loss, penalty, gamma, h, k, scheme),
                                             torch.zeros(2, dtype=DTYPE))
    return jac.detach().numpy()


def interval_bound(penalty: str, gamma: float, h: float) -> float:
    """1 / (h c): lazy regularisation cannot converge locally at k >= this (|det(period)| >= 1; inf without a
    penalty, which never converges anyway)."""
    c = damping(penalty, gamma)
    return float("inf") if c == 0 else 1.0 / (h * c)


def spectral_radius(matrix: np.ndarray) -> float:
    return float(np.abs(np.linalg.eigvals(matrix)).max())


def per_step_rate(penalty: str, gamma: float, h: float, k: int, scheme: str = "simultaneous") -> float:
    """rho(period)^(1/k): the factor by which the distance to (0, 0) shrinks per step, on average; < 1 converges."""
    k = _check_interval(k)
    return spectral_radius(period_jacobian(penalty, gamma, h, k, scheme)) ** (1.0 / k)


def stability_map(penalty: str, gammas: Sequence[float], hs: Sequence[float], k: int,
                  scheme: str = "simultaneous") -> np.ndarray:
    """per_step_rate on a grid: shape [len(gammas), len(hs)]; < 1 where lazy regularisation converges locally."""
    return np.array([[per_step_rate(penalty, float(g), float(h), k, scheme) for h in hs] for g in gammas])


def largest_stable_interval(penalty: str, gamma: float, h: float, scheme: str = "simultaneous",
                            k_max: int = 4096) -> int:
    """The largest k such that every interval 1..k converges locally (0 when even k = 1 does not); k_max caps it."""
    for k in range(1, k_max + 1):
        if per_step_rate(penalty, gamma, h, k, scheme) >= 1.0:
            return k - 1
    return k_max


def simulate_lazy(loss: str, penalty: str, gamma: float, h: float, periods: int, k: int,
                  start: tuple[float, float] = (0.1, 0.1), scheme: str = "simultaneous") -> np.ndarray:
    """The state after each period of k lazy steps from `start`: shape [periods + 1, 2]."""
    if int(periods) != periods or periods < 1:
        raise ValueError(f"periods must be a whole number >= 1, got {periods!r}")
    run = period_map(loss, penalty, gamma, h, k, scheme)
    x = torch.tensor(start, dtype=DTYPE)
    path = [x.numpy()]
    with torch.no_grad():
        for _ in range(int(periods)):
            x = run(x)
            path.append(x.numpy())
    return np.stack(path)
