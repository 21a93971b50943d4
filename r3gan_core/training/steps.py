"""One training iteration, phase by phase: schedule, D step, G step, EMA. `training.loop.train` calls these in
order; a test or a benchmark can call each on its own (benchmarks/bench_iteration.py --trainer times exactly these).

    ctx = StepContext(...); state = RunState(...)
    lr, beta2, gamma, aug_p = apply_schedule(ctx.recipe, state)
    d_stats, bad = discriminator_step(ctx, state, gamma, measure_gradients=True, aug_p=aug_p)  # bad None: updated
    g_stats, bad = generator_step(ctx, state, aug_p=aug_p)
    ema_step(ctx, state, use_ema=True)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..losses import Augment, detached_stats, discriminator_objective, generator_objective
from . import distributed as dist_utils
from .augment import augment
from .ema import update_ema
from .recipes import Recipe
from .schedules import ema_beta, ema_half_life
from .stream import BatchStream, to_device
from .stylegan2_extras import generate, path_length_penalty


@dataclass
class RunState:
    """Everything that changes while a run trains; a checkpoint saves and loads it as one object."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    stream: BatchStream
    pl_mean: Tensor  # running mean path length (config A)
    images_seen: int = 0  # real images shown to D
    step: int = 0

    def state_dict(self) -> dict[str, Any]:
        return {"images_seen": self.images_seen, "step": self.step, "G": self.G.state_dict(),
                "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict(), "pl_mean": self.pl_mean.detach().cpu(),
                "batch_stream": self.stream.state()}

    def load_state_dict(self, state: dict[str, Any], load: Callable[[Any, Any, str], None] | None = None) -> None:
        """Weights, optimisers and position from `state`; `load(module, its_state, name)` loads each of the five
        (default: module.load_state_dict; the trainer's names the checkpoint when the shapes do not fit)."""
        for name in ("G", "D", "G_ema", "opt_G", "opt_D"):
            if load is None:
                getattr(self, name).load_state_dict(state[name])
            else:
                load(getattr(self, name), state[name], name)
        self.images_seen, self.step = int(state["images_seen"]), int(state["step"])
        self.pl_mean = state["pl_mean"].to(self.pl_mean.device)
        self.stream.set_state(state["batch_stream"])


@dataclass
class StepContext:
    """What every step reads and never changes: the recipe, the devices, the data."""

    recipe: Recipe
    env: dist_utils.DistEnv
    images: Tensor  # the whole dataset (on the device when small)
    labels: Tensor | None  # class labels when conditional
    memory_format: torch.memory_format
    use_amp: bool  # bf16 autocast
    fuse_penalties: bool | None  # losses.discriminator_objective's `fused`
    ortho_beta: float | None  # BigGAN's orthogonal regularisation of G (None = off)
    stats_on_device: bool = False  # statistics stay 0-d device tensors until read (no per-step host sync)

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def batch(self) -> int:
        """This rank's share of the global batch."""
        return self.recipe.batch // self.env.world_size

    def autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_amp)

    def draw_real(self, stream: BatchStream) -> tuple[Tensor, Tensor | None]:
        """This rank's rows of a real batch drawn for the global batch."""
        idx = to_device(stream.indices(self.recipe.batch, self.images.shape[0]), self.images.device)
        x = to_device(self.images[idx], self.device).contiguous(memory_format=self.memory_format)
        c = to_device(self.labels[idx], self.device) if self.labels is not None else None
        return x, c


def apply_schedule(recipe: Recipe, state: RunState) -> tuple[float, float, float, float]:
    """(lr, beta2, gamma, aug_p) at the images seen so far; lr and beta2 are set on both optimisers, gamma and
    aug_p go to the D and G steps."""
    t = state.images_seen
    lr, beta2, gamma, aug_p = recipe.lr(t), recipe.beta2(t), recipe.gamma(t), recipe.aug_p(t)
    for opt in (state.opt_G, state.opt_D):
        for group in opt.param_groups:
            group["lr"], group["betas"] = lr, (recipe.beta1, beta2)
    return lr, beta2, gamma, aug_p


def augmenter(p: float, stream: BatchStream) -> Augment | None:
    """ADA's augmentation at probability p drawing from the batch stream for the global batch (this rank keeps
    its rows); None when p == 0, so nothing is drawn and the step is what it was without augmentation."""
    if p == 0:
        return None
    return functools.partial(augment, p=p, generator=stream.gen, shard=(stream.rank, stream.world_size))


def discriminator_step(ctx: StepContext, state: RunState, gamma: float, measure_gradients: bool, check: bool = True,
                       aug_p: float = 0.0) -> tuple[dict[str, float], list[str] | None]:
    """Adversarial loss + (gamma/2)(R1 + R2) (paper Eq. 3-4); lazy for config A (every k steps, weight x k).

    aug_p: ADA's augmentation probability (training.augment) on the reals and fakes D sees, penalties included.

    Fakes come from G without gradient. D's input-gradient norms come free with the penalty's own gradients and
    are measured besides only when `measure_gradients` (the steps that write a log record). Returns the step's
    statistics and None, or the names of non-finite ones (D is then not updated; see _step_if_finite). check=False
    updates without reading the statistics (the loop checks them later: TrainConfig.guard_every).
    """
    recipe, G, D = ctx.recipe, state.G, state.D
    apply_penalty = recipe.penalty != "none" and state.step % recipe.penalty_interval == 0
    penalty = recipe.penalty if apply_penalty else "none"
    d_gamma = gamma * recipe.penalty_interval if apply_penalty else 0.0
    real, c = ctx.draw_real(state.stream)
    z = to_device(state.stream.normal(recipe.batch, G.z_dim), ctx.device)
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad(), ctx.autocast():
        fake = generate(G, z, c, recipe.style_mixing, state.stream, ctx.device)
    with ctx.autocast():
        d_obj, stats = discriminator_objective(D, real, fake.float(), recipe.loss, penalty, d_gamma, labels=c,
                                               measure_gradients=measure_gradients, fused=ctx.fuse_penalties,
                                               as_tensors=ctx.stats_on_device,
                                               augment=augmenter(aug_p, state.stream))
    state.opt_D.zero_grad(set_to_none=True)
    d_obj.float().mean().backward()
    dist_utils.all_reduce_grads(list(D.parameters()), ctx.env)
    stats["d_grad_norm"] = grad_norm(D, ctx.stats_on_device)
    w1, w2 = (d_gamma / 2 if "r1" in penalty else 0.0), (d_gamma / 2 if "r2" in penalty else 0.0)
    stats.update(r1_weight=w1, r2_weight=w2, penalty_steps=float(apply_penalty))
    return stats, _step_if_finite(state.opt_D, stats, ctx.env, check)


def generator_step(ctx: StepContext, state: RunState, check: bool = True, aug_p: float = 0.0
                   ) -> tuple[dict[str, float], list[str] | None]:
    """G's non-saturating loss on a fresh real batch paired with the fakes (RpGAN); for config A style mixing and,
    every k steps, path-length regularisation; BigGAN's orthogonal penalty when ctx.ortho_beta is set. aug_p: ADA's
    augmentation probability on what D sees (G's gradient passes through the augmentation)."""
    recipe, G, D, stream = ctx.recipe, state.G, state.D, state.stream
    real, c = ctx.draw_real(stream)
    z = to_device(stream.normal(recipe.batch, G.z_dim), ctx.device)
    G.requires_grad_(True)
    D.requires_grad_(False)
    with ctx.autocast():
        fake = generate(G, z, c, recipe.style_mixing, stream, ctx.device)
        g_obj, stats = generator_objective(D, fake, real if recipe.loss == "rpgan" else None, recipe.loss, labels=c,
                                           as_tensors=ctx.stats_on_device, augment=augmenter(aug_p, stream))
    g_total = g_obj.float().mean()
    if recipe.pl_interval is not None and state.step % recipe.pl_interval == 0:
        n_pl = recipe.batch // recipe.pl_batch_shrink
        z_pl = to_device(stream.normal(n_pl, G.z_dim), ctx.device)
        c_pl = ctx.labels[to_device(stream.indices(n_pl, ctx.labels.shape[0]), ctx.labels.device)] \
            if ctx.labels is not None else None
        pl_penalty, state.pl_mean, pl_length = path_length_penalty(G, z_pl, c_pl, state.pl_mean, recipe.pl_decay,
                                                                   stream, ctx.env)
        g_total = g_total + pl_penalty.mean() * recipe.pl_weight * recipe.pl_interval
        stats.update(detached_stats({"pl_penalty": pl_penalty.mean(), "pl_length": pl_length,
                                     "pl_mean": state.pl_mean}, ctx.stats_on_device), pl_steps=1.0)
    if ctx.ortho_beta is not None:
        from ..biggan import orthogonal_penalty_total

        ortho = orthogonal_penalty_total(G, ctx.ortho_beta)
        g_total = g_total + ortho.to(g_total.device)
        stats.update(detached_stats({"ortho_penalty": ortho}, ctx.stats_on_device))
    state.opt_G.zero_grad(set_to_none=True)
    g_total.backward()
    dist_utils.all_reduce_grads(list(G.parameters()), ctx.env)
    stats["g_grad_norm"] = grad_norm(G, ctx.stats_on_device)
    bad = _step_if_finite(state.opt_G, stats, ctx.env, check)
    D.requires_grad_(True)
    return stats, bad


def ema_step(ctx: StepContext, state: RunState, use_ema: bool) -> tuple[float, float]:
    """G_ema <- beta G_ema + (1 - beta) G, beta = 0.5 ** (batch / half-life); returns (half-life, beta)."""
    recipe = ctx.recipe
    half_life = ema_half_life(state.images_seen, recipe.ema_half_life, recipe.ema_rampup) if use_ema else 0.0
    beta = ema_beta(recipe.batch, half_life)
    update_ema(state.G_ema, state.G, beta)
    return half_life, beta


def grad_norm(module: nn.Module, as_tensor: bool = False) -> float | Tensor:
    """The total 2-norm of a module's parameter gradients (0 when none); a 0-d device tensor when as_tensor."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.nn.utils.get_total_norm(grads).detach()
    return norm if as_tensor else float(norm)


def nonfinite(*stats: dict[str, Any]) -> list[str]:
    """Names of the statistics (floats or 0-d tensors) that are not finite, over one or more steps' dicts (a name
    once per dict it is bad in): one host sync for all tensors."""
    items = [(k, v) for step in stats for k, v in step.items()]
    bad = [k for k, v in items if isinstance(v, float) and not math.isfinite(v)]
    tensors = [(k, v) for k, v in items if isinstance(v, Tensor)]
    if tensors:
        flags = torch.stack([v.float().reshape(()) for _, v in tensors]).isfinite().tolist()
        bad += [k for (k, _), ok in zip(tensors, flags) if not ok]
    return bad


def _step_if_finite(optimizer: torch.optim.Optimizer, stats: dict[str, float], env: dist_utils.DistEnv,
                    check: bool = True) -> list[str] | None:
    """Take the optimiser step when every statistic is finite on every rank and return None; otherwise skip it and
    return the names of this rank's non-finite statistics (empty when the bad value was on another rank).
    check=False steps without looking (the caller checks later)."""
    if not check:
        optimizer.step()
        return None
    bad = nonfinite(stats)
    if dist_utils.all_ranks(not bad, env):
        optimizer.step()
        return None
    return bad
