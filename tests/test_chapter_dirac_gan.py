"""The Dirac-GAN chapter (notebooks/01_dirac_gan.py), executed in the smoke profile by the real runner.

The chapter's numbers are cheap and exact (a two-parameter game), so even the smoke run must reproduce them.
"""

from __future__ import annotations

import pytest
from conftest import chapter_metrics

pytestmark = pytest.mark.chapters


@pytest.fixture(scope="module")
def metrics(smoke_book):
    return chapter_metrics(smoke_book, "dirac_gan")


def test_unregularised_eigenvalues_are_plus_minus_half_i(metrics):
    assert metrics["eig_gamma0_real"] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert sorted(metrics["eig_gamma0_imag"]) == pytest.approx([-0.5, 0.5], abs=1e-9)


def test_penalised_eigenvalues_at_gamma_one(metrics):
    # one penalty: critically damped, double eigenvalue -1/2
    assert metrics["eig_gamma1_r1_real"] == pytest.approx([-0.5, -0.5], abs=1e-6)
    assert metrics["eig_gamma1_r1_imag"] == pytest.approx([0.0, 0.0], abs=1e-6)
    # R1 + R2 at gamma/2 each: -1 +- sqrt(3)/2
    assert sorted(metrics["eig_gamma1_r1r2_real"]) == pytest.approx([-1 - 3**0.5 / 2, -1 + 3**0.5 / 2], abs=1e-9)
    assert metrics["eig_max_abs_error_vs_closed_form"] < 1e-6


def test_simulations(metrics):
    assert metrics["radius_start"] == pytest.approx(2**0.5)
    assert metrics["radius_simultaneous"] == pytest.approx(3.1, abs=0.1)
    assert metrics["radius_alternating"] == pytest.approx(1.41, abs=0.05)
    assert metrics["radius_r1r2_gamma1"] < 1e-3
    assert metrics["radius_r1_gamma1"] < metrics["radius_r1r2_gamma1"]  # critical damping beats overdamping


def test_critical_gamma_and_step_limits(metrics):
    assert metrics["critical_gamma_r1"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["critical_gamma_r2"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["critical_gamma_r1r2"] == pytest.approx(0.5, abs=1e-6)
    assert metrics["max_stable_h_r1_gamma1"] == pytest.approx(4.0, abs=1e-6)
    assert metrics["max_stable_h_r1r2_gamma1"] == pytest.approx(2 / (1 + 3**0.5 / 2), abs=1e-6)


def test_gan_and_rpgan_fields_agree(metrics):
    assert metrics["gan_rpgan_field_max_diff"] < 1e-12
