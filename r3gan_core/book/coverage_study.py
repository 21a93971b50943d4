"""Two measurements behind the mode-coverage chapter's reading (notebooks/04_mode_coverage.py).

confidence_sweep  the confident mode count at several confidence thresholds for the two baselines alone (a fresh
                  draw of real data and the untrained generator): the threshold is judged by how far it puts
                  them apart, never by the trained runs it will score.
mode_ranks        how a generator spreads its samples over the 1000 modes: the mode histogram sorted from the most
                  to the least frequent, for each stored final generator and both baselines, and the share of
                  samples in the 100 most frequent modes (uniform: 10%).
mode_dropping     the rule that names a falling mode count: "mode dropping" when recall falls while precision does
                  not (diversity lost, fidelity kept), "quality loss" when both fall.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from ..data import load_dataset
from ..metrics import DEFAULT_CONFIDENCE
from ..metrics.classifier import digit_classifier
from ..metrics.evaluate import random_rows
from ..metrics.modes import coverage_from_probs
from ..sampling import generate_images
from .baselines import REAL_DRAW_OFFSET, untrained_generator

__all__ = ["CONFIDENCE_THRESHOLDS", "TOP_MODES", "confidence_reading", "confidence_sweep", "mode_dropping",
           "mode_ranks", "ranks_of", "top_share"]

CONFIDENCE_THRESHOLDS = (0.3, 0.5, 0.7, 0.9, 0.99)
TOP_MODES = 100  # top_share: the share of samples in this many most frequent modes


def _probs(images: torch.Tensor, num_samples: int, seed: int) -> torch.Tensor:
    return digit_classifier().channel_outputs(random_rows(images, num_samples, seed + 1))[0]


def confidence_sweep(settings: dict[str, Any], seeds: list[int],
                     thresholds: tuple[float, ...] = CONFIDENCE_THRESHOLDS) -> list[dict[str, Any]]:
    """Rows {seed, threshold, real, untrained, gap}: the confident mode count of a fresh real draw and of the
    untrained generator (settings' network and protocol sample count), at each threshold."""
    rows = []
    for seed in seeds:
        fresh = load_dataset(settings["dataset"], max_items=settings["max_items"], seed=seed + REAL_DRAW_OFFSET).images
        real_p = _probs(fresh, settings["num_samples"], seed)
        fake = generate_images(untrained_generator(settings, seed), settings["num_samples"], seed=seed)
        fake_p = _probs(fake, settings["num_samples"], seed)
        for t in thresholds:
            real = coverage_from_probs(real_p, t)[0]["modes"]
            untrained = coverage_from_probs(fake_p, t)[0]["modes"]
            rows.append({"seed": seed, "threshold": t, "real": real, "untrained": untrained, "gap": real - untrained})
    return rows


def confidence_reading(rows: list[dict[str, Any]]) -> str:
    """Which threshold puts real data and the untrained generator furthest apart (mean gap over seeds), beside the
    book's DEFAULT_CONFIDENCE."""
    gaps = {t: statistics.fmean(r["gap"] for r in rows if r["threshold"] == t) for t in dict.fromkeys(
        r["threshold"] for r in rows)}
    best = max(gaps, key=gaps.get)
    used = gaps.get(DEFAULT_CONFIDENCE)
    text = (f"On the baselines alone, the confident mode count separates real data from the untrained generator by "
            + ", ".join(f"{gaps[t]:.0f} modes at threshold {t:g}" for t in gaps)
            + f" (means over seeds); the widest gap is at {best:g}")
    if used is None:
        return text + f"; the book's threshold {DEFAULT_CONFIDENCE:g} was not swept."
    if best == DEFAULT_CONFIDENCE:
        return text + f", the threshold the book uses."
    return text + (f"; the book uses {DEFAULT_CONFIDENCE:g} (gap {used:.0f}, {used / gaps[best]:.0%} of the widest), "
                   "fixed before these runs were scored.")


def ranks_of(probs: torch.Tensor) -> list[int]:
    """The plain mode histogram (paper's protocol: every sample counts) sorted from most to least frequent."""
    counts = coverage_from_probs(probs)[1]
    return sorted((int(c) for c in counts), reverse=True)


def top_share(ranks: list[int], top: int = TOP_MODES) -> float:
    """The share of samples in the `top` most frequent modes."""
    return sum(ranks[:top]) / max(1, sum(ranks))


def mode_ranks(generators: dict[tuple[str, int], torch.nn.Module], settings: dict[str, Any]
               ) -> list[dict[str, Any]]:
    """Rows {label, seed, ranks, top_share}: each generator's sorted mode histogram over the protocol's sample count
    (same latent seed as its evaluation), then a fresh real draw's and the untrained generator's per seed."""
    rows = []
    for (label, seed), G in generators.items():
        fake = generate_images(G, settings["num_samples"], seed=seed, device=next(G.parameters()).device)
        ranks = ranks_of(_probs(fake, settings["num_samples"], seed))
        rows.append({"label": label, "seed": seed, "ranks": ranks, "top_share": top_share(ranks)})
    for seed in sorted({s for _, s in generators}):
        fresh = load_dataset(settings["dataset"], max_items=settings["max_items"], seed=seed + REAL_DRAW_OFFSET).images
        fake = generate_images(untrained_generator(settings, seed), settings["num_samples"], seed=seed)
        for label, images in (("real data", fresh), (f"untrained Config {settings['config']}", fake)):
            ranks = ranks_of(_probs(images, settings["num_samples"], seed))
            rows.append({"label": label, "seed": seed, "ranks": ranks, "top_share": top_share(ranks)})
    return rows


def mode_dropping(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """For each label whose plain mode count falls over training (readings.trend): what its precision and recall
    did (the rule in the module docstring) and how concentrated its final samples are (top_share)."""
    from .readings import number, trend

    out = []
    shares = {}
    for r in rows:
        shares.setdefault(r["label"], []).append(r["top_share"])
    real = statistics.fmean(shares.get("real data", [float("nan")]))
    for label in dict.fromkeys(r["label"] for r in records):
        t = trend(records, label, "modes")
        if t is None or t[0] != "falls":
            continue
        p, rc = trend(records, label, "precision_digits"), trend(records, label, "recall_digits")
        kind = ("mode dropping: diversity lost while fidelity held or rose" if rc[0] == "falls" and p[0] != "falls"
                else "quality loss: fidelity and diversity both fell" if rc[0] == "falls"
                else "neither rule: recall did not fall")
        share = statistics.fmean(shares[label]) if label in shares else float("nan")
        out.append(f"{label}'s plain mode count falls ({number(t[1])} → {number(t[2])}) while its recall "
                   f"{rc[0]} ({number(rc[1])} → {number(rc[2])}) and precision {p[0]} ({number(p[1])} → "
                   f"{number(p[2])}): by the rule, {kind}. At the end its {TOP_MODES} most frequent modes hold "
                   f"{share:.0%} of its samples (real data {real:.0%}, uniform {TOP_MODES / 1000:.0%}).")
    return out or ["No variant's plain mode count falls over training by the trend rule."]


def plot_mode_ranks(rows: list[dict[str, Any]], provenance) -> Any:
    """Rank-frequency curves: each label's mode histogram sorted from the most frequent mode (mean over seeds,
    samples per mode on a log scale), the untrained generator dashed and real data dotted."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .plotting import add_footer

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for label in dict.fromkeys(r["label"] for r in rows):
        mean = np.mean([r["ranks"] for r in rows if r["label"] == label], axis=0)
        style = {"color": "black", "ls": ":"} if label == "real data" else \
            {"color": "0.45", "ls": "--"} if label.startswith("untrained") else {}
        ax.plot(np.arange(1, len(mean) + 1), np.maximum(mean, 0.5), label=label, lw=1.5, **style)
    ax.set_yscale("log")
    ax.set_xlabel("mode rank (1 = most frequent)")
    ax.set_ylabel("samples in the mode")
    ax.set_title("How the samples spread over the 1000 modes (final generators, mean over seeds)", fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return add_footer(fig, provenance)
