"""2D toys: Gaussian mixtures, small MLPs, a GAN / RpGAN trainer with R1 / R2, and mode metrics.

Sources:
* Mixtures and metrics: VEEGAN (Srivastava et al. 2017, Sec. 5.1) and PacGAN (Lin et al. 2018, Sec. 5):
  a ring of 8 Gaussians on the unit circle (std 0.01 in PacGAN) and a grid of 25 Gaussians at
  {-4, -2, 0, 2, 4}^2 (std 0.05); a sample is *high quality* within 3 std of its nearest mode; a mode is
  *covered* when it holds at least one high-quality sample; 2,500 generated samples.
* Losses and penalties: R3GAN (Huang et al. 2024) Sec. 2, through `losses.discriminator_objective` and
  `losses.generator_objective`; the comparison grid mirrors the paper's Table 1 ablation
  ({GAN, RpGAN} x {R1, R1 + R2}) and its Sec. 3.1 diagnosis that with R1 only D's gradient on fakes explodes.
* Optimiser: Adam with betas (0, 0.99) and one D step then one G step per iteration, as the paper's code.

Everything is deterministic given `ToyConfig.seed`: networks are initialised under a forked, seeded global
RNG and every batch is drawn from a private `torch.Generator`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..choices import require_choice, require_positive
from ..losses import LOSSES, PENALTIES, discriminator_objective, divergence_reason, generator_objective

DATASETS = ("ring", "grid")
STATUSES = ("ok", "fail")
RunKey = tuple[str, str, str, int]  # (dataset, loss, penalty, seed): the keys of train_grid's results
HISTORY_KEYS = ("step", "d_loss", "g_loss", "r1", "r2", "real_logits", "fake_logits",
                "grad_norm_real", "grad_norm_fake")


# ----------------------------------------------------------------------------------------------------------
# Mixtures (VEEGAN Sec. 5.1, PacGAN Sec. 5)

def ring_means(k: int = 8, radius: float = 1.0) -> Tensor:
    """k means at angles 2 pi j / k, j = 0 .. k-1 (not linspace(0, 2 pi, k), which repeats angle 0)."""
    require_positive("k", k)
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_means(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> Tensor:
    """The len(values)^2 means of the grid values x values, row-major in (x, y)."""
    v = torch.tensor(values, dtype=torch.float32)
    xs, ys = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def mixture_scale(name: str) -> float:
    """The largest |coordinate| of the mixture's means: 1 for the ring, 4 for the grid."""
    means, _ = mixture(name)
    return float(means.abs().max())


def mixture(name: str) -> tuple[Tensor, float]:
    """(means [K, 2], per-coordinate std) of the named mixture: 'ring' (8, std 0.01) or 'grid' (25, std 0.05)."""
    require_choice("dataset", name, DATASETS)
    if name == "ring":
        return ring_means(8), 0.01
    return grid_means(), 0.05


def sample_mixture(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n samples [n, 2] of the equal-weight isotropic Gaussian mixture `name`."""
    require_positive("n", n)
    means, std = mixture(name)
    idx = torch.randint(len(means), (n,), generator=generator)
    return means[idx] + std * torch.randn(n, 2, generator=generator)


# ----------------------------------------------------------------------------------------------------------
# Mode metrics (VEEGAN / PacGAN protocol)

@dataclass(frozen=True)
class ModeMetrics:
    """Mode coverage of a sample set.

    modes: modes with >= 1 high-quality sample. high_quality: fraction of samples within 3 std of their
    nearest mode (non-finite samples count as low quality). reverse_kl: KL(p || uniform_K) = sum p log(K p)
    of the mode histogram of the high-quality samples; inf when there is no high-quality sample.
    """

    modes: int
    num_modes: int
    high_quality: float
    reverse_kl: float
    counts: tuple[int, ...]


def nearest_mode(samples: Tensor, means: Tensor) -> tuple[Tensor, Tensor]:
    """(index of the nearest mean [N], Euclidean distance to it [N]); non-finite samples get distance inf."""
    samples = torch.as_tensor(samples, dtype=torch.float32)
    finite = torch.isfinite(samples).all(dim=1)
    safe = torch.where(finite[:, None], samples, torch.zeros_like(samples))
    dist = torch.cdist(safe, means)  # [N, K]
    d_min, idx = dist.min(dim=1)
    return idx, torch.where(finite, d_min, torch.full_like(d_min, math.inf))


def reverse_kl_uniform(counts: Tensor) -> float:
    """KL(p || uniform_K) = sum_k p_k log(K p_k), with 0 log 0 = 0; inf for an empty histogram."""
    counts = counts.to(torch.float64)
    total = counts.sum()
    if total <= 0:
        return math.inf
    p = counts / total
    k = len(counts)
    nz = p > 0
    return float((p[nz] * torch.log(k * p[nz])).sum())


def mode_metrics(samples: Tensor, name: str, n_std: float = 3.0) -> ModeMetrics:
    """VEEGAN / PacGAN metrics of `samples` [N, 2] against mixture `name` (high quality: within n_std std)."""
    means, std = mixture(name)
    require_positive("n_std", n_std)
    samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1, 2)
    if len(samples) == 0:
        raise ValueError("mode_metrics needs at least one sample")
    idx, dist = nearest_mode(samples, means)
    hq = dist <= n_std * std
    counts = torch.bincount(idx[hq], minlength=len(means))
    return ModeMetrics(modes=int((counts > 0).sum()), num_modes=len(means), high_quality=float(hq.float().mean()),
                       reverse_kl=reverse_kl_uniform(counts), counts=tuple(int(c) for c in counts))


def uniform_baseline(name: str, n: int = 2500, seed: int = 0, margin: float = 1.3) -> ModeMetrics:
    """Mode metrics of n samples uniform on the square [-margin s, margin s]^2 (s = mixture_scale(name)).

    A reference for what pure noise scores: with std-sized high-quality discs a spread-out sampler still
    covers many modes by chance: mode counts count noise too, so coverage alone is weak evidence.
    """
    half = margin * mixture_scale(name)
    x = (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * half
    return mode_metrics(x, name)


# ----------------------------------------------------------------------------------------------------------
# Networks: small MLPs, leaky ReLU, no normalisation (the paper's Sec. 3 rule: no normalisation layers)

def mlp(in_dim: int, out_dim: int, width: int, depth: int) -> nn.Sequential:
    """`depth` hidden Linear + LeakyReLU(0.2) layers of `width`, then a Linear to `out_dim`."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    """z [N, z_dim] -> x = scale * mlp(z) [N, 2]; `scale` (a fixed number) puts unit outputs at the data's size."""

    def __init__(self, z_dim: int, width: int, depth: int, scale: float = 1.0) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.scale = scale
        self.net = mlp(z_dim, 2, width, depth)

    def forward(self, z: Tensor) -> Tensor:
        return self.scale * self.net(z)


class ToyDiscriminator(nn.Module):
    """x [N, 2] -> logit mlp(x / scale) [N] (higher = more real); `scale` is a fixed input scaling."""

    def __init__(self, width: int, depth: int, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.net = mlp(2, 1, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x / self.scale).squeeze(1)


# ----------------------------------------------------------------------------------------------------------
# Training

@dataclass(frozen=True)
class ToyConfig:
    """One toy run. Defaults are the book's cpu-profile choices (the chapter notebooks/02_toy_2d.py says why)."""

    dataset: str = "ring"          # 'ring' (8 modes) | 'grid' (25 modes)
    loss: str = "rpgan"            # 'gan' | 'rpgan'
    penalty: str = "r1+r2"         # 'none' | 'r1' | 'r2' | 'r1+r2'
    gamma: float = 0.1             # D adds (gamma / 2) * each switched-on penalty (code convention, losses.py)
    penalty_interval: int = 1      # lazy regularisation: the penalty on every k-th D step only, weight k * gamma
    steps: int = 2000              # iterations; each is one D step then one G step
    batch: int = 256
    z_dim: int = 2                 # a 2D latent suffices for a 2D target and trained faster than 16 here
    width: int = 64
    depth: int = 3                 # hidden layers in G and in D
    lr: float = 3e-3               # G and D at step 0; Adam with the betas below
    lr_final: float | None = 1e-5  # cosine-decayed to this by the last step (paper Sec. 5 schedule); None = constant
    betas: tuple[float, float] = (0.0, 0.99)  # the paper's Adam: no momentum
    log_every: int = 10            # history holds the mean over each window of this many steps
    samples: int = 2500            # generated samples for the final metrics (VEEGAN / PacGAN use 2,500)
    blowup: float = 1e4            # divergence: a loss, a mean gradient norm or the logit gap above this
    seed: int = 0
    snapshot_every: int = 0        # > 0: keep G's points and D's logits every this many steps (the explorable's)
    snapshot_points: int = 160     # fixed-z samples per snapshot
    snapshot_grid: int = 20        # D's logits on a snapshot_grid x snapshot_grid grid over the plot window

    def __post_init__(self) -> None:
        validate_config(self)


def validate_config(cfg: ToyConfig) -> None:
    """Raise ValueError naming the valid choices or bounds for any bad field of `cfg`."""
    require_choice("dataset", cfg.dataset, DATASETS)
    require_choice("loss", cfg.loss, LOSSES)
    require_choice("penalty", cfg.penalty, PENALTIES)
    require_positive("gamma", cfg.gamma, allow_zero=True)
    for what in ("steps", "batch", "z_dim", "width", "depth", "log_every", "samples", "penalty_interval"):
        value = getattr(cfg, what)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{what} must be an int, got {value!r}")
        require_positive(what, value)
    require_positive("lr", cfg.lr)
    if cfg.lr_final is not None:
        require_positive("lr_final", cfg.lr_final)
    require_positive("blowup", cfg.blowup)
    for what in ("snapshot_every", "snapshot_points", "snapshot_grid"):
        value = getattr(cfg, what)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if what == "snapshot_every" else 2):
            raise ValueError(f"{what} must be an int >= {0 if what == 'snapshot_every' else 2}, got {value!r}")
    if len(cfg.betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in cfg.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {cfg.betas!r}")


@dataclass
class ToyResult:
    """What one run produced. `fail_step` / `fail_reason` are set when status is 'fail'."""

    config: ToyConfig
    status: str                     # 'ok' | 'fail'
    history: dict[str, list[float]]  # HISTORY_KEYS -> one value per log window (window means)
    samples: Tensor                 # [config.samples, 2] from G at the end (or at the failing step)
    metrics: ModeMetrics
    fail_step: int | None = None
    fail_reason: str = ""
    wall_s: float = 0.0
    snapshots: list[Snapshot] = field(default_factory=list)  # with config.snapshot_every > 0
    generator: dict[str, Tensor] | None = None  # G's final state dict: `samples` re-derive from it (final_samples)

    def final(self, key: str) -> float:
        """The last recorded value of history[key] (nan when nothing was recorded)."""
        values = self.history.get(key, [])
        return float(values[-1]) if values else math.nan

    def peak(self, key: str) -> float:
        """The largest recorded value of history[key] (inf if any is non-finite, nan when empty)."""
        values = self.history.get(key, [])
        if not values:
            return math.nan
        return math.inf if not all(math.isfinite(v) for v in values) else float(max(values))


@dataclass(frozen=True)
class Snapshot:
    """G and D at one step: G's points for a fixed z, and D's logits on a grid over the plot window."""

    step: int
    points: np.ndarray   # [snapshot_points, 2]
    logits: np.ndarray   # [snapshot_grid, snapshot_grid]; logits[i, j] at (x_j, y_i)
    lim: float


def plot_limit(dataset: str) -> float:
    """Half the side of the square every toy figure shows: 1.5 x the largest |mean coordinate|."""
    return mixture_scale(dataset) * 1.5


@torch.no_grad()
def take_snapshot(cfg: ToyConfig, step: int, G: ToyGenerator, D: ToyDiscriminator, z: Tensor) -> Snapshot:
    """G(z) and D on the plot window's grid; no effect on training (no gradient, no random numbers drawn)."""
    lim = plot_limit(cfg.dataset)
    axis = torch.linspace(-lim, lim, cfg.snapshot_grid)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    logits = D(torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=1)).reshape(cfg.snapshot_grid, cfg.snapshot_grid)
    return Snapshot(step=step, points=G(z).numpy().copy(), logits=logits.numpy().copy(), lim=lim)


def build_networks(cfg: ToyConfig) -> tuple[ToyGenerator, ToyDiscriminator]:
    """G and D initialised from `cfg.seed` without touching the caller's global RNG state."""
    scale = mixture_scale(cfg.dataset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return ToyGenerator(cfg.z_dim, cfg.width, cfg.depth, scale), ToyDiscriminator(cfg.width, cfg.depth, scale)


# Paper Sec. 5 (official presets): v = b + (f - b)(1 - cos(pi t / T)) / 2 from base b to final f over T.
def cosine_schedule(base: float, final: float, t: float, total: float) -> float:
    """The value of a cosine ramp from `base` (t = 0) to `final` (t >= total), held after `total`."""
    frac = min(max(t / total, 0.0), 1.0) if total > 0 else 1.0
    return base + (final - base) * (1 - math.cos(math.pi * frac)) / 2


def params_finite(*modules: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for m in modules for p in m.parameters())


@torch.no_grad()
def generate(generator: ToyGenerator, n: int, rng: torch.Generator) -> Tensor:
    """n samples [n, 2] from G with z ~ N(0, I) drawn from `rng`."""
    return generator(torch.randn(n, generator.z_dim, generator=rng))


def train_toy(cfg: ToyConfig, progress: bool = True) -> ToyResult:
    """Train G and D on `cfg.dataset`; never raises on divergence: returns status 'fail' with the step.

    One iteration = one D step (losses.discriminator_objective) then one G step (losses.generator_objective),
    as the paper's code. The history holds window means of D's statistics, G's loss and D's gradient norms.
    """
    t0 = time.perf_counter()
    G, D = build_networks(cfg)
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))  # floats: torch rejects an int 0 here
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=betas)
    rng = torch.Generator().manual_seed(cfg.seed + 1)  # every real batch and every z of training
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    window: dict[str, float] = dict.fromkeys(HISTORY_KEYS[1:], 0.0)
    in_window, status, fail_step, reason = 0, "ok", None, ""
    snapshots: list[Snapshot] = []
    if cfg.snapshot_every:  # a z of its own, so that snapshots draw nothing from the training generator
        snap_z = torch.randn(cfg.snapshot_points, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 3))
        snapshots.append(take_snapshot(cfg, 0, G, D, snap_z))
    bar = tqdm(range(1, cfg.steps + 1), desc=f"{cfg.dataset} {cfg.loss} {cfg.penalty}", disable=not progress,
               leave=False)
    for step in bar:
        # Schedule.
        if cfg.lr_final is not None:
            lr = cosine_schedule(cfg.lr, cfg.lr_final, step - 1, cfg.steps - 1)
            for group in (*opt_g.param_groups, *opt_d.param_groups):
                group["lr"] = lr
        # D step: fakes made without G's graph (the objective detaches them anyway).
        real = sample_mixture(cfg.dataset, cfg.batch, rng)
        fake = generate(G, cfg.batch, rng)
        d_obj, stats = discriminator_objective(D, real, fake, cfg.loss, *lazy_penalty(cfg, step))
        opt_d.zero_grad(set_to_none=True)
        d_obj.mean().backward()
        opt_d.step()
        # G step: fresh z and, for RpGAN, a fresh real batch to pair with.
        real = sample_mixture(cfg.dataset, cfg.batch, rng)
        fake = G(torch.randn(cfg.batch, cfg.z_dim, generator=rng))
        g_obj, g_stats = generator_objective(D, fake, real, cfg.loss)
        opt_g.zero_grad(set_to_none=True)
        g_obj.mean().backward()
        opt_g.step()
        # Divergence check, then log the window mean every `log_every` steps (and at the end or the failure).
        stats.update(g_stats)
        log_now = step % cfg.log_every == 0 or step == cfg.steps
        reason = divergence_reason(stats, cfg.blowup)
        if not reason and log_now and not params_finite(G, D):
            reason = "a parameter is not finite"
        for key in window:
            window[key] += stats[key]
        in_window += 1
        if log_now or reason:
            history["step"].append(float(step))
            for key in window:
                history[key].append(window[key] / in_window)
                window[key] = 0.0
            in_window = 0
        if cfg.snapshot_every and (step % cfg.snapshot_every == 0 or step == cfg.steps or reason):
            snapshots.append(take_snapshot(cfg, step, G, D, snap_z))
        if reason:
            status, fail_step = "fail", step
            break
    bar.close()
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    samples = final_samples(cfg, state)
    return ToyResult(config=cfg, status=status, history=history, samples=samples,
                     metrics=mode_metrics(samples, cfg.dataset), fail_step=fail_step, fail_reason=reason,
                     wall_s=time.perf_counter() - t0, snapshots=snapshots, generator=state)


def final_samples(cfg: ToyConfig, generator_state: dict[str, Tensor]) -> Tensor:
    """The `cfg.samples` points a run's metrics are measured on: its final G (a state dict) on latents of a seed of
    their own (cfg.seed + 2), so that stored weights give the stored samples back exactly."""
    G, _ = build_networks(cfg)
    G.load_state_dict(generator_state)
    return generate(G, cfg.samples, torch.Generator().manual_seed(cfg.seed + 2))


def untrained_baseline(cfg: ToyConfig) -> ModeMetrics:
    """The mode metrics of cfg's generator before any step (initialised from cfg.seed), on the same latents a trained
    run is measured on: the baseline a trained run must beat to count as trained."""
    G, _ = build_networks(cfg)
    return mode_metrics(final_samples(cfg, G.state_dict()), cfg.dataset)


def save_results(results: dict[RunKey, ToyResult], path: Path) -> None:
    """Store a grid of runs in one file (tensors, numbers and strings only: loads with weights_only=True)."""
    runs = []
    for key, r in results.items():
        runs.append({"key": list(key), "config": asdict(r.config), "status": r.status, "history": r.history,
                     "samples": r.samples, "metrics": asdict(r.metrics), "fail_step": r.fail_step,
                     "fail_reason": r.fail_reason, "wall_s": r.wall_s, "generator": r.generator,
                     "snapshots": [{"step": s.step, "points": torch.from_numpy(s.points),
                                    "logits": torch.from_numpy(s.logits), "lim": s.lim} for s in r.snapshots]})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(runs, tmp)
    tmp.replace(path)


def load_results(path: Path) -> dict[RunKey, ToyResult]:
    """The grid `save_results` stored, as train_grid returned it."""
    runs = torch.load(path, map_location="cpu", weights_only=True)
    out: dict[RunKey, ToyResult] = {}
    for run in runs:
        config = ToyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in run["config"].items()})
        snapshots = [Snapshot(step=s["step"], points=s["points"].numpy(), logits=s["logits"].numpy(), lim=s["lim"])
                     for s in run["snapshots"]]
        out[tuple(run["key"])] = ToyResult(
            config=config, status=run["status"], history=run["history"], samples=run["samples"],
            metrics=ModeMetrics(**run["metrics"]), fail_step=run["fail_step"], fail_reason=run["fail_reason"],
            wall_s=run["wall_s"], snapshots=snapshots, generator=run["generator"])
    return out


def lazy_penalty(cfg: ToyConfig, step: int) -> tuple[str, float]:
    """(penalty, gamma) of D step `step` (from 1): cfg's penalty at weight k * gamma on steps 1, k + 1, 2k + 1, ...
    and none in between (k = cfg.penalty_interval; k = 1 is the penalty on every step, as the paper trains)."""
    k = cfg.penalty_interval
    if k == 1:
        return cfg.penalty, cfg.gamma
    return (cfg.penalty, k * cfg.gamma) if (step - 1) % k == 0 else ("none", 0.0)


def config_from_settings(settings: dict[str, Any]) -> ToyConfig:
    """A ToyConfig from a profile's settings (r3gan_core.book.profiles): keys that are ToyConfig fields are used."""
    names = set(ToyConfig.__dataclass_fields__)
    return ToyConfig(**{k: v for k, v in settings.items() if k in names})


def images_seen(results: dict[RunKey, ToyResult]) -> int:
    """Real samples D saw over all runs: batch per completed D step."""
    return sum(r.config.batch * (r.fail_step or r.config.steps) for r in results.values())


def train_grid(base: ToyConfig, datasets: tuple[str, ...] = DATASETS, losses: tuple[str, ...] = LOSSES,
               penalties: tuple[str, ...] = PENALTIES, seeds: tuple[int, ...] = (0,),
               progress: bool = True) -> dict[RunKey, ToyResult]:
    """Run every (dataset, loss, penalty, seed) from `base`; keys are those tuples, in that order."""
    combos = list(product(datasets, losses, penalties, seeds))
    results: dict[RunKey, ToyResult] = {}
    for dataset, loss, penalty, seed in tqdm(combos, desc="toy grid", disable=not progress):
        cfg = replace(base, dataset=dataset, loss=loss, penalty=penalty, seed=seed)
        results[(dataset, loss, penalty, seed)] = train_toy(cfg, progress=False)
    return results


# ----------------------------------------------------------------------------------------------------------
# Summaries and verdicts

def summary_rows(results: dict[RunKey, ToyResult]) -> list[dict[str, Any]]:
    """One flat row per run: dataset, loss, penalty, seed, status, fail_step, modes, hq, kl, grad norms."""
    rows = []
    for (dataset, loss, penalty, seed), r in results.items():
        rows.append({
            "dataset": dataset, "loss": loss, "penalty": penalty, "seed": seed, "status": r.status,
            "fail_step": r.fail_step, "modes": r.metrics.modes, "num_modes": r.metrics.num_modes,
            "hq": round(r.metrics.high_quality, 4), "kl": round(r.metrics.reverse_kl, 4),
            "grad_norm_real": r.final("grad_norm_real"), "grad_norm_fake": r.final("grad_norm_fake"),
            "peak_grad_norm_fake": r.peak("grad_norm_fake"), "wall_s": round(r.wall_s, 1),
        })
    return rows


def _median(values: list[float]) -> float:
    """Median ignoring None and nan (inf is kept: a KL of inf means no high-quality sample); nan if empty."""
    kept = [float(v) for v in values if v is not None and not math.isnan(v)]
    return float(np.median(kept)) if kept else math.nan


def headline_metrics(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """'dataset/loss/penalty' -> status ('fail' if any seed failed), fails, seeds, and medians over seeds of
    modes, hq, kl and the final and peak gradient norms of D on reals and fakes."""
    out: dict[str, dict[str, Any]] = {}
    keys = sorted({(r["dataset"], r["loss"], r["penalty"]) for r in rows})
    for dataset, loss, penalty in keys:
        rs = [r for r in rows if (r["dataset"], r["loss"], r["penalty"]) == (dataset, loss, penalty)]
        fails = sum(r["status"] == "fail" for r in rs)
        out[f"{dataset}/{loss}/{penalty}"] = {
            "status": "fail" if fails else "ok", "fails": fails, "seeds": len(rs),
            "fail_step": min((r["fail_step"] for r in rs if r["fail_step"] is not None), default=None),
            "modes": _median([r["modes"] for r in rs]), "num_modes": rs[0]["num_modes"],
            **{k: _median([r[k] for r in rs])
               for k in ("hq", "kl", "grad_norm_real", "grad_norm_fake", "peak_grad_norm_fake")},
        }
    return out


def verdict_word(ok: bool, partly: bool = False) -> str:
    return "REPRODUCES" if ok else ("PARTLY REPRODUCES" if partly else "DOES NOT REPRODUCE")


def claim_verdicts(rows: list[dict[str, Any]], dataset: str, explode_ratio: float = 10.0) -> list[str]:
    """One sentence per claim, decided from the measured `rows` of `dataset` (medians over seeds).

    Claims: (1) Table 1: with R1 only, both GAN and RpGAN fail; (2) Sec. 3.1: with R1 only, D's gradient on fakes
    explodes (reproduces if an R1-only run failed or its peak fake-gradient norm is >= `explode_ratio` x that
    of the same loss with R1 + R2; partly if it is only higher); (3) Table 1: with R1 + R2 both losses train;
    (4) Table 1: RpGAN + R1 + R2 covers at least as many modes as GAN + R1 + R2 with a lower reverse KL
    (compared seed by seed: reproduces if it holds for every seed, two or more, and the KL ranges over seeds
    do not overlap; partly if it holds for some seed);
    (5) Table 1: RpGAN + R1 + R2 covers every mode; (6) Sec. 2.2 (Dirac-GAN): without a penalty training does
    not settle (here: D's final gradient norm on reals >= `explode_ratio` x that with R1 + R2, or a failure).
    """
    require_choice("dataset", dataset, DATASETS)
    sel = [r for r in rows if r["dataset"] == dataset]
    if not sel:
        raise ValueError(f"no rows for dataset {dataset!r}")

    def runs(loss: str, penalty: str) -> list[dict[str, Any]]:
        return [r for r in sel if r["loss"] == loss and r["penalty"] == penalty]

    def fails(loss: str, penalty: str) -> str:
        rs = runs(loss, penalty)
        return f"{sum(r['status'] == 'fail' for r in rs)}/{len(rs)} runs failed"

    def med(loss: str, penalty: str, key: str) -> float:
        return _median([r[key] for r in runs(loss, penalty)])

    out = []
    r1_fail = all(r["status"] == "fail" for lo in LOSSES for r in runs(lo, "r1"))
    r1_some = any(r["status"] == "fail" for lo in LOSSES for r in runs(lo, "r1"))
    out.append(f"[{dataset}] Claim 1 (R1 alone fails for GAN and RpGAN): {verdict_word(r1_fail, r1_some)} "
               f"(GAN + R1: {fails('gan', 'r1')}; RpGAN + R1: {fails('rpgan', 'r1')}).")

    parts, explode, higher = [], True, True
    for lo in LOSSES:
        failed = any(r["status"] == "fail" for r in runs(lo, "r1"))
        peak_r1, peak_both = med(lo, "r1", "peak_grad_norm_fake"), med(lo, "r1+r2", "peak_grad_norm_fake")
        ratio = peak_r1 / peak_both if peak_both > 0 else math.inf
        explode &= failed or ratio >= explode_ratio
        higher &= failed or ratio > 1
        parts.append(f"{lo.upper()}: peak {peak_r1:.3g} with R1 vs {peak_both:.3g} with R1 + R2, x{ratio:.2f}"
                     + (", an R1 run failed" if failed else ""))
    out.append(f"[{dataset}] Claim 2 (with R1 only, D's gradient on fakes explodes): "
               f"{verdict_word(explode, higher)} ({'; '.join(parts)}; explosion threshold x{explode_ratio:g}).")

    both_ok = all(r["status"] == "ok" for lo in LOSSES for r in runs(lo, "r1+r2"))
    out.append(f"[{dataset}] Claim 3 (with R1 + R2 both losses train): {verdict_word(both_ok)} "
               f"(GAN + R1 + R2: {fails('gan', 'r1+r2')}; RpGAN + R1 + R2: {fails('rpgan', 'r1+r2')}).")

    m_gan, m_rp = med("gan", "r1+r2", "modes"), med("rpgan", "r1+r2", "modes")
    gan_by_seed = {r["seed"]: r for r in runs("gan", "r1+r2")}
    pairs = [(r, gan_by_seed[r["seed"]]) for r in runs("rpgan", "r1+r2") if r["seed"] in gan_by_seed]
    wins = sum(rp["modes"] >= ga["modes"] and rp["kl"] < ga["kl"] for rp, ga in pairs)

    def kl_range(loss: str) -> str:
        kls = [r["kl"] for r in runs(loss, "r1+r2")]
        return f"{min(kls):.3f}" if len(kls) == 1 else f"{min(kls):.3f}-{max(kls):.3f}"

    caveat = "; one seed cannot settle a comparison" if len(pairs) < 2 else ""
    kl_rp_all, kl_gan_all = [r["kl"] for r in runs("rpgan", "r1+r2")], [r["kl"] for r in runs("gan", "r1+r2")]
    separated = bool(kl_rp_all and kl_gan_all) and max(kl_rp_all) < min(kl_gan_all)
    if len(pairs) >= 2 and wins == len(pairs) and not separated:
        caveat = "; the KL ranges over seeds overlap"
    out.append(f"[{dataset}] Claim 4 (RpGAN + R1 + R2 covers as many modes as GAN + R1 + R2 or more, with a "
               f"lower KL): {verdict_word(len(pairs) >= 2 and wins == len(pairs) and separated, wins > 0)} "
               f"(better in {wins}/{len(pairs)} seeds; median modes {m_rp:g} vs {m_gan:g}; reverse KL "
               f"{kl_range('rpgan')} vs {kl_range('gan')}{caveat}).")

    k = sel[0]["num_modes"]
    out.append(f"[{dataset}] Claim 5 (RpGAN + R1 + R2 covers every mode): {verdict_word(m_rp >= k)} "
               f"({m_rp:g} of {k} modes).")

    parts, unsettled = [], True
    for lo in LOSSES:
        failed = any(r["status"] == "fail" for r in runs(lo, "none"))
        g_none, g_both = med(lo, "none", "grad_norm_real"), med(lo, "r1+r2", "grad_norm_real")
        ratio = g_none / g_both if g_both > 0 else math.inf
        unsettled &= failed or ratio >= explode_ratio
        parts.append(f"{lo.upper()}: {g_none:.3g} without a penalty vs {g_both:.3g} with R1 + R2, x{ratio:.2f}"
                     + (", a run failed" if failed else ""))
    out.append(f"[{dataset}] Claim 6 (without a penalty D does not settle; final gradient norm on reals): "
               f"{verdict_word(unsettled)} ({'; '.join(parts)}; threshold x{explode_ratio:g}).")
    return out


# ----------------------------------------------------------------------------------------------------------
# Figures (kept here so the chapter stays a list of calls)

def plot_mixtures(names: tuple[str, ...] = DATASETS, n: int = 2500, seed: int = 0, width: float = 7.8):
    """One panel per mixture: n true samples, the means, and the 3-std high-quality radius around each mean.
    width: the figure's width in inches (the book's text column)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(width, width / len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        means, std = mixture(name)
        x = sample_mixture(name, n, torch.Generator().manual_seed(seed)).numpy()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, color="C0", rasterized=True)
        for mx, my in means.tolist():
            ax.add_patch(plt.Circle((mx, my), 3 * std, fill=False, color="C3", linewidth=0.8))
        lim = mixture_scale(name) * 1.3
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"{name}: {len(means)} modes, std {std:g}", fontsize=10)
    fig.suptitle("true samples (blue) and the 3-std circle around each mean (red)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_sample_grid(results: dict[RunKey, ToyResult], dataset: str, seed: int = 0,
                     losses: tuple[str, ...] = LOSSES, penalties: tuple[str, ...] = PENALTIES, width: float = 7.8):
    """Small multiples: rows = losses, columns = penalties; generated samples over the mixture's means.
    width: the figure's width in inches (the book's text column)."""
    import matplotlib.pyplot as plt

    means, std = mixture(dataset)
    lim = plot_limit(dataset)
    panel = width / len(penalties)
    fig, axes = plt.subplots(len(losses), len(penalties), figsize=(width, (panel + 0.45) * len(losses) + 0.3),
                             squeeze=False, sharex=True, sharey=True)
    for (i, lo), (j, pe) in product(enumerate(losses), enumerate(penalties)):
        ax, r = axes[i, j], results[(dataset, lo, pe, seed)]
        x = r.samples[torch.isfinite(r.samples).all(dim=1)].numpy()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.35, color="C0", rasterized=True)
        ax.scatter(means[:, 0], means[:, 1], s=25, marker="x", color="C3", linewidths=1)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        m = r.metrics
        tag = (f"FAIL @ {r.fail_step}" if r.status == "fail"
               else f"{m.modes}/{m.num_modes} modes, hq {m.high_quality:.2f}")
        ax.set_title(f"{lo.upper()} + {pe}\n{tag}", fontsize=9, color="C3" if r.status == "fail" else "black")
    fig.suptitle(f"{dataset}: final samples (blue) and true means (red x), seed {seed}", fontsize=11)
    fig.tight_layout()
    return fig


def history_frame(results: dict[RunKey, ToyResult], dataset: str):
    """Long pandas frame of D's gradient norms: step, loss, penalty, seed, on ('reals' | 'fakes'), grad_norm."""
    import pandas as pd

    frames = []
    for (ds, lo, pe, seed), r in results.items():
        if ds != dataset:
            continue
        for on, key in (("reals", "grad_norm_real"), ("fakes", "grad_norm_fake")):
            frames.append(pd.DataFrame({"step": r.history["step"], "grad_norm": r.history[key], "loss": lo,
                                        "penalty": pe, "seed": seed, "on": on}))
    return pd.concat(frames, ignore_index=True)


def plot_grad_norms(results: dict[RunKey, ToyResult], dataset: str):
    """D's mean gradient norm on reals and on fakes over training; one panel per loss, hue = penalty, log y."""
    import seaborn as sns

    frame = history_frame(results, dataset)
    frame = frame[np.isfinite(frame["grad_norm"]) & (frame["grad_norm"] > 0)]
    g = sns.relplot(data=frame, x="step", y="grad_norm", hue="penalty", style="on", col="loss", kind="line",
                    hue_order=list(PENALTIES), style_order=["reals", "fakes"], errorbar=None,
                    height=3.0, aspect=1.3, facet_kws={"sharey": True})
    g.set(yscale="log")
    g.set_axis_labels("step", r"mean $\|\nabla_x D(x)\|$")
    sns.move_legend(g, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, title=None, frameon=False, fontsize=9)
    g.figure.suptitle(f"{dataset}: D's gradient norm on reals and on fakes", y=1.16)
    return g.figure
