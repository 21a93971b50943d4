"""Shared figure helpers: one look for every chapter, and a provenance footer on every figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..report import Provenance
from ..sampling import image_grid, split_stacked as split_stacked_images


# The key under which a figure's PNG (as a notebook shows it) records the height in pixels of its smallest text at
# the image's natural size; ci/check_book.py scales it by the displayed / natural width to find the size a reader sees.
TEXT_PX_KEY = "r3gan-min-text-px"
# The book's text column at a 1400-pixel window (784 CSS px, measured by ci/check_book.py) in inches at the figures'
# 100 dpi: a figure no wider is shown at its natural size, so any font of 7.5 pt or more (10.4 px) stays readable.
COLUMN_IN = 7.8
MIN_FONT_PT = 7.5


def set_style() -> None:
    """The book's plotting style (seaborn's whitegrid, readable sizes). At a kernel, also makes the notebook's PNG of
    every figure record its smallest text size (`figure_png`)."""
    sns.set_theme(style="whitegrid", context="notebook", rc={"figure.dpi": 100, "savefig.dpi": 100})
    _record_text_size_in_pngs()


def min_text_px(fig: plt.Figure) -> float:
    """The smallest font of the figure's visible, non-empty text, in pixels of the image saved at fig.dpi
    (points x dpi / 72). Text of ticks outside the view counts too: the check errs on the strict side."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * fig.dpi / 72 if sizes else float("inf")


def figure_png(fig: plt.Figure) -> bytes:
    """The figure as the notebook's inline PNG (tight bounding box, fig.dpi), with its `min_text_px` recorded as a
    PNG text chunk under TEXT_PX_KEY."""
    from IPython.core.pylabtools import print_figure

    fig.canvas.draw()  # lays out tick labels, so the text measured is the text drawn
    return print_figure(fig, fmt="png", bbox_inches="tight", base64=False,
                        metadata={TEXT_PX_KEY: f"{min_text_px(fig):.2f}"})


def _record_text_size_in_pngs() -> None:
    """Show figures at a kernel through `figure_png`. The inline backend registers its own PNG formatter when it is
    first activated, so it is activated (by a throwaway figure) before ours replaces it."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or "inline" not in plt.get_backend():
        return
    plt.close(plt.figure())
    shell.display_formatter.formatters["image/png"].for_type(plt.Figure, figure_png)


def add_footer(fig: plt.Figure, provenance: Provenance | str) -> plt.Figure:
    """Stamp how the figure was produced (profile, device, steps, images, wall time) under it."""
    text = provenance.footer() if isinstance(provenance, Provenance) else str(provenance)
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=8, color="0.35")
    return fig


def show_grid(ax: plt.Axes, images: torch.Tensor | np.ndarray, title: str | None = None, nrow: int | None = None) -> None:
    """Draw `image_grid(images)` on `ax` without ticks."""
    grid = image_grid(images, nrow=nrow)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)


# ---------------------------------------------------------------------------------------------------------
# Figures of training runs. `runs` are records from r3gan_core.book.experiments.run_record (plain dicts), so fresh
# runs and published results draw the same way.
# ---------------------------------------------------------------------------------------------------------
def _long_table(runs: list[dict], table: str, columns: tuple[str, ...], hue: str = "label", style: str | None = None):
    import pandas as pd

    rows = []
    for run in runs:
        for rec in run.get(table, []):
            row = {hue: run.get(hue, run.get("label")), "seed": run.get("seed", 0)}
            if style:
                row[style] = run[style]
            row.update({c: rec.get(c) for c in columns})
            rows.append(row)
    return pd.DataFrame(rows)


def draw_baselines(ax: plt.Axes, baselines: dict | None, metric: str) -> None:
    """The two baselines of a metric on a curve panel: the untrained generators' range over seeds and networks (grey
    band) and real data's mean (black dotted line), both by the runs' protocol (r3gan_core.book.baselines)."""
    if not baselines:
        return
    untrained = [b[metric] for b in baselines["untrained"] if b.get(metric) is not None and b[metric] == b[metric]]
    real = [b[metric] for b in baselines["real"] if b.get(metric) is not None and b[metric] == b[metric]]
    if untrained:
        ax.axhspan(min(untrained), max(untrained), color="0.6", alpha=0.25, lw=0, label="untrained (range)")
        ax.axhline(float(np.mean(untrained)), color="0.45", ls="--", lw=1)
    if real:
        ax.axhline(float(np.mean(real)), color="black", ls=":", lw=1.5, label="real data")


def images_label(n: float) -> str:
    """An image count as the book writes it on axes and in labels: 64k, 256k, 1.5M."""
    return f"{n / 1e6:g}M" if abs(n) >= 1e6 else (f"{n / 1e3:g}k" if abs(n) >= 1e3 else f"{n:g}")


def images_axis(ax: plt.Axes) -> None:
    """Label the x axis in images seen, ticks in k or M (100k, 1.5M)."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: images_label(x)))
    ax.set_xlabel("real images seen by D")


def plot_metric_curves(runs: list[dict], metrics: tuple[str, ...], provenance: Provenance | str,
                       hue: str = "label", log_y: tuple[str, ...] = (), baselines: dict | None = None,
                       style: str | None = None) -> plt.Figure:
    """Small multiples: each metric of the runs' evaluations against images seen (bands over seeds), with the
    untrained and real-data baselines (draw_baselines) when given. `style`: a key of the runs drawn as line style
    (e.g. the run length, with hue the config)."""
    df = _long_table(runs, "evaluations", ("images_seen", *metrics), hue, style)
    ncols = min(3, len(metrics))
    rows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(COLUMN_IN, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for i, (ax, m) in enumerate(zip(axes.flat, metrics)):
        if not df.empty and df[m].notna().any():
            sns.lineplot(data=df, x="images_seen", y=m, hue=hue, style=style, marker="o", errorbar=("pi", 100),
                         ax=ax, legend=i == 0)
        draw_baselines(ax, baselines, m)
        ax.set_title(m)
        ax.set_ylabel("")
        images_axis(ax)
        if m in log_y:
            ax.set_yscale("log")
    if axes[0][0].get_legend() is not None or baselines:
        handles, labels = axes[0][0].get_legend_handles_labels()
        kept = [(h, t) for h, t in zip(handles, labels) if t not in (hue, style)]  # seaborn's section titles
        handles, labels = [h for h, _ in kept], [t for _, t in kept]
        for ax in axes.flat:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9,
                   bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return add_footer(fig, provenance)


def plot_gradient_norms(runs: list[dict], provenance: Provenance | str, hue: str = "label") -> plt.Figure:
    """D's input-gradient norm on reals and on fakes over training (log scale): the paper's Sec. 3.1 diagnosis."""
    df = _long_table(runs, "records", ("images_seen", "grad_norm_real", "grad_norm_fake"), hue)
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_IN, 3.1), sharey=True)
    for ax, col, title in zip(axes, ("grad_norm_real", "grad_norm_fake"), ("on reals", "on fakes")):
        if not df.empty:
            sns.lineplot(data=df, x="images_seen", y=col, hue=hue, errorbar=("pi", 100), ax=ax, legend=ax is axes[0])
        ax.set_yscale("log")
        ax.set_title(rf"$\|\nabla_x D\|$ {title}")
        ax.set_ylabel("")
        images_axis(ax)
    if axes[0].get_legend() is not None:
        axes[0].get_legend().set_title(None)
    fig.tight_layout()
    return add_footer(fig, provenance)


def plot_sample_grids(grids: dict[str, torch.Tensor | np.ndarray | None], provenance: Provenance | str,
                      real: torch.Tensor | np.ndarray | None = None, per_panel: int = 16,
                      per_row: int | None = None, split_stacked: bool = False) -> plt.Figure:
    """Panels of `per_panel` samples (label -> N x C x H x W in [-1, 1]), `per_row` panels a row, real data first
    when given: few and large enough to read at the text column's width. A missing grid shows 'no samples'.
    split_stacked: draw each stacked-digits sample as its digits side by side (sampling.split_stacked), two
    panels a row unless per_row says otherwise."""
    panels = ({"real data": real} if real is not None else {}) | dict(grids)
    per_row = per_row or (2 if split_stacked else 3)
    rows = -(-max(1, len(panels)) // per_row)
    side = int(round(per_panel ** 0.5))
    fig, axes = plt.subplots(rows, per_row, figsize=(7.8, (1.9 if split_stacked else 2.75) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, images) in zip(axes.flat, panels.items()):
        ax.axis("on")
        if images is None:
            ax.text(0.5, 0.5, "no samples\n(diverged)", ha="center", va="center")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(label, fontsize=10)
        else:
            images = images[:per_panel]
            show_grid(ax, split_stacked_images(images) if split_stacked else images, title=label, nrow=side)
            ax.title.set_fontsize(10)
    if split_stacked:
        fig.suptitle("each sample: its three stacked digits side by side (channels 1, 2, 3)", fontsize=10)
    fig.tight_layout()
    return add_footer(fig, provenance)
