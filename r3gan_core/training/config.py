"""What one training run is: its settings (TrainConfig), what it returns (TrainResult), and the recipe, networks
and data those settings name. Nothing here trains; `training.loop.train` does.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .recipes import PRESETS, Recipe, make_recipe

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
    # ADA augmentation probability per transform on all D sees (training.augment; p > 0 needs kornia): the official
    # presets ramp it 0 -> 0.55 (cifar10), 0.3 (ffhq), 0.5 (imagenet32), 0.4 (imagenet64); 0 = off.
    aug_p: float | tuple[float, float] | None = None
    schedule_images: int | None = None  # T of every cosine
    penalty_interval: int | None = None  # apply R1/R2 every k D steps with weight x k (16 = StyleGAN2's lazy R1)
    pl_interval: int | None = None  # path length every k G steps; 0 = off (needs G.mapping / G.synthesis)
    style_mixing: float | None = None  # probability; 0 = off
    ema: bool = True  # False: G_ema is a plain copy of G
    ortho_beta: float | None = None  # None = off; BigGAN's 1e-4 adds orthogonal_penalty_total(G) to G's loss
    # Divergence rule beyond non-finite values (losses.divergence_reason, the 2D toys' rule): a log record whose
    # loss, mean input-gradient norm of D or logit gap exceeds `blowup` stops the run as "diverged". None = off.
    blowup: float | None = None
    # The finiteness guard reads the step's statistics on the host every `guard_every` steps, on log and
    # checkpoint steps, and keeps them on the device in between (no per-step host sync on a GPU). A non-finite
    # value found late stops the run all the same, and a checkpoint is never written unchecked.
    guard_every: int | None = None  # None = 1 on a CPU (stop before the bad update), 16 on CUDA
    # Reproducibility and output
    seed: int = 0
    out_dir: str | None = None  # None = write nothing
    resume: str | None = None  # a checkpoint path, or 'auto' = out_dir/checkpoint.pt if it exists
    # A fresh run (resume None) refuses an out_dir that already holds a run (checkpoint.pt, log.jsonl): True
    # replaces that run's files instead.
    overwrite: bool = False
    # A resumed run trains with the checkpoint's recipe, changed only by the settings given now; where this code's
    # defaults differ from it (an upgrade), a note names each difference. True switches to this code's recipe.
    adopt_code_recipe: bool = False
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
    status: str  # "ok" | "diverged" | "interrupted" (SIGINT / SIGTERM: checkpointed at the end of the step)
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
                     ema_half_life=cfg.ema_half_life, aug_p=cfg.aug_p, batch=cfg.batch, total_images=cfg.total_images,
                     penalty_interval=cfg.penalty_interval, style_mixing=cfg.style_mixing)
    recipe = make_recipe(cfg.config, cfg.preset, schedule_images=cfg.schedule_images, **overrides)
    if pl is not None:
        if pl < 0:
            raise ValueError(f"pl_interval must be >= 0 (0 = off), got {pl}")
        recipe = dataclasses.replace(recipe, pl_interval=pl if pl > 0 else None)
    return recipe


def build_networks(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) from r3gan_core.networks.build (tests may substitute this function)."""
    from ..networks import build

    return build(cfg.config, cfg.preset, conditional=cfg.conditional, **cfg.network)


def dataset_spec(cfg: TrainConfig) -> str:
    spec = cfg.dataset or PRESETS[cfg.preset].dataset
    if spec is None:
        raise ValueError(f"preset {cfg.preset!r} has no built-in data; pass dataset='scheme:/path' "
                         f"(see r3gan_core.data.describe_schemes())")
    return spec


def load_data(cfg: TrainConfig):
    """The ImageDataset of cfg (r3gan_core.data.load_dataset)."""
    from ..data import load_dataset

    return load_dataset(dataset_spec(cfg), None, max_items=cfg.max_items, seed=cfg.seed)


def copy_config(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of cfg with fields changed (deep-copies `network`)."""
    return dataclasses.replace(copy.deepcopy(cfg), **changes)


_ARCHITECTURE_FIELDS = ("config", "preset", "conditional", "network", "dataset", "max_items", "seed")


def check_resumable(cfg: TrainConfig, saved: TrainConfig, batch: int, saved_batch: int | None = None) -> None:
    """A resumed run must train the same networks on the same data; length, intervals and output may change.

    saved_batch: the global batch the checkpoint trained with (its stored recipe's); None = recipe_for(saved)'s."""
    diffs = [f"--{n.replace('_', '-')}: checkpoint {getattr(saved, n)!r} vs now {getattr(cfg, n)!r}"
             for n in _ARCHITECTURE_FIELDS if getattr(saved, n) != getattr(cfg, n)]
    if diffs:
        raise ValueError("cannot resume a different run (these settings must stay as the checkpoint has them): "
                         + "; ".join(diffs))
    saved_batch = recipe_for(saved).batch if saved_batch is None else saved_batch
    if saved_batch != batch:
        raise ValueError(f"cannot resume with --batch {batch}: the checkpoint trained with {saved_batch}")
