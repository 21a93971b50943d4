"""Every TrainConfig setting checked before a run touches anything: no data loaded, no folder created, no checkpoint
written. A refused setting raises SettingError, which names the field; the `r3gan` command shows it as the flag the
user typed (gamma -> --gamma, ema_half_life -> --ema-half-life).
"""

from __future__ import annotations

import math
from typing import Any

from ..choices import SettingError, flag_name  # noqa: F401  (flag_name: the CLI's name of a setting)
from ..losses import LOSSES, PENALTIES
from .config import AMP_CHOICES, TrainConfig, recipe_for
from .recipes import CONFIGS, PRESETS


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _whole(name: str, value: Any, low: int, meaning: str = "") -> None:
    """A whole number >= low (None allowed: the callers' fields all take None as 'the default' or 'never')."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SettingError(name, f"must be a whole number >= {low}{meaning}, got {value!r}")


def _scheduled(name: str, value: Any, low: float, high: float, high_open: bool) -> None:
    """A number or a (base, final) pair, every value finite and within [low, high] (or [low, high))."""
    if value is None:
        return
    values = list(value) if isinstance(value, (tuple, list)) else [value]
    if len(values) not in (1, 2) or not all(_is_number(v) for v in values):
        raise SettingError(name, f"must be a number or a 'base,final' pair, got {value!r}")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        why = " (a schedule from or to inf is nan in between)" if len(values) == 2 else ""
        raise SettingError(name, f"must be finite{why}, got {value!r}")
    closing = ")" if high_open else "]"
    for v in values:
        if v < low or v > high or (high_open and v == high):
            upper = "inf" if high == math.inf else f"{high:g}"
            raise SettingError(name, f"must lie in [{low:g}, {upper}{closing}, got {value!r}")


def _choice(name: str, value: Any, choices) -> None:
    if value is not None and value not in choices:
        raise SettingError(name, f"{value!r} is unknown; valid choices: {', '.join(repr(c) for c in choices)}")


def _positive_number(name: str, value: Any, allow_zero: bool) -> None:
    if value is None:
        return
    if not _is_number(value) or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SettingError(name, f"must be a finite number {bound}, got {value!r}")


def validate_train_config(cfg: TrainConfig) -> None:
    """SettingError for the first setting of cfg that a run could not use; then the recipe cfg names is built
    (its own checks: combinations such as a batch that path length cannot halve). Loads and writes nothing."""
    _choice("config", cfg.config, CONFIGS)
    _choice("preset", cfg.preset, tuple(PRESETS))
    _choice("loss", cfg.loss, LOSSES)
    _choice("penalty", cfg.penalty, PENALTIES)
    _choice("amp", cfg.amp, AMP_CHOICES)
    for name in ("max_items", "batch", "total_images", "schedule_images", "penalty_interval", "guard_every",
                 "threads", "log_every", "sample_count", "spectral_iters"):
        _whole(name, getattr(cfg, name), 1)
    _whole("pl_interval", cfg.pl_interval, 0, " (0 = off)")
    for name in ("sample_every", "checkpoint_every", "spectral_every"):
        _whole(name, getattr(cfg, name), 0, " (images; 0 = never)")
    _whole("seed", cfg.seed, 0)
    _scheduled("lr", cfg.lr, 0.0, math.inf, high_open=True)
    if cfg.lr is not None and (cfg.lr[0] if isinstance(cfg.lr, (tuple, list)) else cfg.lr) == 0:
        raise SettingError("lr", f"must start > 0 (with lr 0 nothing learns), got {cfg.lr!r}")
    _scheduled("gamma", cfg.gamma, 0.0, math.inf, high_open=True)
    _scheduled("beta2", cfg.beta2, 0.0, 1.0, high_open=True)
    _scheduled("ema_half_life", cfg.ema_half_life, 0.0, math.inf, high_open=True)
    _scheduled("aug_p", cfg.aug_p, 0.0, 1.0, high_open=False)
    if cfg.style_mixing is not None and not (_is_number(cfg.style_mixing) and 0.0 <= cfg.style_mixing <= 1.0):
        raise SettingError("style_mixing", f"must be a probability in [0, 1], got {cfg.style_mixing!r}")
    _positive_number("ortho_beta", cfg.ortho_beta, allow_zero=True)
    _positive_number("blowup", cfg.blowup, allow_zero=False)
    if not isinstance(cfg.network, dict):
        raise SettingError("network", f"must be a dict of networks.build overrides, got {cfg.network!r}")
    recipe = recipe_for(cfg)
    if cfg.config != "A":  # style mixing and path length act on a mapping network's w: StyleGAN2's G has one
        for name, on in (("style_mixing", recipe.style_mixing > 0), ("pl_interval", recipe.pl_interval is not None)):
            if on:
                raise SettingError(name, f"needs a mapping network, which only config A's generator has (this is "
                                         f"config {cfg.config}); got {getattr(cfg, name)!r}")

