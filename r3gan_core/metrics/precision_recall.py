"""Improved precision and recall: Kynkaanniemi, Karras, Laine, Lehtinen, Aila, NeurIPS 2019.

Each set's manifold is the union of balls around its samples, the radius of a ball being the distance to the
sample's k-th nearest neighbour in its own set (k = 3). Precision = fraction of generated samples inside the
real manifold; recall = fraction of real samples inside the generated manifold.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .frechet import as_feature_matrix

PR_NEIGHBOURS = 3
_ROW_BATCH = 512
_RELATIVE_TOLERANCE = 1e-9  # absorbs rounding of |a|^2 + |b|^2 - 2 a.b, so an exact duplicate is always inside


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances [len(a), len(b)] via |a|^2 + |b|^2 - 2 a.b (float64, >= 0)."""
    return (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2.0 * a @ b.T).clamp_min_(0.0)


def knn_radii(features: Tensor, k: int = PR_NEIGHBOURS) -> Tensor:
    """Squared distance of each row to its k-th nearest other row (the row itself, at 0, is skipped)."""
    if len(features) <= k:
        raise ValueError(f"k = {k} nearest neighbours need more than {k} samples, got {len(features)}")
    radii = [squared_distances(features[s:s + _ROW_BATCH], features).kthvalue(k + 1, dim=1).values
             for s in range(0, len(features), _ROW_BATCH)]
    return torch.cat(radii)


def inside_manifold(queries: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """Bool [len(queries)]: is each query within radius of at least one centre (d^2 <= r^2)?"""
    scale = _RELATIVE_TOLERANCE * float(centres.square().sum(1).mean().clamp_min(1e-30))
    inside = [(squared_distances(queries[s:s + _ROW_BATCH], centres) <= radii[None, :] + scale).any(1)
              for s in range(0, len(queries), _ROW_BATCH)]
    return torch.cat(inside)


def precision_recall(real_features: Tensor | np.ndarray, fake_features: Tensor | np.ndarray,
                     k: int = PR_NEIGHBOURS, real_radii: Tensor | None = None) -> dict[str, float]:
    """{"precision", "recall"} of fake against real features (both N x D), k-NN balls with k = 3.

    real_radii: knn_radii of these real features (float64) when already computed; the result is the same.
    """
    real = torch.from_numpy(as_feature_matrix(real_features, "real features"))
    fake = torch.from_numpy(as_feature_matrix(fake_features, "fake features"))
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} and {fake.shape[1]}")
    if real_radii is None:
        real_radii = knn_radii(real, k)
    elif real_radii.shape != (len(real),):
        raise ValueError(f"real_radii must hold one radius per real row ({len(real)}), got {tuple(real_radii.shape)}")
    precision = inside_manifold(fake, real, real_radii).double().mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k)).double().mean()
    return {"precision": float(precision), "recall": float(recall)}
