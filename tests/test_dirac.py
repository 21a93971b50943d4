"""r3gan_core.convergence.dirac: autograd eigenvalues against the closed forms, simulations, invariants, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from r3gan_core.convergence import dirac
from r3gan_core import losses

GAMMAS = np.linspace(0.0, 3.0, 13)

# Measured with this module (float64): unregularised simultaneous GD from (1, 1), h = 0.2, 500 steps ends at
# radius 3.0969 (PAPER_FACTS Sec. 2: "about 3.1"); alternating GD (D then G) ends at 1.4126 and stays within
# [1.405, 1.489] along the way; R1 + R2 at gamma = 1 ends 1.3e-6 from (0, 0).
SIMULTANEOUS_RADIUS = 3.0969
ALTERNATING_RADIUS = 1.4126


@pytest.mark.parametrize("loss", dirac.LOSSES)
@pytest.mark.parametrize("penalty", dirac.PENALTIES)
def test_autograd_eigenvalues_match_closed_form(loss, penalty):
    for gamma in GAMMAS:
        auto = dirac.equilibrium_eigenvalues(loss, penalty, gamma)
        exact = dirac.closed_form_eigenvalues(loss, penalty, gamma)
        np.testing.assert_allclose(auto, exact, atol=1e-6, err_msg=f"{loss} {penalty} gamma={gamma}")


def test_unregularised_eigenvalues_are_imaginary():
    for loss in dirac.LOSSES:
        eigs = dirac.equilibrium_eigenvalues(loss, "none", 0.0)
        np.testing.assert_allclose(eigs, [-0.5j, 0.5j], atol=1e-12)
        # gamma does nothing without a penalty
        np.testing.assert_allclose(dirac.equilibrium_eigenvalues(loss, "none", 2.0), eigs, atol=1e-12)


def test_jacobian_at_equilibrium():
    j = dirac.equilibrium_jacobian("rpgan", "r1", 1.0)
    np.testing.assert_allclose(j, [[0.0, -0.5], [0.5, -1.0]], atol=1e-12)
    j = dirac.equilibrium_jacobian("gan", "r1+r2", 1.0)
    np.testing.assert_allclose(j, [[0.0, -0.5], [0.5, -2.0]], atol=1e-12)


@pytest.mark.parametrize("penalty", ["r1", "r2"])
def test_critical_damping_single_penalty(penalty):
    """gamma = 2 |f'(0)| = 1 gives a double real eigenvalue -gamma/2 (the paper's Eq. 12 misses the square)."""
    exact = dirac.closed_form_eigenvalues("rpgan", penalty, 1.0)
    np.testing.assert_allclose(exact, [-0.5, -0.5], atol=1e-12)
    auto = dirac.equilibrium_eigenvalues("rpgan", penalty, 1.0)
    np.testing.assert_allclose(auto, [-0.5, -0.5], atol=1e-6)  # defective: eig error ~ sqrt(machine eps)
    assert dirac.critical_gamma("rpgan", penalty) == pytest.approx(1.0, abs=1e-8)
    below = dirac.closed_form_eigenvalues("rpgan", penalty, 0.99)
    above = dirac.closed_form_eigenvalues("rpgan", penalty, 1.01)
    assert np.all(np.abs(below.imag) > 0) and np.all(above.imag == 0)


def test_critical_damping_both_penalties_is_half():
    assert dirac.critical_gamma("gan", "r1+r2") == pytest.approx(0.5, abs=1e-8)
    np.testing.assert_allclose(dirac.closed_form_eigenvalues("gan", "r1+r2", 0.5), [-0.5, -0.5], atol=1e-12)


def test_gan_and_rpgan_objectives_differ_but_fields_agree():
    theta, psi = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    gan = dirac.dirac_objective("gan", theta, psi)
    rp = dirac.dirac_objective("rpgan", theta, psi)
    torch.testing.assert_close(gan - rp, torch.full_like(gan, -np.log(2)))  # the constant f(0)
    states = torch.stack((theta, psi), dim=-1)
    for penalty in dirac.PENALTIES:
        torch.testing.assert_close(dirac.vector_field("gan", penalty, 0.7)(states),
                                   dirac.vector_field("rpgan", penalty, 0.7)(states))


def test_dirac_objective_is_the_library_loss_in_paper_convention():
    """Paper L = -(D's code loss) with D_code = -D_paper (losses.py module docstring)."""
    theta, psi = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    for loss in dirac.LOSSES:
        code = losses.discriminator_loss(loss, -psi * 0.0, -psi * theta)
        torch.testing.assert_close(dirac.dirac_objective(loss, theta, psi), -code)


def test_field_matches_mescheder_formula():
    """v = (-psi f'(psi theta), theta f'(psi theta) - 2 c psi) with f'(t) = sigmoid(-t)."""
    states = torch.randn(30, 2, dtype=torch.float64)
    theta, psi = states[:, 0], states[:, 1]
    fp = torch.sigmoid(-psi * theta)
    for penalty, c in [("none", 0.0), ("r1", 0.6), ("r2", 0.6), ("r1+r2", 1.2)]:
        v = dirac.vector_field("rpgan", penalty, 1.2)(states)
        torch.testing.assert_close(v, torch.stack((-psi * fp, theta * fp - 2 * c * psi), dim=-1))


def test_unregularised_flow_conserves_radius():
    """v is orthogonal to (theta, psi), so d/dt (theta^2 + psi^2) = 2 x . v = 0."""
    states = 3 * torch.randn(200, 2, dtype=torch.float64)
    for loss in dirac.LOSSES:
        v = dirac.vector_field(loss, "none", 0.0)(states)
        torch.testing.assert_close((states * v).sum(-1), torch.zeros(200, dtype=torch.float64), atol=1e-12, rtol=0)
    # a penalty makes the radius shrink: x . v = -2 c psi^2 <= 0
    v = dirac.vector_field("gan", "r1", 1.0)(states)
    assert torch.all((states * v).sum(-1) <= 1e-12)


def test_simultaneous_gd_spirals_out():
    path = dirac.simulate("rpgan", "none", 0.0, h=0.2, steps=500)
    radius = np.hypot(path[:, 0], path[:, 1])
    assert path.shape == (501, 2)
    assert radius[0] == pytest.approx(np.sqrt(2))
    assert radius[-1] == pytest.approx(SIMULTANEOUS_RADIUS, abs=1e-3)
    assert abs(radius[-1] - 3.1) < 0.1
    assert np.all(np.diff(radius) > 0)  # each step multiplies the radius by sqrt(1 + h^2 f'(psi theta)^2)
    gan = dirac.simulate("gan", "none", 0.0, h=0.2, steps=500)
    np.testing.assert_allclose(gan, path, atol=1e-12)


def test_alternating_gd_cycles():
    path = dirac.simulate("rpgan", "none", 0.0, h=0.2, steps=500, scheme="alternating")
    radius = np.hypot(path[:, 0], path[:, 1])
    assert radius[-1] == pytest.approx(ALTERNATING_RADIUS, abs=1e-3)
    assert abs(radius[-1] - np.sqrt(2)) < 0.05
    assert radius.max() < 1.5 and radius.min() > 1.35


def test_alternating_linear_update_has_unit_determinant():
    """Linearised D-then-G step: [[1 - h^2 a^2, -h a], [h a, 1]] in (theta, psi), det = 1."""
    h, eps = 0.2, 1e-6
    step = lambda s: dirac.simulate("gan", "none", 0.0, h, 1, start=s, scheme="alternating")[-1]  # noqa: E731
    jac = np.stack([(step((eps, 0.0)) - step((-eps, 0.0))) / (2 * eps),
                    (step((0.0, eps)) - step((0.0, -eps))) / (2 * eps)], axis=1)
    assert np.linalg.det(jac) == pytest.approx(1.0, abs=1e-8)


def test_r1_r2_converges_to_equilibrium():
    path = dirac.simulate("rpgan", "r1+r2", 1.0, h=0.2, steps=500)
    assert np.hypot(*path[-1]) < 1e-3
    assert dirac.is_discretely_stable(dirac.equilibrium_eigenvalues("rpgan", "r1+r2", 1.0), 0.2)


def test_discrete_stability():
    assert not dirac.is_discretely_stable(np.array([0.5j, -0.5j]), 0.2)  # |1 + 0.1i| > 1 for every h
    assert not dirac.is_discretely_stable(np.array([0.5j, -0.5j]), 1e-4)
    assert dirac.is_discretely_stable(np.array([-0.5, -0.5]), 3.9)  # |1 - h/2| < 1 iff h < 4
    assert not dirac.is_discretely_stable(np.array([-0.5, -0.5]), 4.1)
    mask = dirac.stability_region_mask(np.array([-5.0, -2.5, -0.1, 0.1]), np.zeros(4), h=0.4)
    assert mask.tolist() == [False, True, True, False]  # the disc centred at -1/h = -2.5, radius 2.5


def test_max_stable_step_and_update_spectral_radius():
    r1 = dirac.closed_form_eigenvalues("gan", "r1", 1.0)
    both = dirac.closed_form_eigenvalues("gan", "r1+r2", 1.0)
    assert dirac.max_stable_step(r1) == pytest.approx(4.0)
    assert dirac.max_stable_step(both) == pytest.approx(2 / (1 + np.sqrt(3) / 2))
    assert dirac.max_stable_step(dirac.closed_form_eigenvalues("gan", "none", 0.0)) == 0.0
    for eigs in (r1, both):  # the spectral radius crosses 1 exactly at the largest stable step
        h_max = dirac.max_stable_step(eigs)
        rho = dirac.update_spectral_radius(eigs, [0.99 * h_max, 1.01 * h_max])
        assert rho.shape == (1, 2) and rho[0, 0] < 1 < rho[0, 1]
    locus = dirac.eigenvalue_locus("rpgan", "r1", [0.5, 1.0, 2.0])
    rho = dirac.update_spectral_radius(locus, [0.1, 0.2, 0.3, 0.4])
    assert rho.shape == (3, 4)
    np.testing.assert_allclose(rho[1], np.abs(1 - 0.5 * np.array([0.1, 0.2, 0.3, 0.4])))
    with pytest.raises(ValueError, match="h"):
        dirac.update_spectral_radius(locus, [0.0])


def test_eigenvalue_locus_and_grid_shapes():
    locus = dirac.eigenvalue_locus("gan", "r1", [0.0, 1.0, 2.0])
    assert locus.shape == (3, 2) and np.iscomplexobj(locus)
    theta, psi, u, v = dirac.field_on_grid("gan", "r1", 1.0, lim=2.0, n=5)
    assert theta.shape == psi.shape == u.shape == v.shape == (5, 5)
    assert theta[0, 0] == -2.0 and psi[-1, 0] == 2.0  # xy indexing: theta along columns, psi along rows
    i = 3  # a point away from the origin: v at (theta, psi) equals the field evaluated there
    point = torch.tensor([theta[i, 1], psi[i, 1]], dtype=torch.float64)
    np.testing.assert_allclose([u[i, 1], v[i, 1]], dirac.vector_field("gan", "r1", 1.0)(point).numpy())


@pytest.mark.parametrize("call, match", [
    (lambda: dirac.vector_field("wgan", "r1", 1.0), "'gan', 'rpgan'"),
    (lambda: dirac.vector_field("gan", "r3", 1.0), "'none', 'r1', 'r2', 'r1\\+r2'"),
    (lambda: dirac.vector_field("gan", "r1", -1.0), "gamma"),
    (lambda: dirac.equilibrium_eigenvalues("gan", "l2", 1.0), "penalty"),
    (lambda: dirac.closed_form_eigenvalues("dcgan", "r1", 1.0), "loss"),
    (lambda: dirac.closed_form_eigenvalues("gan", "r1", -0.5), "gamma"),
    (lambda: dirac.simulate("gan", "r1", 1.0, h=0.2, steps=10, scheme="leapfrog"), "'simultaneous', 'alternating'"),
    (lambda: dirac.simulate("gan", "r1", 1.0, h=0.0, steps=10), "h must be > 0"),
    (lambda: dirac.simulate("gan", "r1", 1.0, h=-0.1, steps=10), "h must be > 0"),
    (lambda: dirac.simulate("gan", "r1", 1.0, h=0.2, steps=0), "steps"),
    (lambda: dirac.simulate("gan", "r1", -1.0, h=0.2, steps=10), "gamma"),
    (lambda: dirac.simulate("gan", "r1", 1.0, h=0.2, steps=10, start=(1.0,)), "start"),
    (lambda: dirac.is_discretely_stable(np.array([0.5j]), 0.0), "h must be > 0"),
    (lambda: dirac.critical_gamma("gan", "none"), "never damps"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
