"""Kernel distance (KID on Inception features): Binkowski, Sutherland, Arbel, Gretton, ICLR 2018, "Demystifying
MMD GANs". The unbiased estimator of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
averaged over random subsets (100 subsets of min(1000, n) samples by default, as in the reference code).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .frechet import as_feature_matrix

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for every pair of rows: [len(x), len(y)]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, Lemma 6):
    sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (n (n-1)) - 2 sum_{i, j} k(x_i, y_j) / (m n).
    """
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    k_xx, k_yy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


def kernel_distance(features1: Tensor | np.ndarray, features2: Tensor | np.ndarray,
                    num_subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
                    seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over `num_subsets` random subsets of min(subset_size, n1, n2) rows
    from each set (each subset drawn without replacement, seeded)."""
    x = as_feature_matrix(features1, "features1")
    y = as_feature_matrix(features2, "features2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} and {y.shape[1]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = np.array([mmd2_unbiased(x[rng.choice(len(x), m, replace=False)],
                                     y[rng.choice(len(y), m, replace=False)]) for _ in range(num_subsets)])
    return float(values.mean()), float(values.std())
