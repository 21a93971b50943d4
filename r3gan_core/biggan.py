"""BigGAN's tricks (Brock, Donahue, Simonyan 2019) for the BigGAN chapter: truncation, spectra, orthogonality.

* Truncation trick (BigGAN Sec. 3.1): sample z from a truncated normal by resampling out-of-range entries.
* Collapse diagnostics (BigGAN Sec. 4.1): the top singular value sigma_0 of every weight, by power iteration.
* Orthogonal regularisation, BigGAN's off-diagonal variant (BigGAN Sec. 3.1, Eq. 3): beta ||W^T W (.) (1 - I)||_F^2.

A weight of any rank is read as a matrix of shape (out, -1): a conv kernel [out, in, kh, kw] becomes
[out, in * kh * kw], one row per output filter (the reading of spectral normalisation and BigGAN's code).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .choices import require_positive


def truncated_normal(
    shape: tuple[int, ...] | torch.Size,
    threshold: float | None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """N(0, 1) samples with every |z| <= threshold, by resampling the entries above it (BigGAN Sec. 3.1).

    threshold None = no truncation (a plain normal). Resampling, unlike clamping, keeps the conditional
    normal shape inside [-threshold, threshold]; a tiny threshold needs many rounds, so it must be > 0.
    """
    z = torch.randn(shape, generator=generator, dtype=dtype)
    if threshold is None:
        return z
    require_positive("threshold", threshold)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, dtype=dtype)
        outside = z.abs() > threshold
    return z


def as_matrix(weight: Tensor) -> Tensor:
    """A weight of shape [out, ...] as the matrix [out, prod(...)] (one row per output unit or filter)."""
    if weight.dim() < 2:
        raise ValueError(f"a weight matrix needs at least 2 dimensions, got shape {tuple(weight.shape)}")
    return weight.reshape(weight.shape[0], -1)


def top_singular_value(
    weight: Tensor, iters: int = 1, u: Tensor | None = None, generator: torch.Generator | None = None
) -> tuple[float, Tensor]:
    """sigma_0 of as_matrix(weight) by power iteration (Miyato et al. 2018, Alg. 1); returns (sigma_0, u).

    v <- W^T u / ||W^T u||, u <- W v / ||W v||, sigma_0 = u^T W v. Pass the returned u back in to keep
    iterating across training steps (one iteration per step then suffices, as in spectral normalisation);
    u None = start from a random vector. The error shrinks like (sigma_1 / sigma_0)^(2 iters).
    """
    if int(iters) != iters or iters < 1:
        raise ValueError(f"iters must be an integer >= 1, got {iters!r}")
    with torch.no_grad():
        w = as_matrix(weight.detach())
        if not bool(w.any()):  # an all-zero weight (a zero-initialised residual conv): sigma_0 = 0, not 0/0
            return 0.0, torch.zeros(w.shape[0], dtype=w.dtype, device=w.device) if u is None else u
        if u is None:
            u = torch.randn(w.shape[0], generator=generator, dtype=w.dtype, device=w.device)
        u = u / u.norm()
        for _ in range(int(iters)):
            v = w.t() @ u
            v = v / v.norm()
            u = w @ v
            u = u / u.norm()
        sigma = u @ w @ v
    return float(sigma), u


def matrix_weights(module: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """(name, parameter) of every parameter named `*weight` with at least 2 dimensions.

    That is every conv and linear kernel (and any custom layer storing its kernel as `weight`, or an
    embedding table); normalisation layers' 1-D weights and all biases are skipped.
    """
    for name, param in module.named_parameters():
        if name.split(".")[-1] == "weight" and param.dim() >= 2:
            yield name, param


def spectral_norms(module: nn.Module, iters: int = 50) -> dict[str, float]:
    """{name: sigma_0} for every matrix weight of `module` (BigGAN Sec. 4.1's collapse diagnostic)."""
    return {name: top_singular_value(param, iters)[0] for name, param in matrix_weights(module)}


def orthogonal_penalty(weight: Tensor, beta: float = 1e-4) -> Tensor:
    """beta ||G (.) (1 - I)||_F^2 with G = W W^T the Gram matrix of W's rows (BigGAN Sec. 3.1, Eq. 3).

    BigGAN writes W^T W with filters as the columns of W; with PyTorch's [out, in] layout the filters are
    the rows, so the Gram matrix is W W^T ([out, out]): the penalty pushes *different filters* towards
    orthogonality and leaves their norms free (the diagonal is masked). It is zero for any W with orthogonal
    rows, e.g. a wide W = Q[:out] with Q orthogonal, whose column Gram W^T W is not diagonal.
    """
    require_positive("beta", beta, allow_zero=True)
    w = as_matrix(weight)
    gram = w @ w.t()  # [out, out]
    off_diagonal = gram * (1 - torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device))
    return beta * off_diagonal.square().sum()


def orthogonal_penalty_grad(weight: Tensor, beta: float = 1e-4) -> Tensor:
    """d orthogonal_penalty / dW = 4 beta (W W^T (.) (1 - I)) W, reshaped like `weight`.

    From d/dw_k sum_{i != j} (w_i . w_j)^2 = 4 sum_{j != k} (w_k . w_j) w_j. BigGAN's public code adds
    2 beta (W W^T (.) (1 - I)) W to the gradient directly, i.e. the gradient of half this penalty.
    """
    require_positive("beta", beta, allow_zero=True)
    w = as_matrix(weight)
    gram = w @ w.t()
    off_diagonal = gram * (1 - torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device))
    return (4 * beta * off_diagonal @ w).reshape(weight.shape)


def orthogonal_penalty_total(module: nn.Module, beta: float = 1e-4) -> Tensor:
    """Sum of orthogonal_penalty over every matrix weight of `module` (add it to G's loss, as BigGAN does)."""
    terms = [orthogonal_penalty(param, beta) for _, param in matrix_weights(module)]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()
