"""ADA's augmentation (training.augment) and its schedule: p = 0 is the identity and draws nothing, gradients pass
through it, each transform fires at ADA's rate, the official presets ramp p as PAPER_FACTS Sec. 5 says, and the
trainer runs with it."""

from __future__ import annotations

import functools
import math
import sys

import pytest
import torch
from torch import nn

from r3gan_core.cli import build_parser
from r3gan_core.losses import discriminator_objective, generator_objective
from r3gan_core.training import TrainConfig, train
from r3gan_core.training import steps as steps_mod
from r3gan_core.training.augment import BGC, COLOUR, GEOMETRIC, augment
from r3gan_core.training.config import recipe_for
from r3gan_core.training.recipes import PRESETS, SMALL_PRESETS, Recipe, make_recipe
from r3gan_core.training.stream import BatchStream


def images(n: int = 16, channels: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    """Random images in [-1, 1]: no symmetry, no grey pixels, so every transform that fires changes them."""
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] True where image i differs anywhere."""
    return (a != b).flatten(1).any(1)


# ---------------------------------------------------------------------------------------------------------
# p = 0 changes nothing, not even the random stream
# ---------------------------------------------------------------------------------------------------------
def test_p_zero_is_the_identity_and_draws_nothing():
    x, gen = images(), torch.Generator().manual_seed(1)
    before, global_before = gen.get_state(), torch.get_rng_state()
    assert augment(x, 0.0, gen) is x and augment(x, 0.0) is x
    assert torch.equal(gen.get_state(), before) and torch.equal(torch.get_rng_state(), global_before)
    stream = BatchStream(0, 0, 1)
    state = stream.state()
    assert steps_mod.augmenter(0.0, stream) is None  # the D and G steps then call D exactly as before
    assert torch.equal(stream.state(), state)
    assert not torch.equal(augment(x, 0.5, gen), x) and not torch.equal(gen.get_state(), before)


def test_training_with_p_zero_is_bit_identical_to_no_augmentation():
    base = dict(config="E", preset="stacked8", network={"widths": [16, 16]}, batch=8, total_images=16,
                out_dir=None, threads=1, progress=False, device="cpu", max_items=500, log_every=8)
    default, zero = train(TrainConfig(**base)), train(TrainConfig(**base, aug_p=0.0))
    assert default.recipe.aug_p(10**9) == 0.0  # the small presets do not augment
    for a, b in ((default.G, zero.G), (default.D, zero.D)):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


# ---------------------------------------------------------------------------------------------------------
# Differentiable: G learns through the augmentation; R1/R2 differentiate through it
# ---------------------------------------------------------------------------------------------------------
def test_gradients_reach_the_generator_through_the_augmentation():
    generator = nn.Linear(4, 3 * 8 * 8)
    fake = torch.tanh(generator(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)))).reshape(6, 3, 8, 8)
    out = augment(fake, 1.0, torch.Generator().manual_seed(0))
    assert changed(out, fake).all()  # at p = 1 every image went through the pipeline
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    grad = generator.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_penalties_differentiate_with_respect_to_the_unaugmented_images():
    # D(x) = <w, x> and augment(x) = 2 x: ||d D(augment(x)) / dx||^2 = 4 ||w||^2 (ADA, R3GAN's official code),
    # where a penalty on the augmented images themselves would give ||w||^2.
    d = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1, bias=False))
    real, fake = images(4, size=4, seed=1), images(4, size=4, seed=2)
    w2 = d[1].weight.square().sum()
    for fused in (False, True):
        _, stats = discriminator_objective(d, real, fake, "rpgan", "r1+r2", 1.0, fused=fused,
                                           augment=lambda x: 2 * x)
        assert stats["r1"] == pytest.approx(4 * w2.item(), rel=1e-5)
        assert stats["r2"] == pytest.approx(4 * w2.item(), rel=1e-5)


def test_generator_objective_sees_augmented_fakes_and_reals():
    d = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1, bias=False))
    fake, real = images(4, size=4, seed=1), images(4, size=4, seed=2)
    g_loss, _ = generator_objective(d, fake, real, "rpgan", augment=lambda x: 2 * x)
    expected = torch.nn.functional.softplus(-2 * (d(fake) - d(real)).reshape(-1))
    assert torch.allclose(g_loss, expected, atol=1e-6)


def test_one_pass_and_two_pass_penalties_agree_under_augmentation():
    d = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))
    real, fake = images(6, seed=3), images(6, seed=4)
    results = []
    for fused in (False, True):
        aug = functools.partial(augment, p=0.8, generator=torch.Generator().manual_seed(5))
        obj, stats = discriminator_objective(d, real, fake, "rpgan", "r1+r2", 0.5, fused=fused, augment=aug)
        results.append((obj.detach(), stats))
    (a, sa), (b, sb) = results
    assert torch.allclose(a, b, atol=1e-5) and sa["r1"] == pytest.approx(sb["r1"], rel=1e-4)
    assert sa["r2"] == pytest.approx(sb["r2"], rel=1e-4)


# ---------------------------------------------------------------------------------------------------------
# Each transform fires at ADA's per-image rate
# ---------------------------------------------------------------------------------------------------------
P, N = 0.3, 2000
# The fraction of images a transform changes at probability P (8x8 images). xflip and lumaflip flip a coin when
# they fire; rotate90 draws k in {0..3}; xint's shift round(U(-1, 1) * 0.125 * 8) is 0 on an axis half the time;
# 'rotate' has two chances at 1 - sqrt(1 - P), so at least one with probability P.
RATES = {"xflip": P / 2, "rotate90": 3 * P / 4, "xint": P * 0.75, "scale": P, "rotate": P, "aniso": P, "xfrac": P,
         "brightness": P, "contrast": P, "lumaflip": P / 2, "hue": P, "saturation": P}


@pytest.mark.parametrize("name", BGC)
def test_each_transform_changes_images_at_adas_rate(name):
    x = images(N, seed=6)
    out = augment(x, P, torch.Generator().manual_seed(7), transforms=(name,))
    rate = RATES[name]
    count = int(changed(out, x).sum())
    sd = math.sqrt(N * rate * (1 - rate))
    assert abs(count - N * rate) < 3 * sd, f"{name}: {count} of {N} changed, expected {N * rate:.0f} +- {3 * sd:.0f}"


def test_unchanged_images_pass_through_bit_for_bit():
    x = images(200, seed=8)
    out = augment(x, 0.05, torch.Generator().manual_seed(9))
    untouched = ~changed(out, x)
    assert 0 < untouched.sum() < 200 and torch.equal(out[untouched], x[untouched])


def test_ranks_augment_their_rows_of_the_global_batch():
    x = images(8, seed=10)
    whole = augment(x, 0.7, torch.Generator().manual_seed(11))
    halves = [augment(x[4 * r:4 * r + 4], 0.7, torch.Generator().manual_seed(11), shard=(r, 2)) for r in (0, 1)]
    assert torch.equal(torch.cat(halves), whole)


# ---------------------------------------------------------------------------------------------------------
# Shapes, dtypes, ranges; errors
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels,size,dtype", [(3, 8, torch.float32), (1, 16, torch.float32),
                                                 (3, 8, torch.bfloat16)])
def test_shape_dtype_and_geometric_range_are_preserved(channels, size, dtype):
    x = images(32, channels, size, seed=12).to(dtype)
    out = augment(x, 1.0, torch.Generator().manual_seed(13))
    assert out.shape == x.shape and out.dtype == dtype and torch.isfinite(out.float()).all()
    # Bilinear sampling with reflection mixes pixels of the same image: no value leaves the image's own range.
    # (Colour transforms are affine and, as in ADA, unclamped: brightness and contrast may leave [-1, 1].)
    geo = augment(x.float(), 1.0, torch.Generator().manual_seed(13), transforms=GEOMETRIC)
    lo, hi = x.float().flatten(1).min(1).values, x.float().flatten(1).max(1).values
    assert (geo.flatten(1).min(1).values >= lo - 1e-5).all() and (geo.flatten(1).max(1).values <= hi + 1e-5).all()
    col = augment(x.float(), 1.0, torch.Generator().manual_seed(13), transforms=COLOUR)
    assert changed(col, x.float()).all()


def test_errors_name_the_problem(monkeypatch):
    x = images(2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment(x, 1.5)
    with pytest.raises(ValueError, match="valid choices"):
        augment(x, 0.5, transforms=("cutout",))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        augment(images(2, channels=2), 1.0, transforms=("brightness",))
    for name in ("kornia", "kornia.geometry", "kornia.geometry.transform"):
        monkeypatch.setitem(sys.modules, name, None)  # as if kornia were not installed
    assert augment(x, 0.0) is x  # p = 0 needs no kornia
    with pytest.raises(ImportError, match="pip install kornia"):
        augment(x, 0.5)
    with pytest.raises(ImportError, match=r"\[augment\]"):  # a run fails before its data loads
        train(TrainConfig(preset="stacked8", aug_p=0.5, total_images=8, batch=8, progress=False, device="cpu"))


# ---------------------------------------------------------------------------------------------------------
# The schedule: the official presets' ramps, overrides, the command line
# ---------------------------------------------------------------------------------------------------------
def test_cifar10_ramps_aug_p_on_the_cosine():
    r = recipe_for(TrainConfig(preset="cifar10"))
    T = PRESETS["cifar10"].schedule_images
    assert r.aug_p.total_images == T == 20_000_000
    assert r.aug_p(0) == 0.0 and r.aug_p(T) == pytest.approx(0.55) and r.aug_p(10 * T) == pytest.approx(0.55)
    assert r.aug_p(T / 2) == pytest.approx(0.55 / 2)  # the cosine's midpoint
    assert r.aug_p(T / 4) == pytest.approx(0.55 * (1 - math.cos(math.pi / 4)) / 2)


@pytest.mark.parametrize("preset,final", [("cifar10", 0.55), ("ffhq64", 0.3), ("ffhq256", 0.3),
                                          ("imagenet32", 0.5), ("imagenet64", 0.4)])
def test_official_presets_ramp_to_the_paper_value(preset, final):
    for config in "BCDE":
        r = make_recipe(config, preset)
        assert (r.aug_p.base, r.aug_p.final, r.aug_p.total_images) == (0.0, final, PRESETS[preset].schedule_images)
    assert make_recipe("A", preset).aug_p(10**9) == 0.0  # StyleGAN2-ADA's adaptive p is not implemented
    assert "not implemented" not in PRESETS[preset].notes


@pytest.mark.parametrize("preset", [*SMALL_PRESETS, "stackedmnist"])
def test_small_presets_do_not_augment(preset):
    assert all(make_recipe(c, preset).aug_p(t) == 0.0 for c in "ABCDE" for t in (0, 10**9))


def test_aug_p_overrides_validation_and_saved_recipes():
    r = recipe_for(TrainConfig(preset="cifar10", aug_p=0.2))
    assert r.aug_p.is_constant and r.aug_p(0) == 0.2
    r = recipe_for(TrainConfig(preset="stacked8", aug_p=(0.0, 0.4), schedule_images=1000))
    assert (r.aug_p.base, r.aug_p.final, r.aug_p.total_images) == (0.0, 0.4, 1000)
    with pytest.raises(ValueError, match="aug_p must be a probability"):
        recipe_for(TrainConfig(preset="stacked8", aug_p=1.5))
    saved = r.as_dict()
    assert Recipe.from_dict(saved) == r
    old = {k: v for k, v in saved.items() if k != "aug_p"}  # a recipe saved before aug_p existed
    assert Recipe.from_dict(old).aug_p(10**9) == 0.0


def test_command_line_takes_aug_p():
    args = build_parser().parse_args(["train", "--aug-p", "0,0.55"])
    assert args.aug_p == (0.0, 0.55)
    assert build_parser().parse_args(["train", "--aug-p", "0.3"]).aug_p == 0.3


# ---------------------------------------------------------------------------------------------------------
# The trainer with augmentation
# ---------------------------------------------------------------------------------------------------------
def test_tiny_training_run_with_augmentation(monkeypatch):
    cfg = dict(config="E", preset="stacked8", network={"widths": [16, 16]}, batch=8, total_images=16, out_dir=None,
               threads=1, progress=False, device="cpu", max_items=500, log_every=8)
    seen = []  # (which step, whether its objective was given an augmentation)
    for name in ("discriminator_objective", "generator_objective"):
        def spy(*args, _name=name, _real=getattr(steps_mod, name), **kwargs):
            seen.append((_name, kwargs.get("augment") is not None))
            return _real(*args, **kwargs)
        monkeypatch.setattr(steps_mod, name, spy)
    result = train(TrainConfig(**cfg, aug_p=0.5))
    assert result.status == "ok" and result.steps == 2
    assert seen == [("discriminator_objective", True), ("generator_objective", True)] * 2
    monkeypatch.undo()
    assert [rec["aug_p"] for rec in result.records] == [0.5, 0.5]
    plain = train(TrainConfig(**cfg))
    assert [rec["aug_p"] for rec in plain.records] == [0.0, 0.0]
    differs = [not torch.equal(p, q) for p, q in zip(result.D.state_dict().values(), plain.D.state_dict().values())]
    assert any(differs)  # D saw augmented images

