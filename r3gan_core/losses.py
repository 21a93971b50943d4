"""GAN and RpGAN losses with the zero-centred gradient penalties R1 and R2 (paper Sec. 2, Eqs. 1-4).

Two sign conventions describe the same objective:

* Paper: L(theta, psi) = E[f(D(G(z)) - D(x))] with the concave f(t) = -log(1 + exp(-t)) = -softplus(-t);
  D *maximises* L, G minimises it. There D scores fakes higher at the optimum of that sign choice.
* Code (this module, the official code): D scores reals higher and *minimises*
  softplus(-(D(x) - D(G(z)))) + (gamma / 2) * (R1 + R2); G minimises softplus(-(D(G(z)) - D(x))).

Substitute D -> -D in the paper's form: f(D(x) - D(G(z))) = -softplus(-(D(x) - D(G(z)))), so maximising the
paper's L over D is minimising our D loss; the generator's form is the usual non-saturating swap of arguments.
Every function returns a per-sample tensor of shape [N]; average it yourself.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .choices import require_choice, require_positive

LOSSES = ("gan", "rpgan")
PENALTIES = ("none", "r1", "r2", "r1+r2")
Augment = Callable[[Tensor], Tensor]  # a differentiable map of an image batch (training.augment with its p bound)


# Classic GAN (Goodfellow et al. 2014), non-saturating G: the baseline of Table 1.
def gan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """softplus(-D(x)) + softplus(D(G(z))) per sample."""
    return F.softplus(-real_logits) + F.softplus(fake_logits)


def gan_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss softplus(-D(G(z))) per sample."""
    return F.softplus(-fake_logits)


# Relativistic pairing GAN (Jolicoeur-Martineau 2018), paper Eq. 2: real i is paired with fake i.
def rpgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """softplus(-(D(x) - D(G(z)))) per pair."""
    return F.softplus(-(real_logits - fake_logits))


def rpgan_generator_loss(fake_logits: Tensor, real_logits: Tensor) -> Tensor:
    """softplus(-(D(G(z)) - D(x))) per pair; `real_logits` come from a fresh real batch."""
    return F.softplus(-(fake_logits - real_logits))


def discriminator_loss(loss: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Dispatch on `loss` in LOSSES."""
    require_choice("loss", loss, LOSSES)
    if loss == "gan":
        return gan_discriminator_loss(real_logits, fake_logits)
    return rpgan_discriminator_loss(real_logits, fake_logits)


def generator_loss(loss: str, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Dispatch on `loss` in LOSSES; RpGAN needs `real_logits`."""
    require_choice("loss", loss, LOSSES)
    if loss == "gan":
        return gan_generator_loss(fake_logits)
    if real_logits is None:
        raise ValueError("the rpgan generator loss needs real_logits (a real batch paired with the fakes)")
    return rpgan_generator_loss(fake_logits, real_logits)


# R1 (Mescheder et al. 2018) on reals and R2 on fakes, paper Eq. 3-4: ||grad_x D(x)||^2 per sample.
def zero_centered_penalty(samples: Tensor, logits: Tensor, create_graph: bool = True) -> Tensor:
    """Per-sample squared norm of dD/dx, summed over every non-batch dimension.

    `samples` must have requires_grad=True and `logits` must be D(samples). With create_graph=True the
    result can be backpropagated into D's parameters (a double backward), which is what training needs.
    """
    if not samples.requires_grad:
        raise ValueError("zero_centered_penalty needs samples with requires_grad=True")
    # retain_graph=True: the caller still backpropagates its adversarial loss through `logits` afterwards,
    # and create_graph=False alone would free that graph (a "backward through the graph a second time" error).
    (grad,) = torch.autograd.grad(logits.sum(), samples, create_graph=create_graph, retain_graph=True)
    return grad.square().flatten(1).sum(1)


def penalty_weights(penalty: str, gamma: float) -> tuple[float, float]:
    """(weight on R1, weight on R2): gamma/2 on each penalty that is switched on (the code convention)."""
    require_choice("penalty", penalty, PENALTIES)
    require_positive("gamma", gamma, allow_zero=True)
    half = gamma / 2
    return (half if "r1" in penalty else 0.0, half if "r2" in penalty else 0.0)


def mixes_samples(discriminator) -> bool:
    """True when D has an operation across the batch (config A's minibatch stddev): D(concat(x, y)) != concat(D(x),
    D(y)), so real and fake batches must go through D separately. Such modules declare `mixes_samples = True`."""
    modules = discriminator.modules() if isinstance(discriminator, torch.nn.Module) else [discriminator]
    return any(getattr(m, "mixes_samples", False) for m in modules)


def _input_gradients(discriminator, real: Tensor, fake: Tensor, need_real: bool, need_fake: bool, fused: bool,
                     create_graph: tuple[bool, bool], kwargs: dict, augment: Augment | None = None,
                     ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """(real logits, fake logits, ||dD/dx||^2 on reals or None, the same on fakes or None), per sample.

    fused: one forward of D on the concatenated batch and one autograd.grad give both penalties (only valid when
    D does not mix samples); otherwise one forward per batch and one autograd.grad per needed penalty.
    create_graph: (for R1, for R2) whether the gradient must be differentiable (the penalty is in the loss).
    augment: applied to the reals, then to the fakes (the same order on both paths), after they become the
    gradients' leaves: D sees augmented images and the gradient is taken through the augmentation.
    """
    n = real.shape[0]
    if fused:
        both = torch.cat([real, fake]).detach().requires_grad_(need_real or need_fake)
        both_kwargs = {k: torch.cat([v, v]) for k, v in kwargs.items()}
        seen = both if augment is None else torch.cat([augment(both[:n]), augment(both[n:])])
        logits = discriminator(seen, **both_kwargs).reshape(-1)
        squared = zero_centered_penalty(both, logits, any(create_graph)) if both.requires_grad else None
        r1 = squared[:n] if squared is not None and need_real else None
        r2 = squared[n:] if squared is not None and need_fake else None
        return logits[:n], logits[n:], r1, r2
    real = real.detach().requires_grad_(need_real)
    fake = fake.detach().requires_grad_(need_fake)
    view = augment if augment is not None else (lambda x: x)
    real_logits = discriminator(view(real), **kwargs).reshape(-1)
    fake_logits = discriminator(view(fake), **kwargs).reshape(-1)
    r1 = zero_centered_penalty(real, real_logits, create_graph[0]) if need_real else None
    r2 = zero_centered_penalty(fake, fake_logits, create_graph[1]) if need_fake else None
    return real_logits, fake_logits, r1, r2


def discriminator_objective(
    discriminator, real: Tensor, fake: Tensor, loss: str, penalty: str, gamma: float, labels: Tensor | None = None,
    measure_gradients: bool = True, fused: bool | None = None, as_tensors: bool = False,
    augment: Augment | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """D's full objective, per sample: adversarial loss + (gamma/2)(R1 + R2 as switched on) (paper Eq. 3-4).

    `fake` is detached here: penalties and this loss regularise and train D only. Returns the per-sample
    objective and detached statistics (logits, and where computed the penalties and D's gradient norms on reals
    and fakes: the paper's Sec. 3.1 diagnosis is that with R1 only, D's gradient on fakes explodes).

    Input gradients are computed only when something needs them: a switched-on penalty (its own gradient is
    then reused for the statistic) or measure_gradients=True (the diagnostic on both batches). Statistics of
    gradients that were not computed are absent from the dict. fused=None picks the one-pass path (one forward of
    D on [real; fake], one autograd.grad) when both gradients are needed and D does not mix samples; fused=False
    is the reference two-pass path (tests assert they agree). as_tensors=True returns the statistics as detached
    0-d tensors on D's device, so that reading them does not wait for the device (the trainer on CUDA).

    augment: a differentiable map of a batch (training.augment at the run's probability) applied to what D sees,
    inside the penalties: R1 and R2 are ||d D(augment(x)) / dx||^2 with respect to the un-augmented x, as ADA's
    and R3GAN's official code take them. None = D sees the images as they are.
    """
    w_r1, w_r2 = penalty_weights(penalty, gamma)
    need_real, need_fake = w_r1 > 0 or measure_gradients, w_r2 > 0 or measure_gradients
    if fused is None:
        fused = need_real and need_fake and not mixes_samples(discriminator)
    elif fused and mixes_samples(discriminator):
        raise ValueError("fused=True needs a discriminator that does not mix samples (minibatch stddev does)")
    kwargs = {} if labels is None else {"c": labels}
    real_logits, fake_logits, r1, r2 = _input_gradients(discriminator, real, fake, need_real, need_fake, fused,
                                                        (w_r1 > 0, w_r2 > 0), kwargs, augment)
    adversarial = discriminator_loss(loss, real_logits, fake_logits)
    total = adversarial
    if w_r1 > 0:
        total = total + w_r1 * r1
    if w_r2 > 0:
        total = total + w_r2 * r2
    stats = {"d_loss": adversarial.mean(), "real_logits": real_logits.mean(), "fake_logits": fake_logits.mean()}
    if r1 is not None:
        stats.update(r1=r1.mean(), grad_norm_real=r1.detach().sqrt().mean())
    if r2 is not None:
        stats.update(r2=r2.mean(), grad_norm_fake=r2.detach().sqrt().mean())
    return total, detached_stats(stats, as_tensors)


def detached_stats(stats: dict[str, Tensor], as_tensors: bool) -> dict[str, Any]:
    """Statistics detached from the graph: 0-d tensors (as_tensors) or Python floats (one device sync each)."""
    return {k: (v.detach().float() if as_tensors else v.item()) for k, v in stats.items()}


def generator_objective(
    discriminator, fake: Tensor, real: Tensor | None, loss: str, labels: Tensor | None = None,
    as_tensors: bool = False, augment: Augment | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """G's per-sample objective (non-saturating); `real` (a fresh real batch) is needed for RpGAN only.
    as_tensors: statistics as detached 0-d tensors (see discriminator_objective). augment: applied to the fakes,
    then to the reals, before D (G's gradient passes through it); None = none."""
    kwargs = {} if labels is None else {"c": labels}
    view = augment if augment is not None else (lambda x: x)
    fake_logits = discriminator(view(fake), **kwargs).reshape(-1)
    real_logits = None
    if loss == "rpgan":
        if real is None:
            raise ValueError("the rpgan generator objective needs a real batch")
        real_logits = discriminator(view(real.detach()), **kwargs).reshape(-1)
    g = generator_loss(loss, fake_logits, real_logits)
    return g, detached_stats({"g_loss": g.mean()}, as_tensors)


# The divergence rule of every chapter (2D toys and image runs): "fail" in the paper's tables, applied per run.
HEALTH_KEYS = ("d_loss", "g_loss", "grad_norm_real", "grad_norm_fake", "real_logits", "fake_logits")


def divergence_reason(stats: dict[str, float], blowup: float) -> str:
    """'' while a step or log record looks healthy, else why not: a non-finite statistic, or a loss, a gradient
    norm or the gap between the mean real and fake logits above `blowup` in magnitude. Statistics that were not
    measured (absent keys) are skipped.

    The logits themselves are not bounded: the RpGAN loss ignores a constant added to D, so they may drift.
    """
    present = {k: float(stats[k]) for k in HEALTH_KEYS if stats.get(k) is not None}
    for key, value in present.items():
        if not math.isfinite(value):
            return f"{key} is {value}"
    bounded = {k: present[k] for k in ("d_loss", "g_loss", "grad_norm_real", "grad_norm_fake") if k in present}
    if "real_logits" in present and "fake_logits" in present:
        bounded["logit gap"] = present["real_logits"] - present["fake_logits"]
    for key, value in bounded.items():
        if abs(value) > blowup:
            return f"|{key}| = {abs(value):.3g} exceeds {blowup:g}"
    return ""
