"""Helpers of the lazy-penalties chapter (notebooks/12_lazy_penalties.py): what R1 + R2 cost, and what applying them
on every k-th step only (lazy regularisation, `penalty_interval`) gives back and breaks.

Three scales, one question each:
* Dirac-GAN (r3gan_core.convergence.lazy): where does lazy regularisation keep local convergence? The period map's
  spectral radius over k and h, the largest stable interval, each statement checked against simulated trajectories.
* 2D toys (r3gan_core.convergence.toy): do lazy R1 + R2 runs reach the same modes as every-step ones?
* stacked digits: quality against wall-clock time for Config E at intervals 1, 4 and 16, beside an unpenalised run
  (what unhealthy training looks like) and lazy R1 alone.
Every function returns plain JSON-able rows, so stored results and fresh runs draw and read the same way.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from ..convergence import lazy
from .comparisons import mean_sd, separated

REPO = Path(__file__).resolve().parents[2]
CPU_BENCHMARK = REPO / "benchmarks" / "measured" / "cpu-2026-12-02" / "intervals_stacked8_E.json"
H200_BENCHMARK = REPO / "benchmarks" / "measured" / "h200-2026-11-26"
AGREEMENT = 0.02  # simulated and predicted per-step rates agree: the same side of 1, and within this of each other


def interval_label(k: int, penalty: str = "r1+r2") -> str:
    """The run label of a stacked-digits variant: 'R1 + R2 every step', 'R1 + R2 every 16th step', 'R1 every 16th step'."""
    name = {"r1+r2": "R1 + R2", "r1": "R1", "r2": "R2"}[penalty]
    return f"{name} every step" if k == 1 else f"{name} every {k}th step"


NO_PENALTY = "no penalty"


def stacked_variants(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stacked-digits runs: Config E's recipe at each interval, lazy R1 alone at the largest, and no penalty."""
    variants = {interval_label(k): {"penalty_interval": k} for k in settings["intervals"]}
    variants[interval_label(max(settings["intervals"]), "r1")] = {"penalty": "r1",
                                                                  "penalty_interval": max(settings["intervals"])}
    variants[NO_PENALTY] = {"penalty": "none"}
    return variants


# ---------------------------------------------------------------------------------------------------------
# Dirac-GAN
# ---------------------------------------------------------------------------------------------------------
def rate_grid(penalty: str, gamma: float, hs: list[float], ks: list[int], scheme: str) -> list[list[float]]:
    """per_step_rate over [k][h]: < 1 where lazy regularisation converges locally."""
    return [[lazy.per_step_rate(penalty, gamma, float(h), int(k), scheme) for h in hs] for k in ks]


def largest_intervals(penalty: str, gamma: float, hs: list[float], scheme: str) -> list[dict[str, Any]]:
    """Rows {scheme, h, k_star, bound}: the largest stable interval and the closed-form bound 1 / (h c)."""
    return [{"scheme": scheme, "h": float(h), "k_star": lazy.largest_stable_interval(penalty, gamma, float(h), scheme),
             "bound": lazy.interval_bound(penalty, gamma, float(h))} for h in hs]


def simulated_rate(penalty: str, gamma: float, h: float, k: int, scheme: str, steps: int = 4_000,
                   start: float = 1e-6) -> float:
    """The per-step contraction of a simulated trajectory (GAN loss) from (start, start), near the equilibrium where
    the linearisation is the claim, over the second half of at least `steps` steps and 400 periods:
    (|x_end| / |x_mid|)^(1 / steps between)."""
    periods = max(400, steps // k)
    path = lazy.simulate_lazy("gan", penalty, gamma, h, periods, k, start=(start, start), scheme=scheme)
    norms = np.linalg.norm(path, axis=1)
    mid, end = norms[periods // 2], norms[-1]
    if not np.isfinite(end):
        return math.inf
    if mid == 0:
        return 0.0
    return float((end / mid) ** (1.0 / ((periods - periods // 2) * k)))


def simulation_check(penalty: str, gamma: float, points: list[tuple[float, int]], scheme: str
                     ) -> list[dict[str, Any]]:
    """Rows {scheme, h, k, predicted, simulated, agree} for each (h, k): the spectral radius's per-step rate
    against the simulated one (AGREEMENT)."""
    rows = []
    for h, k in points:
        predicted = lazy.per_step_rate(penalty, gamma, float(h), int(k), scheme)
        simulated = simulated_rate(penalty, gamma, float(h), int(k), scheme)
        agree = (predicted < 1) == (simulated < 1) and (math.isinf(simulated) or abs(predicted - simulated) <= AGREEMENT)
        rows.append({"scheme": scheme, "h": float(h), "k": int(k), "predicted": predicted, "simulated": simulated,
                     "agree": bool(agree)})
    return rows


def dirac_study(settings: dict[str, Any]) -> dict[str, Any]:
    """Everything the chapter shows about the Dirac-GAN: rate grids, largest intervals, simulation checks."""
    d = settings["dirac"]
    out: dict[str, Any] = {"penalty": d["penalty"], "gamma": d["gamma"], "hs": d["hs"], "ks": d["ks"],
                           "grids": {}, "largest": [], "checks": []}
    for scheme in ("simultaneous", "alternating"):
        out["grids"][scheme] = rate_grid(d["penalty"], d["gamma"], d["hs"], d["ks"], scheme)
        out["largest"] += largest_intervals(d["penalty"], d["gamma"], d["check_hs"], scheme)
        points = []
        for row in out["largest"][-len(d["check_hs"]):]:  # just inside and just outside the stable range
            points += [(row["h"], max(1, row["k_star"])), (row["h"], row["k_star"] + 1)]
        out["checks"] += simulation_check(d["penalty"], d["gamma"], points, scheme)
    return out


def dirac_reading(study: dict[str, Any]) -> list[str]:
    """The stable ranges by scheme and h, against the closed-form bound, and whether the simulations agree."""
    out = []
    for scheme in ("simultaneous", "alternating"):
        rows = [r for r in study["largest"] if r["scheme"] == scheme]
        parts = [f"h = {r['h']:g}: k ≤ {r['k_star']} (bound 1/(hc) = {r['bound']:.3g})" for r in rows]
        out.append(f"{scheme.capitalize()} updates, {study['penalty'].upper()} at γ = {study['gamma']:g}: lazy "
                   f"regularisation converges locally for " + "; ".join(parts) + ", and diverges beyond.")
    checks = study["checks"]
    agree = sum(c["agree"] for c in checks)
    out.append(f"Simulated trajectories agree with the spectral radius at {agree} of {len(checks)} checked points "
               f"(just inside and just outside each stable range; rule: the same side of 1 and within {AGREEMENT} "
               "per step).")
    return out


def plot_dirac_study(study: dict[str, Any], provenance) -> Any:
    """Per scheme: the per-step rate over (h, k) as a heat map, the contour rate = 1 and the bound k = 1/(hc)."""
    import matplotlib.pyplot as plt

    from .plotting import COLUMN_IN, add_footer

    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_IN, 3.6), sharey=True)
    hs, ks = np.array(study["hs"]), np.array(study["ks"])
    c = lazy.damping(study["penalty"], study["gamma"])
    for ax, scheme in zip(axes, ("simultaneous", "alternating")):
        grid = np.array(study["grids"][scheme])
        mesh = ax.pcolormesh(hs, ks, np.clip(grid, 0.9, 1.1), cmap="RdBu_r", vmin=0.9, vmax=1.1, shading="nearest")
        ax.contour(hs, ks, grid, levels=[1.0], colors="black", linewidths=1.5)
        ax.plot(hs, 1.0 / (hs * c), color="black", ls="--", lw=1, label="bound k = 1/(h c)")
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_ylim(ks.min(), ks.max())
        ax.set_xlabel("step size h")
        ax.set_title(f"{scheme}: per-step rate (black: rate = 1)", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    axes[0].set_ylabel("penalty interval k")
    fig.colorbar(mesh, ax=axes, label="per-step rate (< 1 converges)", shrink=0.9)
    return add_footer(fig, provenance)


# ---------------------------------------------------------------------------------------------------------
# 2D toys
# ---------------------------------------------------------------------------------------------------------
def toy_runs(settings: dict[str, Any], progress: bool = False) -> list[dict[str, Any]]:
    """R1 + R2 (RpGAN) at each interval of settings["toy"]["intervals"], every dataset and seed: one row each."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    from ..convergence import toy

    t = settings["toy"]
    base = toy.config_from_settings({**t, "loss": "rpgan", "penalty": "r1+r2"})
    combos = [(d, s, k) for d in t["datasets"] for s in t["seeds"] for k in t["intervals"]]
    rows = []
    for dataset, seed, k in tqdm(combos, desc="toy runs", disable=not progress):
        result = toy.train_toy(replace(base, dataset=dataset, seed=seed, penalty_interval=k), progress=False)
        rows.append({"dataset": dataset, "seed": seed, "interval": k, "status": result.status,
                     "fail_step": result.fail_step, "modes": result.metrics.modes,
                     "num_modes": result.metrics.num_modes, "hq": result.metrics.high_quality,
                     "kl": result.metrics.reverse_kl, "wall_s": round(result.wall_s, 2)})
    return rows


def toy_reading(rows: list[dict[str, Any]]) -> list[str]:
    """Per dataset: each interval's HQ fraction and KL (mean ± sd over seeds) and whether every-step R1 + R2 beats
    it by the book's separation rule (comparisons.separated), or it fails."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        ref = [r for r in mine if r["interval"] == 1 and r["status"] == "ok"]
        parts = []
        for k in sorted({r["interval"] for r in mine}):
            runs = [r for r in mine if r["interval"] == k]
            ok = [r for r in runs if r["status"] == "ok"]
            fails = len(runs) - len(ok)
            if not ok:
                parts.append(f"k = {k}: every seed failed")
                continue
            text = f"k = {k}: HQ {mean_sd([r['hq'] for r in ok])}, KL {mean_sd([r['kl'] for r in ok])}"
            if fails:
                text += f" ({fails}/{len(runs)} seeds failed)"
            if k != 1 and ref:
                worse = [name for name, key, up in (("HQ", "hq", True), ("KL", "kl", False))
                         if separated([r[key] for r in ref], [r[key] for r in ok], up)[0]]
                text += f", worse than every step on {' and '.join(worse)}" if worse else ", not separated from every step"
            parts.append(text)
        out.append(f"{dataset}: " + "; ".join(parts) + ".")
    return out


def plot_toy_runs(rows: list[dict[str, Any]], provenance) -> Any:
    """HQ fraction and reverse KL against the interval, one line per dataset, mean ± sd over seeds."""
    import matplotlib.pyplot as plt

    from .plotting import COLUMN_IN, add_footer

    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_IN, 3.2))
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        ks = sorted({r["interval"] for r in rows if r["dataset"] == dataset})
        for ax, key in zip(axes, ("hq", "kl")):
            vals = [[r[key] for r in rows if r["dataset"] == dataset and r["interval"] == k and r["status"] == "ok"]
                    for k in ks]
            mean = [statistics.fmean(v) if v else math.nan for v in vals]
            sd = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in vals]
            ax.errorbar(ks, mean, yerr=sd, marker="o", capsize=3, label=dataset)
    for ax, title in zip(axes, ("HQ fraction (higher = better)", "reverse KL to uniform over modes (lower = better)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("penalty interval k")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


# ---------------------------------------------------------------------------------------------------------
# Stacked digits: cost, Pareto, verdicts, healthy curves
# ---------------------------------------------------------------------------------------------------------
def lazy_verdicts(records: list[dict[str, Any]], judgement: dict[str, Any], intervals: list[int]) -> list[str]:
    """Per interval k > 1 against every step: speed (images per second over the same runs' training, by
    comparisons.separated) and quality (each separating metric: is every step separated better?). PAYS OFF: faster
    and no separating metric worse; TRADE-OFF: faster but worse on some; NO GAIN SHOWN: not separated faster. A
    label that did not train or is degrading is named and makes PAYS OFF read NOT DECIDED."""
    from .baselines import HIGHER_IS_BETTER, state_note
    from .readings import METRIC_NAMES

    ref_label = interval_label(1)
    ref = [r for r in records if r["label"] == ref_label and r["status"] == "ok"]
    out = []
    for k in (k for k in intervals if k != 1):
        label = interval_label(k)
        mine = [r for r in records if r["label"] == label and r["status"] == "ok"]
        if not mine or not ref:
            out.append(f"NOT DECIDED: {label}: no finished run to compare.")
            continue
        fast, how = separated([r["images_per_second"] for r in mine], [r["images_per_second"] for r in ref], True)
        speed = statistics.fmean(r["images_per_second"] for r in mine) / statistics.fmean(
            r["images_per_second"] for r in ref)
        worse = []
        for m in judgement["separating"]:
            hit, m_how = separated([r[m] for r in ref], [r[m] for r in mine], HIGHER_IS_BETTER[m])
            if hit:
                worse.append(f"{METRIC_NAMES[m]} {mean_sd([r[m] for r in mine])} vs {mean_sd([r[m] for r in ref])} "
                             f"({m_how})")
        word = ("NO GAIN SHOWN" if not fast else "TRADE-OFF" if worse else "PAYS OFF")
        notes = [n for n in (state_note(x, judgement["label_states"].get(x, {})) for x in (label, ref_label)) if n]
        if notes and word == "PAYS OFF":
            word = "NOT DECIDED"
        text = (f"{word}: {label} trains at {speed:.2f}x the images per second of every step "
                f"({mean_sd([r['images_per_second'] for r in mine])} vs {mean_sd([r['images_per_second'] for r in ref])}, "
                f"{how}); " + (f"worse on {'; '.join(worse)}" if worse else
                               "no separating metric is worse than every step's" if judgement["separating"] else
                               "no metric separates, so quality is undecided"))
        out.append(text + (". " + "; ".join(notes) if notes else "") + ".")
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower time, lower cost), sorted by time."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(records: list[dict[str, Any]], metric: str, provenance, baselines: dict[str, Any] | None = None
                ) -> Any:
    """Final `metric` against training wall time, one point per run, the Pareto front of the label means drawn;
    the real-data baseline's level dotted and the untrained range shaded."""
    import matplotlib.pyplot as plt

    from .baselines import HIGHER_IS_BETTER
    from .plotting import add_footer, draw_baselines

    fig, ax = plt.subplots(figsize=(7.5, 4))
    labels = list(dict.fromkeys(r["label"] for r in records))
    means = []
    for label in labels:
        runs = [r for r in records if r["label"] == label and r["status"] == "ok" and r.get(metric) is not None]
        if not runs:
            continue
        ax.scatter([r["wall_time_s"] for r in runs], [r[metric] for r in runs], label=label, s=30)
        means.append((label, statistics.fmean(r["wall_time_s"] for r in runs),
                      statistics.fmean(r[metric] for r in runs)))
    sign = -1 if HIGHER_IS_BETTER.get(metric, False) else 1
    front = pareto_front([(t, sign * v) for _, t, v in means])
    ax.plot([means[i][1] for i in front], [means[i][2] for i in front], color="black", lw=1,
            label="Pareto front of the means")
    draw_baselines(ax, baselines, metric)
    ax.set_yscale("log" if metric in ("fd_digits", "kid_digits") else "linear")
    ax.set_xlabel("training wall time per run (s; two one-thread runs side by side)")
    ax.set_title(f"final {metric} against training time", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return add_footer(fig, provenance)


HEALTH_PANELS = (("losses", ("d_loss", "g_loss")), ("logits", ("real_logits", "fake_logits")),
                 ("‖∇D‖", ("grad_norm_real", "grad_norm_fake")), ("penalties", ("r1", "r2")))


def plot_health(records: list[dict[str, Any]], labels: list[str], provenance) -> Any:
    """The trainer's logged curves of `labels` (bands over seeds): G and D losses, real and fake logits, D's input
    gradient norms, the R1 and R2 terms."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from .plotting import COLUMN_IN, add_footer, images_axis

    rows = []
    for r in records:
        if r["label"] not in labels:
            continue
        for rec in r.get("records", []):
            for _, keys in HEALTH_PANELS:
                for key in keys:
                    if rec.get(key) is not None:
                        rows.append({"run": r["label"], "seed": r["seed"], "images_seen": rec["images_seen"],
                                     "quantity": key, "value": rec[key]})
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(2, -(-len(HEALTH_PANELS) // 2), figsize=(COLUMN_IN, 6.4), squeeze=False)
    axes = axes.flatten()
    for ax, (title, keys) in zip(axes, HEALTH_PANELS):
        part = df[df["quantity"].isin(keys)] if not df.empty else df
        if not part.empty:
            sns.lineplot(data=part, x="images_seen", y="value", hue="run", style="quantity", errorbar=("pi", 100),
                         ax=ax, legend=title == HEALTH_PANELS[0][0] or title == "‖∇D‖")
        if title in ("‖∇D‖", "penalties"):
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("")
        images_axis(ax)
    for ax in axes:
        if ax.get_legend() is not None:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


def health_reading(records: list[dict[str, Any]], labels: list[str]) -> list[str]:
    """For each label (means over its seeds): the logit gap real - fake and D's gradient norm on fakes at the start
    and the end of its log, the R1 term's trend, and whether any seed diverged."""
    from .readings import number

    out = []
    for label in labels:
        runs = [r for r in records if r["label"] == label and r.get("records")]
        if not runs:
            continue

        def at(index: int, key: str) -> float:
            values = [r["records"][index].get(key) for r in runs]
            values = [v for v in values if v is not None and math.isfinite(v)]
            return statistics.fmean(values) if values else math.nan

        gap0, gap1 = (at(i, "real_logits") - at(i, "fake_logits") for i in (0, -1))
        diverged = sum(r["status"] != "ok" for r in runs)
        text = (f"{label}: the logit gap (real - fake) goes from {number(gap0)} to {number(gap1)}, D's gradient norm "
                f"on fakes from {number(at(0, 'grad_norm_fake'))} to {number(at(-1, 'grad_norm_fake'))}")
        if not math.isnan(at(-1, "r1")):
            text += f", the R1 term from {number(at(0, 'r1'))} to {number(at(-1, 'r1'))}"
        out.append(text + (f"; {diverged}/{len(runs)} seeds diverged" if diverged else "; no seed diverged") + ".")
    return out


def cpu_cost_rows() -> list[dict[str, Any]]:
    """The stored CPU benchmark of the trainer at each penalty interval (one run of benchmarks/bench_iteration.py
    --intervals): images per second and R1 + R2 overhead against no penalty."""
    data = json.loads(CPU_BENCHMARK.read_text())
    row = data["rows"][0]
    rows = [{"where": f"this CPU ({data['device']})", "what": f"trainer, penalty every {r['penalty_interval']} steps",
             "images / s": r["images_per_s"], "overhead": r["overhead"]} for r in row["intervals"]]
    rows.append({"where": f"this CPU ({data['device']})", "what": "trainer, no penalty",
                 "images / s": row["intervals"][0]["without_penalty_images_per_s"], "overhead": 1.0})
    return rows


def h200_cost_rows() -> list[dict[str, Any]]:
    """The stored H200 measurements (benchmarks/measured/h200-2026-11-26): R1 + R2 overhead of an iteration with
    networks.conv's first-order backward (bench.json) and with PyTorch's own double backward (ref.txt)."""
    import re

    data = json.loads((H200_BENCHMARK / "bench.json").read_text())
    rows = []
    for r in data["rows"]:
        if r["config"] in ("A", "E"):
            rows.append({"where": "one H200 (measured 2026-11-26)", "what": f"config {r['config']}, {r['preset']}, "
                         "networks.conv backward", "images / s": r["images_per_s"],
                         "overhead": r["without_penalty"]["images_per_s"] / r["images_per_s"]})
    text = (H200_BENCHMARK / "ref.txt").read_text().split("[device] reference-conv")[0]
    for config, rate, overhead in re.findall(r"^([AE])\s+\S+\s+[\d,]+\s+[\d,]+\s+[\d.]+\s+([\d.]+)\n.*?overhead = "
                                             r"([\d.]+)x", text, flags=re.M | re.S):
        rows.append({"where": "one H200 (measured 2026-11-26)", "what": f"config {config}, cifar10, PyTorch's "
                     "double backward", "images / s": float(rate), "overhead": float(overhead)})
    return rows
