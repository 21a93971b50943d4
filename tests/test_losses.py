"""r3gan_core.losses: known answers for the losses, analytic penalties, and who gets gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from r3gan_core import losses


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


@pytest.fixture(autouse=True)
def _float64():
    """Analytic comparisons at float64 precision; the default dtype is restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# ----- losses at hand-computed logits -----

def test_gan_discriminator_loss_known_values():
    real, fake = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0.0, -3.0, 0.5])
    expected = [2 * math.log(2), softplus(-2) + softplus(-3), softplus(1) + softplus(0.5)]
    torch.testing.assert_close(losses.gan_discriminator_loss(real, fake), torch.tensor(expected))
    torch.testing.assert_close(losses.discriminator_loss("gan", real, fake), torch.tensor(expected))


def test_rpgan_discriminator_loss_known_values():
    real, fake = torch.tensor([1.0, 0.0, -2.0]), torch.tensor([0.0, 0.0, 1.0])
    # softplus(-(D(x) - D(G(z)))): margins 1, 0, -3
    expected = [math.log(1 + math.exp(-1)), math.log(2), math.log(1 + math.exp(3))]
    torch.testing.assert_close(losses.rpgan_discriminator_loss(real, fake), torch.tensor(expected))
    assert losses.rpgan_discriminator_loss(torch.tensor([1.0]), torch.tensor([0.0])).item() == pytest.approx(
        0.31326168751822286, abs=1e-12)


def test_generator_losses_known_values():
    fake, real = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(losses.gan_generator_loss(fake), torch.tensor([softplus(-2), math.log(2)]))
    torch.testing.assert_close(losses.generator_loss("gan", fake), torch.tensor([softplus(-2), math.log(2)]))
    # softplus(-(D(G(z)) - D(x))): margins 2, -1
    torch.testing.assert_close(losses.generator_loss("rpgan", fake, real), torch.tensor([softplus(-2), softplus(1)]))
    assert losses.rpgan_generator_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(
        1.3132616875182228, abs=1e-12)


def test_rpgan_depends_only_on_the_margin():
    real, fake = torch.randn(16), torch.randn(16)
    shift = 3.7
    torch.testing.assert_close(losses.rpgan_discriminator_loss(real + shift, fake + shift),
                               losses.rpgan_discriminator_loss(real, fake))


def test_paper_and_code_conventions_agree():
    """D minimising softplus(-(D(x) - D(G(z)))) = D maximising the paper's f(D(x) - D(G(z))), f(t) = -softplus(-t)."""
    real, fake = torch.randn(8), torch.randn(8)
    paper_f = lambda t: -torch.nn.functional.softplus(-t)  # noqa: E731
    torch.testing.assert_close(losses.rpgan_discriminator_loss(real, fake), -paper_f(real - fake))


# ----- penalties against analytic values -----

def test_penalty_linear_discriminator_is_squared_weight_norm():
    w = torch.randn(3 * 4 * 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = x.flatten(1) @ w + 0.3  # D(x) = w . x + b, so grad_x D = w for every sample
    r = losses.zero_centered_penalty(x, logits)
    torch.testing.assert_close(r, w.square().sum().expand(5))


def test_penalty_quadratic_discriminator():
    a = torch.randn(2, 3, 3)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    logits = (a * x.square()).flatten(1).sum(1)  # D(x) = sum a x^2, grad = 2 a x
    r = losses.zero_centered_penalty(x, logits)
    torch.testing.assert_close(r, (2 * a * x.detach()).square().flatten(1).sum(1))


def test_penalty_needs_requires_grad():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        losses.zero_centered_penalty(x, x.sum(1))


# ----- penalty weights and validation -----

@pytest.mark.parametrize("penalty, expected", [("none", (0.0, 0.0)), ("r1", (0.5, 0.0)), ("r2", (0.0, 0.5)),
                                               ("r1+r2", (0.5, 0.5))])
def test_penalty_weights(penalty, expected):
    assert losses.penalty_weights(penalty, 1.0) == expected
    assert losses.penalty_weights(penalty, 0.0) == (0.0, 0.0)
    assert losses.penalty_weights(penalty, 10.0) == tuple(10 * e for e in expected)


def test_bad_names_raise_with_choices():
    t = torch.zeros(2)
    with pytest.raises(ValueError, match="'gan', 'rpgan'"):
        losses.discriminator_loss("wgan", t, t)
    with pytest.raises(ValueError, match="'gan', 'rpgan'"):
        losses.generator_loss("hinge", t, t)
    with pytest.raises(ValueError, match="'none', 'r1', 'r2', 'r1\\+r2'"):
        losses.penalty_weights("r3", 1.0)


def test_negative_gamma_raises():
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        losses.penalty_weights("r1", -0.1)


def test_rpgan_generator_needs_reals():
    with pytest.raises(ValueError, match="real"):
        losses.generator_loss("rpgan", torch.zeros(2))
    d = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="real"):
        losses.generator_objective(d, torch.zeros(2, 3), None, "rpgan")


# ----- the objectives: who receives gradients -----

def _tiny_gan(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6))
    d = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))  # non-linear: penalties depend on D's weights
    return g, d


@pytest.mark.parametrize("loss", losses.LOSSES)
@pytest.mark.parametrize("penalty", losses.PENALTIES)
def test_discriminator_objective_trains_d_only(loss, penalty):
    g, d = _tiny_gan()
    real, z = torch.randn(5, 6), torch.randn(5, 4)
    total, stats = losses.discriminator_objective(d, real, g(z), loss, penalty, gamma=2.0)
    assert total.shape == (5,)
    total.mean().backward()
    assert all(p.grad is None for p in g.parameters()), "fakes are detached: G must get no gradient"
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    assert set(stats) >= {"d_loss", "r1", "r2", "grad_norm_real", "grad_norm_fake"}


@pytest.mark.parametrize("penalty", ["r1", "r2", "r1+r2"])
def test_penalty_terms_give_d_the_analytic_gradient(penalty):
    """Linear D: the penalty part of the objective is (gamma/2)(n_on) ||w||^2, so it adds gamma * n_on * w."""
    torch.manual_seed(1)
    d = nn.Linear(6, 1)
    real, fake = torch.randn(4, 6), torch.randn(4, 6)
    gamma = 3.0

    def grad_w(pen: str) -> torch.Tensor:
        d.zero_grad()
        total, _ = losses.discriminator_objective(d, real, fake, "rpgan", pen, gamma)
        total.mean().backward()
        return d.weight.grad.clone()

    n_on = penalty.count("r")
    torch.testing.assert_close(grad_w(penalty) - grad_w("none"), gamma * n_on * d.weight.detach())


def test_discriminator_objective_penalty_values_and_stats():
    torch.manual_seed(2)
    d = nn.Linear(6, 1)
    real, fake = torch.randn(4, 6), torch.randn(4, 6)
    total, stats = losses.discriminator_objective(d, real, fake, "gan", "r1+r2", 2.0)
    w2 = d.weight.detach().square().sum().item()
    assert stats["r1"] == pytest.approx(w2) and stats["r2"] == pytest.approx(w2)
    assert stats["grad_norm_real"] == pytest.approx(math.sqrt(w2))
    adversarial = losses.gan_discriminator_loss(d(real).reshape(-1), d(fake).reshape(-1)).detach()
    torch.testing.assert_close(total.detach(), adversarial + 2.0 * w2)  # (2/2) R1 + (2/2) R2


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_generator_objective_reaches_g(loss):
    g, d = _tiny_gan()
    fake = g(torch.randn(5, 4))
    total, stats = losses.generator_objective(d, fake, torch.randn(5, 6), loss)
    assert total.shape == (5,) and "g_loss" in stats
    total.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_objective_without_penalty_can_skip_input_gradients():
    """measure_gradients=False with penalty 'none' computes no input gradient: same loss, NaN statistics."""
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    measured, stats = losses.discriminator_objective(D, real, fake, "rpgan", "none", 1.0)
    skipped, bare = losses.discriminator_objective(D, real, fake, "rpgan", "none", 1.0, measure_gradients=False)
    assert torch.equal(measured, skipped)
    assert math.isfinite(stats["grad_norm_real"]) and "grad_norm_real" not in bare  # not computed: not reported
    # a switched-on penalty is always computed
    _, with_r1 = losses.discriminator_objective(D, real, fake, "rpgan", "r1", 1.0, measure_gradients=False)
    assert math.isfinite(with_r1["r1"]) and "r2" not in with_r1


# ----- the fused one-pass R1 + R2 equals the reference two-pass path -----

def _objective_and_grads(d, real, fake, loss, penalty, labels, fused):
    d.zero_grad(set_to_none=True)
    total, stats = losses.discriminator_objective(d, real, fake, loss, penalty, gamma=3.0, labels=labels,
                                                  measure_gradients=True, fused=fused)
    total.mean().backward()
    return total.detach(), stats, [p.grad.clone() for p in d.parameters()]


@pytest.mark.parametrize("config", ["B", "E"])
@pytest.mark.parametrize("loss", losses.LOSSES)
@pytest.mark.parametrize("penalty", ["r1", "r1+r2"])
@pytest.mark.parametrize("conditional", [False, True])
def test_fused_penalties_equal_the_two_pass_reference(config, loss, penalty, conditional):
    """One forward of D on [real; fake] and one autograd.grad give the same losses, penalties and D gradients."""
    from r3gan_core.networks import build

    torch.manual_seed(0)
    _, d = build(config, "digits8", conditional=conditional)
    d = d.double()
    for p in d.parameters():  # zero-initialised last convs would make every branch the identity: perturb them
        p.data.add_(0.05 * torch.randn_like(p))
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    labels = torch.randint(10, (6,)) if conditional else None
    assert not losses.mixes_samples(d)
    ref = _objective_and_grads(d, real, fake, loss, penalty, labels, fused=False)
    one = _objective_and_grads(d, real, fake, loss, penalty, labels, fused=True)
    torch.testing.assert_close(one[0], ref[0], rtol=1e-5, atol=1e-5)
    for key in ("d_loss", "r1", "r2", "grad_norm_real", "grad_norm_fake", "real_logits", "fake_logits"):
        assert one[1][key] == pytest.approx(ref[1][key], rel=1e-5, abs=1e-8), key
    for g_one, g_ref in zip(one[2], ref[2]):
        torch.testing.assert_close(g_one, g_ref, rtol=1e-5, atol=1e-8)


def test_minibatch_stddev_keeps_the_two_pass_path():
    from r3gan_core.networks import build

    _, d = build("A", "digits8")
    assert losses.mixes_samples(d)
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    with pytest.raises(ValueError, match="mix samples"):
        losses.discriminator_objective(d, real, fake, "rpgan", "r1+r2", 1.0, fused=True)
    _, stats = losses.discriminator_objective(d, real, fake, "rpgan", "r1+r2", 1.0)  # auto: two passes, no error
    assert stats["r1"] > 0 and stats["r2"] > 0


def test_unneeded_input_gradients_are_not_computed():
    """No penalty and no measurement: no input gradient, so no gradient statistic is reported."""
    _, d = _tiny_gan()
    _, stats = losses.discriminator_objective(d, torch.randn(5, 6), torch.randn(5, 6), "rpgan", "r1", 1.0,
                                              measure_gradients=False)
    assert "r1" in stats and "grad_norm_real" in stats
    assert "r2" not in stats and "grad_norm_fake" not in stats
    _, stats = losses.discriminator_objective(d, torch.randn(5, 6), torch.randn(5, 6), "rpgan", "none", 0.0,
                                              measure_gradients=False)
    assert not {"r1", "r2", "grad_norm_real", "grad_norm_fake"} & set(stats)
