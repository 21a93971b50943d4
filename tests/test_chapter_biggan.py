"""The BigGAN chapter (notebooks/11_biggan.py), executed in the smoke profile by the real runner.

Smoke runs see a few hundred images, so nothing here checks a finding; the tests check that every measurement the
chapter discusses was made as configured and is well formed (ranges, shapes, consistency between its parts).
"""

from __future__ import annotations

import math

import pytest
from conftest import chapter_metrics

from r3gan_core.biggan import matrix_weights
from r3gan_core.networks import build
from r3gan_core.book.profiles import chapter_settings

pytestmark = pytest.mark.chapters

SETTINGS = chapter_settings("biggan", "smoke")
STABLE, R1_ONLY, BIGGAN_R1 = "RpGAN + R1 + R2", "RpGAN + R1", "R1 only, gamma 10 (BigGAN)"


@pytest.fixture(scope="module")
def metrics(smoke_book):
    return chapter_metrics(smoke_book, "biggan")


@pytest.fixture(scope="module")
def runs(metrics):
    return {r["label"]: r for r in metrics["runs"]}


def test_settings_are_the_smoke_profile(metrics):
    assert metrics["settings"] == SETTINGS


def test_every_run_is_present_and_finished(metrics, runs):
    gammas = [f"R1 + R2, gamma {g:g}" for g in SETTINGS["gammas"]]
    ortho = [label for label in runs if "ortho" in label]
    assert set(runs) == {STABLE, R1_ONLY, BIGGAN_R1, *ortho, *gammas} and len(ortho) == 1
    for r in runs.values():
        assert r["status"] in {"ok", "diverged"}
        if r["status"] == "ok":
            assert r["images_seen"] == SETTINGS["total_images"]


def test_truncation_sweeps_use_the_configured_thresholds(metrics):
    sweeps = metrics["truncation"]
    assert len(sweeps) == 2 and STABLE in sweeps
    for label, rows in sweeps.items():
        assert [r["threshold"] for r in rows] == [None, *sorted(SETTINGS["thresholds"])], label
        assert {r["seed"] for r in rows} == set(SETTINGS["seeds"])
        for r in rows:
            assert 0.0 <= r["precision_digits"] <= 1.0 and 0.0 <= r["recall_digits"] <= 1.0
            assert 0 <= r["modes_confident"] <= r["modes"] <= 1000
            assert math.isfinite(r["fd_digits"]) and r["fd_digits"] >= 0


def test_untruncated_point_is_the_runs_own_evaluation(metrics, runs):
    # the sweep's first row samples the trained G_ema with the run's seed and sample count: the same numbers
    for label, rows in metrics["truncation"].items():
        assert rows[0]["fd_digits"] == pytest.approx(runs[label]["fd_digits"], rel=1e-4)
        assert rows[0]["modes"] == runs[label]["modes"]


def test_truncation_shrinks_diversity_by_mode_count(metrics):
    # not a finding but a property of the trick: at threshold 0.25 every latent entry is near 0, so even an
    # almost untrained G maps them to fewer distinct classified modes than untruncated latents
    for rows in metrics["truncation"].values():
        assert rows[1]["modes"] < rows[0]["modes"]


def test_spectra_recorded_for_both_runs(metrics, runs):
    G, D = build("E", SETTINGS["preset"])
    first_layers = (next(matrix_weights(G))[0], next(matrix_weights(D))[0])  # z -> 4x4 input; RGB -> features
    every = SETTINGS["spectral_every"]
    for label in (STABLE, R1_ONLY):
        spectral = runs[label]["spectral"]
        seen = [m["images_seen"] for m in spectral]
        assert seen == sorted(set(seen)) and seen[0] == 0  # one at the start, none twice
        # one measurement at least every `spectral_every` images up to where the run stopped
        assert set(range(0, runs[label]["images_seen"] + 1, every)) <= set(seen)
        for net in ("G", "D"):
            layers = spectral[0][net].keys()
            assert len(layers) > 5
            values = [float(v) for m in spectral for v in m[net].values()]
            assert all(math.isfinite(v) and v >= 0 for v in values), (label, net)
            assert all(m[net].keys() == layers for m in spectral)
            # only zero-initialised layers (the last conv of each residual branch) read 0, and only at step 0
            assert all(float(v) > 0 for v in spectral[-1][net].values()), (label, net)
            assert any(float(v) == 0 for v in spectral[0][net].values()), (label, net)
        # the summary's first layer is the network's (stored JSON sorts keys, so this is not the first key)
        summary = metrics["spectral"][runs[label]["run"]]
        assert (summary["G"]["first_layer"], summary["D"]["first_layer"]) == first_layers
        assert summary["measurements"] == len(spectral)


def test_orthogonal_regularisation_changed_training(runs):
    ortho = next(r for label, r in runs.items() if "ortho" in label)
    g_plain, g_ortho = runs[STABLE]["spectral"][-1]["G"], ortho["spectral"][-1]["G"]
    assert g_plain.keys() == g_ortho.keys()
    assert any(abs(float(g_plain[k]) - float(g_ortho[k])) > 1e-6 for k in g_plain)


def test_spectral_verdict_matches_the_runs(metrics, runs):
    verdicts = metrics["spectral_verdicts"]
    diverged = [label for label in (STABLE, R1_ONLY) if runs[label]["status"] != "ok"]
    if diverged:
        assert any(v.startswith(("seed 0: SEEN", "seed 0: NOT SEEN")) for v in verdicts)
    else:
        assert verdicts[0].startswith("seed 0: NOT TESTABLE")


def test_gamma_sweep_has_one_entry_per_gamma(metrics):
    rows = metrics["gamma_sweep"]
    assert [r["gamma"] for r in rows] == sorted(float(g) for g in SETTINGS["gammas"])
    assert all(r["status"] in {"ok", "diverged"} for r in rows)
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        assert min(r["fd_cost_pct"] for r in ok) == pytest.approx(0.0)
        assert all(r["fd_cost_pct"] >= 0 and 0 <= r["precision_digits"] <= 1 for r in ok)
        assert all(r["late_max_grad_norm_fake"] > 0 for r in ok)
    assert metrics["gamma_verdicts"][0].startswith(f"stability: {len(rows) - len(ok)} of {len(rows)}")


def test_truncation_verdicts_cover_both_models(metrics):
    verdicts = metrics["truncation_verdicts"]
    assert len(verdicts) == 3
    # one smoke seed per model: never a separation (comparisons.SEPARATION_RULE)
    assert verdicts[-1].startswith("NOT SEPARATED at this scale")


def test_images_seen_adds_up(smoke_book, metrics):
    import json

    record = json.loads((smoke_book / "biggan" / "metrics.json").read_text())
    assert record["provenance"]["images_seen"] == sum(r["images_seen"] for r in metrics["runs"])
    assert (smoke_book / "biggan" / "spectra.png").is_file()
