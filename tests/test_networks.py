"""Networks of roadmap configs A-E: shapes, gradients, initialisation, resampling, equalised lr, counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from r3gan_core.networks import (CONFIGS, PRESETS, activation_variance_through_depth, available_configs,
                                 available_presets, build, count_parameters, describe, layer_table, residual_blocks)
from r3gan_core.networks.anatomy import naive_init_
from r3gan_core.networks.layers import (EqualizedConv2d, EqualizedLinear, blur, downsample_2x, fir_kernel, fixup_gain,
                                        init_weight_, upsample_2x)
from r3gan_core.networks.stylegan2 import MinibatchStd, modulated_conv2d

SMALL = ("digits8", "stacked16")




def _labels(G, n: int) -> torch.Tensor | None:
    return torch.randint(0, G.num_classes, (n,)) if G.num_classes else None


# --------------------------------------------------------------------------------------------------------
# Shapes and gradients (R1 / R2 need a double backward through D)
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", available_configs())
@pytest.mark.parametrize("preset", SMALL)
def test_shapes_backward_and_double_backward(config, preset):
    torch.manual_seed(0)
    G, D = build(config, preset)
    p = PRESETS[preset]
    assert (G.resolution, G.channels, G.num_classes) == (p.resolution, p.channels, 0)
    z = torch.randn(6, G.z_dim)  # 6: not a multiple of the minibatch-stddev group (config A)
    x = G(z)
    assert x.shape == (6, p.channels, p.resolution, p.resolution)
    real = torch.randn_like(x).requires_grad_(True)
    logits = D(real)
    assert logits.shape == (6,)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    r1 = grad.square().sum()
    (r1 + F.softplus(-D(x)).mean()).backward()
    for name, net in (("G", G), ("D", D)):
        missing = [n for n, q in net.named_parameters() if q.grad is None]
        assert not missing, f"{config}/{name}: parameters without gradient: {missing[:5]}"
        assert all(torch.isfinite(q.grad).all() for q in net.parameters())


@pytest.mark.parametrize("config", available_configs())
def test_conditional_label_changes_output(config):
    torch.manual_seed(0)
    G, D = build(config, "digits8", conditional=True)
    assert G.num_classes == D.num_classes == 10
    z = torch.randn(4, G.z_dim)
    kw = {"noise_mode": "none"} if config == "A" else {}
    a, b = torch.zeros(4, dtype=torch.long), torch.full((4,), 7, dtype=torch.long)
    xa, xb = G(z, a, **kw), G(z, b, **kw)
    assert xa.shape == (4, 1, 8, 8)
    assert (xa - xb).abs().max() > 1e-4
    assert (D(xa, a) - D(xa, b)).abs().max() > 1e-6
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="conditional"):
        D(xa)


# --------------------------------------------------------------------------------------------------------
# Initialisation (R3GAN Sec. 3.4): zero last conv, fix-up gain, bounded variance through depth
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", ["D", "E"])
def test_every_residual_branch_is_zero_at_init(config):
    torch.manual_seed(0)
    G, D = build(config, "stacked16")
    for net in (G, D):
        blocks = residual_blocks(net)
        assert len(blocks) == 2 * 3  # two blocks per stage, stages 4, 8, 16
        for name, block in blocks:
            x = torch.randn(2, block.conv1.in_channels, 4, 4)
            assert torch.equal(block.branch(x), torch.zeros_like(x)), name
            assert torch.equal(block(x), x), name
            std = block.conv1.weight.std().item()
            expected = fixup_gain(len(blocks)) / math.sqrt(block.conv1.weight[0].numel())
            assert std == pytest.approx(expected, rel=0.25)


def test_fixup_gain_formula():
    # g = sqrt(2 / (1 + 0.2^2)) * L^(-1/4)
    assert fixup_gain(16) == pytest.approx(math.sqrt(2 / 1.04) / 2)
    w = init_weight_(torch.empty(256, 128, 3, 3), gain=2.0)
    assert w.std().item() == pytest.approx(2.0 / math.sqrt(128 * 9), rel=0.02)


@pytest.mark.parametrize("config", ["D", "E"])
def test_activation_variance_stays_bounded_with_fixup(config):
    torch.manual_seed(0)
    x = torch.randn(32, 1, 16, 16)

    def variances(init):
        _, D = build(config, "digits16", blocks_per_stage=4)
        init(D)
        rows = activation_variance_through_depth(D, x)
        return [r["variance"] for r in rows if r["block"].startswith("stages.0.")]  # the 16x16 stage

    def fixup_trained(D):  # fix-up gains, but the last conv no longer zero (as after some training)
        for _, block in residual_blocks(D):
            init_weight_(block.conv3.weight, fixup_gain(len(residual_blocks(D))))

    at_init = variances(lambda D: None)
    assert max(at_init) / min(at_init) == pytest.approx(1.0, abs=1e-5)  # every block is the identity
    fixup = variances(fixup_trained)
    naive = variances(naive_init_)
    assert fixup[-1] / fixup[0] < 1.5
    assert naive[-1] / naive[0] > 5.0


# --------------------------------------------------------------------------------------------------------
# Layers: FIR resampling, modulation / demodulation, equalised learning rate, minibatch stddev
# --------------------------------------------------------------------------------------------------------
def test_fir_kernel_and_impulse_responses():
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = fir_kernel()
    assert torch.allclose(k, torch.outer(taps, taps) / 64)
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[..., 4, 4] = 1.0
    assert torch.allclose(blur(impulse, k, padding=2)[0, 0, 3:7, 3:7], torch.outer(taps, taps) / 64)
    # upsampling: an impulse spreads into the 4x4 filter (gain 4: the upsampled image keeps its mean)
    up = upsample_2x(impulse, k)
    assert up.shape == (1, 1, 18, 18)
    assert torch.allclose(up[0, 0, 7:11, 7:11], torch.outer(taps, taps) / 16)
    assert up.sum().item() == pytest.approx(4.0)
    # downsampling = blur then keep every second pixel
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(downsample_2x(x, k), blur(x, k, padding=1)[..., ::2, ::2], atol=1e-6)


def test_fir_upsampling_is_bilinear_away_from_the_border():
    x = torch.randn(2, 3, 8, 8)
    ours = upsample_2x(x, fir_kernel())
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-6)
    const = torch.ones(1, 1, 8, 8)
    assert torch.allclose(downsample_2x(const, fir_kernel())[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


def test_odd_fir_filter_interpolates_between_kept_pixels():
    # An odd filter such as [1, 2, 1] used as is (the official code convolves its declared [1, 2, 1] with [1, 1],
    # i.e. resamples with [1, 3, 3, 1] like our default): even positions keep the input, odd ones average neighbours
    k = fir_kernel((1, 2, 1))
    x = torch.randn(2, 3, 8, 8)
    up = upsample_2x(x, k)
    assert up.shape == (2, 3, 16, 16)
    assert torch.allclose(up[..., ::2, ::2], x, atol=1e-6)
    assert torch.allclose(up[..., ::2, 1:-1:2], (x[..., :-1] + x[..., 1:]) / 2, atol=1e-6)
    assert downsample_2x(x, k).shape == (2, 3, 4, 4)
    G, D = build("E", "digits8", fir_taps=(1, 2, 1))
    assert D(G(torch.randn(2, G.z_dim))).shape == (2,)


def test_demodulated_conv_keeps_unit_variance():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 32, 32)
    weight = torch.randn(48, 64, 3, 3) * 3.0
    styles = torch.rand(8, 64) * 4 + 0.1  # arbitrary positive styles: demodulation undoes their scale
    out = modulated_conv2d(x, weight, styles, demodulate=True)
    assert out[..., 1:-1, 1:-1].var().item() == pytest.approx(1.0, abs=0.05)
    up = modulated_conv2d(x, weight, styles, demodulate=True, up=True, fir=fir_kernel())
    assert up.shape == (8, 48, 64, 64)
    loose = modulated_conv2d(x, weight, styles, demodulate=False)
    assert loose.var().item() > 10  # without demodulation the styles' scale passes straight through


def test_modulated_conv_equals_per_sample_conv():
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 5, 6, 6), torch.randn(4, 5, 3, 3), torch.randn(3, 5)
    out = modulated_conv2d(x, weight, styles, demodulate=False)
    up = modulated_conv2d(x, weight, styles, demodulate=False, up=True, fir=fir_kernel())
    for i in range(3):
        w_i = weight * styles[i].view(1, -1, 1, 1)
        ref = F.conv2d(x[i:i + 1], w_i, padding=1)
        assert torch.allclose(out[i:i + 1], ref, atol=1e-5)
        # upsampling: transposed conv (weight as [I, O, k, k]), then the FIR blur with gain 4
        ref_up = blur(F.conv_transpose2d(x[i:i + 1], w_i.transpose(0, 1), stride=2), fir_kernel() * 4, padding=1)
        assert torch.allclose(up[i:i + 1], ref_up, atol=1e-4)


def test_equalized_lr_scales_weights_at_run_time():
    torch.manual_seed(0)
    layer = EqualizedLinear(400, 300, bias=False)
    assert layer.weight.std().item() == pytest.approx(1.0, rel=0.02)  # stored ~ N(0, 1)
    x = torch.randn(5, 400)
    assert torch.allclose(layer(x), x @ (layer.weight / math.sqrt(400)).T, atol=1e-5)
    # the gradient reaching the stored weight is scaled by the same factor
    layer(x).sum().backward()
    eff = (layer.weight.detach() / math.sqrt(400)).requires_grad_(True)
    (x @ eff.T).sum().backward()
    assert torch.allclose(layer.weight.grad, eff.grad / math.sqrt(400), atol=1e-6)
    mapping = EqualizedLinear(400, 300, lr_multiplier=0.01)
    assert mapping.weight.std().item() == pytest.approx(100.0, rel=0.02)
    assert (mapping.weight * mapping.weight_gain).std().item() == pytest.approx(1 / math.sqrt(400), rel=0.02)
    conv = EqualizedConv2d(16, 8, 3)
    y = torch.randn(2, 16, 8, 8)
    assert torch.allclose(conv(y), F.conv2d(y, conv.weight / math.sqrt(16 * 9), conv.bias, padding=1), atol=1e-5)
    assert EqualizedConv2d(16, 8, 3, down=2)(y).shape == (2, 8, 4, 4)


def test_minibatch_stddev():
    x = torch.randn(6, 5, 4, 4)
    y = MinibatchStd(4)(x)  # 6 samples: groups of 3
    assert y.shape == (6, 6, 4, 4)
    group = x[[0, 2, 4]]
    expected = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert y[0, -1, 0, 0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(y[:, :5], x)


# --------------------------------------------------------------------------------------------------------
# Config A: mapping / synthesis / truncation / the hooks style mixing and path length need
# --------------------------------------------------------------------------------------------------------
def test_config_a_mapping_synthesis_truncation():
    torch.manual_seed(0)
    G, _ = build("A", "digits16")
    assert G.num_ws == 2 * int(math.log2(16)) - 2
    assert G.lr_multipliers["mapping"] == 0.01
    z = torch.randn(4, G.z_dim)
    G.eval()
    ws = G.mapping(z, None)
    assert ws.shape == (4, G.num_ws, G.w_dim)
    assert torch.allclose(G.synthesis(ws, noise_mode="none"), G(z, noise_mode="none"), atol=1e-5)
    # truncation psi = 0: every z gives the image of w_avg
    G.train()
    G(z)  # training mode tracks the mean w
    assert G.w_avg.abs().sum() > 0
    G.eval()
    t = G(z, truncation_psi=0.0, noise_mode="none")
    assert torch.allclose(t, t[:1].expand_as(t), atol=1e-5)
    # style mixing at a cutoff and path length: d(img . noise)/d ws with a graph
    ws2 = G.mapping(torch.randn(4, G.z_dim), None)
    mixed = torch.cat([ws[:, :3], ws2[:, 3:]], dim=1).detach().requires_grad_(True)
    img = G.synthesis(mixed)
    (g,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), mixed, create_graph=True)
    g.square().sum().backward()
    assert g.shape == mixed.shape


# --------------------------------------------------------------------------------------------------------
# Parameter counts against the paper (meta device: no memory, no forward)
# --------------------------------------------------------------------------------------------------------
def _counts(config, preset, **kw):
    with torch.device("meta"):
        G, D = build(config, preset, **kw)
    return count_parameters(G) / 1e6, count_parameters(D) / 1e6


@pytest.mark.parametrize("config", available_configs())
def test_parameter_counts_match_table_2(config):
    info = CONFIGS[config]
    g, d = _counts(config, "ffhq256")
    assert g == pytest.approx(info.paper_g_params, rel=0.01)
    assert d == pytest.approx(info.paper_d_params, rel=0.01)


@pytest.mark.parametrize("preset", ["ffhq64", "cifar10", "imagenet32", "imagenet64"])
def test_config_e_presets_match_official_counts(preset):
    p = PRESETS[preset]
    g, d = _counts("E", preset, conditional=p.num_classes > 0)
    assert (g, d) == (pytest.approx(p.paper_e_params[0], rel=0.01), pytest.approx(p.paper_e_params[1], rel=0.01))


def test_config_d_output_skips_count():
    g, d = _counts("D", "ffhq256", output_skips=True)
    assert g == pytest.approx(23.400, abs=0.001)  # Table 2's G count includes the to-image layers
    G, _ = build("D", "digits8", output_skips=True)
    assert G(torch.randn(2, G.z_dim)).shape == (2, 1, 8, 8)


# --------------------------------------------------------------------------------------------------------
# Bad input names the valid choices; helpers for the chapter
# --------------------------------------------------------------------------------------------------------
def test_bad_input_raises_value_error_naming_choices():
    with pytest.raises(ValueError, match="valid choices: 'A', 'B'"):
        build("F", "digits8")
    with pytest.raises(ValueError, match="'digits16'"):
        build("E", "mnist")
    for res in (48, 2, 0):
        with pytest.raises(ValueError, match="power of two"):
            build("E", "digits8", resolution=res)
    with pytest.raises(ValueError, match="multiples of 8"):
        build("E", "digits8", widths=(60, 60))
    with pytest.raises(ValueError, match="valid choices"):
        build("E", "digits8", depth=3)
    with pytest.raises(ValueError, match="no class labels"):
        build("E", "ffhq256", conditional=True)
    with pytest.raises(ValueError, match="2 stage widths"):
        build("D", "digits8", widths=(64, 64, 64))
    assert set(available_presets()) >= {"ffhq256", "ffhq64", "cifar10", "imagenet32", "imagenet64", "stackedmnist",
                                        "digits8", "digits16", "stacked8", "stacked16"}


def test_overrides_resolution_and_classes():
    G, D = build("E", "digits8", conditional=True, resolution=16, num_classes=3, z_dim=32, channels=3)
    assert (G.resolution, G.num_classes, G.z_dim, G.channels) == (16, 3, 32, 3)
    x = G(torch.randn(2, 32), torch.tensor([0, 2]))
    assert x.shape == (2, 3, 16, 16) and D(x, torch.tensor([0, 2])).shape == (2,)


def test_layer_table_and_describe():
    G, D = build("E", "digits8")
    rows = layer_table(D, torch.randn(2, 1, 8, 8))
    assert rows[0]["name"] == "from_image" and rows[0]["output"] == "2x64x8x8"
    assert sum(r["params"] for r in rows if "." not in r["name"]) == count_parameters(D)
    text = describe(G, torch.randn(2, G.z_dim))
    assert "stages.1" in text and f"{count_parameters(G):,}" in text
