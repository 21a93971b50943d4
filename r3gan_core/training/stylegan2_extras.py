"""Config A's StyleGAN2 extras as small functions: style mixing and the path-length penalty (StyleGAN2 Sec. 3)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from . import distributed as dist_utils
from .stream import BatchStream, to_device


def generate(G: nn.Module, z: Tensor, c: Tensor | None, mixing: float, stream: BatchStream, device) -> Tensor:
    """G(z, c); with probability `mixing` (StyleGAN2 Sec. 3.3, style mixing) the ws from a cut-off layer on come
    from a second latent. The draws are made whether or not mixing happens, so the stream stays aligned."""
    if mixing <= 0:
        return G(z, c)
    n_global = z.shape[0] * stream.world_size
    z2 = to_device(stream.normal(n_global, z.shape[1]), device)
    mix, cutoff = stream.uniform() < mixing, stream.integer(1, G.num_ws)
    ws = G.mapping(z, c, update_w_avg=G.training)  # as G(z, c) does: track mean w for truncation
    if mix:
        ws = torch.cat([ws[:, :cutoff], G.mapping(z2, c)[:, cutoff:]], dim=1)
    return G.synthesis(ws)


def path_length_penalty(G: nn.Module, z: Tensor, c: Tensor | None, pl_mean: Tensor, decay: float,
                        stream: BatchStream, env: dist_utils.DistEnv) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample (||J_w^T y|| - a)^2 with y ~ N(0, I) / sqrt(H W) (StyleGAN2 Sec. 3.2, Eq. 4).

    a is the running mean of the lengths over all ranks, a <- a + decay (mean - a), used detached (the
    official code lets a sliver of gradient through `a`; it is scaled by decay = 0.01). Returns
    (penalty [n], new running mean, mean length as a 0-d tensor).
    """
    ws = G.mapping(z, c)
    img = G.synthesis(ws)
    n, ch, h, w = img.shape
    y = to_device(stream.normal(n * stream.world_size, ch, h, w), img.device) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()  # [n]: ||J^T y|| averaged over the ws copies
    mean_length = dist_utils.mean_tensor(lengths.mean().detach(), env)
    pl_mean = pl_mean + decay * (mean_length - pl_mean)
    return (lengths - pl_mean).square(), pl_mean.detach(), mean_length.detach()
