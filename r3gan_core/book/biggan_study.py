"""Helpers of the BigGAN chapter (notebooks/11_biggan.py): truncation sweeps, spectra of every weight, gamma sweeps.

BigGAN = Brock, Donahue, Simonyan 2019 (PAPER_FACTS Sec. 6). Every function takes and returns plain JSON-able
records (or tensors for sample grids), so published full results and fresh smoke runs draw the same way.
"""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data import load_dataset
from ..sampling import generate_images
from .experiments import base_config, finite_mean, run_record, torch_threads, train_and_evaluate
from ..metrics import evaluate_images
from ..training import TrainConfig, copy_config, dataset_spec


TRUNCATION_COLUMNS = ("fd_digits", "kid_digits", "precision_digits", "recall_digits", "modes", "reverse_kl",
                      "modes_confident")


TRUNCATION_PLOTTED = ("precision_digits", "recall_digits", "modes", "fd_digits")


EXPLOSION_FACTOR = 2.0  # "blew up": sigma_0 at least doubled over the second half of the measurements


BIGGAN_R1_IS_COST = 0.45  # BigGAN Sec. 4.1: R1 with gamma = 10 stabilises D but costs about 45% of the IS


STABLE = "RpGAN + R1 + R2"  # the recipe: Config E's own (RpGAN, R1 + R2, gamma annealed)
R1_ONLY = "RpGAN + R1"  # Table 1's failing variant: the run whose spectra should show a collapse


def ortho_label(settings: dict[str, Any]) -> str:
    return f"{STABLE} + ortho {settings['ortho_beta']:g}"


def gamma_label(gamma: float) -> str:
    return f"R1 + R2, gamma {gamma:g}"


def study_config(settings: dict[str, Any]) -> TrainConfig:
    """The one base run of the chapter: Config E at the profile's preset with its own recipe, sigma_0 of every G
    and D weight every `spectral_every` images, one sample grid at the end."""
    return base_config("E", settings, spectral_every=settings["spectral_every"],
                       spectral_iters=settings["spectral_iters"], sample_every=settings["total_images"])


def study_variants(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every run of the chapter as {label: overrides of study_config}: the recipe, the recipe + BigGAN's
    orthogonal regularisation (Eq. 3), R1 alone, and R1 + R2 at each constant gamma of the sweep."""
    return {STABLE: {}, ortho_label(settings): {"ortho_beta": settings["ortho_beta"]}, R1_ONLY: {"penalty": "r1"},
            **{gamma_label(g): {"gamma": float(g)} for g in settings["gammas"]}}


def threshold_name(threshold: float | None) -> str:
    """'none' for no truncation, else the threshold as written ('0.5', '2')."""
    return "none" if threshold is None else f"{threshold:g}"


def train_keep_generator(cfg: TrainConfig, label: str, evaluations: int = 1, num_samples: int = 5_000,
                         eval_options: dict[str, Any] | None = None, seed: int = 0
                         ) -> tuple[dict[str, Any], torch.nn.Module | None, Tensor | None]:
    """train_and_evaluate, keeping the trained G_ema for sampling afterwards (a truncation sweep).

    Returns (run record, G_ema in eval mode on cfg's device or None if the run diverged, last sample grid).
    The networks come back through the run's final checkpoint (a temporary folder unless cfg.out_dir is set).
    """
    from ..report import pick_device
    from ..training import load_generator

    with tempfile.TemporaryDirectory(prefix="r3gan-keep-") as tmp:
        run = train_and_evaluate(copy_config(cfg, out_dir=cfg.out_dir or tmp, seed=seed), label=label,
                                 evaluations=evaluations, num_samples=num_samples, seed=seed, eval_options=eval_options)
        G = None
        if run.status == "ok" and run.checkpoint_path is not None:
            G, _ = load_generator(run.checkpoint_path, device=str(pick_device(cfg.device)))
    return run_record(run, seed=seed), G, run.samples


def truncation_sweep(G: torch.nn.Module, cfg: TrainConfig, thresholds: list[float] | tuple[float, ...],
                     num_samples: int, seed: int = 0, eval_options: dict[str, Any] | None = None,
                     grid_count: int = 16, threads: int | None = None
                     ) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Score G's samples with no truncation, then at each threshold (BigGAN Sec. 3.1's truncation trick).

    Every threshold uses the same latent seed, so each latent only has its out-of-range entries redrawn: the
    grids show the same images pulled towards the mode. Returns one row per threshold (first `threshold` None =
    no truncation) with the metrics of TRUNCATION_COLUMNS, and {threshold_name: first grid_count images}.
    cfg names the data; seed, num_samples and eval_options should be the run's, so that the untruncated row
    repeats the run's own last evaluation.
    """
    if G is None:
        raise ValueError("truncation_sweep needs a trained generator (None: the run diverged, nothing to sample)")
    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=seed).images  # as train_and_evaluate
    device = next(G.parameters()).device
    rows: list[dict[str, Any]] = []
    grids: dict[str, Tensor] = {}
    with torch_threads(threads):
        for t in (None, *sorted(thresholds)):
            fake = generate_images(G, num_samples, seed=seed, truncation=t, device=device)
            scores = evaluate_images(real, fake, stacked=real.shape[1] == 3, num_samples=num_samples, seed=seed,
                                     **(eval_options or {}))
            rows.append({"threshold": t, **{k: scores[k] for k in TRUNCATION_COLUMNS}})
            grids[threshold_name(t)] = fake[:grid_count]
    return rows, grids


def truncation_verdicts(sweeps: dict[str, list[dict[str, Any]]], plain: str, ortho: str | None = None
                        ) -> list[str]:
    """What the truncation sweeps showed, computed from their rows (each sweep: the no-truncation row first).

    Trade-off: at the smallest threshold, precision (fidelity) should rise and recall (diversity) fall.
    Orthogonal regularisation (BigGAN's claim): a G trained with it degrades more gracefully, measured as the
    mean over thresholds of FD-digits(threshold) / FD-digits(no truncation), lower = more graceful.
    """
    out = []
    degradation: dict[str, float] = {}
    for label, rows in sweeps.items():
        base, strongest = rows[0], min(rows[1:], key=lambda r: r["threshold"])
        best = min(rows, key=lambda r: r["fd_digits"])
        dp = strongest["precision_digits"] - base["precision_digits"]
        dr = strongest["recall_digits"] - base["recall_digits"]
        word = "SEEN" if dp > 0 and dr < 0 else "PARTLY" if dp > 0 or dr < 0 else "NOT SEEN"
        out.append(f"{word} ({label}): truncating at {strongest['threshold']:g} moves precision "
                   f"{base['precision_digits']:.3f} -> {strongest['precision_digits']:.3f}, recall "
                   f"{base['recall_digits']:.3f} -> {strongest['recall_digits']:.3f}, modes {base['modes']} -> "
                   f"{strongest['modes']}; FD-digits is lowest at threshold {threshold_name(best['threshold'])} "
                   f"({best['fd_digits']:.4g}; untruncated {base['fd_digits']:.4g}). BigGAN: fidelity up, "
                   "diversity down, FID first better then worse.")
        degradation[label] = finite_mean([r["fd_digits"] / base["fd_digits"] for r in rows[1:]])
    if ortho is not None and plain in degradation and ortho in degradation:
        a, b = degradation[plain], degradation[ortho]
        close = abs(a - b) < 0.1 * max(a, b)  # one seed: a smaller gap is not evidence either way
        word = "UNDECIDED (within 10%)" if close else "SUPPORTED" if b < a else "NOT SUPPORTED"
        out.append(f"{word}: with orthogonal regularisation FD-digits under truncation averages {b:.3g}x its "
                   f"untruncated value, without it {a:.3g}x (BigGAN: the regulariser makes G amenable to "
                   "truncation, i.e. a smaller ratio).")
    return out


def plot_truncation_curves(sweeps: dict[str, list[dict[str, Any]]], provenance) -> Any:
    """precision, recall, modes and FD-digits against the truncation threshold, one line per model."""
    import matplotlib.pyplot as plt

    from .plotting import add_footer

    fig, axes = plt.subplots(1, len(TRUNCATION_PLOTTED), figsize=(3.6 * len(TRUNCATION_PLOTTED), 3.3))
    for label, rows in sweeps.items():
        # thresholds ascending, then "none" (no truncation = the loosest threshold of all) at the right
        ordered = sorted(rows[1:], key=lambda r: r["threshold"]) + rows[:1]
        names = [threshold_name(r["threshold"]) for r in ordered]
        for ax, metric in zip(axes, TRUNCATION_PLOTTED):
            ax.plot(names, [r[metric] for r in ordered], marker="o", label=label)
    for ax, metric in zip(axes, TRUNCATION_PLOTTED):
        ax.set_title(metric + (" (lower = better)" if metric == "fd_digits" else ""), fontsize=10)
        ax.set_xlabel("truncation threshold")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


def truncation_table(sweeps: dict[str, list[dict[str, Any]]]):
    """The sweeps as one DataFrame indexed by (model, threshold name)."""
    import pandas as pd

    rows = [{"model": label, **row, "threshold": threshold_name(row["threshold"])}
            for label, sweep in sweeps.items() for row in sweep]
    return pd.DataFrame(rows).set_index(["model", "threshold"])


def plot_truncation_grids(grids: dict[str, dict[str, Tensor]], provenance) -> Any:
    """Rows = models, columns = thresholds (then 'none'): the same latents at every threshold."""
    import matplotlib.pyplot as plt

    from .plotting import add_footer, show_grid

    labels = list(grids)
    columns = list(next(iter(grids.values())))
    columns = [c for c in columns if c != "none"] + ["none"]
    fig, axes = plt.subplots(len(labels), len(columns), figsize=(1.9 * len(columns), 2.1 * len(labels)),
                             squeeze=False)
    for row, label in zip(axes, labels):
        for ax, name in zip(row, columns):
            images = grids[label][name]
            show_grid(ax, images, title=f"threshold {name}", nrow=int(math.ceil(math.sqrt(len(images)))))
        row[0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


@functools.lru_cache(maxsize=8)
def _layer_order(config: str, preset: str) -> dict[str, tuple[str, ...]]:
    """Names of G's and D's matrix weights in network order (input side first), from networks built on the meta
    device (no memory, no compute): stored JSON sorts dict keys, so a record alone no longer knows the order."""
    from ..biggan import matrix_weights
    from ..networks import build

    with torch.device("meta"):
        G, D = build(config, preset)
    return {"G": tuple(n for n, _ in matrix_weights(G)), "D": tuple(n for n, _ in matrix_weights(D))}


def _spectral_series(record: dict[str, Any], net: str) -> dict[str, list[tuple[int, float]]]:
    """{layer: [(images_seen, sigma_0), ...]} of one run record for net 'G' or 'D', layers in network order
    (when the record's settings name its config and preset; unknown names follow in stored order).

    Non-finite values are dropped (stored records carry NaN as the string 'nan'). An all-zero weight (a
    zero-initialised residual conv at step 0) reads sigma_0 = 0 (biggan.top_singular_value).
    """
    series: dict[str, list[tuple[int, float]]] = {}
    for measurement in record.get("spectral") or []:
        for layer, sigma in measurement[net].items():
            value = float(sigma)
            if math.isfinite(value):
                series.setdefault(layer, []).append((int(measurement["images_seen"]), value))
    settings = record.get("settings") or {}
    if "config" in settings and "preset" in settings:
        rank = {name: i for i, name in enumerate(_layer_order(settings["config"], settings["preset"])[net])}
        series = dict(sorted(series.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    return series


def spectral_growth(record: dict[str, Any], net: str, late_from: float = 0.5) -> dict[str, float]:
    """Per layer: sigma_0 at the last measurement / sigma_0 at the first measurement from `late_from` x the
    last measured image count on. A layer 'blows up' late in a run when this exceeds EXPLOSION_FACTOR.

    The second half, not the start, is the reference because zero-initialised layers grow from 0 by design.
    """
    out = {}
    for layer, points in _spectral_series(record, net).items():
        last_images, last = points[-1]
        mid = next((s for i, s in points if i >= late_from * last_images and s > 0), None)
        if mid is not None and len(points) > 1:
            out[layer] = last / mid
    return out


def spectral_summary(record: dict[str, Any]) -> dict[str, Any]:
    """For G and D of one run: the first layer's late sigma_0 growth (BigGAN watched G's first layer), the layer
    that grew most, and the largest sigma_0 at the last measurement."""
    out: dict[str, Any] = {"label": record["label"], "status": record["status"],
                           "images_seen": record["images_seen"], "measurements": len(record.get("spectral") or [])}
    for net in ("G", "D"):
        series, growth = _spectral_series(record, net), spectral_growth(record, net)
        first = next(iter(series), None)
        top = max(growth, key=growth.get) if growth else None
        out[net] = {"first_layer": first, "first_layer_growth": growth.get(first) if first else None,
                    "top_layer": top, "top_growth": growth.get(top) if top else None,
                    "max_sigma": max((p[-1][1] for p in series.values()), default=None)}
    return out


def spectral_verdicts(stable: dict[str, Any], unstable: dict[str, Any],
                      factor: float = EXPLOSION_FACTOR) -> list[str]:
    """Does sigma_0 of some layer blow up before the run diverges (BigGAN Sec. 4.1)? Computed from two run
    records with spectra: a stable run (RpGAN + R1 + R2) and one expected to fail (R1 only)."""
    s, u = spectral_summary(stable), spectral_summary(unstable)

    def grew(summary: dict[str, Any], net: str) -> str:
        d = summary[net]
        if d["top_layer"] is None:
            return f"{net}: too few measurements"
        first = "n/a" if d["first_layer_growth"] is None else f"x{d['first_layer_growth']:.3g}"
        return f"{net} {d['top_layer']} x{d['top_growth']:.3g} (first layer {d['first_layer']} {first})"

    facts = (f"late sigma_0 growth (last / mid-run), {u['label']}: {grew(u, 'G')}; {grew(u, 'D')} | "
             f"{s['label']}: {grew(s, 'G')}; {grew(s, 'D')}")
    out = []
    for run in (s, u):
        if run["status"] != "ok":
            blown = [net for net in ("G", "D") if (run[net]["top_growth"] or 0) >= factor]
            other = s if run is u else u
            calm = all((other[net]["top_growth"] or 0) < factor for net in blown)
            word = "SEEN" if blown and calm else "NOT SEEN"
            what = (f"sigma_0 of {', '.join(run[n]['top_layer'] + ' in ' + n for n in blown)} grew >= {factor:g}x "
                    "in the second half" if blown else f"no layer's sigma_0 grew {factor:g}x in the second half")
            out.append(f"{word}: {run['label']} diverged at {run['images_seen']:,} images; before it, {what}"
                       f"{'' if calm else ' (but so did the other run)'}. BigGAN: G's first-layer sigma_0 "
                       "explodes at collapse.")
    if not out:
        images = max(s["images_seen"], u["images_seen"])
        out.append(f"NOT TESTABLE at this scale: neither run diverged within {images:,} images, so there is no "
                   "collapse for sigma_0 to announce (the paper's R1-only runs failed over 10 M images).")
    out.append(facts)
    return out


def plot_spectra(records: list[dict[str, Any]], provenance) -> Any:
    """sigma_0 of every weight against images seen: rows = runs, columns = G, D; log scale.

    Layers are coloured by depth (dark = input side); G's and D's first layers are drawn thick and black; a red
    dashed line marks where a run diverged.
    """
    import matplotlib.pyplot as plt

    from .plotting import add_footer

    fig, axes = plt.subplots(len(records), 2, figsize=(10, 2.9 * len(records)), squeeze=False, sharex=True)
    for row, record in zip(axes, records):
        for ax, net in zip(row, ("G", "D")):
            series = _spectral_series(record, net)
            colours = plt.cm.viridis([i / max(1, len(series) - 1) for i in range(len(series))])
            for i, (layer, points) in enumerate(series.items()):
                xs, ys = zip(*points)
                first = i == 0
                ax.plot(xs, ys, color="black" if first else colours[i], lw=2.2 if first else 1.0,
                        label=f"first layer ({layer})" if first else None, zorder=3 if first else 2)
            if record["status"] != "ok":
                ax.axvline(record["images_seen"], color="red", ls="--", label="diverged")
            ax.set_yscale("log")
            ax.set_title(f"{record['label']}: sigma_0 of {net}'s weights", fontsize=10)
            ax.legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("real images seen by D")
    fig.tight_layout()
    return add_footer(fig, provenance)


def gamma_sweep_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per gamma run (gamma held constant): stability beside quality, and `fd_cost_pct`, FD-digits above
    the best stable gamma's in percent (BigGAN's 'price' of a strong penalty).

    Stability: status; `late_max_grad_norm_fake`, the largest ||grad_x D|| on fakes over the second half of the
    log (the first records are all alike: every run starts from the same networks and batch); the largest late
    sigma_0 growth in G and in D (spectral_growth). Quality: FD-digits, precision, recall, modes.
    """
    rows = []
    for r in records:
        log = r.get("records") or []
        fake_norms = [float(x["grad_norm_fake"]) for x in log[len(log) // 2:] if x.get("grad_norm_fake") is not None]
        fake_norms = [v for v in fake_norms if math.isfinite(v)]
        growth = {net: max(spectral_growth(r, net).values(), default=None) for net in ("G", "D")}
        rows.append({"gamma": float(r["settings"]["gamma"][0]), "label": r["label"], "seed": r.get("seed", 0),
                     "status": r["status"], "images_seen": r["images_seen"],
                     "late_max_grad_norm_fake": max(fake_norms, default=None),
                     "max_sigma_growth_G": growth["G"], "max_sigma_growth_D": growth["D"],
                     **{k: r.get(k) if r["status"] == "ok" else None
                        for k in ("fd_digits", "precision_digits", "recall_digits", "modes")}})
    ok = [row["fd_digits"] for row in rows if row["fd_digits"] is not None]
    best = min(ok, default=None)
    for row in rows:
        row["fd_cost_pct"] = (None if row["fd_digits"] is None or not best
                              else 100 * (row["fd_digits"] - best) / best)
    return sorted(rows, key=lambda row: row["gamma"])


def gamma_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Stability against quality along the gamma sweep, computed from gamma_sweep_rows."""
    failed = [row["gamma"] for row in rows if row["status"] != "ok"]
    ok = [row for row in rows if row["status"] == "ok"]
    out = [f"stability: {len(failed)} of {len(rows)} runs diverged"
           + (f" (gamma = {', '.join(f'{g:g}' for g in failed)})." if failed else ".")]
    if failed and ok and max(row["gamma"] for row in ok) > max(failed):
        out.append(f"STABILISED BY GAMMA: every run at gamma <= {max(failed):g} diverged, at least one stronger "
                   "one did not.")
    if ok:
        best = min(ok, key=lambda row: row["fd_digits"])
        strongest = max(ok, key=lambda row: row["gamma"])
        cost = strongest["fd_cost_pct"]
        word = "PRICE SEEN" if cost >= 10 else "SMALL PRICE (< 10%)" if cost > 0 else "NO PRICE SEEN"
        out.append(f"{word}: the best FD-digits is at gamma {best['gamma']:g} ({best['fd_digits']:.4g}); the "
                   f"strongest stable gamma ({strongest['gamma']:g}) is {cost:.0f}% worse (precision "
                   f"{strongest['precision_digits']:.3f}, recall {strongest['recall_digits']:.3f} vs "
                   f"{best['precision_digits']:.3f}, {best['recall_digits']:.3f}). BigGAN: R1 at gamma 10 "
                   f"stabilised D but cost about {BIGGAN_R1_IS_COST:.0%} of the Inception Score.")
    return out


def plot_gamma_sweep(rows: list[dict[str, Any]], provenance) -> Any:
    """Quality (FD-digits; precision and recall) and stability (late_max_grad_norm_fake) against gamma;
    a diverged run is a red cross on the stability panel."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from .plotting import add_footer

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] != "ok"]
    axes[0].plot([r["gamma"] for r in ok], [r["fd_digits"] for r in ok], marker="o")
    axes[0].set_title("quality: FD-digits (lower = better)", fontsize=10)
    for metric in ("precision_digits", "recall_digits"):
        axes[1].plot([r["gamma"] for r in ok], [r[metric] for r in ok], marker="o", label=metric)
    axes[1].set_title("quality: precision and recall", fontsize=10)
    axes[1].legend(fontsize=8)
    with_norm = [r for r in rows if r["late_max_grad_norm_fake"] is not None]
    axes[2].plot([r["gamma"] for r in with_norm], [r["late_max_grad_norm_fake"] for r in with_norm], marker="o")
    if bad:
        top = max((r["late_max_grad_norm_fake"] for r in with_norm), default=1.0)
        axes[2].scatter([r["gamma"] for r in bad], [top] * len(bad), marker="x", s=80, color="red",
                        label="diverged", zorder=4)
        axes[2].legend(fontsize=8)
    axes[2].set_title("stability: max ||grad_x D|| on fakes, 2nd half", fontsize=10)
    axes[2].set_yscale("log")  # an exploding gradient spans decades; plain numbers when it spans less
    for axis in (axes[2].yaxis.set_major_formatter, axes[2].yaxis.set_minor_formatter):
        axis(FuncFormatter(lambda v, _: f"{v:.3g}"))
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("gamma (R1 + R2, held constant)")
    fig.tight_layout()
    return add_footer(fig, provenance)


def keep_figure(fig: Any, artifacts_dir: str | Path | None, name: str) -> Any:
    """Save `fig` as artifacts_dir/<name>.png (published with a cpu or gpu run's results); returns fig."""
    if artifacts_dir is not None:
        Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(artifacts_dir) / f"{name}.png", bbox_inches="tight")
    return fig

