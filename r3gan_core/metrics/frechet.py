"""The Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium"; Dowson & Landau 1982 for the closed form).

d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

On Inception-v3 pool features this is FID. Here it is usually computed in the digit classifier's feature space
and must then be called FD-digits (PAPER_FACTS Sec. 7): its values are not comparable to Inception FIDs.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
from torch import Tensor

from ..choices import require_choice

FRECHET_METHODS = ("eigh", "sqrtm")


def as_feature_matrix(features: Tensor | np.ndarray, what: str = "features") -> np.ndarray:
    """float64 array N x D; ValueError for anything else or for non-finite values."""
    if isinstance(features, Tensor):
        features = features.detach().cpu().numpy()
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2D array N x D, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or inf")
    return x


def feature_statistics(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of N x D features (N >= 2)."""
    x = as_feature_matrix(features)
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {len(x)}")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative rounding noise clipped)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S_1 S_2)^(1/2)) as sum_i sqrt(lambda_i(S_1^(1/2) S_2 S_1^(1/2))).

    S_1 S_2 is similar to the symmetric PSD matrix S_1^(1/2) S_2 S_1^(1/2) (conjugate by S_1^(1/2)), so both
    have the same non-negative eigenvalues: the result is real by construction, with no complex parts to drop.
    """
    root1 = psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """The same trace through scipy.linalg.sqrtm of the non-symmetric S_1 S_2 (the usual FID code path).

    sqrtm can return tiny imaginary parts from rounding, which are dropped; a singular product may give a
    non-finite root, in which case eps * I is added to both covariances and the root recomputed.
    """
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(root).all():
        offset = eps * np.eye(len(sigma1))
        root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        imaginary = np.abs(root.imag).max()
        if imaginary > 1e-3 * max(1.0, np.abs(root.real).max()):
            warnings.warn(f"sqrtm returned an imaginary part of size {imaginary:.3g}; dropping it", stacklevel=3)
        root = root.real
    return float(np.trace(root))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     method: str = "eigh") -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2); method 'eigh' (default) or 'sqrtm'.

    d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)); clipped at 0 (rounding can go below).
    """
    require_choice("Frechet method", method, FRECHET_METHODS)
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shapes disagree: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, "
                         f"sigma2 {sigma2.shape}")
    trace_root = (trace_sqrt_product if method == "eigh" else trace_sqrt_product_sqrtm)(sigma1, sigma2)
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)
    return max(value, 0.0)


def frechet_distance_features(features1: Tensor | np.ndarray, features2: Tensor | np.ndarray,
                              method: str = "eigh") -> float:
    """Frechet distance between Gaussians fitted to two N x D feature sets."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2), method=method)
