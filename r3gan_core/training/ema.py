"""Exponential moving average of the generator's weights (Karras et al.; half-life form as in EDM2).

theta_ema <- beta * theta_ema + (1 - beta) * theta, beta = 0.5 ** (batch / half_life) (see schedules.ema_beta).
Buffers (running statistics, w_avg and the like) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy in eval mode that `update_ema` keeps averaging."""
    return copy.deepcopy(module).eval().requires_grad_(False)


@torch.no_grad()
def update_ema(ema: nn.Module, live: nn.Module, beta: float) -> None:
    """theta_ema = beta * theta_ema + (1 - beta) * theta; beta 0 copies exactly."""
    for p_ema, p in zip(ema.parameters(), live.parameters(), strict=True):
        if beta == 0.0:
            p_ema.copy_(p.detach())
        else:
            p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), live.buffers(), strict=True):
        b_ema.copy_(b)
