"""The two baselines every image result stands beside, and the rules that read results against them.

A number about a generator means something only beside two others computed by the same protocol and sample count:

* **untrained**: the run's own generator before its first step (training.initial_networks with the run's config,
  preset and seed), sampled and scored exactly as the trained one is (experiments.score_samples);
* **real data**: a fresh draw of real images (the same dataset and size, drawn with seed + REAL_DRAW_OFFSET:
  other stacked triples of the same base digits) scored against the run's real reference as if it were generated.

From them, three rules (constants below, each printed with its result):

1. **separation** (`separation_table`): a metric may decide a verdict only when the gap between real data and the
   untrained generator is at least SEPARATION_RATIO times the spread of the trained runs over seeds (their pooled
   standard deviation of the final values). At stacked8 the paper's plain mode count and reverse KL do not pass:
   an untrained network already lands in most modes, because the classifier labels noise with *some* digit.
2. **did not train** (`run_states`): a finished run that closes less than DID_NOT_TRAIN_FRACTION of the gap from
   its untrained baseline to real data on every separating metric.
3. **degrading** (`degrading_labels`): runs whose separating metrics worsen from the evaluation nearest half their
   images to the last by more than their seeds' spread (sd over seeds of the final values), judged on the mean over
   the seeds of one label, on a majority of the separating metrics.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch

__all__ = ["DEGRADING_RULE", "DID_NOT_TRAIN_FRACTION", "DID_NOT_TRAIN_RULE", "HIGHER_IS_BETTER", "REAL_DRAW_OFFSET",
           "SEPARATION_RATIO", "SEPARATION_RULE_TEXT", "VERDICT_METRICS", "baseline_records", "baselines_for", "degrading_labels", "evaluate_baselines",
           "gap_closed", "judge", "label_states", "run_states", "separating_metrics", "separation_table",
           "state_column", "state_note", "untrained_for", "untrained_generator"]

# Which way is better, for every metric a verdict may use (the headline metrics of experiments.ExperimentResult).
HIGHER_IS_BETTER = {"fd_digits": False, "kid_digits": False, "precision_digits": True, "recall_digits": True,
                    "modes": True, "reverse_kl": False, "modes_confident": True, "reverse_kl_confident": False}
VERDICT_METRICS = tuple(HIGHER_IS_BETTER)

SEPARATION_RATIO = 10.0
SEPARATION_RULE_TEXT = (f"a metric decides verdicts only if |real - untrained| >= {SEPARATION_RATIO:g} x the trained "
                        "runs' spread over seeds (pooled sd of their final values)")
DID_NOT_TRAIN_FRACTION = 0.1
DID_NOT_TRAIN_RULE = (f"did not train: closes less than {DID_NOT_TRAIN_FRACTION:.0%} of the gap from its untrained "
                      "baseline to real data on every separating metric")
DEGRADING_RULE = ("degrading: from the evaluation nearest half its images to the last, the mean over its seeds "
                  "worsens by more than the seeds' spread (sd of the final values) on a majority of the separating "
                  "metrics")
REAL_DRAW_OFFSET = 1_000_000  # the real-data baseline's images are drawn with seed + this (a fresh draw)

PROTOCOL_KEYS = ("dataset", "max_items", "num_samples", "real_samples", "eval")
NETWORK_KEYS = ("config", "preset", "network", "conditional")


# ---------------------------------------------------------------------------------------------------------
# Evaluating the baselines
# ---------------------------------------------------------------------------------------------------------
def untrained_generator(settings: dict[str, Any], seed: int) -> torch.nn.Module:
    """G exactly as the trainer initialises it for a run with these settings and seed (eval mode, no grad).
    The caller's global random state is left as it was."""
    from ..training import TrainConfig, initial_networks

    cfg = TrainConfig(config=settings["config"], preset=settings["preset"], seed=seed,
                      conditional=settings.get("conditional", False), network=dict(settings.get("network") or {}))
    with torch.random.fork_rng():
        G, _ = initial_networks(cfg)
    return G.eval().requires_grad_(False)


def _protocol(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings.get(k) for k in PROTOCOL_KEYS}


def _network(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings.get(k) for k in NETWORK_KEYS}


def evaluate_baselines(records: list[dict[str, Any]], threads: int | None = None,
                       kinds: tuple[str, ...] = ("untrained", "real")) -> dict[str, Any]:
    """The untrained and real-data baselines of a chapter's run records, by the runs' own protocol.

    One untrained entry per network (config, preset, network options) and seed among the records, one real-data
    entry per seed. Every entry holds the full metrics dict of experiments.score_samples plus `seed` and `label`.
    kinds: which of the two to evaluate (the other comes back empty); a check of one needs only its own.
    """
    unknown = sorted(set(kinds) - {"untrained", "real"})
    if unknown:
        raise ValueError(f"unknown baseline kinds {unknown}; valid choices: untrained, real")
    from ..data import load_dataset
    from ..report import device_description, git_commit
    from ..sampling import generate_images
    from .experiments import protocol_reference, score_samples, torch_threads

    if not records:
        raise ValueError("no run records: the baselines are evaluated by the protocol of a chapter's runs")
    protocols = {repr(_protocol(r["settings"])) for r in records}
    if len(protocols) > 1:
        raise ValueError(f"the runs were evaluated under {len(protocols)} protocols; baselines need one: {protocols}")
    first = records[0]["settings"]
    seeds = sorted({r["seed"] for r in records})
    networks: dict[str, dict[str, Any]] = {}
    for r in records:
        networks.setdefault(repr(_network(r["settings"])), r["settings"])
    t0 = time.perf_counter()
    untrained, real = [], []
    with torch_threads(threads):
        for seed in seeds:
            images = load_dataset(first["dataset"], max_items=first["max_items"], seed=seed).images
            reference = protocol_reference(images, first["num_samples"], first.get("real_samples"), seed,
                                           first.get("eval"))
            if "real" in kinds:
                fresh = load_dataset(first["dataset"], max_items=first["max_items"],
                                     seed=seed + REAL_DRAW_OFFSET).images
                scores = score_samples(reference, fresh, first["num_samples"], first.get("real_samples"), seed,
                                       first.get("eval"))
                real.append({"label": "real data", "seed": seed, "draw_seed": seed + REAL_DRAW_OFFSET, **scores})
            for settings in (networks.values() if "untrained" in kinds else ()):
                G = untrained_generator(settings, seed)
                fake = generate_images(G, settings["num_samples"], seed=seed)
                scores = score_samples(reference, fake, first["num_samples"], first.get("real_samples"), seed,
                                       first.get("eval"))
                untrained.append({"label": f"untrained Config {settings['config']}", **_network(settings),
                                  "seed": seed, "images_seen": 0, **scores})
    return {"untrained": untrained, "real": real, "protocol": _protocol(first),
            "provenance": {"commit": git_commit(), "device": device_description("cpu"),
                           "date": time.strftime("%Y-%m-%d"), "wall_time_s": round(time.perf_counter() - t0, 1)}}


def baselines_for(stored: dict[str, Any] | None, records: list[dict[str, Any]], threads: int | None = None
                  ) -> dict[str, Any]:
    """The stored baselines of a chapter record (results/<chapter>/<profile>/metrics.json) when it holds them for
    these runs' protocol, else evaluated now (evaluate_baselines; about 5 s per entry at 10,000 samples)."""
    found = (stored or {}).get("metrics", {}).get("baselines")
    ok = [r for r in records if "settings" in r]
    if found is not None and ok and found.get("protocol") == _protocol(ok[0]["settings"]):
        return found
    print("Evaluating the untrained and real-data baselines by the runs' protocol ...")
    return evaluate_baselines(ok, threads=threads)


def untrained_for(baselines: dict[str, Any], settings: dict[str, Any], seed: int | None = None
                  ) -> list[dict[str, Any]]:
    """The untrained entries of the network these settings train (one seed, or all when seed is None)."""
    want = _network(settings)
    return [u for u in baselines["untrained"] if {k: u.get(k) for k in NETWORK_KEYS} == want
            and (seed is None or u["seed"] == seed)]


# ---------------------------------------------------------------------------------------------------------
# Rule 1: which metrics separate
# ---------------------------------------------------------------------------------------------------------
def number(value: Any) -> float:
    """A stored metric as a float: None and the strings report.jsonable writes for NaN / inf read as NaN / inf."""
    return float("nan") if value is None else float(value)


def _finite(values) -> list[float]:
    return [v for v in map(number, values) if not math.isnan(v)]


def _mean(values) -> float:
    values = _finite(values)
    return statistics.fmean(values) if values else float("nan")


def pooled_sd(groups: list[list[float]]) -> float:
    """The pooled standard deviation of several groups (ddof 1 each); NaN when no group has two values."""
    num = sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) >= 2)
    dof = sum(len(g) - 1 for g in groups if len(g) >= 2)
    return math.sqrt(num / dof) if dof else float("nan")


def _finished(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok"]


def separation_table(records: list[dict[str, Any]], baselines: dict[str, Any],
                     metrics: tuple[str, ...] = VERDICT_METRICS) -> list[dict[str, Any]]:
    """Rule 1, one row per metric: real and untrained means, their gap (the smallest over the runs' networks), the
    trained runs' pooled sd over seeds, gap / sd, and whether the metric separates (may decide verdicts)."""
    rows = []
    finished = _finished(records)
    labels = list(dict.fromkeys(r["label"] for r in finished))
    for m in metrics:
        real = _mean(b.get(m) for b in baselines["real"])
        per_network: dict[str, list[float]] = {}
        for u in baselines["untrained"]:
            per_network.setdefault(u["label"], []).append(u.get(m))
        untrained = {name: _mean(v) for name, v in per_network.items()}
        gap = min((abs(real - u) for u in untrained.values()), default=float("nan"))
        spread = pooled_sd([_finite(r.get(m) for r in finished if r["label"] == label) for label in labels])
        ratio = float("nan") if spread != spread else gap / spread if spread > 0 else (
            math.inf if gap > 0 else float("nan"))
        separates = bool(spread == spread and gap == gap and ratio >= SEPARATION_RATIO)
        why = ("spread unknown (fewer than two seeds per run)" if spread != spread else
               f"gap {gap:.3g} = {ratio:.3g} x spread {spread:.2g}")
        rows.append({"metric": m, "real data": real, "untrained": min(untrained.values(), key=lambda u: abs(real - u))
                     if untrained else float("nan"), "gap": gap, "trained sd": spread, "gap / sd": ratio,
                     "separates": separates, "why": why})
    return rows


def separating_metrics(table: list[dict[str, Any]]) -> list[str]:
    """The metrics of a separation_table that may decide verdicts."""
    return [row["metric"] for row in table if row["separates"]]


# ---------------------------------------------------------------------------------------------------------
# Rules 2 and 3: did not train, degrading
# ---------------------------------------------------------------------------------------------------------
def gap_closed(value: float, untrained: float, real: float) -> float:
    """The fraction of the gap from the untrained value to real data that `value` closes (0 = untrained, 1 = real;
    negative = worse than untrained)."""
    gap = real - untrained
    return (value - untrained) / gap if gap else float("nan")


def _middle(run: dict[str, Any]) -> dict[str, Any] | None:
    evals = run.get("evaluations") or []
    if len(evals) < 2:
        return None
    half = evals[-1]["images_seen"] / 2
    return min(evals[:-1], key=lambda e: abs(e["images_seen"] - half))


def degrading_labels(records: list[dict[str, Any]], metrics: list[str]) -> dict[str, dict[str, float]]:
    """Rule 3 per label (judged on the mean over its finished seeds: one run's change is as noisy as the spread
    itself): {label: {metric: mean change from the middle evaluation to the last, in units of the seeds' sd of
    the final values, > 0 = better}} for the labels where a majority of `metrics` worsen by more than one sd."""
    out = {}
    finished = _finished(records)
    for label in dict.fromkeys(r["label"] for r in finished):
        runs = [r for r in finished if r["label"] == label and _middle(r) is not None]
        if len(runs) < 2:
            continue  # one seed: no spread to judge a change by
        changes = {}
        for m in metrics:
            spread = statistics.stdev([number(r[m]) for r in runs])
            change = _mean((number(r[m]) - number(_middle(r)[m])) * (1 if HIGHER_IS_BETTER[m] else -1) for r in runs)
            changes[m] = change / spread if spread > 0 else float("nan")
        if sum(c < -1 for c in changes.values()) > len(metrics) / 2:
            out[label] = changes
    return out


def run_states(records: list[dict[str, Any]], baselines: dict[str, Any], metrics: list[str]) -> dict[str, str]:
    """Each run's state by rules 2 and 3 on `metrics` (the separating ones): "diverged" (the trainer's rule), "did
    not train", "degrading" (its label is, by degrading_labels), "trained", or "undecided" when no metric
    separates (nothing can tell a run from its untrained baseline). Keyed by the run's `run` name."""
    real = {m: _mean(b.get(m) for b in baselines["real"]) for m in metrics}
    degrading = degrading_labels(records, metrics) if metrics else {}
    states = {}
    for r in records:
        if r.get("status") != "ok":
            states[r["run"]] = "diverged"
            continue
        if not metrics:
            states[r["run"]] = "undecided"
            continue
        untrained = untrained_for(baselines, r["settings"], r["seed"])
        closed = [gap_closed(number(r[m]), number(untrained[0][m]), real[m]) for m in metrics] if untrained else []
        if closed and all(c < DID_NOT_TRAIN_FRACTION for c in closed):
            states[r["run"]] = "did not train"
        else:
            states[r["run"]] = "degrading" if r["label"] in degrading else "trained"
    return states


def label_states(records: list[dict[str, Any]], states: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per label, how many of its seeds are in each state ({"Config A": {"degrading": 3}})."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        counts = out.setdefault(r["label"], {})
        counts[states[r["run"]]] = counts.get(states[r["run"]], 0) + 1
    return out


def state_note(label: str, counts: dict[str, int]) -> str | None:
    """'Config A is degrading in 3/3 seeds' for a label with seeds that did not train or degrade (else None)."""
    n = sum(counts.values())
    bad = [f"{state} in {k}/{n} seeds" for state, k in counts.items() if state in ("did not train", "degrading")]
    return f"{label} is {' and '.join(bad)}" if bad else None


# ---------------------------------------------------------------------------------------------------------
# What a chapter shows and stores
# ---------------------------------------------------------------------------------------------------------
def baseline_records(baselines: dict[str, Any]) -> list[dict[str, Any]]:
    """The baselines as run-like rows (label, seed, status "ok", the metrics), for experiments.summary_table."""
    return [{**b, "status": "ok", "run": f"{b['label']} s{b['seed']}"}
            for b in [*baselines["untrained"], *baselines["real"]]]


def judge(records: list[dict[str, Any]], baselines: dict[str, Any]) -> dict[str, Any]:
    """Rules 1-3 applied to a chapter's runs: {"separation": the table, "separating": its metrics, "states": per
    run, "label_states": per label}. Chapters store it in metrics.json; the stored-results test recomputes it."""
    table = separation_table(records, baselines)
    separating = separating_metrics(table)
    states = run_states(records, baselines, separating)
    return {"separation": table, "separating": separating, "states": states,
            "label_states": label_states(records, states),
            "rules": [SEPARATION_RULE_TEXT, DID_NOT_TRAIN_RULE, DEGRADING_RULE]}


def state_column(records: list[dict[str, Any]], states: dict[str, str]) -> dict[str, str]:
    """Per label, its states as a table cell ("trained 3/3", "degrading 3/3")."""
    out = {}
    for label, counts in label_states(records, states).items():
        n = sum(counts.values())
        out[label] = ", ".join(f"{state} {k}/{n}" for state, k in counts.items())
    return out
