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

    with conv.using("first-order"):
        ours = _penalised(conv.conv2d, x, w, b, stride, padding, groups)
    ref = _penalised(plain, x, w, b, stride, padding, groups)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)


def test_modes_pick_the_backward_and_constant_weights_get_no_gradient():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    fir = torch.ones(3, 1, 4, 4) / 16  # a constant, like Downsample2x's filter

    def node(mode):
        with conv.using(mode):
            return type(conv.conv2d(x, fir, stride=2, padding=1, groups=3).grad_fn).__name__

    assert "_Conv2d" in node("first-order")
    assert "Convolution" in node("reference")
    assert "Convolution" in node("auto")  # x is on the CPU: PyTorch's own backward, by measurement
    with conv.using("first-order"):
        y = conv.conv2d(x, fir, stride=2, padding=1, groups=3)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        gx.square().sum().backward()
        assert fir.grad is None and x.grad is not None
        with torch.no_grad():  # sampling: plain F.conv2d, bit for bit, in every mode
            assert torch.equal(conv.conv2d(x, fir, stride=2, padding=1, groups=3),
                               F.conv2d(x, fir, None, 2, 1, 1, 3))
    with pytest.raises(ValueError, match="first-order"):
        with conv.using("fast"):
            pass


def _d_objective(d, real, fake, labels, fused):
    d.zero_grad(set_to_none=True)
    total, stats = losses.discriminator_objective(d, real, fake, "rpgan", "r1+r2", gamma=3.0, labels=labels,
                                                  measure_gradients=True, fused=fused)
    total.mean().backward()
    return total.detach(), stats, [p.grad.clone() for p in d.parameters()]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # ci/gpu_session.sh runs the cuda cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("config", ["A", "B", "C", "D", "E"])
@pytest.mark.parametrize("conditional", [False, True])
def test_every_discriminator_objective_equals_the_reference(config, conditional, device):
    """Losses, R1, R2, gradient norms and every parameter gradient of D's R1 + R2 objective (the trainer's D step)
    with conv.conv2d equal those with PyTorch's own double backward."""
    torch.manual_seed(0)
    _, d = build(config, "digits8", conditional=conditional)
    d = d.double()
    for p in d.parameters():  # zero-initialised last convs would make every branch the identity: perturb them
        p.data.add_(0.05 * torch.randn_like(p))
    real, fake = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randn(6, 1, 8, 8, dtype=torch.float64)
    labels = torch.randint(10, (6,)) if conditional else None
    d, real, fake = d.to(device), real.to(device), fake.to(device)
    labels = labels.to(device) if labels is not None else None
    fused = None if losses.mixes_samples(d) else True
    with conv.using("first-order"):
        ours = _d_objective(d, real, fake, labels, fused)
    with conv.using("reference"):
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

    with conv.using("first-order"):
        ours = grads()
    with conv.using("reference"):
        ref = grads()
    assert all(a.dtype == torch.float32 for a in ours)
    num = sum((a - r).square().sum() for a, r in zip(ours, ref)).sqrt()
    den = sum(r.square().sum() for r in ref).sqrt()
    assert num / den < 0.05, float(num / den)


def test_config_a_path_length_gradients_equal_the_reference():
    """Config A's path-length penalty differentiates G's modulated convolutions twice (training.stylegan2_extras):
    the penalty and every G gradient equal those with PyTorch's own double backward, in float64."""
    from r3gan_core.training import distributed as dist_utils
    from r3gan_core.training.stream import BatchStream
    from r3gan_core.training.stylegan2_extras import path_length_penalty

    torch.manual_seed(0)
    g, _ = build("A", "digits8")
    g = g.double()
    z = torch.randn(4, g.z_dim, dtype=torch.float64)
    env = dist_utils.setup("cpu")

    def penalty_and_grads():
        g.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # G's noise inputs draw from the global generator
        pen, _, length = path_length_penalty(g, z, None, torch.zeros((), dtype=torch.float64), 0.01,
                                             BatchStream(0, 0, 1), env)
        pen.mean().backward()
        return pen.detach(), length, [p.grad.clone() for p in g.parameters() if p.grad is not None]

    with conv.using("first-order"):
        ours = penalty_and_grads()
    with conv.using("reference"):
        ref = penalty_and_grads()
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-10, atol=1e-12)
    assert len(ours[2]) == len(ref[2]) > 0
    for a, r in zip(ours[2], ref[2]):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_takes_the_first_order_backward_on_cuda():
    x = torch.randn(2, 3, 8, 8, device="cuda", requires_grad=True)
    w = torch.randn(3, 1, 3, 3, device="cuda")
    assert "_Conv2d" in type(conv.conv2d(x, w, padding=1, groups=3).grad_fn).__name__
