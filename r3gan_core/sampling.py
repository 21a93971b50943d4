"""Drawing images from a generator, and tiling them: what the trainer, the CLI and the chapters all need.

    from r3gan_core.sampling import generate_images, save_grid_png
    images = generate_images(G, 10_000, seed=0)          # N x C x H x W on the CPU, in [-1, 1]
    save_grid_png(images[:64], "grid.png")

Latents are seeded: the same (G, n, seed) always gives the same images, which is what lets a stored generator's
evaluation be re-derived (tests/test_stored_results.py). Truncation resamples entries above a threshold (BigGAN).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .biggan import truncated_normal


def sample_latents(z_dim: int, n: int, seed: int, truncation: float | None = None) -> Tensor:
    """n latents from N(0, I), entries above `truncation` resampled (BigGAN's trick; None = no truncation)."""
    return truncated_normal((n, z_dim), truncation, generator=torch.Generator().manual_seed(seed))


def fixed_latents(z_dim: int, count: int, seed: int) -> Tensor:
    """Latent i comes from its own generator seeded (seed, i): an image does not depend on how many are drawn."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
                        for i in range(count)])


@torch.no_grad()
def sample_images(G: nn.Module, z: Tensor, c: Tensor | None, device, chunk: int = 256) -> Tensor:
    """G(z, c) in chunks, on the CPU; the global RNG is left as it was (config A's noise inputs use it)."""
    out = []
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        for i in range(0, len(z), chunk):
            cc = None if c is None else c[i:i + chunk].to(device)
            out.append(G(z[i:i + chunk].to(device), cc).float().cpu())
    return torch.cat(out)


def generate_images(G: nn.Module, n: int, seed: int = 0, truncation: float | None = None,
                    labels: Tensor | None = None, device: str | torch.device = "cpu") -> Tensor:
    """n images from G on the CPU in [-1, 1]; conditional G draws uniform labels unless `labels` are given.

    In-network randomness (config A's noise inputs) is drawn from the global generator seeded with `seed` too, so
    the same (G, n, seed) gives the same images; the caller's global random state is left as it was.
    """
    z = sample_latents(G.z_dim, n, seed, truncation)
    if labels is None and getattr(G, "num_classes", 0):
        labels = torch.randint(G.num_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        return sample_images(G, z, labels, device)


def image_grid(images: Tensor | np.ndarray, nrow: int | None = None, pad: int = 1) -> np.ndarray:
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


def split_stacked(images: Tensor | np.ndarray, gap: int = 0) -> Tensor:
    """Stacked digits (N x C x H x W, one digit per channel) as N x 1 x H x (C W + (C - 1) gap) greyscale images:
    each sample's C digits side by side (`gap` white pixels apart; none by default, so that the grid's white lines
    separate samples, not digits), so a reader can tell which digits it drew."""
    x = torch.as_tensor(images).detach().float().cpu()
    if x.ndim != 4:
        raise ValueError(f"split_stacked needs N x C x H x W images, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    out = torch.ones(n, 1, h, c * w + (c - 1) * gap)
    for i in range(c):
        out[:, 0, :, i * (w + gap): i * (w + gap) + w] = x[:, i]
    return out


def save_grid_png(images: Tensor, path: str | Path, min_width: int = 256) -> Path:
    """A grid of N x C x H x W images in [-1, 1] as a PNG, upscaled (nearest) to at least `min_width` px."""
    import matplotlib.image

    grid = image_grid(images)
    scale = max(1, math.ceil(min_width / grid.shape[1]))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1)
    return path
