"""Differentiable augmentation of every image D sees: ADA's 'bgc' pipeline at probability p.

Source: Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data" (ADA), Sec. 2 and
appendix B (the pipeline and its parameter distributions). R3GAN's official presets ramp p on the cosine of every other schedule (PAPER_FACTS Sec. 5): CIFAR-10
0 -> 0.55, FFHQ 0 -> 0.3, ImageNet-32 0 -> 0.5, ImageNet-64 0 -> 0.4; our small presets and StackedMNIST keep
p = 0. D sees real and fake images through the same random pipeline, so it cannot tell them apart by the
augmentation, and the pipeline is differentiable, so G learns through it; with p < 0.8 or so the augmentations
do not leak into G's images (ADA Sec. 2.2).

Each transform is applied to each image independently with probability p, in ADA's order, with ADA's
parameter distributions (N = standard normal, U = uniform):

    b  xflip       with prob p: mirror x with prob 1/2 (so p/2 of the images are mirrored)
       rotate90    with prob p: rotate by k * 90 degrees, k uniform in {0, 1, 2, 3}
       xint        with prob p: translate by round(U(-0.125, 0.125) * size) pixels per axis
    g  scale       with prob p: isotropic scale 2^(0.2 N)           (log-normal, std 0.2 ln 2)
       rotate      with prob 1 - sqrt(1 - p): rotate by U(-180, 180) degrees        } twice, so the chance of
       aniso       with prob p: scale x by 2^(0.2 N), y by its inverse              } at least one rotation
       rotate      (again, a fresh angle)                                            } is p
       xfrac       with prob p: translate by 0.125 N * size per axis
    c  brightness  with prob p: add 0.2 N
       contrast    with prob p: multiply by 2^(0.5 N)                (log-normal, std 0.5 ln 2)
       lumaflip    with prob p: reflect the colour across the plane normal to the luma axis, with prob 1/2
       hue         with prob p: rotate the colour about the luma axis by U(-180, 180) degrees
       saturation  with prob p: scale the colour off the luma axis by 2^(1 N)   (log-normal, std ln 2)

The luma axis is ADA's (1, 1, 1) / sqrt(3) in RGB, images are in [-1, 1], and nothing is clamped (as in ADA).
All geometric transforms compose into one affine matrix per image about the image centre and resample once;
all colour transforms compose into one 4 x 4 matrix per image. `augment(images, 0)` returns `images` itself and
draws no random numbers, so runs with p = 0 are bit-identical to runs without augmentation.

Where this pipeline differs from ADA's (so that its results are comparable, not identical):

* Resampling: one bilinear `grid_sample` at the image's own resolution (kornia.geometry.transform.warp_affine,
  align_corners=True). ADA upsamples 2x with a sym6 wavelet filter, samples, then low-pass filters and
  downsamples: ours is softer under fractional shifts and aliases more under down-scaling.
* Padding: kornia's 'reflection' mode, which mirrors about the border pixels' centres (numpy's 'reflect') and
  keeps mirroring as far as the warp reaches; ADA reflect-pads a margin sized to the warp. Same values inside
  ADA's margin, but ADA's margin also passes through its upsampling filter.
* Pixel blitting (xflip, rotate90, xint) goes through the bilinear warp like everything else, so it is exact
  only up to float rounding (about 1e-7); ADA also folds it into its one warp, through its filters.
* An image whose composed geometric (or colour) matrix is the identity is passed through unchanged, bit for
  bit; ADA resamples every image once any geometric transform is switched on, the identity ones included.
* Order of operations: ADA's. The geometric group first (in the order of the table), then the colour group;
  within a group each transform acts after the ones above it.
* Kornia's colour functions are not used: they work in HSV on [0, 1] images and clamp, while ADA's colour
  transforms are linear maps of RGB in [-1, 1]; ours builds ADA's 4 x 4 matrix in plain PyTorch. A one-channel
  image is treated as grey (R = G = B) and gets the channel mean of the matrix's output, as ADA does.
* Not implemented: ADA's adaptive p (R3GAN uses a fixed schedule instead) and the filter, noise and cutout
  groups ('bgcfnc'); only 'bgc', which is what the R3GAN presets use.
* Random numbers: every enabled transform draws its gate and parameters for every image, on the CPU, from
  `generator` (the trainer passes its BatchStream, drawing for the global batch and keeping this rank's rows,
  so several processes augment exactly as one does), whether or not the gate opens.

The trainer applies `augment` inside `losses.discriminator_objective` after the images become the leaves of
the R1/R2 gradients, so the penalties differentiate D(augment(x)) with respect to the un-augmented x, as ADA's
and R3GAN's official code do; G's objective sees augmented fakes and reals too.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from .stream import to_device

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
BGC = GEOMETRIC + COLOUR  # ADA's 'bgc': blit, general geometric, colour

# ADA's parameter spreads (its AugmentPipe defaults; ln 2 factors because ADA draws 2^(std * N)).
XINT_MAX, SCALE_STD, ANISO_STD, XFRAC_STD = 0.125, 0.2, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0

INSTALL_HINT = "pip install kornia (or pip install -e '.[augment]')"


def require_kornia() -> Callable[..., Tensor]:
    """kornia's geometric warp, imported only when an augmentation probability is above 0."""
    try:
        from kornia.geometry.transform import warp_affine
    except ImportError as exc:
        raise ImportError(f"augmentation with p > 0 needs kornia: {INSTALL_HINT}") from exc
    return warp_affine


def augment(images: Tensor, p: float, generator: torch.Generator | None = None, *,
            transforms: Sequence[str] = BGC, shard: tuple[int, int] = (0, 1)) -> Tensor:
    """ADA's augmentation of a batch [N, C, H, W] in [-1, 1]: each transform per image with probability p.

    Differentiable with respect to `images`. p = 0 returns `images` itself and draws nothing. generator: where
    the random numbers come from (a CPU generator; None = torch's global one). transforms: a subset of BGC
    (in any order; ADA's order is used). shard (rank, world size): draw for world_size * N images and keep
    rows [rank * N, (rank + 1) * N), so each rank of a run augments its slice of the global batch.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"augmentation probability must lie in [0, 1], got {p}")
    unknown = sorted(set(transforms) - set(BGC))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; valid choices: {', '.join(BGC)}")
    if p == 0 or not transforms:
        return images
    if images.ndim != 4:
        raise ValueError(f"augment expects images [N, C, H, W], got shape {tuple(images.shape)}")
    warp_affine = require_kornia()
    with torch.autocast(device_type=images.device.type, enabled=False):  # float32 maths under bf16 training too
        return _augment(images, p, _Draws(images.shape[0], generator, shard), transforms, warp_affine)


def _augment(images: Tensor, p: float, draws: "_Draws", transforms: Sequence[str],
             warp_affine: Callable[..., Tensor]) -> Tensor:
    """The pipeline: one geometric warp, then one colour matrix, each only on the images that need it."""
    h, w = images.shape[-2:]
    x = images.float()
    # The masks live on the CPU (so do the draws): skipping a stage no image needs costs no device sync.
    if any(t in transforms for t in GEOMETRIC):
        matrix, moved = geometric_matrices(draws, p, h, w, transforms)
        if moved.any():
            warped = warp_affine(x, to_device(matrix[:, :2], x.device), (h, w), mode="bilinear",
                                 padding_mode="reflection", align_corners=True)
            x = torch.where(to_device(moved, x.device)[:, None, None, None], warped, x)
    if any(t in transforms for t in COLOUR):
        matrix, changed = colour_matrices(draws, p, transforms)
        if changed.any():
            recoloured = recolour(x, to_device(matrix, x.device))
            x = torch.where(to_device(changed, x.device)[:, None, None, None], recoloured, x)
    return x.to(images.dtype)


class _Draws:
    """Per-image random numbers: drawn on the CPU for `world_size * n` images, this rank's `n` rows kept."""

    def __init__(self, n: int, generator: torch.Generator | None, shard: tuple[int, int]):
        rank, world_size = shard
        if not 0 <= rank < world_size:
            raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard}")
        self.n, self.total, self.start, self.generator = n, n * world_size, n * rank, generator

    def _mine(self, t: Tensor) -> Tensor:
        return t[self.start:self.start + self.n]

    def uniform(self) -> Tensor:
        return self._mine(torch.rand(self.total, generator=self.generator))

    def normal(self) -> Tensor:
        return self._mine(torch.randn(self.total, generator=self.generator))

    def integer(self, high: int) -> Tensor:
        return self._mine(torch.randint(high, (self.total,), generator=self.generator)).float()

    def gate(self, prob: float) -> Tensor:
        """Which images get a transform: True with probability `prob`."""
        return self.uniform() < prob


# ---------------------------------------------------------------------------------------------------------
# Geometric: 3 x 3 forward matrices in pixel coordinates (x right, y down), composed about the image centre
# ---------------------------------------------------------------------------------------------------------
def _affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """[N, 3, 3] matrices [[a, b, tx], [c, d, ty], [0, 0, 1]]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=1).reshape(-1, 3, 3)


def translation(tx: Tensor, ty: Tensor) -> Tensor:
    """[N, 3, 3]: shift by (tx, ty) pixels."""
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    return _affine(one, zero, zero, one, tx, ty)


def scaling(sx: Tensor, sy: Tensor) -> Tensor:
    """[N, 3, 3]: scale x by sx and y by sy (about the origin; the caller centres)."""
    zero = torch.zeros_like(sx)
    return _affine(sx, zero, zero, sy, zero, zero)


def rotation(cos: Tensor, sin: Tensor) -> Tensor:
    """Rotation by the angle whose cosine and sine are given (exact for multiples of 90 degrees)."""
    zero = torch.zeros_like(cos)
    return _affine(cos, -sin, sin, cos, zero, zero)


def _random_rotation(draws: _Draws, prob: float) -> Tensor:
    """ADA's arbitrary rotation: U(-pi, pi) with probability `prob` (angle 0, an exact identity, otherwise)."""
    on, theta = draws.gate(prob), (draws.uniform() * 2 - 1) * math.pi
    theta = torch.where(on, theta, torch.zeros_like(theta))
    return rotation(theta.cos(), theta.sin())


def geometric_matrices(draws: _Draws, p: float, h: int, w: int, transforms: Sequence[str]) -> tuple[Tensor, Tensor]:
    """([N, 3, 3] forward pixel matrices, [N] True where the matrix is not the identity), ADA's 'b' and 'g'.

    Each enabled transform multiplies onto the left, so the first in ADA's order acts on the image first.
    """
    n, one = draws.n, torch.ones(draws.n)
    m = torch.eye(3).repeat(n, 1, 1)
    p_rot = 1 - math.sqrt(1 - p)  # ADA: two chances of rotation, at least one with probability p
    if "xflip" in transforms:
        flip = draws.gate(p) & (draws.integer(2) == 1)
        m = scaling(torch.where(flip, -one, one), one) @ m
    if "rotate90" in transforms:
        on, k = draws.gate(p), draws.integer(4)
        k = torch.where(on, k, torch.zeros_like(k)).long()
        cos, sin = torch.tensor([1.0, 0.0, -1.0, 0.0])[k], torch.tensor([0.0, 1.0, 0.0, -1.0])[k]
        m = rotation(cos, sin) @ m
    if "xint" in transforms:
        on, tx, ty = draws.gate(p), draws.uniform() * 2 - 1, draws.uniform() * 2 - 1
        tx, ty = (torch.where(on, (t * XINT_MAX * size).round(), torch.zeros_like(t)) for t, size in ((tx, w), (ty, h)))
        m = translation(tx, ty) @ m
    if "scale" in transforms:
        on, s = draws.gate(p), torch.exp2(draws.normal() * SCALE_STD)
        s = torch.where(on, s, one)
        m = scaling(s, s) @ m
    if "rotate" in transforms:
        m = _random_rotation(draws, p_rot) @ m
    if "aniso" in transforms:
        on, s = draws.gate(p), torch.exp2(draws.normal() * ANISO_STD)
        s = torch.where(on, s, one)
        m = scaling(s, 1 / s) @ m
    if "rotate" in transforms:
        m = _random_rotation(draws, p_rot) @ m
    if "xfrac" in transforms:
        on, tx, ty = draws.gate(p), draws.normal() * XFRAC_STD * w, draws.normal() * XFRAC_STD * h
        zero = torch.zeros_like(tx)
        m = translation(torch.where(on, tx, zero), torch.where(on, ty, zero)) @ m
    moved = (m != torch.eye(3)).flatten(1).any(1)
    cx, cy = torch.full((n,), (w - 1) / 2), torch.full((n,), (h - 1) / 2)
    return translation(cx, cy) @ m @ translation(-cx, -cy), moved


# ---------------------------------------------------------------------------------------------------------
# Colour: 4 x 4 matrices acting on homogeneous RGB (r, g, b, 1), ADA's 'c'
# ---------------------------------------------------------------------------------------------------------
LUMA_AXIS = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)  # ADA's luma axis (equal RGB weights)


def _colour_shift(b: Tensor) -> Tensor:
    """[N, 4, 4]: add b to every channel."""
    m = torch.eye(4).repeat(b.shape[0], 1, 1)
    m[:, :3, 3] = b[:, None]
    return m


def _colour_rotation(theta: Tensor) -> Tensor:
    """[N, 4, 4] rotation about the luma axis v (Rodrigues): cos I + sin [v]x + (1 - cos) v v^T on RGB."""
    v = LUMA_AXIS[:3]
    cross = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    m = torch.eye(4).repeat(theta.shape[0], 1, 1)
    m[:, :3, :3] = cos * torch.eye(3) + sin * cross + (1 - cos) * torch.outer(v, v)
    return m


def colour_matrices(draws: _Draws, p: float, transforms: Sequence[str]) -> tuple[Tensor, Tensor]:
    """([N, 4, 4] colour matrices, [N] True where not the identity): brightness, contrast, luma flip, hue,
    saturation in ADA's order, each image independently with probability p."""
    n, eye, one = draws.n, torch.eye(4), torch.ones(draws.n)
    vv = torch.outer(LUMA_AXIS, LUMA_AXIS)
    c = eye.repeat(n, 1, 1)
    if "brightness" in transforms:
        on, b = draws.gate(p), draws.normal() * BRIGHTNESS_STD
        c = _colour_shift(torch.where(on, b, torch.zeros_like(b))) @ c
    if "contrast" in transforms:
        on, s = draws.gate(p), torch.exp2(draws.normal() * CONTRAST_STD)
        s = torch.where(on, s, one)
        c = torch.diag_embed(torch.stack([s, s, s, one], dim=1)) @ c
    if "lumaflip" in transforms:
        flip = (draws.gate(p) & (draws.integer(2) == 1)).float()
        c = (eye - 2 * vv * flip[:, None, None]) @ c
    if "hue" in transforms:
        on, theta = draws.gate(p), (draws.uniform() * 2 - 1) * math.pi
        c = _colour_rotation(torch.where(on, theta, torch.zeros_like(theta))) @ c
    if "saturation" in transforms:
        on, s = draws.gate(p), torch.exp2(draws.normal() * SATURATION_STD)[:, None, None]
        # the identity where off exactly: vv + (I - vv) * 1 may round away from I
        c = torch.where(on[:, None, None], vv + (eye - vv) * s, eye) @ c
    return c, (c != eye).flatten(1).any(1)


def recolour(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply [N, 4, 4] colour matrices to RGB images, or to grey ones as R = G = B averaged back (ADA)."""
    channels = x.shape[1]
    linear, shift = matrix[:, :3, :3], matrix[:, :3, 3]
    if channels == 3:
        return torch.einsum("nij,njhw->nihw", linear, x) + shift[:, :, None, None]
    if channels == 1:
        gain, offset = linear.sum(2).mean(1), shift.mean(1)
        return x * gain[:, None, None, None] + offset[:, None, None, None]
    raise ValueError(f"colour augmentation needs 1 or 3 channels, got {channels}")
