"""Schedules (cosine over images, EMA half-life) and the recipes table, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from r3gan_core.training.recipes import CONFIGS, PRESETS, describe_recipes, make_recipe
from r3gan_core.training.schedules import Cosine, cosine_schedule, ema_beta, ema_half_life


def test_cosine_known_values():
    b, f, T = 2e-4, 5e-5, 20_000_000
    assert cosine_schedule(0, b, f, T) == pytest.approx(b)
    assert cosine_schedule(T / 2, b, f, T) == pytest.approx((b + f) / 2)
    assert cosine_schedule(T, b, f, T) == pytest.approx(f)
    assert cosine_schedule(3 * T, b, f, T) == pytest.approx(f)  # held after T
    # t = T/4: (1 - cos(pi/4)) / 2 = 0.1464466..., so 2e-4 - 1.5e-4 * 0.1464466 = 1.78033e-4
    assert cosine_schedule(T / 4, b, f, T) == pytest.approx(1.7803300858899107e-4, rel=1e-12)
    # gamma 150 -> 15 (FFHQ-256) at 3/4 of T: 150 - 135 * (1 + 1/sqrt(2)) / 2 = 34.7686...
    assert cosine_schedule(0.75 * T, 150, 15, T) == pytest.approx(150 - 135 * (1 + 1 / math.sqrt(2)) / 2)


def test_cosine_is_monotone_and_constant_degenerates():
    s = Cosine(0.9, 0.99, 1000)
    values = [s(t) for t in range(0, 1200, 50)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert Cosine.constant(0.5)(10**9) == 0.5 and Cosine.constant(0.5).is_constant
    assert cosine_schedule(123, 1.0, 2.0, 0) == 2.0  # T = 0: already final


def test_ema_beta_half_life():
    assert ema_beta(64, 64) == pytest.approx(0.5)
    assert ema_beta(64, 128) == pytest.approx(math.sqrt(0.5))
    assert ema_beta(64, 0) == 0.0  # half-life 0: the EMA copies G
    # after half_life / batch steps the old weights count exactly 1/2
    assert ema_beta(512, 500_000) ** (500_000 / 512) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="batch_images"):
        ema_beta(0, 10)


def test_ema_half_life_ramp():
    ramp = Cosine(0.0, 500_000.0, 20_000_000)
    assert ema_half_life(0, ramp) == 0.0
    assert ema_half_life(10_000_000, ramp) == pytest.approx(250_000)
    assert ema_half_life(1_000, Cosine.constant(20_000), rampup=0.05) == pytest.approx(50.0)  # StyleGAN2-ADA cap
    assert ema_half_life(10**7, Cosine.constant(20_000), rampup=0.05) == 20_000


def test_recipes_per_config():
    a, b, c, d, e = (make_recipe(k, "digits8") for k in CONFIGS)
    # A: StyleGAN2
    assert (a.loss, a.penalty, a.penalty_interval, a.pl_interval, a.style_mixing) == ("gan", "r1", 16, 4, 0.9)
    assert (a.beta1, a.beta2(0)) == (0.0, 0.99)
    # B: GAN + R1 every step, nothing else
    assert (b.loss, b.penalty, b.penalty_interval, b.pl_interval, b.style_mixing) == ("gan", "r1", 1, None, 0.0)
    # C differs from B by its loss only
    assert (c.loss, c.penalty) == ("rpgan", "r1+r2")
    assert (c.lr, c.gamma, c.beta2, c.ema_half_life, c.batch) == (b.lr, b.gamma, b.beta2, b.ema_half_life, b.batch)
    for r in (d, e):
        assert (r.loss, r.penalty, r.penalty_interval) == ("rpgan", "r1+r2", 1)


@pytest.mark.parametrize("preset,gamma,ema,T", [
    ("cifar10", (0.05, 0.005), 5_000_000, 20_000_000), ("ffhq64", (2, 0.2), 500_000, 20_000_000),
    ("ffhq256", (150, 15), 500_000, 20_000_000), ("imagenet32", (0.5, 0.05), 50_000_000, 200_000_000),
    ("imagenet64", (1, 0.1), 50_000_000, 200_000_000)])
def test_official_presets_match_paper_table(preset, gamma, ema, T):
    r = make_recipe("E", preset)
    assert (r.lr.base, r.lr.final, r.lr.total_images) == (2e-4, 5e-5, T)
    assert (r.beta2.base, r.beta2.final) == (0.9, 0.99)
    assert (r.gamma.base, r.gamma.final) == pytest.approx(gamma)
    assert (r.ema_half_life.base, r.ema_half_life.final) == (0.0, ema)
    assert (r.beta1, r.eps) == (0.0, 1e-8)


def test_recipe_overrides_and_errors():
    r = make_recipe("E", "digits8", gamma=(2.0, 0.5), lr=1e-3, schedule_images=1000, batch=32)
    assert (r.gamma.base, r.gamma.final, r.gamma.total_images) == (2.0, 0.5, 1000)
    assert r.lr.is_constant and r.lr(500) == 1e-3
    assert r.beta2.total_images == 1000 and r.batch == 32
    with pytest.raises(ValueError, match="valid choices"):
        make_recipe("F", "digits8")
    with pytest.raises(ValueError, match="valid choices"):
        make_recipe("E", "mnist99")
    with pytest.raises(ValueError, match="penalty"):
        make_recipe("E", "digits8", penalty="r3")
    with pytest.raises(ValueError, match="recipe override"):
        make_recipe("E", "digits8", learning_rate=1.0)
    assert len(describe_recipes("stacked8")) == 5 and set(PRESETS) >= {"digits8", "stacked8", "ffhq256"}
