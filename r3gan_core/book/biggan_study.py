"""Helpers of the BigGAN chapter (notebooks/11_biggan.py): truncation sweeps, spectra of every weight, gamma sweeps.

BigGAN = Brock, Donahue, Simonyan 2019 (PAPER_FACTS Sec. 6). Every function takes and returns plain JSON-able
records (or tensors for sample grids), so published full results and fresh smoke runs draw the same way.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data import load_dataset
from ..sampling import generate_images
from .chapter import run_generators  # noqa: F401  (the chapter's name for it: biggan_study.run_generators)
from .experiments import base_config, finite_mean, torch_threads
from ..metrics import evaluate_images
from ..training import TrainConfig, dataset_spec


TRUNCATION_COLUMNS = ("fd_digits", "kid_digits", "precision_digits", "recall_digits", "modes", "reverse_kl",
                      "modes_confident")


TRUNCATION_PLOTTED = ("precision_digits", "recall_digits", "modes", "fd_digits")


EXPLOSION_FACTOR = 2.0  # "blew up": sigma_0 at least doubled over the second half of the measurements


BIGGAN_R1_IS_COST = 0.45  # BigGAN Sec. 4.1: R1 with gamma = 10 stabilises D but costs about 45% of the IS


STABLE = "RpGAN + R1 + R2"  # the recipe: Config E's own (RpGAN, R1 + R2, gamma annealed)
R1_ONLY = "RpGAN + R1"  # Table 1's failing variant: the run whose spectra should show a collapse
BIGGAN_R1 = "R1 only, gamma 10 (BigGAN)"  # BigGAN Sec. 4.1's own setting: R1 alone, constant gamma 10


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
    orthogonal regularisation (Eq. 3), R1 alone, R1 + R2 at each constant gamma of the sweep, and BigGAN's own
    R1-only gamma 10."""
    return {STABLE: {}, ortho_label(settings): {"ortho_beta": settings["ortho_beta"]}, R1_ONLY: {"penalty": "r1"},
            **{gamma_label(g): {"gamma": float(g)} for g in settings["gammas"]},
            BIGGAN_R1: {"penalty": "r1", "gamma": 10.0}}


def threshold_name(threshold: float | None) -> str:
    """'none' for no truncation, else the threshold as written ('0.5', '2')."""
    return "none" if threshold is None else f"{threshold:g}"


def truncation_samples(G: torch.nn.Module, threshold: float | None, num_samples: int, seed: int) -> Tensor:
    """G's samples from latent seed `seed`, truncated at `threshold` (None = untruncated): the one draw that both
    the sweep's scores and its sample grids use."""
    if G is None:
        raise ValueError("truncation needs a trained generator (None: the run diverged, nothing to sample)")
    return generate_images(G, num_samples, seed=seed, truncation=threshold, device=next(G.parameters()).device)


def truncation_sweep(G: torch.nn.Module, cfg: TrainConfig, thresholds: list[float] | tuple[float, ...],
                     num_samples: int, seed: int = 0, eval_options: dict[str, Any] | None = None,
                     threads: int | None = None) -> list[dict[str, Any]]:
    """Score G's samples with no truncation, then at each threshold (BigGAN Sec. 3.1's truncation trick).

    Every threshold uses the same latent seed, so each latent only has its out-of-range entries redrawn. Returns
    one row per threshold (first `threshold` None = no truncation) with `seed` and the metrics of
    TRUNCATION_COLUMNS. cfg names the data; seed, num_samples and eval_options should be the run's, so that the
    untruncated row repeats the run's own last evaluation.
    """
    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=seed).images  # as train_and_evaluate
    rows: list[dict[str, Any]] = []
    with torch_threads(threads):
        for t in (None, *sorted(thresholds)):
            fake = truncation_samples(G, t, num_samples, seed)
            scores = evaluate_images(real, fake, stacked=real.shape[1] == 3, num_samples=num_samples, seed=seed,
                                     **(eval_options or {}))
            rows.append({"seed": seed, "threshold": t, **{k: scores[k] for k in TRUNCATION_COLUMNS}})
    return rows


def truncation_sweeps(generators: dict[tuple[str, int], torch.nn.Module], cfg: TrainConfig,
                      settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """truncation_sweep of every (label, seed) generator with the chapter's settings: {label: rows of every seed}."""
    from tqdm.auto import tqdm

    sweeps: dict[str, list[dict[str, Any]]] = {}
    for (label, seed), G in tqdm(generators.items(), desc="truncation sweeps", leave=False):
        sweeps.setdefault(label, []).extend(truncation_sweep(
            G, cfg, settings["thresholds"], settings["num_samples"], seed=seed, eval_options=settings["eval"],
            threads=settings["threads"]))
    return sweeps


def truncation_grids(generators: dict[tuple[str, int], torch.nn.Module], settings: dict[str, Any], seed: int
                     ) -> dict[str, dict[str, Tensor]]:
    """{label: {threshold name: first grid_count samples}} of each label's generator of `seed`: the images the
    sweep scored (same draw), at every threshold and untruncated."""
    grids: dict[str, dict[str, Tensor]] = {}
    for (label, s), G in generators.items():
        if s == seed:
            grids[label] = {threshold_name(t): truncation_samples(G, t, settings["num_samples"], seed)[
                :settings["grid_count"]] for t in (None, *sorted(settings["thresholds"]))}
    return grids


def _per_seed(rows: list[dict[str, Any]]) -> dict[int, dict[float | None, dict[str, Any]]]:
    """Sweep rows as {seed: {threshold: row}}."""
    out: dict[int, dict[float | None, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.get("seed", 0), {})[r["threshold"]] = r
    return out


def _values_by(rows: list[dict[str, Any]], key: str, metric: str) -> dict[Any, list[float]]:
    """{row[key]: [metric of every row with that key]} (e.g. every seed at one threshold or one gamma); rows whose
    metric is missing or non-finite (a diverged run) add the key with no value."""
    out: dict[Any, list[float]] = {}
    for row in rows:
        values = out.setdefault(row[key], [])
        if row.get(metric) is not None and math.isfinite(float(row[metric])):
            values.append(float(row[metric]))
    return out


def truncation_verdicts(sweeps: dict[str, list[dict[str, Any]]], plain: str, ortho: str | None = None
                        ) -> list[str]:
    """What the truncation sweeps showed, computed from their rows (every seed), by stated rules.

    Trade-off: at the smallest threshold precision (fidelity) should rise and recall (diversity) fall; SEEN when
    both on every seed, PARTLY when precision rose on some seed, NOT SEEN when it rose on none (diversity lost for
    no fidelity is no trade-off). Orthogonal regularisation
    (BigGAN's claim): a G trained with it degrades more gracefully, measured per seed as the mean over thresholds
    of FD-digits(threshold) / FD-digits(untruncated), lower = more graceful, compared by SEPARATION_RULE.
    """
    from .comparisons import SEPARATION_RULE, mean_sd, separated

    out, degradation = [], {}
    for label, rows in sweeps.items():
        seeds = _per_seed(rows)
        t = min(k for k in rows_thresholds(rows) if k is not None)
        base = [seeds[s][None] for s in seeds]
        strong = [seeds[s][t] for s in seeds]
        up = [b["precision_digits"] < x["precision_digits"] for b, x in zip(base, strong)]
        down = [b["recall_digits"] > x["recall_digits"] for b, x in zip(base, strong)]
        both = sum(u and d for u, d in zip(up, down))
        word = "SEEN" if both == len(seeds) else "PARTLY" if any(up) else "NOT SEEN (no fidelity gained)"
        fd = {k: finite_mean(v) for k, v in _values_by(rows, "threshold", "fd_digits").items()}
        best = min(fd, key=fd.get)

        def moved(metric: str) -> str:
            return f"{mean_sd([b[metric] for b in base])} -> {mean_sd([x[metric] for x in strong])}"

        out.append(f"{word} ({label}; both on {both}/{len(seeds)} seeds): truncating at {t:g} moves precision "
                   f"{moved('precision_digits')}, recall {moved('recall_digits')}, modes {moved('modes')}; mean "
                   f"FD-digits is lowest at threshold {threshold_name(best)} ({fd[best]:.4g}; untruncated "
                   f"{fd[None]:.4g}). BigGAN: fidelity up, diversity down, FID first better then worse.")
        degradation[label] = [finite_mean([seeds[s][k]["fd_digits"] / seeds[s][None]["fd_digits"]
                                           for k in seeds[s] if k is not None]) for s in seeds]
    if ortho is not None and plain in degradation and ortho in degradation:
        a, b = degradation[plain], degradation[ortho]
        better, how = separated(b, a, higher_is_better=False)
        worse, how_worse = separated(a, b, higher_is_better=False)
        word = ("SUPPORTED" if better else "NOT SUPPORTED (the opposite separated)" if worse
                else "NOT SEPARATED at this scale")
        out.append(f"{word}: with orthogonal regularisation FD-digits under truncation averages {mean_sd(b)}x its "
                   f"untruncated value, without it {mean_sd(a)}x ({how if better else how_worse}; rule: "
                   f"{SEPARATION_RULE}). BigGAN: the regulariser makes G amenable to truncation, i.e. a smaller "
                   "ratio.")
    return out


def rows_thresholds(rows: list[dict[str, Any]]) -> list[float | None]:
    """The thresholds of a sweep in plotting order: ascending, then None (untruncated, the loosest) last."""
    found = {r["threshold"] for r in rows}
    return sorted(t for t in found if t is not None) + ([None] if None in found else [])


def plot_truncation_curves(sweeps: dict[str, list[dict[str, Any]]], provenance,
                           baselines: dict[str, Any] | None = None) -> Any:
    """precision, recall, modes and FD-digits against the truncation threshold, one line per model: the mean over
    seeds, with error bars of one sd where there are several; the untrained and real-data baselines when given."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .plotting import COLUMN_IN, add_footer

    fig, axes = plt.subplots(2, -(-len(TRUNCATION_PLOTTED) // 2), figsize=(COLUMN_IN, 5.6))
    axes = axes.flatten()
    for label, rows in sweeps.items():
        order = rows_thresholds(rows)
        names = [threshold_name(t) for t in order]
        for ax, metric in zip(axes, TRUNCATION_PLOTTED):
            values = _values_by(rows, "threshold", metric)
            mean = [float(np.mean(values[t])) for t in order]
            sd = [float(np.std(values[t], ddof=1)) if len(values[t]) > 1 else 0.0 for t in order]
            ax.errorbar(names, mean, yerr=sd, marker="o", capsize=3, label=label)
    from .plotting import draw_baselines

    for ax, metric in zip(axes, TRUNCATION_PLOTTED):
        draw_baselines(ax, baselines, metric)
        if metric == "fd_digits":
            ax.set_yscale("log")
        ax.set_title(metric + (" (lower = better)" if metric == "fd_digits" else ""), fontsize=10)
        ax.set_xlabel("truncation threshold")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


def truncation_table(sweeps: dict[str, list[dict[str, Any]]], baselines: dict[str, Any] | None = None):
    """The sweeps as one DataFrame indexed by (model, threshold name): mean ± sd over seeds of each metric, then
    the untrained and real-data baselines (threshold "–") when given."""
    import pandas as pd

    from .comparisons import mean_sd

    rows = []
    for label, sweep in sweeps.items():
        for t in [None] + [k for k in rows_thresholds(sweep) if k is not None]:
            at = [r for r in sweep if r["threshold"] == t]
            rows.append({"model": label, "threshold": threshold_name(t), "seeds": len(at),
                         **{k: mean_sd([float(r[k]) for r in at]) for k in TRUNCATION_COLUMNS if k in at[0]}})
    for kind in ("untrained", "real"):
        entries = (baselines or {}).get(kind, [])
        for label in dict.fromkeys(b["label"] for b in entries):
            at = [b for b in entries if b["label"] == label]
            rows.append({"model": label, "threshold": "–", "seeds": len(at),
                         **{k: mean_sd([float(r[k]) for r in at if r[k] == r[k]]) for k in TRUNCATION_COLUMNS}})
    return pd.DataFrame(rows).set_index(["model", "threshold"])


def plot_truncation_grids(grids: dict[str, dict[str, Tensor]], provenance) -> Any:
    """Rows = models, columns = thresholds (then 'none'): the same latents at every threshold."""
    import matplotlib.pyplot as plt

    from .plotting import COLUMN_IN, add_footer, show_grid

    labels = list(grids)
    columns = list(next(iter(grids.values())))
    columns = [c for c in columns if c != "none"] + ["none"]
    panel = COLUMN_IN / len(columns)
    fig, axes = plt.subplots(len(labels), len(columns), figsize=(COLUMN_IN, (panel + 0.35) * len(labels)),
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


def spectral_verdicts_by_seed(runs: list[dict[str, Any]], stable: str = STABLE, unstable: str = R1_ONLY
                              ) -> list[str]:
    """spectral_verdicts of the stable and the unstable run of every seed, each line prefixed with its seed."""
    pairs = {r["seed"]: r for r in runs if r["label"] == stable}
    out = []
    for r in runs:
        if r["label"] == unstable and r["seed"] in pairs:
            out += [f"seed {r['seed']}: {line}" for line in spectral_verdicts(pairs[r["seed"]], r)]
    return out


def plot_spectra(records: list[dict[str, Any]], provenance) -> Any:
    """sigma_0 of every weight against images seen: rows = runs, columns = G, D; log scale.

    Layers are coloured by depth (dark = input side); G's and D's first layers are drawn thick and black; a red
    dashed line marks where a run diverged.
    """
    import matplotlib.pyplot as plt

    from .plotting import COLUMN_IN, add_footer, images_axis

    fig, axes = plt.subplots(len(records), 2, figsize=(COLUMN_IN, 2.6 * len(records)), squeeze=False, sharex=True)
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
            ax.set_title(f"{record['label']}: $\\sigma_0$ of {net}'s weights", fontsize=10)
            ax.legend(fontsize=8, loc="best")
    for ax in axes.flat:
        images_axis(ax)
    fig.tight_layout()
    return add_footer(fig, provenance)


def gamma_sweep_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per gamma run (gamma held constant; every seed): stability beside quality, and `fd_cost_pct`,
    FD-digits above the mean FD-digits of the best gamma in percent (BigGAN's 'price' of a strong penalty).

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
    means = _values_by(rows, "gamma", "fd_digits")
    best = min((finite_mean(v) for v in means.values() if v), default=None)
    for row in rows:
        row["fd_cost_pct"] = (None if row["fd_digits"] is None or not best
                              else 100 * (row["fd_digits"] - best) / best)
    return sorted(rows, key=lambda row: (row["gamma"], row["seed"]))


GAMMA_COLUMNS = ("fd_digits", "fd_cost_pct", "precision_digits", "recall_digits", "modes", "late_max_grad_norm_fake",
                 "max_sigma_growth_G", "max_sigma_growth_D")


def gamma_table(rows: list[dict[str, Any]]):
    """The gamma sweep as one DataFrame row per gamma: 'k/n' failed, then mean ± sd over seeds of GAMMA_COLUMNS."""
    import pandas as pd

    from .comparisons import mean_sd

    table = []
    for gamma in sorted({row["gamma"] for row in rows}):
        at = [row for row in rows if row["gamma"] == gamma]
        failed = sum(row["status"] != "ok" for row in at)
        groups = {k: _values_by(at, "gamma", k)[gamma] for k in GAMMA_COLUMNS}
        table.append({"gamma": gamma, "failed": f"{failed}/{len(at)}",
                      **{k: mean_sd(v) if v else "fail" for k, v in groups.items()}})
    return pd.DataFrame(table).set_index("gamma")


def gamma_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Stability against quality along the gamma sweep (every seed), computed from gamma_sweep_rows.

    Price: the strongest gamma with finished runs against the gamma of the best mean FD-digits, by
    SEPARATION_RULE over seeds; 'PRICE SEEN' needs the separation and at least 10% worse on the mean.
    """
    from .comparisons import SEPARATION_RULE, separated

    failed = [row["gamma"] for row in rows if row["status"] != "ok"]
    out = [f"stability: {len(failed)} of {len(rows)} runs diverged"
           + (f" (gamma = {', '.join(f'{g:g}' for g in sorted(set(failed)))})." if failed else ".")]
    fd = {g: v for g, v in _values_by(rows, "gamma", "fd_digits").items() if v}
    all_failed = [g for g in _values_by(rows, "gamma", "fd_digits") if g not in fd]
    if all_failed and fd and all(g not in fd for g in fd if g <= max(all_failed)) and max(fd) > max(all_failed):
        out.append(f"STABILISED BY GAMMA: every run at gamma <= {max(all_failed):g} diverged, at least one stronger "
                   "one did not.")
    if fd:
        best, strongest = min(fd, key=lambda g: finite_mean(fd[g])), max(fd)
        cost = 100 * (finite_mean(fd[strongest]) - finite_mean(fd[best])) / finite_mean(fd[best])
        apart, how = separated(fd[best], fd[strongest], higher_is_better=False)
        word = ("NO PRICE SEEN" if strongest == best else "SMALL PRICE (< 10%)" if cost < 10
                else "PRICE SEEN" if apart else "NOT SEPARATED at this scale")
        pr = {g: (finite_mean(_values_by(rows, "gamma", "precision_digits")[g]),
                  finite_mean(_values_by(rows, "gamma", "recall_digits")[g])) for g in (best, strongest)}
        out.append(f"{word}: the best mean FD-digits is at gamma {best:g} ({finite_mean(fd[best]):.4g}); the "
                   f"strongest stable gamma ({strongest:g}) is {cost:.0f}% worse (precision {pr[strongest][0]:.3f}, "
                   f"recall {pr[strongest][1]:.3f} vs {pr[best][0]:.3f}, {pr[best][1]:.3f}; "
                   f"{how if strongest != best else 'the same gamma'}; rule: {SEPARATION_RULE}). BigGAN: R1 at "
                   f"gamma 10 stabilised D but cost about {BIGGAN_R1_IS_COST:.0%} of the Inception Score.")
    return out


def plot_gamma_sweep(rows: list[dict[str, Any]], provenance, baselines: dict[str, Any] | None = None) -> Any:
    """Quality (FD-digits; precision and recall) and stability (late_max_grad_norm_fake) against gamma: means over
    seeds with one-sd error bars; a gamma with a diverged run gets a red cross on the stability panel. The FD-digits
    panel (log scale) carries the untrained and real-data baselines when given."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    from .plotting import COLUMN_IN, add_footer

    def draw(ax, metric: str, **kw) -> None:
        groups = {g: v for g, v in _values_by(rows, "gamma", metric).items() if v}
        gammas = sorted(groups)
        sd = [float(np.std(groups[g], ddof=1)) if len(groups[g]) > 1 else 0.0 for g in gammas]
        ax.errorbar(gammas, [float(np.mean(groups[g])) for g in gammas], yerr=sd, marker="o", capsize=3, **kw)

    fig, axes = plt.subplots(1, 3, figsize=(COLUMN_IN, 3.0))
    draw(axes[0], "fd_digits")
    if baselines:
        from .plotting import draw_baselines

        draw_baselines(axes[0], baselines, "fd_digits")
        axes[0].set_yscale("log")
        axes[0].legend(fontsize=8)
    axes[0].set_title("quality: FD-digits\n(lower = better)", fontsize=10)
    for metric in ("precision_digits", "recall_digits"):
        draw(axes[1], metric, label=metric)
    axes[1].set_title("quality: precision\nand recall", fontsize=10)
    axes[1].legend(fontsize=8)
    draw(axes[2], "late_max_grad_norm_fake")
    bad = sorted({r["gamma"] for r in rows if r["status"] != "ok"})
    if bad:
        norms = [r["late_max_grad_norm_fake"] for r in rows if r["late_max_grad_norm_fake"] is not None]
        axes[2].scatter(bad, [max(norms, default=1.0)] * len(bad), marker="x", s=80, color="red",
                        label="a run diverged", zorder=4)
        axes[2].legend(fontsize=8)
    axes[2].set_title("stability: max $\\|\\nabla_x D\\|$\non fakes, 2nd half", fontsize=10)
    axes[2].set_yscale("log")  # an exploding gradient spans decades; plain numbers when it spans less
    axes[2].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    # minor ticks labelled at 2x and 5x a decade only (all nine overlap)
    axes[2].yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.3g}" if f"{v:.0e}"[0] in "25" else ""))
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("$\\gamma$ (R1 + R2, constant)")
    fig.tight_layout()
    return add_footer(fig, provenance)


def keep_figure(fig: Any, artifacts_dir: str | Path | None, name: str) -> Any:
    """Save `fig` as artifacts_dir/<name>.png (published with a cpu or gpu run's results); returns fig."""
    if artifacts_dir is not None:
        Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(artifacts_dir) / f"{name}.png", bbox_inches="tight")
    return fig



# ---------------------------------------------------------------------------------------------------------
# Why truncation greys Config E's samples (issue: the anomaly measured). Config E's G starts from a learned 4x4
# basis scaled by a linear map of z (networks.resnet.GenerativeBasis) and its layers are convolutions and leaky
# ReLUs with small biases, so G(s z) is close to s G(z): shrinking |z|, as truncation does, shrinks the output's
# contrast towards 0, mid-grey. Measured here: how far G is from that homogeneity, the contrast against the latent
# scale, and a truncation that keeps each latent's norm (its direction truncated, its length kept).
# ---------------------------------------------------------------------------------------------------------
HOMOGENEOUS_TOLERANCE = 0.2  # "nearly homogeneous": ||G(s z) - s G(z)|| / ||s G(z)|| below this at every scale


def contrast(images: Tensor) -> float:
    """Mean over images of the standard deviation of each image's pixel values (all channels, [-1, 1] scale)."""
    return float(images.flatten(1).std(dim=1).mean())


@torch.no_grad()
def homogeneity_errors(G: torch.nn.Module, scales: list[float] | tuple[float, ...], num_samples: int, seed: int
                       ) -> dict[float, float]:
    """{s: ||G(s z) - s G(z)|| / ||s G(z)||} over num_samples latents of seed `seed` (0 = exactly homogeneous)."""
    from ..sampling import sample_images, sample_latents

    z = sample_latents(G.z_dim, num_samples, seed)
    base = sample_images(G, z, None, "cpu")
    return {float(s): float((sample_images(G, s * z, None, "cpu") - s * base).norm() / (s * base).norm())
            for s in scales}


@torch.no_grad()
def contrast_by_scale(G: torch.nn.Module, scales: list[float] | tuple[float, ...], num_samples: int, seed: int
                      ) -> list[dict[str, float]]:
    """Rows {scale, latent_norm, contrast}: G's samples from latents s * z (z of seed `seed`), for each s."""
    from ..sampling import sample_images, sample_latents

    z = sample_latents(G.z_dim, num_samples, seed)
    return [{"scale": float(s), "latent_norm": float((s * z).norm(dim=1).mean()),
             "contrast": contrast(sample_images(G, s * z, None, "cpu"))} for s in scales]


def norm_kept_latents(z_dim: int, num_samples: int, seed: int, threshold: float | None) -> Tensor:
    """BigGAN's truncated latents rescaled to the norm each latent had before truncation (same seed): the
    direction is truncated, the length kept."""
    from ..sampling import sample_latents

    z = sample_latents(z_dim, num_samples, seed)
    if threshold is None:
        return z
    zt = sample_latents(z_dim, num_samples, seed, threshold)
    return zt * (z.norm(dim=1, keepdim=True) / zt.norm(dim=1, keepdim=True).clamp_min(1e-12))


@torch.no_grad()
def truncation_contrast(G: torch.nn.Module, thresholds: list[float] | tuple[float, ...], num_samples: int,
                        seed: int) -> list[dict[str, Any]]:
    """Rows {seed, threshold, kind, latent_norm, contrast} for plain and norm-kept truncation at each threshold
    (None = untruncated), the same latent seed throughout."""
    from ..sampling import sample_images, sample_latents

    rows = []
    for t in (None, *sorted(thresholds)):
        for kind in ("plain", "norm kept"):
            z = sample_latents(G.z_dim, num_samples, seed, t) if kind == "plain" else \
                norm_kept_latents(G.z_dim, num_samples, seed, t)
            rows.append({"seed": seed, "threshold": t, "kind": kind, "latent_norm": float(z.norm(dim=1).mean()),
                         "contrast": contrast(sample_images(G, z, None, "cpu"))})
    return rows


def norm_kept_sweep(G: torch.nn.Module, cfg: TrainConfig, thresholds: list[float] | tuple[float, ...],
                    num_samples: int, seed: int = 0, eval_options: dict[str, Any] | None = None,
                    threads: int | None = None) -> list[dict[str, Any]]:
    """truncation_sweep's rows for norm-kept truncation (the untruncated row is truncation_sweep's own)."""
    from ..sampling import sample_images

    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=seed).images  # as train_and_evaluate
    rows: list[dict[str, Any]] = []
    with torch_threads(threads), torch.random.fork_rng():
        for t in sorted(thresholds):
            torch.manual_seed(seed)
            fake = sample_images(G, norm_kept_latents(G.z_dim, num_samples, seed, t), None, "cpu")
            scores = evaluate_images(real, fake, stacked=real.shape[1] == 3, num_samples=num_samples, seed=seed,
                                     **(eval_options or {}))
            rows.append({"seed": seed, "threshold": t, **{k: scores[k] for k in TRUNCATION_COLUMNS}})
    return rows


def truncation_study(generators: dict[tuple[str, int], torch.nn.Module], label: str, cfg: TrainConfig,
                     settings: dict[str, Any]) -> dict[str, Any]:
    """The measurements behind the reading of why truncation greys `label`'s samples, over every seed: G's
    homogeneity error, contrast against the latent scale, plain and norm-kept truncation's latent norm and contrast,
    the norm-kept truncation sweep, and real data's contrast."""
    scales = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
    chosen = {s: G for (l, s), G in generators.items() if l == label}
    out: dict[str, Any] = {"label": label, "scales": list(scales), "real_contrast": [],
                           "homogeneity": [], "by_scale": [], "contrast": [], "norm_kept": []}
    for seed, G in chosen.items():
        n = min(settings["num_samples"], 2_000)  # contrast and homogeneity: a mean over 2,000 samples is plenty
        real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=seed).images
        out["real_contrast"].append({"seed": seed, "contrast": contrast(real[:n])})
        out["homogeneity"].append({"seed": seed, **{str(k): v for k, v in homogeneity_errors(G, (0.5, 2.0), n, seed).items()}})
        out["by_scale"] += [{"seed": seed, **row} for row in contrast_by_scale(G, scales, n, seed)]
        out["contrast"] += truncation_contrast(G, settings["thresholds"], n, seed)
        out["norm_kept"] += norm_kept_sweep(G, cfg, settings["thresholds"], settings["num_samples"], seed=seed,
                                            eval_options=settings["eval"], threads=settings["threads"])
    return out


def _sd(values: list[float]) -> float:
    import statistics

    return statistics.stdev(values) if len(values) >= 2 else 0.0


def truncation_study_reading(study: dict[str, Any], sweeps: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Sentences from truncation_study's numbers by stated rules: homogeneity (HOMOGENEOUS_TOLERANCE), contrast
    against scale (monotone in every seed or not), what truncation does to norm and contrast, and which truncation
    keeps fidelity (mean FD-digits no worse than untruncated + one sd over seeds, mean precision no lower than
    untruncated - one sd)."""
    from .comparisons import mean_sd

    out = []
    h = study["homogeneity"]
    worst = {k: max(row[k] for row in h) for k in ("0.5", "2.0")}
    near = all(v < HOMOGENEOUS_TOLERANCE for v in worst.values())
    out.append(f"G(s·z) differs from s·G(z) by at most {worst['0.5']:.0%} at s = 0.5 and {worst['2.0']:.0%} at s = 2 "
               f"over {len(h)} seed{'s' if len(h) != 1 else ''}: {'nearly' if near else 'not'} positively homogeneous by the rule (below "
               f"{HOMOGENEOUS_TOLERANCE:.0%}), so {'output contrast scales with |z|' if near else 'the scaling argument does not hold'}.")
    by_seed: dict[int, list[dict[str, float]]] = {}
    for row in study["by_scale"]:
        by_seed.setdefault(row["seed"], []).append(row)
    monotone = all(all(a["contrast"] < b["contrast"] for a, b in zip(rows, rows[1:])) for rows in by_seed.values())
    lo, hi = study["scales"][0], study["scales"][-1]
    at = {sc: [r["contrast"] for r in study["by_scale"] if r["scale"] == sc] for sc in (lo, 1.0, hi)}
    real = [r["contrast"] for r in study["real_contrast"]]
    out.append(f"Contrast (per-image pixel sd) {'rises with the latent scale in every seed' if monotone else 'is not monotone in the latent scale in every seed'}: "
               f"{mean_sd(at[lo])} at s = {lo:g}, {mean_sd(at[1.0])} at s = 1, {mean_sd(at[hi])} at s = {hi:g}; "
               f"real data {mean_sd(real)}.")
    rows = study["contrast"]
    t = min(r["threshold"] for r in rows if r["threshold"] is not None)

    def pick(kind: str, thr, key: str) -> list[float]:
        return [r[key] for r in rows if r["kind"] == kind and r["threshold"] == thr]

    out.append(f"Truncating at {t:g} shrinks the mean latent norm from {mean_sd(pick('plain', None, 'latent_norm'))} "
               f"to {mean_sd(pick('plain', t, 'latent_norm'))} and contrast from "
               f"{mean_sd(pick('plain', None, 'contrast'))} to {mean_sd(pick('plain', t, 'contrast'))}; keeping each "
               f"latent's norm keeps contrast at {mean_sd(pick('norm kept', t, 'contrast'))}.")
    plain_rows = sweeps[study["label"]]
    base_fd = [r["fd_digits"] for r in plain_rows if r["threshold"] is None]
    base_p = [r["precision_digits"] for r in plain_rows if r["threshold"] is None]
    kept = []
    for kind, source in (("plain", plain_rows), ("norm kept", study["norm_kept"])):
        for thr in sorted({r["threshold"] for r in source if r["threshold"] is not None}):
            fd = [r["fd_digits"] for r in source if r["threshold"] == thr]
            p = [r["precision_digits"] for r in source if r["threshold"] == thr]
            if (sum(fd) / len(fd) <= sum(base_fd) / len(base_fd) + _sd(base_fd)
                    and sum(p) / len(p) >= sum(base_p) / len(base_p) - _sd(base_p)):
                kept.append(f"{kind} at {thr:g} (FD-digits {mean_sd(fd)}, precision {mean_sd(p)})")
    nk = {thr: [r for r in study["norm_kept"] if r["threshold"] == thr] for thr in (t,)}
    out.append(f"Untruncated: FD-digits {mean_sd(base_fd)}, precision {mean_sd(base_p)}; norm-kept truncation at {t:g}: "
               f"FD-digits {mean_sd([r['fd_digits'] for r in nk[t]])}, precision "
               f"{mean_sd([r['precision_digits'] for r in nk[t]])}. Fidelity is kept (rule: mean FD-digits within one sd "
               f"of untruncated or better, mean precision at least untruncated minus one sd) by "
               + ("; ".join(kept) if kept else "no truncation tried") + ".")
    return out


def plot_truncation_study(study: dict[str, Any], sweeps: dict[str, list[dict[str, Any]]], provenance) -> Any:
    """Left: contrast against the mean latent norm, for scaled latents (line per seed) and for plain and norm-kept
    truncation (markers), with real data's contrast. Right: FD-digits against the threshold, plain and norm kept."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .plotting import COLUMN_IN, add_footer

    fig, (left, right) = plt.subplots(1, 2, figsize=(COLUMN_IN, 3.6))
    by_seed: dict[int, list[dict[str, float]]] = {}
    for row in study["by_scale"]:
        by_seed.setdefault(row["seed"], []).append(row)
    for i, (seed, rows) in enumerate(sorted(by_seed.items())):
        left.plot([r["latent_norm"] for r in rows], [r["contrast"] for r in rows], color="0.5", lw=1,
                  label="latents scaled by s (one line per seed)" if i == 0 else None)
    for kind, marker in (("plain", "o"), ("norm kept", "s")):
        rows = [r for r in study["contrast"] if r["kind"] == kind and r["threshold"] is not None]
        left.scatter([r["latent_norm"] for r in rows], [r["contrast"] for r in rows], marker=marker, zorder=3,
                     label=f"{kind} truncation")
    left.axhline(float(np.mean([r["contrast"] for r in study["real_contrast"]])), color="black", ls=":",
                 label="real data")
    left.set_xlabel("mean latent norm |z|")
    left.set_ylabel("contrast (per-image pixel sd)")
    left.legend(fontsize=8)
    plain = sweeps[study["label"]]
    base = float(np.mean([r["fd_digits"] for r in plain if r["threshold"] is None]))
    for kind, rows, marker in (("plain", [r for r in plain if r["threshold"] is not None], "o"),
                               ("norm kept", study["norm_kept"], "s")):
        ts = sorted({r["threshold"] for r in rows})
        mean = [float(np.mean([r["fd_digits"] for r in rows if r["threshold"] == t])) for t in ts]
        right.plot(ts, mean, marker=marker, label=f"{kind} truncation")
    right.axhline(base, color="0.3", ls="--", label="untruncated")
    right.set_yscale("log")
    right.set_xlabel("truncation threshold")
    right.set_title("FD-digits (lower = better)", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)
