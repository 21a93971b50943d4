"""Lazy regularisation (penalty every k-th step, weight x k): on the Dirac-GAN, the closed-form period Jacobian
against autograd through k real steps and against simulated trajectories; in the trainer, exactly which D steps get
the penalty and with what weight."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from r3gan_core.convergence import dirac, lazy


@pytest.mark.parametrize("scheme", dirac.SCHEMES)
@pytest.mark.parametrize("loss", ["gan", "rpgan"])
@pytest.mark.parametrize("penalty, gamma", [("r1", 1.0), ("r2", 0.3), ("r1+r2", 1.0), ("none", 0.0)])
@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_closed_form_period_jacobian_is_autograd_through_k_steps(scheme, loss, penalty, gamma, k):
    closed = lazy.period_jacobian(penalty, gamma, 0.1, k, scheme)
    assert np.allclose(closed, lazy.period_jacobian_autograd(loss, penalty, gamma, 0.1, k, scheme), atol=1e-12)


@pytest.mark.parametrize("scheme", dirac.SCHEMES)
def test_interval_one_is_the_ordinary_step(scheme):
    """k = 1 is plain R1 + R2 every step: the period is one step, and its map is dirac.simulate's."""
    start = (0.3, -0.2)
    path = dirac.simulate("rpgan", "r1+r2", 1.0, 0.2, 5, start=start, scheme=scheme)
    assert np.allclose(lazy.simulate_lazy("rpgan", "r1+r2", 1.0, 0.2, 5, 1, start=start, scheme=scheme), path)
    jac = np.eye(2) + 0.2 * dirac.equilibrium_jacobian("rpgan", "r1+r2", 1.0)
    if scheme == "simultaneous":
        assert np.allclose(lazy.period_jacobian("r1+r2", 1.0, 0.2, 1, scheme), jac)


@pytest.mark.parametrize("scheme", dirac.SCHEMES)
@pytest.mark.parametrize("k", [1, 4, 8, 12, 40])
def test_simulated_trajectories_shrink_at_the_spectral_radius(scheme, k):
    """Near the equilibrium the distance after n periods follows rho^n: it converges where rho < 1 and not where
    rho > 1, at the rate the closed form gives (R1 + R2, gamma 1, h 0.1: stable up to k = 9)."""
    rho = lazy.spectral_radius(lazy.period_jacobian("r1+r2", 1.0, 0.1, k, scheme))
    periods = 60 if rho < 1 else max(8, int(math.log(1e4) / math.log(rho)))  # growth kept in the linear regime
    path = lazy.simulate_lazy("rpgan", "r1+r2", 1.0, 0.1, periods, k, start=(1e-7, 1e-7), scheme=scheme)
    norms = np.linalg.norm(path, axis=1)
    rate = (norms[-1] / norms[periods // 2]) ** (1 / (periods - periods // 2))
    assert rate == pytest.approx(rho, rel=0.02)
    assert (norms[-1] < norms[0]) == (rho < 1)


@pytest.mark.parametrize("scheme", dirac.SCHEMES)
@pytest.mark.parametrize("penalty, gamma, h", [("r1+r2", 1.0, 0.1), ("r1", 1.0, 0.1), ("r1+r2", 0.1, 0.1),
                                               ("r1", 10.0, 0.01), ("r1+r2", 1.0, 0.01)])
def test_the_penalty_overshoots_beyond_k_equals_one_over_h_c(scheme, penalty, gamma, h):
    """det(period) = 1 - 2 k h c for alternating steps (c = damping), so no k >= 1 / (h c) converges."""
    c = dirac.damping(penalty, gamma)
    for k in (1, 3, 7):
        det = np.linalg.det(lazy.period_jacobian(penalty, gamma, h, k, scheme))
        expected = 1 - 2 * k * h * c if scheme == "alternating" else \
            (1 + (h * dirac.F_PRIME_0) ** 2) ** (k - 1) * (1 + (h * dirac.F_PRIME_0) ** 2 - 2 * k * h * c)
        assert det == pytest.approx(expected, rel=1e-10, abs=1e-12)
    k_star = lazy.largest_stable_interval(penalty, gamma, h, scheme)
    assert 1 <= k_star < lazy.interval_bound(penalty, gamma, h)
    assert lazy.per_step_rate(penalty, gamma, h, k_star, scheme) < 1 <= lazy.per_step_rate(penalty, gamma, h,
                                                                                             k_star + 1, scheme)


def test_stability_map_and_bad_intervals():
    grid = lazy.stability_map("r1+r2", [0.5, 1.0], [0.05, 0.1, 0.2], 16)
    assert grid.shape == (2, 3) and np.all(grid > 0)
    assert grid[1, 0] < 1 < grid[1, 2]  # gamma 1, k 16: converges at h = 0.05, not at h = 0.2
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="penalty interval k must be a whole number >= 1"):
            lazy.period_jacobian("r1", 1.0, 0.1, bad)
    assert lazy.interval_bound("none", 1.0, 0.1) == math.inf


# ----- the trainer's penalty_interval -----

def _tiny(config: str = "E", **changes):
    from r3gan_core.training import TrainConfig

    base = dict(config=config, preset="stacked8", batch=8, total_images=8 * 12, log_every=8, progress=False,
                device="cpu", network={"widths": [16, 16]}, max_items=500, threads=1, seed=3)
    return TrainConfig(**{**base, **changes})


def test_interval_one_trains_exactly_as_the_default():
    from r3gan_core.training import train

    default, explicit = train(_tiny()), train(_tiny(penalty_interval=1))
    for a, b in zip(default.G_ema.state_dict().values(), explicit.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["d_loss"] for r in default.records] == [r["d_loss"] for r in explicit.records]


@pytest.mark.parametrize("config", ["B", "C", "D", "E"])
def test_interval_k_penalises_exactly_every_kth_d_step_with_weight_k(config):
    """One log record per step: the penalty is applied on steps 0, k, 2k, ... (penalty_steps = 1) with R1's weight
    k * gamma / 2 there, and nowhere else (weight 0, no R1 value)."""
    from r3gan_core.training import train

    k = 4
    result = train(_tiny(config, penalty_interval=k, gamma=0.5))
    assert result.status == "ok" and result.recipe.penalty_interval == k
    for rec in result.records:
        step = rec["step"] - 1  # the record after step s carries s + 1
        applied = step % k == 0
        assert rec["penalty_steps"] == int(applied), (step, rec)
        assert rec["r1_weight"] == pytest.approx(k * 0.5 / 2 if applied else 0.0), (step, rec)
        if result.recipe.penalty == "r1+r2":
            assert rec["r2_weight"] == pytest.approx(k * 0.5 / 2 if applied else 0.0), (step, rec)


# ----- the 2D toys' penalty_interval -----

def test_toy_interval_one_is_the_default_and_k_penalises_every_kth_step(monkeypatch):
    from r3gan_core.convergence import toy

    base = toy.ToyConfig(dataset="ring", steps=12, batch=32, samples=100, log_every=4, seed=1)
    a, b = toy.train_toy(base), toy.train_toy(toy.ToyConfig(**{**base.__dict__, "penalty_interval": 1}))
    assert a.history == b.history and torch.equal(a.samples, b.samples)
    seen = []
    real_objective = toy.discriminator_objective

    def spy(D, real, fake, loss, penalty, gamma):
        seen.append((penalty, gamma))
        return real_objective(D, real, fake, loss, penalty, gamma)

    monkeypatch.setattr(toy, "discriminator_objective", spy)
    toy.train_toy(toy.ToyConfig(**{**base.__dict__, "penalty_interval": 4}))
    assert seen == [("r1+r2", pytest.approx(0.4)) if s % 4 == 0 else ("none", 0.0) for s in range(12)]
    with pytest.raises(ValueError, match="penalty_interval"):
        toy.ToyConfig(penalty_interval=0)
