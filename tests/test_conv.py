"""networks.conv.conv2d (a backward written in differentiable first-order ops) equals F.conv2d with PyTorch's own
first and second derivatives: the layer alone (strides, paddings, groups, sizes the stride does not divide) and
every discriminator's R1 + R2 objective, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from r3gan_core import losses
from r3gan_core.networks import build, conv

CASES = [  # (c_in, c_out, k, stride, padding, groups, size)
    (4, 6, 1, 1, 0, 1, 8),
    (4, 6, 3, 1, 1, 1, 8),
    (8, 8, 3, 1, 1, 4, 7),  # grouped (config E's 3x3)
    (6, 6, 4, 2, 1, 6, 8),  # depthwise FIR-style downsample (Downsample2x)
    (6, 6, 4, 2, 1, 6, 9),  # ... on an odd size: the stride drops a column (output padding 1)
    (4, 5, 3, 2, 0, 1, 9),  # strided, unpadded (config A's blurred stride-2 conv)
    (6, 6, 4, 1, 2, 6, 8),  # depthwise stride-1 blur with wide padding
    (8, 8, 4, 1, 0, 8, 4),  # config D/E's DiscriminativeBasis: 4x4 -> 1x1 per channel
]


def _penalised(fn, x, w, b, stride, padding, groups):
    """y's loss plus the squared norm of d(sum y)/dx (an R1 on one layer): grads need the second derivative."""
    y = fn(x, w, b, stride, padding, groups)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    total = y.sum() + gx.square().sum()
    return [y] + list(torch.autograd.grad(total, (x, w, b)))


@pytest.mark.parametrize("c_in, c_out, k, stride, padding, groups, size", CASES)
def test_layer_values_and_first_and_second_derivatives(c_in, c_out, k, stride, padding, groups, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, c_in, size, size, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in // groups, k, k, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, generator=g, dtype=torch.float64, requires_grad=True)

    def plain(x, w, b, s, p, gr):
        return F.conv2d(x, w, b, s, p, 1, gr)

    ours = _penalised(conv.conv2d, x, w, b, stride, padding, groups)
    ref = _penalised(plain, x, w, b, stride, padding, groups)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)


def test_constant_weight_gets_no_gradient_and_reference_switch_restores_f_conv2d():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    fir = torch.ones(3, 1, 4, 4) / 16  # a constant, like Downsample2x's filter
    y = conv.conv2d(x, fir, stride=2, padding=1, groups=3)
    assert y.grad_fn is not None and "_Conv2d" in type(y.grad_fn).__name__
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    gx.square().sum().backward()
    assert fir.grad is None and x.grad is not None
    with conv.reference():
        assert "Convolution" in type(conv.conv2d(x, fir, stride=2, padding=1, groups=3).grad_fn).__name__
    with torch.no_grad():  # sampling: plain F.conv2d, bit for bit
        assert torch.equal(conv.conv2d(x, fir, stride=2, padding=1, groups=3),
                           F.conv2d(x, fir, None, 2, 1, 1, 3))


def _d_objective(d, real, fake, labels, fused):
    d.zero_grad(set_to_none=True)
    total, stats = losses.discriminator_objective(d, real, fake, "rpgan", "r1+r2", gamma=3.0, labels=labels,
                                                  measure_gradients=True, fused=fused)
    total.mean().backward()
    return total.detach(), stats, [p.grad.clone() for p in d.parameters()]


@pytest.mark.parametrize("config", ["A", "B", "C", "D", "E"])
@pytest.mark.parametrize("conditional", [False, True])
def test_every_discriminator_objective_equals_the_reference(config, conditional):
    """Losses, R1, R2, gradient norms and every parameter gradient of D's R1 + R2 objective (the trainer's D step)
    with conv.conv2d equal those with PyTorch's own double backward."""
    torch.manual_seed(0)
    _, d = build(config, "digits8", conditional=conditional)
    d = d.double()
    for p in d.parameters():  # zero-initialised last convs would make every branch the identity: perturb them
        p.data.add_(0.05 * torch.randn_like(p))
    real, fake = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randn(6, 1, 8, 8, dtype=torch.float64)
    labels = torch.randint(10, (6,)) if conditional else None
    fused = None if losses.mixes_samples(d) else True
    ours = _d_objective(d, real, fake, labels, fused)
    with conv.reference():
        ref = _d_objective(d, real, fake, labels, fused)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-10, atol=1e-12)
    for key in ("d_loss", "r1", "r2", "grad_norm_real", "grad_norm_fake"):
        assert ours[1][key] == pytest.approx(ref[1][key], rel=1e-10, abs=1e-12), key
    for a, r in zip(ours[2], ref[2], strict=True):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-12)


def test_under_bf16_autocast_gradients_keep_their_dtype_and_agree_loosely():
    """The trainer's CUDA precision (bf16 autocast), here on the CPU: parameter gradients stay float32 and agree
    with the reference's to bf16 accuracy."""
    torch.manual_seed(0)
    _, d = build("E", "digits8")
    for p in d.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    real, fake = torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8)

    def grads():
        d.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            total, _ = losses.discriminator_objective(d, real, fake, "rpgan", "r1+r2", 1.0, fused=True)
        total.float().mean().backward()
        return [p.grad.clone() for p in d.parameters()]

    ours = grads()
    with conv.reference():
        ref = grads()
    assert all(a.dtype == torch.float32 for a in ours)
    num = sum((a - r).square().sum() for a, r in zip(ours, ref)).sqrt()
    den = sum(r.square().sum() for r in ref).sqrt()
    assert num / den < 0.05, float(num / den)
