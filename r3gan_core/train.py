"""The device-agnostic trainer for roadmap configs A-E: CPU, one GPU (bf16 autocast, channels_last) or several
(torchrun; gradients all-reduced in one place, see `distributed`).

How a chapter calls it::

    from r3gan_core.train import TrainConfig, train
    result = train(TrainConfig(config="E", preset="stacked8", total_images=64_000, out_dir="runs/e-stacked8",
                               log_every=6_400, sample_every=32_000, progress=False))
    result.status           # "ok", or "diverged" (a diverged run returns normally: Table 1's "fail")
    result.records[-1]      # last log record: losses, R1/R2, logits, D's input-gradient norms, lr, gamma, ...
    result.G_ema            # the averaged generator (on the training device)
    result.samples[-1]      # (images seen, fixed-noise samples N x C x H x W in [-1, 1]) for a figure

From a shell: ``r3gan train --config E --preset stacked8 --total-images 64000 --out-dir runs/e``, and on
several GPUs ``torchrun --nproc_per_node=4 -m r3gan_core.cli train ...`` (the global batch is split over ranks).

One iteration, in this order (counted in real images shown to D, as EDM2 counts kimg):
  schedule   lr, beta2, gamma, EMA half-life from the recipe's cosines at the current image count
  D step     fakes from G (no grad), discriminator_objective (adversarial + (gamma/2)(R1 + R2)); for config A
             the penalty only every 16 steps with its weight multiplied by 16 (lazy R1)
  G step     a fresh real batch (RpGAN pairs it with the fakes), generator_objective; for config A style
             mixing and, every 4 steps, path-length regularisation; optional BigGAN orthogonal penalty
  EMA        G_ema <- beta G_ema + (1 - beta) G with beta = 0.5 ** (batch / half-life)
  log, samples, spectra, checkpoint at their image intervals

Randomness. Everything that decides a batch (real indices, latents, mixing cut-offs, path-length noise) is
drawn for the *global* batch from one generator seeded with `seed` and identical on every rank; rank r keeps
rows [r * b, (r + 1) * b) of it. So two processes with half batches see exactly the samples one process with
the full batch sees, and DDP equality is testable. Torch's global generator is seeded with seed + rank and
serves only randomness inside the networks (config A's noise inputs).

Files under out_dir (main rank only): checkpoint.pt (atomic), log.jsonl (one record per log interval),
spectral.jsonl, samples/<images>.png, train_metrics.json (status, written atomically), config.json. A fresh
run in an existing out_dir replaces the earlier run's files; resume="auto" continues it instead (and returns
at once, with its records and networks, when it already reached total_images).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import checkpoint as ckpt_io
from . import distributed as dist_utils
from .choices import require_choice, require_positive
from .ema import make_ema, update_ema
from .losses import discriminator_objective, divergence_reason, generator_objective
from .recipes import PRESETS, Recipe, make_recipe
from .report import atomic_open, device_description, git_commit, jsonable, write_json_atomic
from .schedules import ema_beta, ema_half_life

AMP_CHOICES = ("auto", "bf16", "off")
CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
SPECTRAL_NAME = "spectral.jsonl"
METRICS_NAME = "train_metrics.json"


@dataclass
class TrainConfig:
    """One training run. Intervals count images (not steps); None on an interval = never."""

    # What to train
    config: str = "E"  # roadmap configuration "A".."E"
    preset: str = "digits8"  # network and schedule preset (recipes.PRESETS)
    dataset: str | None = None  # r3gan_core.data.load_dataset spec; None = the preset's default
    conditional: bool = False
    max_items: int | None = None  # dataset size (stacked: how many stacks); None = the loader's default
    network: dict[str, Any] = field(default_factory=dict)  # keyword overrides for networks.build
    # How long, how big
    batch: int | None = None  # global batch over all ranks; None = the recipe's
    total_images: int | None = None  # real images shown to D; None = the recipe's
    # Recipe overrides (None = the recipe's). Scheduled ones take a number (constant) or a (base, final) pair.
    loss: str | None = None  # 'gan' | 'rpgan'
    penalty: str | None = None  # 'none' | 'r1' | 'r2' | 'r1+r2'
    gamma: float | tuple[float, float] | None = None
    lr: float | tuple[float, float] | None = None
    beta2: float | tuple[float, float] | None = None
    ema_half_life: float | tuple[float, float] | None = None  # images
    schedule_images: int | None = None  # T of every cosine
    penalty_interval: int | None = None  # apply R1/R2 every k D steps with weight x k (16 = StyleGAN2's lazy R1)
    pl_interval: int | None = None  # path length every k G steps; 0 = off (needs G.mapping / G.synthesis)
    style_mixing: float | None = None  # probability; 0 = off
    ema: bool = True  # False: G_ema is a plain copy of G
    ortho_beta: float | None = None  # None = off; BigGAN's 1e-4 adds orthogonal_penalty_total(G) to G's loss
    # Divergence rule beyond non-finite values (losses.divergence_reason, the 2D toys' rule): a log record whose
    # loss, mean input-gradient norm of D or logit gap exceeds `blowup` stops the run as "diverged". None = off.
    blowup: float | None = None
    # Reproducibility and output
    seed: int = 0
    out_dir: str | None = None  # None = write nothing
    resume: str | None = None  # a checkpoint path, or 'auto' = out_dir/checkpoint.pt if it exists
    log_every: int = 10_000  # images between log records
    sample_every: int | None = None  # images between fixed-noise sample grids (also one at start and end)
    sample_count: int = 64
    checkpoint_every: int | None = None  # images; the start and the end are always checkpointed (with out_dir)
    spectral_every: int | None = None  # images between sigma_0 of every G and D weight (biggan.spectral_norms)
    spectral_iters: int = 20  # power iterations per spectral measurement
    # Hardware
    device: str = "auto"  # 'auto' = CUDA, then MPS, then CPU (report.pick_device)
    amp: str = "auto"  # 'auto' = bf16 autocast on CUDA only; 'bf16'; 'off'
    channels_last: bool | None = None  # None = on CUDA only
    progress: bool = True  # tqdm bar on the main rank
    threads: int | None = None  # torch CPU threads during the run (restored after); None = leave as is.
    # One thread is much faster for tiny networks and on a CPU shared with other processes (measured here:
    # 170 vs 14 img/s for E on stacked8 at load 6 on 2 cores, OpenMP workers spin-waiting for busy cores).

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        # JSON and checkpoints hold (base, final) pairs as lists; `network` keeps its lists (widths)
        return cls(**{k: (tuple(v) if isinstance(v, list) and k != "network" else v)
                      for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    status: str  # "ok" | "diverged"
    message: str
    images_seen: int
    steps: int
    wall_time: float  # seconds spent in this call
    records: list[dict[str, Any]]  # log records (a resumed run includes the earlier ones)
    spectral: list[dict[str, Any]]  # {"images_seen", "G": {name: sigma_0}, "D": {...}} per measurement
    samples: list[tuple[int, Tensor]]  # (images seen, fixed-noise G_ema samples on the CPU, in [-1, 1])
    checkpoint_path: Path | None  # the last good checkpoint
    log_path: Path | None
    metrics_path: Path | None
    G_ema: nn.Module
    G: nn.Module
    D: nn.Module
    config: TrainConfig
    recipe: Recipe


# ---------------------------------------------------------------------------------------------------------
# Building blocks: recipe, networks, data, the shared batch stream
# ---------------------------------------------------------------------------------------------------------
def recipe_for(cfg: TrainConfig) -> Recipe:
    """The recipe of cfg.config at cfg.preset with cfg's overrides applied."""
    pl = cfg.pl_interval
    overrides = dict(loss=cfg.loss, penalty=cfg.penalty, gamma=cfg.gamma, lr=cfg.lr, beta2=cfg.beta2,
                     ema_half_life=cfg.ema_half_life, batch=cfg.batch, total_images=cfg.total_images,
                     penalty_interval=cfg.penalty_interval, style_mixing=cfg.style_mixing)
    recipe = make_recipe(cfg.config, cfg.preset, schedule_images=cfg.schedule_images, **overrides)
    if pl is not None:
        recipe = dataclasses.replace(recipe, pl_interval=pl if pl > 0 else None)
    return recipe


def build_networks(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) from r3gan_core.networks.build (tests may substitute this function)."""
    from .networks import build

    return build(cfg.config, cfg.preset, conditional=cfg.conditional, **cfg.network)


def dataset_spec(cfg: TrainConfig) -> str:
    spec = cfg.dataset or PRESETS[cfg.preset].dataset
    if spec is None:
        raise ValueError(f"preset {cfg.preset!r} has no built-in data; pass dataset='scheme:/path' "
                         f"(see r3gan_core.data.describe_schemes())")
    return spec


def load_data(cfg: TrainConfig):
    """The ImageDataset of cfg (r3gan_core.data.load_dataset)."""
    from .data import load_dataset

    return load_dataset(dataset_spec(cfg), None, max_items=cfg.max_items, seed=cfg.seed)


class BatchStream:
    """Random draws for the global batch, identical on every rank (one generator seeded with `seed`).

    Each draw is made for `global_n` rows and the rank keeps its contiguous slice, so the union over ranks is
    what one process with the whole batch draws. The stream lives on the CPU so that a CUDA run and a CPU
    run see the same numbers.
    """

    def __init__(self, seed: int, rank: int, world_size: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.rank, self.world_size = rank, world_size

    def _mine(self, t: Tensor) -> Tensor:
        n = t.shape[0] // self.world_size
        return t[self.rank * n:(self.rank + 1) * n]

    def indices(self, global_n: int, num_items: int) -> Tensor:
        return self._mine(torch.randint(num_items, (global_n,), generator=self.gen))

    def normal(self, global_n: int, *shape: int) -> Tensor:
        return self._mine(torch.randn((global_n, *shape), generator=self.gen))

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.gen))

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high)."""
        return int(torch.randint(low, high, (), generator=self.gen))

    def state(self) -> Tensor:
        return self.gen.get_state()

    def set_state(self, state: Tensor) -> None:
        self.gen.set_state(state.cpu())


# ---------------------------------------------------------------------------------------------------------
# Config A's StyleGAN2 extras, as small functions
# ---------------------------------------------------------------------------------------------------------
def generate(G: nn.Module, z: Tensor, c: Tensor | None, mixing: float, stream: BatchStream, device) -> Tensor:
    """G(z, c); with probability `mixing` (StyleGAN2 Sec. 3.3, style mixing) the ws from a cut-off layer on come
    from a second latent. The draws are made whether or not mixing happens, so the stream stays aligned."""
    if mixing <= 0:
        return G(z, c)
    n_global = z.shape[0] * stream.world_size
    z2 = stream.normal(n_global, z.shape[1]).to(device)
    mix, cutoff = stream.uniform() < mixing, stream.integer(1, G.num_ws)
    ws = G.mapping(z, c, update_w_avg=G.training)  # as G(z, c) does: track mean w for truncation
    if mix:
        ws = torch.cat([ws[:, :cutoff], G.mapping(z2, c)[:, cutoff:]], dim=1)
    return G.synthesis(ws)


def path_length_penalty(G: nn.Module, z: Tensor, c: Tensor | None, pl_mean: Tensor, decay: float,
                        stream: BatchStream, env: dist_utils.DistEnv) -> tuple[Tensor, Tensor, float]:
    """Per-sample (||J_w^T y|| - a)^2 with y ~ N(0, I) / sqrt(H W) (StyleGAN2 Sec. 3.2, Eq. 4).

    a is the running mean of the lengths over all ranks, a <- a + decay (mean - a), used detached (the
    official code lets a sliver of gradient through `a`; it is scaled by decay = 0.01). Returns
    (penalty [n], new running mean, mean length).
    """
    ws = G.mapping(z, c)
    img = G.synthesis(ws)
    n, ch, h, w = img.shape
    y = stream.normal(n * stream.world_size, ch, h, w).to(img.device) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()  # [n]: ||J^T y|| averaged over the ws copies
    mean_length = dist_utils.mean_tensor(lengths.mean().detach(), env)
    pl_mean = pl_mean + decay * (mean_length - pl_mean)
    return (lengths - pl_mean).square(), pl_mean.detach(), float(mean_length)


# ---------------------------------------------------------------------------------------------------------
# Small helpers: intervals, finiteness, JSON lines, sample grids
# ---------------------------------------------------------------------------------------------------------
def crossed(every: int | None, before: int, after: int) -> bool:
    """True when the image count went past a multiple of `every` between `before` and `after` (None / 0 = never)."""
    return bool(every) and after // every > before // every


def _finite(values: dict[str, Any]) -> list[str]:
    """Names of entries that are floats and not finite."""
    return [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a log.jsonl (NaN / inf were written as strings and come back as floats)."""
    records = []
    path = Path(path)
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            records.append({k: (float(v) if v in ("nan", "inf", "-inf") else v) for k, v in rec.items()})
    return records


def save_grid_png(images: Tensor, path: str | Path, min_width: int = 256) -> Path:
    """A grid of N x C x H x W images in [-1, 1] as a PNG, upscaled (nearest) to at least `min_width` px."""
    import matplotlib.image
    import numpy as np

    from .plotting import image_grid

    grid = image_grid(images)
    scale = max(1, math.ceil(min_width / grid.shape[1]))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1)
    return path


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


# ---------------------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> TrainResult:
    """Train cfg; returns a TrainResult (status "diverged" instead of raising when losses go non-finite).

    Seeds Python's, NumPy's and torch's global generators (with seed + rank) as a side effect.
    """
    threads_before = torch.get_num_threads()
    if cfg.threads is not None:
        require_positive("threads", cfg.threads)
        torch.set_num_threads(cfg.threads)
    env = dist_utils.setup(cfg.device)
    try:
        return _train(cfg, env)
    finally:
        dist_utils.teardown(env)
        torch.set_num_threads(threads_before)


def _train(cfg: TrainConfig, env: dist_utils.DistEnv) -> TrainResult:
    t_start = time.perf_counter()
    require_choice("amp", cfg.amp, AMP_CHOICES)
    recipe = recipe_for(cfg)
    device = env.device
    is_main = env.is_main
    use_amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    # R1 and R2 from one pass of D over [real; fake] (losses.discriminator_objective) where D allows it, on CUDA
    # only: on this project's 2-core CPU the one-pass path measured no faster than two passes (E, stacked8 batch
    # 64 one thread: 342 vs 333 img/s per D step; stacked16 batch 32 two threads: 135 vs 133), so the CPU keeps the
    # reference path.
    fuse_penalties = None if device.type == "cuda" else False

    # Batch arithmetic, up front.
    batch, world = recipe.batch, env.world_size
    total_images = int(recipe.total_images)
    if batch % world:
        raise ValueError(f"global batch {batch} does not split evenly over {world} ranks")
    local_batch = batch // world
    if recipe.pl_interval is not None and local_batch % recipe.pl_batch_shrink:
        raise ValueError(f"per-rank batch {local_batch} is not divisible by pl_batch_shrink {recipe.pl_batch_shrink}")
    require_positive("total_images", total_images)
    require_positive("log_every", cfg.log_every)
    require_positive("sample_count", cfg.sample_count)

    # Data: small datasets live on the device; the global batch is drawn by index (BatchStream).
    ds = load_data(cfg)
    images = ds.images
    labels = ds.labels if cfg.conditional else None
    if cfg.conditional and ds.labels is None:
        raise ValueError(f"conditional=True but dataset {dataset_spec(cfg)!r} has no labels")
    if images.numel() * images.element_size() <= 2**30:
        images = images.to(device)
        labels = labels.to(device) if labels is not None else None

    # Networks: the same seed on every rank (then broadcast anyway); then per-rank seeds for in-network noise.
    ckpt_io.seed_everything(cfg.seed)
    G, D = build_networks(cfg)
    if tuple(images.shape[1:]) != (G.channels, G.resolution, G.resolution):
        raise ValueError(f"dataset images are {tuple(images.shape[1:])} but config {cfg.config} / preset "
                         f"{cfg.preset} generates {(G.channels, G.resolution, G.resolution)}")
    G = G.to(device=device, memory_format=memory_format).train()
    D = D.to(device=device, memory_format=memory_format).train()
    dist_utils.broadcast_module(G, env)
    dist_utils.broadcast_module(D, env)
    G_ema = make_ema(G)
    opt_G = torch.optim.Adam(G.parameters(), lr=recipe.lr(0), betas=(recipe.beta1, recipe.beta2(0)), eps=recipe.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=recipe.lr(0), betas=(recipe.beta1, recipe.beta2(0)), eps=recipe.eps)
    stream = BatchStream(cfg.seed, env.rank, world)
    ckpt_io.seed_everything(cfg.seed + env.rank)
    pl_mean = torch.zeros((), device=device)
    images_seen, step = 0, 0

    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir else None
    log_path = out_dir / LOG_NAME if out_dir else None
    records: list[dict[str, Any]] = []
    spectral: list[dict[str, Any]] = []
    samples: list[tuple[int, Tensor]] = []

    # Resume: weights, optimisers, position, every random state.
    resume_path = _resume_path(cfg, ckpt_path)
    if resume_path is not None:
        state = ckpt_io.load(resume_path, map_location=device)
        _check_resumable(cfg, TrainConfig.from_dict(state["train_config"]), batch)
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        G_ema.load_state_dict(state["G_ema"])
        opt_G.load_state_dict(state["opt_G"])
        opt_D.load_state_dict(state["opt_D"])
        images_seen, step = int(state["images_seen"]), int(state["step"])
        pl_mean = state["pl_mean"].to(device)
        stream.set_state(state["batch_stream"])
        ckpt_io.set_rng_state(state["rng"][env.rank] if env.rank < len(state["rng"]) else state["rng"][0])
        if log_path is not None:
            records = [r for r in read_log(log_path) if r["images_seen"] <= images_seen]
            spectral = [r for r in _read_jsonl(out_dir / SPECTRAL_NAME) if r["images_seen"] <= images_seen]
            if is_main:  # drop records written after the checkpoint (a killed run's tail)
                _rewrite_jsonl(log_path, records)
                _rewrite_jsonl(out_dir / SPECTRAL_NAME, spectral)

    def save_checkpoint() -> Path | None:
        """Every rank takes part (RNG states are gathered); the main rank writes."""
        rng_states = dist_utils.gather_objects(ckpt_io.rng_state(), env)
        if not is_main or ckpt_path is None:
            return ckpt_path
        return ckpt_io.save_atomic({
            "format": ckpt_io.CHECKPOINT_FORMAT, "train_config": cfg.as_dict(), "recipe": recipe.as_dict(),
            "images_seen": images_seen, "step": step, "G": G.state_dict(), "D": D.state_dict(),
            "G_ema": G_ema.state_dict(), "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "pl_mean": pl_mean.detach().cpu(), "batch_stream": stream.state(), "rng": rng_states,
            "world_size": world, "network_info": {"z_dim": G.z_dim, "resolution": G.resolution,
                                                  "channels": G.channels, "num_classes": G.num_classes},
        }, ckpt_path)

    # Fixed-noise sample grid (per-sample seeds; classes cycle when conditional).
    z_fixed = fixed_latents(G.z_dim, cfg.sample_count, cfg.seed)
    c_fixed = torch.arange(cfg.sample_count) % G.num_classes if cfg.conditional else None

    def take_samples() -> None:
        if not is_main:
            return
        grid = sample_images(G_ema, z_fixed, c_fixed, device)
        samples.append((images_seen, grid))
        if out_dir is not None:
            save_grid_png(grid, out_dir / "samples" / f"{images_seen:010d}.png")

    def measure_spectra() -> None:
        if not is_main:
            return
        from .biggan import spectral_norms

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            rec = {"images_seen": images_seen, "step": step, "G": spectral_norms(G, cfg.spectral_iters),
                   "D": spectral_norms(D, cfg.spectral_iters)}
        spectral.append(rec)
        if out_dir is not None:
            with open(out_dir / SPECTRAL_NAME, "a") as f:
                f.write(json.dumps(jsonable(rec)) + "\n")

    if is_main and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(f".{CHECKPOINT_NAME}.*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        if resume_path is None:  # a fresh run replaces whatever an earlier run left here
            for old in [log_path, out_dir / SPECTRAL_NAME, *out_dir.glob("samples/*.png")]:
                old.unlink(missing_ok=True)
        write_json_atomic(out_dir / "config.json", {"train_config": cfg.as_dict(), "recipe": recipe.as_dict()})
    last_good = save_checkpoint() if resume_path is None and ckpt_path is not None else resume_path
    if images_seen == 0 and cfg.sample_every:
        take_samples()
    if images_seen == 0 and cfg.spectral_every:
        measure_spectra()

    from tqdm.auto import tqdm

    bar = tqdm(total=total_images, initial=min(images_seen, total_images), unit="img", unit_scale=True,
               disable=not (is_main and cfg.progress), dynamic_ncols=True, desc=f"config {cfg.config}")
    status, message = "ok", ""
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp)
    acc: dict[str, list[float]] = {}
    interval_t0, interval_images = time.perf_counter(), images_seen
    amp_note = "bf16 autocast" if use_amp else "fp32"

    def draw_real() -> tuple[Tensor, Tensor | None]:
        idx = stream.indices(batch, images.shape[0]).to(images.device)
        x = images[idx].to(device, non_blocking=True).contiguous(memory_format=memory_format)
        c = labels[idx].to(device) if labels is not None else None
        return x, c

    while images_seen < total_images:
        # --- Schedule: every value is a function of the images seen so far.
        lr, beta2, gamma = recipe.lr(images_seen), recipe.beta2(images_seen), recipe.gamma(images_seen)
        for opt in (opt_G, opt_D):
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, (recipe.beta1, beta2)
        stats: dict[str, float] = {}

        # --- D step: adversarial loss + (gamma/2)(R1 + R2); lazy (every k steps, weight x k) for config A.
        apply_penalty = recipe.penalty != "none" and step % recipe.penalty_interval == 0
        penalty = recipe.penalty if apply_penalty else "none"
        d_gamma = gamma * recipe.penalty_interval if apply_penalty else 0.0
        real, c = draw_real()
        z = stream.normal(batch, G.z_dim).to(device)
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad(), autocast:
            fake = generate(G, z, c, recipe.style_mixing, stream, device)
        # D's input-gradient norms (the diagnostic) come free from the penalty's own gradients; on top of that
        # they are measured only on steps that write a log record (an unused input gradient costs a backward).
        logs_now = crossed(cfg.log_every, images_seen, images_seen + batch) or images_seen + batch >= total_images
        with autocast:
            d_obj, d_stats = discriminator_objective(D, real, fake.float(), recipe.loss, penalty, d_gamma, labels=c,
                                                     measure_gradients=logs_now, fused=fuse_penalties)
        opt_D.zero_grad(set_to_none=True)
        d_obj.float().mean().backward()
        dist_utils.all_reduce_grads(list(D.parameters()), env)
        stats.update(d_stats)
        stats["d_grad_norm"] = _grad_norm(D)
        w1, w2 = (d_gamma / 2 if "r1" in penalty else 0.0), (d_gamma / 2 if "r2" in penalty else 0.0)
        stats.update(r1_weight=w1, r2_weight=w2, penalty_steps=float(apply_penalty))
        bad = _finite(stats)
        if not dist_utils.all_ranks(not bad, env):
            status, message = "diverged", _divergence_message("D", step, images_seen, stats, bad, last_good)
            break
        opt_D.step()

        # --- G step: a fresh real batch paired with the fakes (RpGAN), style mixing, lazy path length.
        real_g, c_g = draw_real()
        z = stream.normal(batch, G.z_dim).to(device)
        G.requires_grad_(True)
        D.requires_grad_(False)
        with autocast:
            fake = generate(G, z, c_g, recipe.style_mixing, stream, device)
            g_obj, g_stats = generator_objective(D, fake, real_g if recipe.loss == "rpgan" else None,
                                                 recipe.loss, labels=c_g)
        g_total = g_obj.float().mean()
        stats.update(g_stats)
        if recipe.pl_interval is not None and step % recipe.pl_interval == 0:
            n_pl = batch // recipe.pl_batch_shrink
            z_pl = stream.normal(n_pl, G.z_dim).to(device)
            c_pl = labels[stream.indices(n_pl, labels.shape[0]).to(labels.device)] if labels is not None else None
            pl_penalty, pl_mean, pl_length = path_length_penalty(G, z_pl, c_pl, pl_mean, recipe.pl_decay, stream, env)
            g_total = g_total + pl_penalty.mean() * recipe.pl_weight * recipe.pl_interval
            stats.update(pl_penalty=pl_penalty.mean().item(), pl_length=pl_length, pl_mean=float(pl_mean),
                         pl_steps=1.0)
        if cfg.ortho_beta is not None:
            from .biggan import orthogonal_penalty_total

            ortho = orthogonal_penalty_total(G, cfg.ortho_beta)
            g_total = g_total + ortho.to(g_total.device)
            stats["ortho_penalty"] = ortho.item()
        opt_G.zero_grad(set_to_none=True)
        g_total.backward()
        dist_utils.all_reduce_grads(list(G.parameters()), env)
        stats["g_grad_norm"] = _grad_norm(G)
        bad = _finite(stats)
        if not dist_utils.all_ranks(not bad, env):
            status, message = "diverged", _divergence_message("G", step, images_seen, stats, bad, last_good)
            break
        opt_G.step()
        D.requires_grad_(True)

        # --- EMA of G's weights, half-life in images.
        half_life = ema_half_life(images_seen, recipe.ema_half_life, recipe.ema_rampup) if cfg.ema else 0.0
        beta = ema_beta(batch, half_life)
        update_ema(G_ema, G, beta)

        # --- Count; then log, samples, spectra and checkpoint when their image intervals are crossed.
        before, images_seen, step = images_seen, images_seen + batch, step + 1
        bar.update(batch)
        for k, v in stats.items():
            acc.setdefault(k, []).append(v)
        done = images_seen >= total_images
        if crossed(cfg.log_every, before, images_seen) or done:
            now = time.perf_counter()
            rec = _log_record(acc, env, images_seen=images_seen, step=step, lr=lr, beta2=beta2, gamma=gamma,
                              ema_half_life=half_life, ema_beta=beta, precision=amp_note,
                              images_per_second=(images_seen - interval_images) / max(now - interval_t0, 1e-9),
                              time_s=now - t_start)
            records.append(rec)
            if is_main and log_path is not None:
                with open(log_path, "a") as f:
                    f.write(json.dumps(jsonable(rec)) + "\n")
            bar.set_postfix(d=f"{rec['d_loss']:.3f}", g=f"{rec['g_loss']:.3f}", r1=f"{rec.get('r1', 0):.3g}")
            acc, interval_t0, interval_images = {}, now, images_seen
            blown = divergence_reason(rec, cfg.blowup) if cfg.blowup else ""
            if blown:
                status = "diverged"
                message = (f"[r3gan] training diverged by the blow-up rule at {images_seen:,} images: {blown}; "
                           f"the last good checkpoint is {last_good}.")
                break
        if crossed(cfg.sample_every, before, images_seen) or (done and cfg.sample_every):
            take_samples()
        if crossed(cfg.spectral_every, before, images_seen) or (done and cfg.spectral_every):
            measure_spectra()
        if ckpt_path is not None and (crossed(cfg.checkpoint_every, before, images_seen) or done):
            last_good = save_checkpoint()
    bar.close()
    G.requires_grad_(True)
    D.requires_grad_(True)

    wall = time.perf_counter() - t_start
    if status == "diverged" and is_main:
        print(message, flush=True)
    metrics_path = None
    if is_main and out_dir is not None:
        metrics_path = write_json_atomic(out_dir / METRICS_NAME, {
            "status": status, "message": message, "images_seen": images_seen, "steps": step,
            "wall_time_s": round(wall, 3), "last_checkpoint": last_good,
            "last_record": records[-1] if records else None,
            "config": cfg.config, "preset": cfg.preset, "world_size": world, "device": device_description(device),
            "precision": amp_note, "commit": git_commit(),
        })
    return TrainResult(status=status, message=message, images_seen=images_seen, steps=step, wall_time=wall,
                       records=records, spectral=spectral, samples=samples, checkpoint_path=last_good,
                       log_path=log_path, metrics_path=metrics_path, G_ema=G_ema, G=G, D=D, config=cfg,
                       recipe=recipe)


# ---------------------------------------------------------------------------------------------------------
# Loop helpers
# ---------------------------------------------------------------------------------------------------------
def _grad_norm(module: nn.Module) -> float:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0


def _log_record(acc: dict[str, list[float]], env: dist_utils.DistEnv, **fixed: Any) -> dict[str, Any]:
    """Means over the interval (averaged over ranks); penalty weights are those used when applied (0 = never);
    *_steps count the steps that applied R1/R2 (penalty_steps) and path length (pl_steps)."""
    means = {k: sum(v) / len(v) for k, v in acc.items() if k not in ("r1_weight", "r2_weight", "pl_steps",
                                                                       "penalty_steps")}
    pl_keys = ("pl_penalty", "pl_length", "pl_mean")
    means = {k: v for k, v in means.items() if k not in pl_keys}
    means = dist_utils.mean_over_ranks(means, env)
    rec: dict[str, Any] = {"images_seen": fixed.pop("images_seen"), "step": fixed.pop("step")}
    rec["kimg"] = rec["images_seen"] / 1000
    rec.update(means)
    rec["r1_weight"] = max(acc.get("r1_weight", [0.0]))
    rec["r2_weight"] = max(acc.get("r2_weight", [0.0]))
    rec["penalty_steps"] = int(sum(acc.get("penalty_steps", [])))
    rec["pl_steps"] = int(sum(acc.get("pl_steps", [])))
    for k in pl_keys:  # means over the steps that computed them (None when none did)
        rec[k] = sum(acc[k]) / len(acc[k]) if k in acc else None
    rec.update(fixed)
    return rec


def _divergence_message(phase: str, step: int, images_seen: int, stats: dict[str, float], bad: list[str],
                        last_good: Path | None) -> str:
    shown = ", ".join(f"{k}={stats[k]}" for k in bad) or "on another rank"
    keep = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written (out_dir=None)"
    return (f"[r3gan] training diverged in the {phase} step at step {step} ({images_seen:,} images): "
            f"non-finite {shown}; stopped before the update, {keep}.")


def _resume_path(cfg: TrainConfig, ckpt_path: Path | None) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "auto":
        return ckpt_path if ckpt_path is not None and ckpt_path.is_file() else None
    path = Path(cfg.resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume: no checkpoint at {path}")
    return path


_ARCHITECTURE_FIELDS = ("config", "preset", "conditional", "network", "dataset", "max_items", "seed")


def _check_resumable(cfg: TrainConfig, saved: TrainConfig, batch: int) -> None:
    """A resumed run must train the same networks on the same data; length, intervals and output may change."""
    diffs = [f"{n}: checkpoint {getattr(saved, n)!r} vs now {getattr(cfg, n)!r}" for n in _ARCHITECTURE_FIELDS
             if getattr(saved, n) != getattr(cfg, n)]
    if diffs:
        raise ValueError("cannot resume a different run: " + "; ".join(diffs))
    saved_batch = recipe_for(saved).batch
    if saved_batch != batch:
        raise ValueError(f"cannot resume with global batch {batch}: the checkpoint trained with {saved_batch}")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rewrite_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    if not path.exists() and not records:
        return
    with atomic_open(path) as f:
        f.write("".join(json.dumps(jsonable(r)) + "\n" for r in records))


# ---------------------------------------------------------------------------------------------------------
# Loading a trained generator (for sampling, evaluation and chapters)
# ---------------------------------------------------------------------------------------------------------
def load_generator(path: str | Path, which: str = "G_ema", device: str = "cpu") -> tuple[nn.Module, TrainConfig]:
    """Rebuild G from a checkpoint's TrainConfig and load `which` ('G_ema' or 'G'); eval mode, no grad."""
    require_choice("which", which, ("G_ema", "G"))
    state = ckpt_io.load(path, map_location="cpu")
    cfg = TrainConfig.from_dict(state["train_config"])
    G, _ = build_networks(cfg)
    G.load_state_dict(state[which])
    return G.to(device).eval().requires_grad_(False), cfg


def copy_config(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of cfg with fields changed (deep-copies `network`)."""
    return dataclasses.replace(copy.deepcopy(cfg), **changes)
