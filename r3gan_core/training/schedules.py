"""Schedules counted in images, and the EMA decay they drive (paper Sec. 5 presets; EDM2 counts in images too).

Every R3GAN hyperparameter that moves during training (learning rate, Adam's beta2, gamma, EMA half-life,
augmentation probability) follows the same cosine from a base value to a final value over T images, then holds:

    v(t) = b + (f - b) * (1 - cos(pi * min(t, T) / T)) / 2

so v(0) = b, v(T / 2) = (b + f) / 2 and v(t >= T) = f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..choices import require_positive


# The one schedule formula of the official presets (PAPER_FACTS Sec. 5).
def cosine_schedule(images: float, base: float, final: float, total_images: float) -> float:
    """v = b + (f - b)(1 - cos(pi t / T)) / 2 for t < T, then f. T <= 0 means 'already at the final value'."""
    if total_images <= 0:
        return float(final)
    t = min(max(float(images), 0.0), float(total_images))
    return base + (final - base) * (1.0 - math.cos(math.pi * t / total_images)) / 2.0


@dataclass(frozen=True)
class Cosine:
    """A value moving from `base` to `final` over `total_images` images on the cosine above, then held.

    `Cosine.constant(v)` is the degenerate schedule (base == final) used for fixed hyperparameters.
    """

    base: float
    final: float
    total_images: float

    @classmethod
    def constant(cls, value: float) -> "Cosine":
        return cls(float(value), float(value), 0.0)

    def __call__(self, images: float) -> float:
        return cosine_schedule(images, self.base, self.final, self.total_images)

    @property
    def is_constant(self) -> bool:
        return self.base == self.final


# Half-life in images -> per-step decay (EDM2 / StyleGAN2-ADA): after `half_life` images the old weights count 1/2.
def ema_beta(batch_images: int, half_life_images: float) -> float:
    """beta = 0.5 ** (batch / half_life); half-life 0 gives beta 0 (the EMA copies the live weights)."""
    require_positive("batch_images", batch_images)
    require_positive("half_life_images", half_life_images, allow_zero=True)
    if half_life_images <= 0:
        return 0.0
    return 0.5 ** (batch_images / half_life_images)


def ema_half_life(images: float, schedule: Cosine, rampup: float | None = None) -> float:
    """The half-life at `images`: the schedule, capped at rampup * images when a ramp-up ratio is given.

    rampup None = no cap (R3GAN ramps the half-life by its cosine instead); StyleGAN2-ADA uses 0.05 on some presets.
    """
    h = schedule(images)
    if rampup is not None:
        h = min(h, rampup * images)
    return max(h, 0.0)
