"""r3gan_core.biggan: truncation, power iteration against SVD, and the orthogonal penalty and its gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from r3gan_core import biggan


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----- truncation -----

@pytest.mark.parametrize("threshold", [0.1, 0.5, 1.0, 2.0])
def test_truncated_normal_stays_inside_and_keeps_shape(threshold):
    z = biggan.truncated_normal((64, 3, 5), threshold, generator=_gen())
    assert z.shape == (64, 3, 5) and z.dtype == torch.float32
    assert z.abs().max() <= threshold


def test_truncated_normal_resamples_rather_than_clamps():
    z = biggan.truncated_normal((20000,), 1.0, generator=_gen(1))
    assert (z.abs() == 1.0).float().mean() < 1e-3  # clamping would pile about 32% of the mass on +-1
    # the variance of N(0, 1) truncated to [-1, 1] is 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.2911
    assert z.var().item() == pytest.approx(0.2911, abs=0.01)
    assert abs(z.mean().item()) < 0.02


def test_truncated_normal_without_threshold_is_plain_normal():
    z = biggan.truncated_normal((4, 8), None, generator=_gen(2))
    torch.testing.assert_close(z, torch.randn((4, 8), generator=_gen(2)))
    z = biggan.truncated_normal((3,), 0.5, generator=_gen(3), dtype=torch.float64)
    assert z.dtype == torch.float64


@pytest.mark.parametrize("threshold", [0.0, -1.0])
def test_truncated_normal_rejects_non_positive_threshold(threshold):
    with pytest.raises(ValueError, match="threshold must be > 0"):
        biggan.truncated_normal((2,), threshold)


# ----- power iteration -----

def test_top_singular_value_matches_svd_on_a_known_spectrum():
    u, _ = torch.linalg.qr(torch.randn(12, 12, generator=_gen(), dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(9, 9, generator=_gen(1), dtype=torch.float64))
    s = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    w = u[:, :9] @ torch.diag(s) @ v.t()
    sigma, vec = biggan.top_singular_value(w, iters=30, generator=_gen(2))
    assert sigma == pytest.approx(5.0, rel=1e-10)  # error ~ (3/5)^(2 * 30)
    assert vec.shape == (12,) and vec.norm().item() == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(32, 16), (16, 8, 3, 3), (8, 40)])
def test_top_singular_value_matches_svdvals(shape):
    w = torch.randn(shape, generator=_gen(3), dtype=torch.float64)
    expected = torch.linalg.svdvals(w.reshape(shape[0], -1))[0].item()
    sigma, _ = biggan.top_singular_value(w, iters=2000, generator=_gen(4))
    assert sigma == pytest.approx(expected, rel=1e-4)
    assert sigma <= expected * (1 + 1e-12)  # u^T W v never exceeds sigma_0 for unit u, v


def test_power_iteration_warm_start_continues():
    w = torch.randn(20, 10, generator=_gen(5), dtype=torch.float64)
    expected = torch.linalg.svdvals(w)[0].item()
    _, u = biggan.top_singular_value(w, iters=5, generator=_gen(6))
    for _ in range(400):  # one iteration per "training step", as in spectral normalisation
        sigma, u = biggan.top_singular_value(w, iters=1, u=u)
    assert sigma == pytest.approx(expected, rel=1e-4)


def test_top_singular_value_validates_and_detaches():
    w = torch.randn(4, 3, requires_grad=True)
    sigma, u = biggan.top_singular_value(w, iters=3)
    assert isinstance(sigma, float) and not u.requires_grad
    with pytest.raises(ValueError, match="iters"):
        biggan.top_singular_value(w, iters=0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        biggan.top_singular_value(torch.randn(5), iters=3)


def test_spectral_norms_cover_conv_and_linear_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8, 4))
    norms = biggan.spectral_norms(net, iters=500)
    assert set(norms) == {"0.weight", "4.weight"}  # BatchNorm's 1-D weight and all biases are skipped
    for name, module in [("0.weight", net[0]), ("4.weight", net[4])]:
        expected = torch.linalg.svdvals(module.weight.detach().reshape(module.weight.shape[0], -1))[0].item()
        assert norms[name] == pytest.approx(expected, rel=1e-4)


# ----- orthogonal regularisation -----

def test_orthogonal_penalty_zero_for_orthogonal_rows():
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=_gen(), dtype=torch.float64))
    assert biggan.orthogonal_penalty(q).item() == pytest.approx(0.0, abs=1e-20)
    assert biggan.orthogonal_penalty(q[:6]).item() == pytest.approx(0.0, abs=1e-20)  # wide: rows orthonormal
    scaled = torch.diag(torch.arange(1.0, 17.0, dtype=torch.float64)) @ q  # norms are free: diagonal masked
    assert biggan.orthogonal_penalty(scaled).item() == pytest.approx(0.0, abs=1e-20)
    # the row Gram W W^T is what counts: a tall W = Q[:, :6] has orthonormal columns but not rows
    assert biggan.orthogonal_penalty(q[:, :6], beta=1.0).item() > 1e-3


def test_orthogonal_penalty_known_value():
    w = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)  # rows' dot product 1, twice off-diagonal
    assert biggan.orthogonal_penalty(w, beta=1.0).item() == pytest.approx(2.0)
    assert biggan.orthogonal_penalty(w).item() == pytest.approx(2e-4)  # default beta = 1e-4


def test_orthogonal_penalty_gradient_is_analytic():
    w = torch.randn(6, 4, 3, 3, generator=_gen(7), dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(biggan.orthogonal_penalty(w, beta=0.3), w)
    # hand-derived: d/dw_k sum_{i != j} (w_i . w_j)^2 = 4 sum_{j != k} (w_k . w_j) w_j
    m = w.detach().reshape(6, -1)
    g = m @ m.t()
    g.fill_diagonal_(0.0)
    torch.testing.assert_close(auto, (4 * 0.3 * g @ m).reshape(w.shape))
    torch.testing.assert_close(biggan.orthogonal_penalty_grad(w.detach(), beta=0.3), auto)


def test_orthogonal_penalty_gradcheck():
    w = torch.randn(5, 7, generator=_gen(8), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: biggan.orthogonal_penalty(x, beta=0.5), (w,))
    assert torch.autograd.gradgradcheck(lambda x: biggan.orthogonal_penalty(x, beta=0.5), (w,))


def test_orthogonal_penalty_total_sums_matrix_weights():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3), nn.LayerNorm(3))
    total = biggan.orthogonal_penalty_total(net, beta=1e-2)
    expected = biggan.orthogonal_penalty(net[0].weight, 1e-2) + biggan.orthogonal_penalty(net[2].weight, 1e-2)
    torch.testing.assert_close(total, expected)
    total.backward()
    assert net[0].weight.grad is not None and net[0].bias.grad is None
    assert biggan.orthogonal_penalty_total(nn.ReLU()).item() == 0.0
    with pytest.raises(ValueError, match="beta"):
        biggan.orthogonal_penalty(net[0].weight, beta=-1.0)


def test_top_singular_value_of_a_zero_weight_is_zero():
    """Zero-initialised residual convs are all zero at step 0: sigma_0 must read 0, not NaN."""
    sigma, _ = biggan.top_singular_value(torch.zeros(8, 4, 3, 3), iters=5)
    assert sigma == 0.0
