"""The 2D-toy chapter (notebooks/02_toy_2d.py), executed in the smoke profile by the real runner.

Smoke training is a few seconds long, so only structure is asserted on the runs; the metric sanity check
on true samples is exact enough to assert on values.
"""

from __future__ import annotations

import math

import pytest
from conftest import chapter_metrics

from r3gan_core.losses import LOSSES, PENALTIES

pytestmark = pytest.mark.chapters

VERDICTS = ("REPRODUCES", "PARTLY REPRODUCES", "DOES NOT REPRODUCE")


@pytest.fixture(scope="module")
def metrics(smoke_book):
    return chapter_metrics(smoke_book, "toy_2d")


def test_every_combination_is_present(metrics):
    expected = {f"{d}/{lo}/{pe}" for d in metrics["datasets"] for lo in LOSSES for pe in PENALTIES}
    assert set(metrics["runs"]) == expected
    assert len(expected) == 8 * len(metrics["datasets"]) and "ring" in metrics["datasets"]


def test_run_values_are_in_range(metrics):
    for key, run in metrics["runs"].items():
        assert run["status"] in {"ok", "fail"}, key
        assert 0 <= run["modes"] <= run["num_modes"] == (8 if key.startswith("ring") else 25), key
        assert 0.0 <= run["hq"] <= 1.0, key
        assert float(run["kl"]) >= 0.0, key  # "inf" (no high-quality sample) is stored as a string
        if run["status"] == "ok":
            assert math.isfinite(run["grad_norm_real"]) and run["grad_norm_real"] > 0, key
            assert math.isfinite(run["grad_norm_fake"]) and run["grad_norm_fake"] > 0, key


def test_penalised_rpgan_trains_without_divergence(metrics):
    for d in metrics["datasets"]:
        assert metrics["runs"][f"{d}/rpgan/r1+r2"]["status"] == "ok"


def test_metric_sanity_check_on_true_samples(metrics):
    for d, ref in metrics["reference"].items():
        assert ref["true_modes"] == ref["num_modes"]
        assert ref["true_hq"] > 0.97 and ref["true_kl"] < 0.05
        assert ref["uniform_hq"] < 0.05  # noise is rarely high quality


def test_one_verdict_per_claim_and_dataset(metrics):
    assert len(metrics["verdicts"]) == 6 * len(metrics["datasets"])
    for line in metrics["verdicts"]:
        assert any(f": {word} (" in line for word in VERDICTS), line
