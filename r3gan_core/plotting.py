"""Shared figure helpers: one look for every chapter, and a provenance footer on every figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from .report import Provenance


def set_style() -> None:
    """The book's plotting style (seaborn's whitegrid, readable sizes)."""
    sns.set_theme(style="whitegrid", context="notebook", rc={"figure.dpi": 100, "savefig.dpi": 100})


def add_footer(fig: plt.Figure, provenance: Provenance | str) -> plt.Figure:
    """Stamp how the figure was produced (profile, device, steps, images, wall time) under it."""
    text = provenance.footer() if isinstance(provenance, Provenance) else str(provenance)
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=8, color="0.35")
    return fig


def image_grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile N x C x H x W images in [-1, 1] into one H' x W' x C array in [0, 1] for imshow."""
    x = torch.as_tensor(images).detach().float().cpu()
    if x.ndim == 3:
        x = x[:, None]
    n, c, h, w = x.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    canvas = torch.ones(c, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    x = ((x + 1) / 2).clamp(0, 1)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = x[i]
    out = canvas.permute(1, 2, 0).numpy()
    return out[..., 0] if c == 1 else out


def show_grid(ax: plt.Axes, images: torch.Tensor | np.ndarray, title: str | None = None, nrow: int | None = None) -> None:
    """Draw `image_grid(images)` on `ax` without ticks."""
    grid = image_grid(images, nrow=nrow)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
