"""Training recipes: per roadmap configuration (A-E) and preset, the loss, penalties, optimiser and schedules.

What each configuration trains with (paper Sec. 3, Table 2; PAPER_FACTS Sec. 4-5):

* A  StyleGAN2: non-saturating GAN loss, lazy R1 (every 16 D steps, weight multiplied by 16), path-length
     regularisation (every 4 G steps, weight 2), style mixing with probability 0.9, Adam (0, 0.99), constant lr.
* B  A stripped bare: GAN loss + R1 applied every step (no lazy regularisation), no path length, no mixing.
* C  B with the well-behaved loss: RpGAN + R1 + R2 (the config object differs from B by its loss only).
* D, E  RpGAN + R1 + R2 with the official cosine schedules of Sec. 5: lr 2e-4 -> 5e-5, beta2 0.9 -> 0.99,
     gamma, EMA half-life and augmentation probability per preset, all over T images, Adam beta1 = 0, eps 1e-8.

Augmentation (training.augment, ADA's 'bgc' pipeline on everything D sees): the official presets ramp its
probability from 0 (CIFAR-10 to 0.55, FFHQ to 0.3, ImageNet-32 to 0.5, ImageNet-64 to 0.4); StackedMNIST and
the small presets keep it at 0. Configs B-E take the preset's ramp; config A has none (StyleGAN2-ADA's adaptive
p is not implemented).

Where a number is not in the paper it is marked `ours` in the preset's notes. Small CPU presets (digits8,
digits16, stacked8, stacked16) are ours entirely: they keep the shape of the official schedules at a size a
laptop finishes (PAPER_FACTS Sec. 3 'scale check': 256k images at batch 64 take about 15 min on 2 cores).

`make_recipe(config, preset, **overrides)` returns a frozen `Recipe`; a scheduled field accepts a number
(held constant) or a (base, final) pair as an override.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..choices import SettingError, require_choice, require_positive
from ..losses import LOSSES, PENALTIES
from .schedules import Cosine

CONFIGS = ("A", "B", "C", "D", "E")


@dataclass(frozen=True)
class PresetSchedule:
    """The R3GAN (config E) schedule of one preset: values at t = 0 and t >= T, T in images."""

    resolution: int
    schedule_images: int  # T of every cosine
    lr: tuple[float, float]
    beta2: tuple[float, float]
    gamma: tuple[float, float]
    ema_half_life: tuple[float, float]  # images
    batch: int  # global batch
    total_images: int  # suggested length of a run
    dataset: str | None  # default data spec for r3gan_core.data.load_dataset; None = the user must name one
    notes: str
    aug_p: tuple[float, float] = (0.0, 0.0)  # augmentation probability (training.augment); 0 = off


_R3 = dict(lr=(2e-4, 5e-5), beta2=(0.9, 0.99))  # every official preset (PAPER_FACTS Sec. 5)
_SMALL = "ours: CPU-sized; lr and beta2 as the official presets, gamma 1 -> 0.1 as StackedMNIST, T = run length"


def _small(resolution: int, dataset: str) -> PresetSchedule:
    """A CPU preset (ours): 256k images at batch 64, EMA half-life 0 -> 10k images."""
    return PresetSchedule(resolution, 256_000, **_R3, gamma=(1.0, 0.1), ema_half_life=(0.0, 10_000.0), batch=64,
                          total_images=256_000, dataset=dataset, notes=_SMALL)


def _official(resolution: int, images: int, gamma: tuple[float, float], ema_half_life: float, batch: int,
              aug: float) -> PresetSchedule:
    """An official preset: T = run length = `images`, EMA half-life 0 -> `ema_half_life`, augmentation
    probability 0 -> `aug`; no default data."""
    return PresetSchedule(resolution, images, **_R3, gamma=gamma, ema_half_life=(0.0, ema_half_life), batch=batch,
                          total_images=images, dataset=None, notes=f"official; aug p 0 -> {aug}",
                          aug_p=(0.0, aug))


SMALL_PRESETS = ("digits8", "digits16", "stacked8", "stacked16")

PRESETS: dict[str, PresetSchedule] = {
    # Small CPU presets: ours (documented above).
    "digits8": _small(8, "digits:8"),
    "digits16": _small(16, "digits:16"),
    "stacked8": _small(8, "stacked-digits:8"),
    "stacked16": _small(16, "stacked-digits:16"),
    # StackedMNIST (PAPER_FACTS Sec. 3): 10 Mimg, batch 512, gamma 1 -> 0.1; lr schedule and EMA are ours.
    "stackedmnist": PresetSchedule(32, 10_000_000, **_R3, gamma=(1.0, 0.1), ema_half_life=(0.0, 500_000.0),
                                   batch=512, total_images=10_000_000, dataset=None,
                                   notes="paper: 10 Mimg, batch 512, gamma 1 -> 0.1; ours: lr decay to 5e-5, "
                                         "EMA 0 -> 0.5 M (the FFHQ value)"),
    # Official presets (PAPER_FACTS Sec. 5); batches from the official README's commands.
    "cifar10": _official(32, 20_000_000, gamma=(0.05, 0.005), ema_half_life=5_000_000.0, batch=512, aug=0.55),
    "ffhq64": _official(64, 20_000_000, gamma=(2.0, 0.2), ema_half_life=500_000.0, batch=256, aug=0.3),
    "ffhq256": _official(256, 20_000_000, gamma=(150.0, 15.0), ema_half_life=500_000.0, batch=256, aug=0.3),
    "imagenet32": _official(32, 200_000_000, gamma=(0.5, 0.05), ema_half_life=50_000_000.0, batch=4096, aug=0.5),
    "imagenet64": _official(64, 200_000_000, gamma=(1.0, 0.1), ema_half_life=50_000_000.0, batch=4096, aug=0.4),
}


@dataclass(frozen=True)
class Recipe:
    """Everything the trainer needs besides the networks and the data. Images count progress throughout."""

    config: str
    preset: str
    loss: str  # 'gan' | 'rpgan' (r3gan_core.losses.LOSSES)
    penalty: str  # 'none' | 'r1' | 'r2' | 'r1+r2'
    lr: Cosine
    beta1: float
    beta2: Cosine
    eps: float
    gamma: Cosine  # R1 and R2 each weigh gamma / 2
    ema_half_life: Cosine  # images
    ema_rampup: float | None  # None = no cap; else half-life <= rampup * images seen (StyleGAN2-ADA)
    batch: int  # global batch, split over ranks
    total_images: int  # suggested run length
    penalty_interval: int = 1  # 1 = every D step; 16 = StyleGAN2's lazy R1 (weight multiplied by 16)
    pl_interval: int | None = None  # None = no path-length regularisation; StyleGAN2: every 4 G steps
    pl_weight: float = 0.0
    pl_decay: float = 0.01  # EMA rate of the running mean path length
    pl_batch_shrink: int = 2  # path length on batch / 2 samples (StyleGAN2)
    style_mixing: float = 0.0  # probability of mixing two latents per batch (needs G.mapping / G.synthesis)
    aug_p: Cosine = Cosine(0.0, 0.0, 0.0)  # ADA augmentation probability of each transform (training.augment)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        for name in _SCHEDULED:
            if name in d:  # aug_p is absent from recipes saved before it existed (= 0)
                d[name] = Cosine(**d[name])
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)


def _stylegan2_recipe(preset: str, p: PresetSchedule, batch: int | None = None) -> Recipe:
    """Config A: StyleGAN2-ADA's settings (Karras et al. 2020, its `paper256`, `cifar` and `auto` configs).

    The `auto` rule's gamma and EMA depend on the batch: they follow `batch`, the batch the run uses (None = 64).
    """
    if preset == "ffhq256":  # paper256: batch 64, lr 0.0025, gamma 1, EMA 20 kimg, no ramp-up
        batch, lr, gamma, half_life, rampup, note = 64, 2.5e-3, 1.0, 20_000.0, None, "StyleGAN2-ADA paper256"
    elif preset == "cifar10":  # cifar: batch 64, lr 0.0025, gamma 0.01, EMA 500 kimg, ramp-up 0.05
        batch, lr, gamma, half_life, rampup, note = 64, 2.5e-3, 0.01, 500_000.0, 0.05, "StyleGAN2-ADA cifar"
    else:  # auto: gamma = 0.0002 res^2 / batch, EMA = batch * 10 / 32 kimg, ramp-up 0.05
        batch = batch or 64
        lr, gamma = 2.5e-3, 2e-4 * p.resolution**2 / batch
        half_life, rampup, note = batch * 10 / 32 * 1000, 0.05, "StyleGAN2-ADA 'auto' rule (ours to apply it here)"
    return Recipe(
        config="A", preset=preset, loss="gan", penalty="r1",
        lr=Cosine.constant(lr), beta1=0.0, beta2=Cosine.constant(0.99), eps=1e-8,
        gamma=Cosine.constant(gamma), ema_half_life=Cosine.constant(half_life), ema_rampup=rampup,
        batch=batch, total_images=p.total_images,
        penalty_interval=16, pl_interval=4, pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2, style_mixing=0.9,
        notes=(f"config A: {note}", "lazy R1 folded into that step's D objective (no separate Adam step); "
               "path length folded into that step's G objective")
        + (("no augmentation: ADA's adaptive p is not implemented (the preset's aug_p ramp is for B-E)",)
           if p.aug_p != (0.0, 0.0) else ()),
    )


def _r3gan_recipe(config: str, preset: str, p: PresetSchedule) -> Recipe:
    """Configs B-E on the preset's cosine schedules; B and C use the lowered constant lr at paper scale."""
    T = p.schedule_images
    notes = [f"preset {preset}: {p.notes}"]
    lr, beta2 = Cosine(*p.lr, T), Cosine(*p.beta2, T)
    if config in ("B", "C") and preset not in SMALL_PRESETS:
        # Paper Sec. 3.1: without equalised lr, B lowers StyleGAN2's 2.5e-3 to 5e-5 (Adam without momentum).
        lr, beta2 = Cosine.constant(5e-5), Cosine.constant(0.99)
        notes.append("configs B/C: lr 5e-5 constant (paper Sec. 3.1); gamma, EMA and augmentation from the E "
                     "preset (ours)")
    elif config in ("B", "C", "D"):
        notes.append(f"config {config}: E's schedules reused (ours)")
    loss, penalty = ("gan", "r1") if config == "B" else ("rpgan", "r1+r2")
    return Recipe(
        config=config, preset=preset, loss=loss, penalty=penalty,
        lr=lr, beta1=0.0, beta2=beta2, eps=1e-8,
        gamma=Cosine(*p.gamma, T), ema_half_life=Cosine(*p.ema_half_life, T), ema_rampup=None,
        batch=p.batch, total_images=p.total_images, aug_p=Cosine(*p.aug_p, T), notes=tuple(notes),
    )


def _as_cosine(name: str, value: float | tuple[float, float] | Cosine, total_images: float) -> Cosine:
    """An override: a number (held constant), a (base, final) pair over `total_images`, or a Cosine."""
    if isinstance(value, Cosine):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} override must be a number or a (base, final) pair, got {value!r}")
        return Cosine(float(value[0]), float(value[1]), float(total_images))
    return Cosine.constant(float(value))


_SCHEDULED = ("lr", "beta2", "gamma", "ema_half_life", "aug_p")


def make_recipe(config: str, preset: str, *, schedule_images: int | None = None, **overrides) -> Recipe:
    """The recipe of `config` at `preset`, with any Recipe field overridden.

    schedule_images: a new T for every cosine (None = the preset's). Scheduled fields (lr, beta2, gamma,
    ema_half_life, aug_p) take a number or a (base, final) pair; None values are ignored (= keep the recipe's).
    """
    require_choice("config", config, CONFIGS)
    require_choice("preset", preset, PRESETS)
    p = PRESETS[preset]
    batch = overrides.get("batch")
    recipe = _stylegan2_recipe(preset, p, batch) if config == "A" else _r3gan_recipe(config, preset, p)
    if schedule_images is not None:
        require_positive("schedule_images", schedule_images)
        recipe = dataclasses.replace(recipe, **{
            n: dataclasses.replace(getattr(recipe, n), total_images=float(schedule_images))
            for n in _SCHEDULED if not getattr(recipe, n).is_constant})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    valid = {f.name for f in dataclasses.fields(Recipe)} - {"config", "preset"}
    for name in overrides:
        require_choice("recipe override", name, sorted(valid))
    T = schedule_images if schedule_images is not None else p.schedule_images
    for name in _SCHEDULED:
        if name in overrides:
            overrides[name] = _as_cosine(name, overrides[name], T)
    recipe = dataclasses.replace(recipe, **overrides)
    validate_recipe(recipe)
    return recipe


def validate_recipe(r: Recipe) -> None:
    """Clear errors for impossible combinations."""
    require_choice("loss", r.loss, LOSSES)
    require_choice("penalty", r.penalty, PENALTIES)
    require_positive("batch", r.batch)
    require_positive("penalty_interval", r.penalty_interval)
    if r.pl_interval is not None:
        require_positive("pl_interval", r.pl_interval)
        if r.batch % r.pl_batch_shrink:
            raise SettingError("batch", f"must be divisible by {r.pl_batch_shrink} with path-length regularisation "
                                        f"(it runs on 1/{r.pl_batch_shrink} of each batch), got {r.batch}")
    if not 0.0 <= r.style_mixing <= 1.0:
        raise ValueError(f"style_mixing must be a probability, got {r.style_mixing}")
    if r.lr.base <= 0:
        raise ValueError(f"lr must start > 0 (with lr 0 nothing learns), got {r.lr}")
    for name in ("lr", "gamma", "ema_half_life"):
        s = getattr(r, name)
        if min(s.base, s.final) < 0:
            raise ValueError(f"{name} must be >= 0, got {s}")
    if not (0.0 <= min(r.aug_p.base, r.aug_p.final) and max(r.aug_p.base, r.aug_p.final) <= 1.0):
        raise ValueError(f"aug_p must be a probability in [0, 1], got {r.aug_p}")
    if not (0.0 <= r.beta2.base < 1.0 and 0.0 <= r.beta2.final < 1.0 and 0.0 <= r.beta1 < 1.0):
        raise ValueError(f"Adam betas must lie in [0, 1): beta1={r.beta1}, beta2={r.beta2}")


def describe_recipes(preset: str) -> list[dict]:
    """One row per config at `preset` (for a chapter's table)."""
    rows = []
    for c in CONFIGS:
        r = make_recipe(c, preset)
        rows.append({"config": c, "loss": r.loss, "penalty": r.penalty,
                     "penalty every": r.penalty_interval, "path length every": r.pl_interval,
                     "style mixing": r.style_mixing, "lr": (r.lr.base, r.lr.final),
                     "beta2": (r.beta2.base, r.beta2.final), "gamma": (r.gamma.base, r.gamma.final),
                     "EMA half-life": (r.ema_half_life.base, r.ema_half_life.final), "batch": r.batch})
    return rows
