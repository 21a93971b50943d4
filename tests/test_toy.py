"""r3gan_core.convergence.toy: mixtures, VEEGAN/PacGAN metrics, the toy trainer, verdicts and validation."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from r3gan_core.convergence import toy

matplotlib.use("Agg")


def _true_samples(name: str, n: int = 2500, seed: int = 0) -> torch.Tensor:
    return toy.sample_mixture(name, n, torch.Generator().manual_seed(seed))


# --- mixtures ---------------------------------------------------------------------------------------------

def test_ring_means_are_eight_distinct_points_on_the_unit_circle():
    means, std = toy.mixture("ring")
    assert means.shape == (8, 2) and std == 0.01
    assert len(torch.unique(means.round(decimals=5), dim=0)) == 8  # no duplicated angle (the linspace bug)
    assert means.norm(dim=1) == pytest.approx(torch.ones(8), abs=1e-6)
    angles = torch.atan2(means[:, 1], means[:, 0]) % (2 * math.pi)
    expected = torch.arange(8) * 2 * math.pi / 8
    assert torch.sort(angles).values == pytest.approx(expected, abs=1e-5)


def test_grid_means_are_the_25_points_of_the_grid():
    means, std = toy.mixture("grid")
    assert means.shape == (25, 2) and std == 0.05
    assert {tuple(m) for m in means.tolist()} == {(float(x), float(y)) for x in range(-4, 5, 2)
                                                 for y in range(-4, 5, 2)}


def test_sample_mixture_is_seeded_and_shaped():
    a, b = _true_samples("grid", 100, 3), _true_samples("grid", 100, 3)
    assert a.shape == (100, 2) and torch.equal(a, b)
    assert not torch.equal(a, _true_samples("grid", 100, 4))


# --- metrics ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kl_bound", [("ring", 0.01), ("grid", 0.03)])
def test_true_mixture_covers_every_mode_with_kl_near_zero(name, kl_bound):
    m = toy.mode_metrics(_true_samples(name), name)
    assert m.modes == m.num_modes == len(toy.mixture(name)[0])
    assert m.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # Rayleigh mass within 3 std: 0.989
    assert 0 <= m.reverse_kl < kl_bound
    assert sum(m.counts) == round(m.high_quality * 2500)


@pytest.mark.parametrize("name", toy.DATASETS)
def test_all_samples_on_one_mode_give_one_mode_and_kl_log_k(name):
    means, _ = toy.mixture(name)
    m = toy.mode_metrics(means[3].repeat(500, 1), name)
    assert m.modes == 1 and m.high_quality == 1.0
    assert m.reverse_kl == pytest.approx(math.log(len(means)))


def test_reverse_kl_by_hand_and_empty_histogram():
    # p = (1/4, 1/4, 1/2, 0), K = 4: 1/4 log 1 + 1/4 log 1 + 1/2 log 2
    assert toy.reverse_kl_uniform(torch.tensor([1, 1, 2, 0])) == pytest.approx(0.5 * math.log(2))
    assert toy.reverse_kl_uniform(torch.zeros(8)) == math.inf


def test_far_and_non_finite_samples_are_low_quality():
    x = torch.tensor([[1.0, 0.0], [1.02, 0.0], [1.04, 0.0], [float("nan"), 0.0], [float("inf"), 1.0], [0.0, 0.0]])
    m = toy.mode_metrics(x, "ring")
    assert m.high_quality == pytest.approx(2 / 6)  # within 3 std = 0.03 of (1, 0): the first two only
    assert m.modes == 1 and m.reverse_kl == pytest.approx(math.log(8))
    assert toy.mode_metrics(torch.full((4, 2), 9.0), "grid").reverse_kl == math.inf


def test_uniform_noise_scores_low_quality():
    m = toy.uniform_baseline("grid", 2500)
    assert m.high_quality < 0.05 and m.modes > 0


# --- schedule and divergence check --------------------------------------------------------------------------

def test_cosine_schedule_endpoints_and_midpoint():
    assert toy.cosine_schedule(1.0, 0.1, 0, 10) == pytest.approx(1.0)
    assert toy.cosine_schedule(1.0, 0.1, 5, 10) == pytest.approx(0.55)
    assert toy.cosine_schedule(1.0, 0.1, 10, 10) == pytest.approx(0.1)
    assert toy.cosine_schedule(1.0, 0.1, 99, 10) == pytest.approx(0.1)  # held after the end


def test_divergence_reason():
    ok = {"d_loss": 0.7, "g_loss": 0.7, "grad_norm_real": 1.0, "grad_norm_fake": 2.0,
          "real_logits": 0.1, "fake_logits": -0.1}
    assert toy.divergence_reason(ok, 1e4) == ""
    assert "d_loss" in toy.divergence_reason({**ok, "d_loss": float("nan")}, 1e4)
    assert "grad_norm_fake" in toy.divergence_reason({**ok, "grad_norm_fake": 2e4}, 1e4)
    # RpGAN ignores a constant added to D: a common drift of the logits is not divergence, a gap is
    assert toy.divergence_reason({**ok, "real_logits": 5e4, "fake_logits": 5e4}, 1e4) == ""
    assert "logit gap" in toy.divergence_reason({**ok, "real_logits": 5e4}, 1e4)


# --- training ----------------------------------------------------------------------------------------------

SMALL = dict(steps=30, batch=32, width=16, samples=300, log_every=5)


def test_rpgan_r1_r2_on_the_ring_gives_a_finite_history():
    cfg = toy.ToyConfig(dataset="ring", loss="rpgan", penalty="r1+r2", **SMALL)
    r = toy.train_toy(cfg, progress=False)
    assert r.status == "ok" and r.fail_step is None and r.fail_reason == ""
    assert r.history["step"] == [float(s) for s in range(5, 31, 5)]
    for key in toy.HISTORY_KEYS:
        assert len(r.history[key]) == 6 and all(math.isfinite(v) for v in r.history[key])
    assert r.samples.shape == (300, 2) and torch.isfinite(r.samples).all()
    assert 0 <= r.metrics.modes <= 8 and r.metrics.reverse_kl >= 0


def test_training_is_deterministic_and_leaves_the_global_rng_alone():
    cfg = toy.ToyConfig(dataset="grid", loss="gan", penalty="r1", **SMALL)
    state = torch.random.get_rng_state()
    a, b = toy.train_toy(cfg, progress=False), toy.train_toy(cfg, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.samples, b.samples) and a.history == b.history


def test_int_betas_are_accepted():  # torch 2.13's Adam rejects an int 0; the trainer converts
    r = toy.train_toy(toy.ToyConfig(**{**SMALL, "steps": 3}, betas=(0, 0.99)), progress=False)
    assert r.status == "ok"


def test_forced_divergence_returns_fail_instead_of_raising():
    cfg = toy.ToyConfig(loss="gan", penalty="none", lr=1e3, lr_final=None, **SMALL)
    r = toy.train_toy(cfg, progress=False)
    assert r.status == "fail" and r.fail_reason
    assert 1 <= r.fail_step <= cfg.steps
    assert r.history["step"][-1] == r.fail_step
    assert r.samples.shape == (300, 2)  # metrics still computed (non-finite samples count as low quality)


def test_grid_summaries_verdicts_and_figures():
    base = toy.ToyConfig(**{**SMALL, "steps": 4, "samples": 100})
    results = toy.train_grid(base, datasets=("ring",), progress=False)
    assert set(results) == {("ring", lo, pe, 0) for lo in toy.LOSSES for pe in toy.PENALTIES}
    rows = toy.summary_rows(results)
    head = toy.headline_metrics(rows)
    assert set(head) == {f"ring/{lo}/{pe}" for lo in toy.LOSSES for pe in toy.PENALTIES}
    assert all(v["status"] in toy.STATUSES and v["seeds"] == 1 for v in head.values())
    assert toy.images_seen(results) == 8 * 4 * base.batch
    verdicts = toy.claim_verdicts(rows, "ring")
    assert len(verdicts) == 6 and all("REPRODUCE" in v for v in verdicts)
    for fig in (toy.plot_mixtures(("ring",), n=200), toy.plot_sample_grid(results, "ring"),
                toy.plot_grad_norms(results, "ring")):
        assert fig.axes
        matplotlib.pyplot.close(fig)


def _row(loss, penalty, status="ok", modes=8, kl=0.1, peak=1.0, real=1.0, seed=0):
    return {"dataset": "ring", "loss": loss, "penalty": penalty, "seed": seed, "status": status, "fail_step": None,
            "modes": modes, "num_modes": 8, "hq": 0.5, "kl": kl, "grad_norm_real": real, "grad_norm_fake": peak,
            "peak_grad_norm_fake": peak}


def test_claim_verdicts_follow_the_numbers():
    paper_like = [row for seed in (0, 1) for row in (
        *[_row(lo, "r1", status="fail", peak=1e5, seed=seed) for lo in toy.LOSSES],
        _row("gan", "r1+r2", modes=6, kl=0.9, seed=seed), _row("rpgan", "r1+r2", modes=8, kl=0.05, seed=seed),
        _row("gan", "none", real=50.0, seed=seed), _row("rpgan", "none", real=50.0, seed=seed))]
    v = toy.claim_verdicts(paper_like, "ring")
    assert all(line.split("): ", 1)[1].startswith("REPRODUCES") for line in v), v
    one_seed = [r for r in paper_like if r["seed"] == 0]
    assert ": PARTLY REPRODUCES (better in 1/1 seeds" in toy.claim_verdicts(one_seed, "ring")[3]
    calm = [_row(lo, pe) for lo in toy.LOSSES for pe in toy.PENALTIES]
    v = toy.claim_verdicts(calm, "ring")
    assert "DOES NOT REPRODUCE" in v[0] and "DOES NOT REPRODUCE" in v[1]  # R1 runs fine, no gradient gap
    assert "DOES NOT REPRODUCE" in v[3] and "one seed" in v[3]
    overlapping = [dict(r, kl=0.5 + 0.01 * r["seed"]) if (r["loss"], r["penalty"]) == ("rpgan", "r1+r2")
                   else dict(r, kl=0.505 + 0.01 * r["seed"]) if (r["loss"], r["penalty"]) == ("gan", "r1+r2")
                   else r for r in paper_like]
    assert ": PARTLY REPRODUCES (better in 2/2 seeds" in toy.claim_verdicts(overlapping, "ring")[3]
    with pytest.raises(ValueError, match="no rows"):
        toy.claim_verdicts(calm, "grid")


# --- validation --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"dataset": "moons"}, "'ring', 'grid'"),
    ({"loss": "wgan"}, "'gan', 'rpgan'"),
    ({"penalty": "r3"}, "'none', 'r1', 'r2', 'r1\\+r2'"),
    ({"gamma": -0.1}, "gamma must be >= 0"),
    ({"steps": 0}, "steps must be > 0"),
    ({"steps": 2.5}, "steps must be an int"),
    ({"batch": 0}, "batch must be > 0"),
    ({"width": -1}, "width must be > 0"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"lr_final": -1e-5}, "lr_final must be > 0"),
    ({"betas": (1.0, 0.99)}, "betas"),
    ({"samples": 0}, "samples must be > 0"),
])
def test_bad_config_raises_value_error_naming_the_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toy.ToyConfig(**kwargs)


def test_bad_names_elsewhere():
    with pytest.raises(ValueError, match="valid choices: 'ring', 'grid'"):
        toy.mixture("spiral")
    with pytest.raises(ValueError, match="valid choices"):
        toy.mode_metrics(torch.zeros(3, 2), "swiss")
    with pytest.raises(ValueError, match="n must be > 0"):
        toy.sample_mixture("ring", 0)
    with pytest.raises(ValueError, match="at least one sample"):
        toy.mode_metrics(torch.zeros(0, 2), "ring")
    with pytest.raises(ValueError, match="'gan', 'rpgan'"):
        toy.train_grid(toy.ToyConfig(**SMALL), datasets=("ring",), losses=("lsgan",), progress=False)
