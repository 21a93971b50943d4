"""The device-agnostic trainer for roadmap configs A-E: CPU, one GPU (bf16 autocast, channels_last) or several
(torchrun; gradients all-reduced in one place, see `distributed`).

How a chapter calls it::

    from r3gan_core.training import TrainConfig, train
    result = train(TrainConfig(config="E", preset="stacked8", total_images=64_000, out_dir="runs/e-stacked8",
                               log_every=6_400, sample_every=32_000, progress=False))
    result.status           # "ok", or "diverged" (a diverged run returns normally: Table 1's "fail")
    result.records[-1]      # last log record: losses, R1/R2, logits, D's input-gradient norms, lr, gamma, ...
    result.G_ema            # the averaged generator (on the training device)
    result.samples[-1]      # (images seen, fixed-noise samples N x C x H x W in [-1, 1]) for a figure

From a shell: ``r3gan train --config E --preset stacked8 --total-images 64000 --out-dir runs/e``, and on
several GPUs ``torchrun --nproc_per_node=4 -m r3gan_core.cli train ...`` (the global batch is split over ranks).

One iteration, in this order (counted in real images shown to D, as EDM2 counts kimg); each phase is a function
of `training.steps` that a test or benchmark can call on its own:
  schedule   lr, beta2, gamma, EMA half-life, augmentation probability from the recipe's cosines at the current
             image count
  D step     fakes from G (no grad), discriminator_objective (adversarial + (gamma/2)(R1 + R2)) on what D sees
             through ADA's augmentation when its probability is above 0 (training.augment); for config A
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
spectral.jsonl, samples/<images>.png, train_metrics.json (status, written atomically), config.json
(`training.run_files`). A fresh run in an existing out_dir replaces the earlier run's files; resume="auto"
continues it instead (and returns at once, with its records and networks, when it already reached total_images).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..choices import require_choice, require_positive
from ..losses import divergence_reason
from ..report import device_description, git_commit
from ..sampling import fixed_latents, sample_images
from . import checkpoint as ckpt_io
from . import distributed as dist_utils
from .augment import require_kornia
from .config import (AMP_CHOICES, LOG_NAME, SPECTRAL_NAME, TrainConfig, TrainResult, build_networks, check_resumable,
                     dataset_spec, load_data, recipe_for)
from .ema import make_ema
from .recipes import Recipe
from .schedules import Cosine
from .guards import StopSignals
from .run_files import RunFiles
from .steps import RunState, StepContext, apply_schedule, discriminator_step, ema_step, generator_step
from .stream import BatchStream
from .validate import validate_train_config


def initial_networks(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) exactly as `train` initialises them for cfg.seed: the global random generators seeded with cfg.seed,
    then build_networks. A run's untrained baseline (r3gan_core.book.baselines) is this G. Seeds the global
    generators as a side effect."""
    ckpt_io.seed_everything(cfg.seed)
    return build_networks(cfg)


def train(cfg: TrainConfig) -> TrainResult:
    """Train cfg; returns a TrainResult (status "diverged" instead of raising when losses go non-finite).

    Seeds Python's, NumPy's and torch's global generators (with seed + rank) as a side effect.
    """
    validate_train_config(cfg)  # every setting, before a folder is created or a checkpoint written
    threads_before = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    env = dist_utils.setup(cfg.device)
    files = RunFiles(cfg.out_dir, env.is_main)
    try:
        files.check()  # a usable out_dir, before data and networks load
        with StopSignals(enabled=files.writes) as stop:
            return _train(cfg, env, files, stop)
    finally:
        files.release()
        dist_utils.teardown(env)
        torch.set_num_threads(threads_before)


def _train(cfg: TrainConfig, env: dist_utils.DistEnv, files: RunFiles, stop: StopSignals) -> TrainResult:
    """The loop: one phase a block, top to bottom."""
    t_start = time.perf_counter()
    resume_path = _resume_path(cfg, files.checkpoint)
    saved = load_for_resume(resume_path) if resume_path is not None else None
    ctx, state = prepare(cfg, env, recipe=resumed_recipe(cfg, saved) if saved is not None else None)
    if saved is not None:  # in memory: a checkpoint that does not fit is refused before the folder is touched
        resume(cfg, ctx, state, saved, resume_path)
    files.claim(fresh=resume_path is None, overwrite=cfg.overwrite)  # locked; never replaces a run unasked
    log = TrainingLog(cfg, ctx, state, files)
    if saved is not None:
        log.records, log.spectral = files.history(state.images_seen)
        log.interval_images = state.images_seen
    files.prepare(fresh=resume_path is None, config={"train_config": cfg.as_dict(), "recipe": ctx.recipe.as_dict()})
    last_good = save_checkpoint(cfg, ctx, state, files) if resume_path is None else resume_path
    if state.images_seen == 0:
        log.samples_and_spectra(state, start=True)

    from tqdm.auto import tqdm

    total = int(ctx.recipe.total_images)
    bar = tqdm(total=total, initial=min(state.images_seen, total), unit="img", unit_scale=True,
               disable=not (env.is_main and cfg.progress), dynamic_ncols=True, desc=f"config {cfg.config}")
    status, message = "ok", ""
    log.interval_t0 = time.perf_counter()
    guard_every = cfg.guard_every or (16 if ctx.stats_on_device else 1)
    while state.images_seen < total:
        before, after = state.images_seen, state.images_seen + ctx.recipe.batch
        logs_now = crossed(cfg.log_every, before, after) or after >= total
        checkpoint_now = files.checkpoint is not None and (crossed(cfg.checkpoint_every, before, after) or after >= total)
        check = (state.step + 1) % guard_every == 0 or logs_now or checkpoint_now
        # Schedule: lr, beta2, gamma, aug_p are functions of the images seen so far.
        lr, beta2, gamma, aug_p = apply_schedule(ctx.recipe, state)
        # D step (on a checked step D is not updated when a statistic is non-finite: the run stops as diverged).
        stats, bad = discriminator_step(ctx, state, gamma, measure_gradients=logs_now, check=check, aug_p=aug_p)
        if bad is not None:
            status, message = "diverged", _divergence_message("D", state, stats, bad, last_good)
            break
        # G step.
        g_stats, bad = generator_step(ctx, state, check=check, aug_p=aug_p)
        stats.update(g_stats)
        if bad is not None:
            status, message = "diverged", _divergence_message("G", state, stats, bad, last_good)
            break
        log.accumulate(stats, deferred=guard_every > 1)
        late = log.nonfinite_since_last_check() if check and guard_every > 1 else []
        if late:
            status = "diverged"
            message = (f"[r3gan] training diverged within the {guard_every} steps before step {state.step} "
                       f"({state.images_seen:,} images): non-finite {', '.join(late)}; the last good checkpoint is "
                       f"{last_good}.")
            break
        # EMA of G's weights, half-life in images.
        half_life, beta = ema_step(ctx, state, cfg.ema)
        state.images_seen, state.step = after, state.step + 1
        bar.update(ctx.recipe.batch)
        done = after >= total
        # Log record at its interval; the blow-up rule is checked on it.
        if logs_now:
            rec = log.write_record(lr=lr, beta2=beta2, gamma=gamma, ema_half_life=half_life, ema_beta=beta,
                                   aug_p=aug_p)
            bar.set_postfix(d=f"{rec['d_loss']:.3f}", g=f"{rec['g_loss']:.3f}", r1=f"{rec.get('r1', 0):.3g}")
            blown = divergence_reason(rec, cfg.blowup) if cfg.blowup else ""
            if blown:
                status = "diverged"
                message = (f"[r3gan] training diverged by the blow-up rule at {after:,} images: {blown}; "
                           f"the last good checkpoint is {last_good}.")
                break
        # Fixed-noise samples and spectra at their intervals (and at the end).
        log.samples_and_spectra(state, before=before, done=done)
        # Checkpoint at its interval and at the end (a checked step: never a non-finite one).
        if checkpoint_now:
            last_good = save_checkpoint(cfg, ctx, state, files)
        # Ctrl-C / SIGTERM: a checkpoint at the end of this step, then stop.
        if stop.requested and not done:
            last_good = last_good if checkpoint_now else save_checkpoint(cfg, ctx, state, files)
            status, message = "interrupted", (f"[r3gan] stopped by {stop.requested} at {after:,} images; checkpoint "
                                              f"{last_good} (continue with --resume).")
            break
    bar.close()
    state.G.requires_grad_(True)
    state.D.requires_grad_(True)
    wall = time.perf_counter() - t_start
    if status != "ok" and env.is_main:
        print(message, flush=True)
    metrics_path = files.write_metrics({
        "status": status, "message": message, "images_seen": state.images_seen, "steps": state.step,
        "wall_time_s": round(wall, 3), "last_checkpoint": last_good,
        "last_record": log.records[-1] if log.records else None, "config": cfg.config, "preset": cfg.preset,
        "world_size": env.world_size, "device": device_description(ctx.device), "precision": log.precision,
        "commit": git_commit()})
    return TrainResult(status=status, message=message, images_seen=state.images_seen, steps=state.step,
                       wall_time=wall, records=log.records, spectral=log.spectral, samples=log.samples,
                       checkpoint_path=last_good, log_path=files.log, metrics_path=metrics_path, G_ema=state.G_ema,
                       G=state.G, D=state.D, config=cfg, recipe=ctx.recipe)


# ---------------------------------------------------------------------------------------------------------
# Before the loop: recipe, data, networks, optimisers; resuming; checkpoints
# ---------------------------------------------------------------------------------------------------------
def prepare(cfg: TrainConfig, env: dist_utils.DistEnv, data: Any = None,
            recipe: Recipe | None = None) -> tuple[StepContext, RunState]:
    """Check the settings, load the data, build G, D, G_ema and their optimisers on the run's device.

    data: an object with `.images` (and `.labels`) to use instead of loading cfg's dataset (benchmarks).
    recipe: the recipe to train with (a resumed run's: resumed_recipe); None = recipe_for(cfg).
    """
    require_choice("amp", cfg.amp, AMP_CHOICES)
    recipe = recipe if recipe is not None else recipe_for(cfg)
    device = env.device
    use_amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    # channels_last by default on CUDA only: on this project's 2-core CPU it measured within noise of contiguous
    # (trainer, Config E, R1 + R2, batch 32: stacked16 two threads 99.7 vs 99.1 images/s, stacked8 one thread 218
    # vs 210; benchmarks/bench_iteration.py --trainer --channels-last on|off).
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    _check_batch(recipe, cfg, env.world_size)
    if max(recipe.aug_p.base, recipe.aug_p.final) > 0:
        require_kornia()  # fail now with the install hint, not at the first augmented step

    # Data: small datasets live on the device; the global batch is drawn by index (BatchStream).
    ds = data if data is not None else load_data(cfg)
    images, labels = ds.images, (ds.labels if cfg.conditional else None)
    if cfg.conditional and ds.labels is None:
        raise ValueError(f"conditional=True but dataset {dataset_spec(cfg)!r} has no labels")
    if images.numel() * images.element_size() <= 2**30:
        images = images.to(device)
        labels = labels.to(device) if labels is not None else None

    # Networks: the same seed on every rank (then broadcast anyway); then per-rank seeds for in-network noise.
    G, D = initial_networks(cfg)
    if labels is not None and len(labels) and int(labels.max()) >= G.num_classes:
        raise ValueError(f"dataset {dataset_spec(cfg)!r} has class labels up to {int(labels.max())} but the "
                         f"conditional networks have {G.num_classes} classes: pass --network "
                         f"num_classes={int(labels.max()) + 1} (in Python: network={{'num_classes': ...}})")
    if tuple(images.shape[1:]) != (G.channels, G.resolution, G.resolution):
        raise ValueError(f"dataset images are {tuple(images.shape[1:])} but config {cfg.config} / preset "
                         f"{cfg.preset} generates {(G.channels, G.resolution, G.resolution)}")
    G = G.to(device=device, memory_format=memory_format).train()
    D = D.to(device=device, memory_format=memory_format).train()
    dist_utils.broadcast_module(G, env)
    dist_utils.broadcast_module(D, env)
    adam = dict(lr=recipe.lr(0), betas=(recipe.beta1, recipe.beta2(0)), eps=recipe.eps)
    state = RunState(G=G, D=D, G_ema=make_ema(G), opt_G=torch.optim.Adam(G.parameters(), **adam),
                     opt_D=torch.optim.Adam(D.parameters(), **adam),
                     stream=BatchStream(cfg.seed, env.rank, env.world_size), pl_mean=torch.zeros((), device=device))
    ckpt_io.seed_everything(cfg.seed + env.rank)
    # R1 and R2 from one pass of D over [real; fake] (losses.discriminator_objective) where D allows it, on CUDA
    # only: on this project's 2-core CPU the one-pass path measured no faster than two passes (E, stacked8 batch
    # 64 one thread: 342 vs 333 img/s per D step; stacked16 batch 32 two threads: 135 vs 133), so the CPU keeps the
    # reference path.
    fuse = None if device.type == "cuda" else False
    ctx = StepContext(recipe=recipe, env=env, images=images, labels=labels, memory_format=memory_format,
                      use_amp=use_amp, fuse_penalties=fuse, ortho_beta=cfg.ortho_beta,
                      stats_on_device=device.type == "cuda")
    return ctx, state


def _check_batch(recipe: Recipe, cfg: TrainConfig, world: int) -> None:
    batch = recipe.batch
    if batch % world:
        raise ValueError(f"global batch {batch} does not split evenly over {world} ranks")
    if recipe.pl_interval is not None and (batch // world) % recipe.pl_batch_shrink:
        raise ValueError(f"per-rank batch {batch // world} is not divisible by pl_batch_shrink {recipe.pl_batch_shrink}")
    require_positive("total_images", int(recipe.total_images))
    require_positive("log_every", cfg.log_every)
    require_positive("sample_count", cfg.sample_count)


def load_for_resume(path: Path) -> dict[str, Any]:
    """The checkpoint a run resumes from, with every entry resuming reads (ValueError naming what is missing)."""
    saved = ckpt_io.load(path)
    ckpt_io.require_keys(saved, ckpt_io.RESUME_KEYS, path, "resume a run")
    return saved


def resumed_recipe(cfg: TrainConfig, saved: dict[str, Any]) -> Recipe:
    """The recipe a resumed run trains with: the checkpoint's, changed only where this command changed a setting.

    Where this code's defaults differ from the checkpoint's recipe (an upgrade changed a preset's lr or gamma), the
    checkpoint wins and a note names every difference; cfg.adopt_code_recipe switches to this code's recipe.
    """
    saved_cfg = TrainConfig.from_dict(saved["train_config"])
    stored = Recipe.from_dict(saved["recipe"])
    now = recipe_for(cfg)
    drift = recipe_differences(stored, recipe_for(saved_cfg))
    if not drift:
        return now
    shown = "; ".join(f"{name}: checkpoint {_shown(old)} vs this code {_shown(new)}" for name, old, new in drift)
    if cfg.adopt_code_recipe:
        print(f"[r3gan] note: --adopt-code-recipe: the resumed run switches to this code's recipe ({shown})",
              file=sys.stderr, flush=True)
        return now
    changed = {name for name in _RECIPE_INPUTS if getattr(cfg, name) != getattr(saved_cfg, name)}
    keep = {name: getattr(stored, name) for name, _, _ in drift
            if not ({name, "schedule_images"} if name in _SCHEDULED_FIELDS else {name}) & changed}
    print(f"[r3gan] note: this code's recipe for config {cfg.config} at preset {cfg.preset} differs from the one the "
          f"checkpoint trained with ({shown}); the run continues with the checkpoint's"
          + (f" (except {', '.join(sorted(set(n for n, _, _ in drift) - set(keep)))}, set on this command)"
             if len(keep) < len(drift) else "")
          + "; pass --adopt-code-recipe to switch to this code's", file=sys.stderr, flush=True)
    return dataclasses.replace(now, **keep, notes=stored.notes)


_RECIPE_INPUTS = ("loss", "penalty", "gamma", "lr", "beta2", "ema_half_life", "aug_p", "batch", "total_images",
                  "penalty_interval", "style_mixing", "pl_interval", "schedule_images")
_SCHEDULED_FIELDS = ("lr", "beta2", "gamma", "ema_half_life", "aug_p")


def recipe_differences(a: Recipe, b: Recipe) -> list[tuple[str, Any, Any]]:
    """(field, value in a, value in b) for every Recipe field that differs (the notes, prose, left out)."""
    return [(f.name, getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(Recipe)
            if f.name != "notes" and not _same_setting(getattr(a, f.name), getattr(b, f.name))]


def _shown(value: Any) -> str:
    """A recipe value for a message: 2e-4, or 2e-4 -> 5e-5 over 256,000 images."""
    if isinstance(value, Cosine):
        return f"{value.base:g}" if value.is_constant else \
            f"{value.base:g} -> {value.final:g} over {value.total_images:,.0f} images"
    return repr(value)


def _same_setting(a: Any, b: Any) -> bool:
    """Equal values; two constant schedules of the same value are the same whatever their T (which they ignore)."""
    if isinstance(a, Cosine) and isinstance(b, Cosine) and a.is_constant and b.is_constant:
        return a.base == b.base
    return a == b


def resume(cfg: TrainConfig, ctx: StepContext, state: RunState, saved: dict[str, Any], path: Path) -> None:
    """Weights, optimisers, position, the batch stream and every random state from a checkpoint."""
    check_resumable(cfg, TrainConfig.from_dict(saved["train_config"]), ctx.recipe.batch,
                    saved_batch=int(saved["recipe"]["batch"]))
    built = f"config {cfg.config} at preset {cfg.preset}"
    state.load_state_dict(saved, load=lambda module, value, name: ckpt_io.load_weights(module, value, name, path,
                                                                                       built))
    rank = ctx.env.rank
    ckpt_io.set_rng_state(saved["rng"][rank] if rank < len(saved["rng"]) else saved["rng"][0])


def save_checkpoint(cfg: TrainConfig, ctx: StepContext, state: RunState, files: RunFiles) -> Path | None:
    """Every rank takes part (RNG states are gathered); the main rank writes atomically."""
    rng_states = dist_utils.gather_objects(ckpt_io.rng_state(), ctx.env)
    if not ctx.env.is_main or files.checkpoint is None:
        return files.checkpoint
    G = state.G
    return ckpt_io.save_atomic({
        "format": ckpt_io.CHECKPOINT_FORMAT, "train_config": cfg.as_dict(), "recipe": ctx.recipe.as_dict(),
        **state.state_dict(), "rng": rng_states, "world_size": ctx.env.world_size,
        "network_info": {"z_dim": G.z_dim, "resolution": G.resolution, "channels": G.channels,
                         "num_classes": G.num_classes},
    }, files.checkpoint)


def _resume_path(cfg: TrainConfig, ckpt_path: Path | None) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "auto":
        if ckpt_path is None:
            raise ValueError("resume='auto' continues the run in out_dir, but no out_dir was given (--out-dir)")
        return ckpt_path if ckpt_path.is_file() else None
    path = Path(cfg.resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume: no checkpoint at {path}")
    return path


# ---------------------------------------------------------------------------------------------------------
# During the loop: log records, sample grids, spectra
# ---------------------------------------------------------------------------------------------------------
def crossed(every: int | None, before: int, after: int) -> bool:
    """True when the image count went past a multiple of `every` between `before` and `after` (None / 0 = never)."""
    return bool(every) and after // every > before // every


class TrainingLog:
    """The run's log records (means over each log interval), fixed-noise sample grids and spectra."""

    def __init__(self, cfg: TrainConfig, ctx: StepContext, state: RunState, files: RunFiles):
        self.cfg, self.ctx, self.state, self.files = cfg, ctx, state, files
        self.records: list[dict[str, Any]] = []
        self.spectral: list[dict[str, Any]] = []
        self.samples: list[tuple[int, Tensor]] = []
        self.acc: dict[str, list[float]] = {}
        self.unchecked: list[dict[str, Any]] = []  # step statistics not yet read on the host (guard_every > 1)
        self.precision = "bf16 autocast" if ctx.use_amp else "fp32"
        self.t_start = self.interval_t0 = time.perf_counter()
        self.interval_images = state.images_seen
        # Fixed-noise sample latents (per-sample seeds; classes cycle when conditional).
        G = state.G
        self.z_fixed = fixed_latents(G.z_dim, cfg.sample_count, cfg.seed)
        self.c_fixed = torch.arange(cfg.sample_count) % G.num_classes if cfg.conditional else None

    def accumulate(self, stats: dict[str, float], deferred: bool = False) -> None:
        """Add a step's statistics to the interval; deferred: also keep them for the next finiteness check."""
        for k, v in stats.items():
            self.acc.setdefault(k, []).append(v)
        if deferred:
            self.unchecked.append(stats)

    def nonfinite_since_last_check(self) -> list[str]:
        """Names of statistics that were non-finite on a step since the last check (one host sync), then reset."""
        from .steps import nonfinite

        bad = sorted(set(nonfinite(*self.unchecked)))
        self.unchecked = []
        return bad

    def write_record(self, **values: Any) -> dict[str, Any]:
        """Close the interval: one record of means (averaged over ranks) and the interval's throughput."""
        now, seen = time.perf_counter(), self.state.images_seen
        rec = _log_record(self.acc, self.ctx.env, images_seen=seen, step=self.state.step, **values,
                          precision=self.precision,
                          images_per_second=(seen - self.interval_images) / max(now - self.interval_t0, 1e-9),
                          time_s=now - self.t_start)
        self.records.append(rec)
        self.files.append(LOG_NAME, rec)
        self.acc, self.interval_t0, self.interval_images = {}, now, seen
        return rec

    def samples_and_spectra(self, state: RunState, before: int | None = None, done: bool = False,
                            start: bool = False) -> None:
        """Sample grids and spectra when their intervals were crossed since `before`, at the end, or at start."""
        cfg = self.cfg
        due = (lambda every: bool(every)) if start else \
            (lambda every: crossed(every, before, state.images_seen) or (done and bool(every)))
        if due(cfg.sample_every) and self.ctx.env.is_main:
            grid = sample_images(state.G_ema, self.z_fixed, self.c_fixed, self.ctx.device)
            self.samples.append((state.images_seen, grid))
            self.files.save_samples(state.images_seen, grid)
        measured = bool(self.spectral) and self.spectral[-1]["images_seen"] == state.images_seen  # resumed here
        if due(cfg.spectral_every) and self.ctx.env.is_main and not measured:
            from ..biggan import spectral_norms

            device = self.ctx.device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                rec = {"images_seen": state.images_seen, "step": state.step,
                       "G": spectral_norms(state.G, cfg.spectral_iters), "D": spectral_norms(state.D, cfg.spectral_iters)}
            self.spectral.append(rec)
            self.files.append(SPECTRAL_NAME, rec)


def _log_record(acc: dict[str, list[float]], env: dist_utils.DistEnv, **fixed: Any) -> dict[str, Any]:
    """Means over the interval of the statistics measured in it (averaged over ranks); penalty weights are those
    used when applied (0 = never); *_steps count the steps that applied R1/R2 (penalty_steps) and path length."""
    counted = ("r1_weight", "r2_weight", "pl_steps", "penalty_steps")
    pl_keys = ("pl_penalty", "pl_length", "pl_mean")
    means = {k: float(sum(v)) / len(v) for k, v in acc.items() if k not in counted + pl_keys}
    means = dist_utils.mean_over_ranks(means, env)
    rec: dict[str, Any] = {"images_seen": fixed.pop("images_seen"), "step": fixed.pop("step")}
    rec["kimg"] = rec["images_seen"] / 1000
    rec.update(means)
    rec["r1_weight"] = max(acc.get("r1_weight", [0.0]))
    rec["r2_weight"] = max(acc.get("r2_weight", [0.0]))
    rec["penalty_steps"] = int(sum(acc.get("penalty_steps", [])))
    rec["pl_steps"] = int(sum(acc.get("pl_steps", [])))
    for k in pl_keys:  # means over the steps that computed them (None when none did)
        rec[k] = float(sum(acc[k])) / len(acc[k]) if k in acc else None
    rec.update(fixed)
    return rec


def _divergence_message(phase: str, state: RunState, stats: dict[str, float], bad: list[str],
                        last_good: Path | None) -> str:
    shown = ", ".join(f"{k}={float(stats[k])}" if k in stats else k for k in bad) or "on another rank"
    keep = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written (out_dir=None)"
    return (f"[r3gan] training diverged in the {phase} step at step {state.step} ({state.images_seen:,} images): "
            f"non-finite {shown}; stopped before the update, {keep}.")


# ---------------------------------------------------------------------------------------------------------
# After training: a trained generator for sampling, evaluation and chapters
# ---------------------------------------------------------------------------------------------------------
def load_generator(path: str | Path, which: str = "G_ema", device: str = "cpu") -> tuple[nn.Module, TrainConfig]:
    """Rebuild G from a checkpoint's TrainConfig and load `which` ('G_ema' or 'G'); eval mode, no grad."""
    require_choice("which", which, ("G_ema", "G"))
    state = ckpt_io.load(path, map_location="cpu")
    ckpt_io.require_keys(state, (*ckpt_io.GENERATOR_KEYS, which), path, f"load its generator {which}")
    cfg = TrainConfig.from_dict(state["train_config"])
    G, _ = build_networks(cfg)
    ckpt_io.load_weights(G, state[which], which, path, f"config {cfg.config} at preset {cfg.preset}")
    return G.to(device).eval().requires_grad_(False), cfg
