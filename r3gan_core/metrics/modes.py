"""Mode coverage and reverse KL: the VEEGAN / PacGAN protocol for StackedMNIST (paper Sec. 3, Tables 1 and 3).

Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN): generate 26,000 samples, classify each of the
three channels with a pretrained digit classifier, read the three digits as a mode in 0..999; report the number
of distinct modes and the reverse KL divergence KL(p_gen || uniform_1000) = sum_k p_k log(1000 p_k).
A single-channel digit image has 10 modes; in general a C-channel stack has 10**C.

Mode counting counts noise too (PAPER_FACTS Sec. 3): an untrained generator can hit hundreds of modes. So every
result names its counting rule, and an optional `threshold` counts only samples whose every channel's maximum
class probability exceeds it; `confident_fraction` says how many samples passed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .classifier import DigitClassifier, digit_classifier

VEEGAN_NUM_SAMPLES = 26_000  # generated samples per evaluation in VEEGAN, PacGAN and R3GAN's Table 1
DEFAULT_CONFIDENCE = 0.5  # reference level of `confident_fraction` when no threshold is given


def mode_indices(digits: Tensor) -> Tensor:
    """Mode of each sample [N] from per-channel digits [N, C]: base-10 number, channel 0 most significant."""
    powers = 10 ** torch.arange(digits.shape[1] - 1, -1, -1, device=digits.device)
    return (digits.long() * powers).sum(1)


def mode_histogram(modes: Tensor | np.ndarray, num_modes: int) -> np.ndarray:
    """Counts [num_modes] of each mode index."""
    return np.bincount(np.asarray(modes, dtype=np.int64), minlength=num_modes)


def count_modes(counts: np.ndarray, min_count: int = 1) -> int:
    """Number of modes with at least `min_count` samples (VEEGAN / PacGAN use 1)."""
    return int((np.asarray(counts) >= min_count).sum())


def reverse_kl_to_uniform(counts: np.ndarray) -> float:
    """KL(p || uniform_K) = sum_k p_k log(K p_k) with p = counts / total (0 log 0 = 0); NaN for no samples."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts[counts > 0] / total
    return float(np.sum(p * np.log(len(counts) * p)))


def counting_rule(threshold: float | None) -> str:
    """The human-readable rule a mode count used."""
    if threshold is None:
        return "argmax of every channel, every sample counted"
    return f"argmax of every channel, only samples whose every channel has max probability > {threshold:g}"


def channel_digits(probs: Tensor) -> tuple[Tensor, Tensor]:
    """(digits [N, C], weakest confidence [N]) from probabilities [N, C, 10]: every channel's argmax, and the
    smallest per-channel max probability (a sample is as confident as its least confident channel)."""
    confidence, digits = probs.max(2)
    return digits, confidence.min(1).values


def coverage_from_probs(probs: Tensor, threshold: float | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """`mode_coverage`'s dict and the mode histogram, from per-channel probabilities [N, C, 10]."""
    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be None or in [0, 1), got {threshold!r}")
    if probs.ndim != 3 or len(probs) == 0:
        raise ValueError(f"mode coverage needs probabilities N x C x 10 with N >= 1, got {tuple(probs.shape)}")
    digits, weakest = channel_digits(probs)
    n, channels = digits.shape
    num_modes = 10 ** channels
    level = DEFAULT_CONFIDENCE if threshold is None else threshold
    keep = torch.ones(n, dtype=torch.bool) if threshold is None else weakest > threshold
    counts = mode_histogram(mode_indices(digits[keep]), num_modes)
    result = {
        "modes": count_modes(counts),
        "num_modes": num_modes,
        "reverse_kl": reverse_kl_to_uniform(counts),
        "rule": counting_rule(threshold),
        "threshold": threshold,
        "num_samples": n,
        "num_counted": int(keep.sum()),
        "confident_fraction": float((weakest > level).float().mean()),
        "confidence_level": level,
    }
    return result, counts


def mode_coverage(images: Tensor | np.ndarray, classifier: DigitClassifier | None = None,
                  threshold: float | None = None) -> dict[str, Any]:
    """Modes and reverse KL of images N x C x H x W in [-1, 1] (C = 1: 10 modes; C = 3: 1000 modes).

    threshold: None = count every sample (the VEEGAN / PacGAN protocol, comparable to the paper); a number in
    [0, 1) = count only samples whose every channel's max probability exceeds it (modes and KL then describe the
    confident samples only; `num_counted` says how many). An empty confident set gives 0 modes and KL NaN.
    Returns modes, num_modes, reverse_kl, rule, threshold, num_samples, num_counted, confident_fraction and
    confidence_level (the level confident_fraction used: threshold, or DEFAULT_CONFIDENCE when None).
    """
    probs = (classifier or digit_classifier()).channel_proba(images)
    return coverage_from_probs(probs, threshold)[0]


def mode_counts(images: Tensor | np.ndarray, classifier: DigitClassifier | None = None,
                threshold: float | None = None) -> np.ndarray:
    """The histogram behind `mode_coverage` (counts per mode, length 10**C), e.g. to plot it."""
    probs = (classifier or digit_classifier()).channel_proba(images)
    return coverage_from_probs(probs, threshold)[1]


def max_reverse_kl(num_modes: int) -> float:
    """KL of a single mode against uniform_K: log K (6.9078 for 1000 modes)."""
    return math.log(num_modes)
