"""The reading under every results section: sentences produced from the data by stated rules, never typed.

Each function returns plain sentences with the numbers in them; a chapter prints them under its table and figures,
and metrics.json stores them, so a test can recompute them from the stored records and baselines
(tests/test_stored_results.py) and a re-run that changes the data cannot leave a false sentence on the page.

Rules:
* a trend (first -> last evaluation, mean over the finished seeds) "rises" or "falls" when it moves by more than
  the seeds' spread (sd of the final values, ddof 1), else it "stays within its seeds' spread";
* how far a run got is the fraction of the gap from the untrained baseline to real data it closes
  (baselines.gap_closed), on the mean over seeds;
* the states are baselines.run_states'.
"""

from __future__ import annotations

import statistics
from typing import Any

from . import baselines as bl

__all__ = ["METRIC_NAMES", "baseline_sentence", "results_reading", "separation_sentence", "state_sentence",
           "trend", "trend_sentence"]

METRIC_NAMES = {"fd_digits": "FD-digits", "kid_digits": "KID-digits", "precision_digits": "precision",
                "recall_digits": "recall", "modes": "the plain mode count", "reverse_kl": "reverse KL",
                "modes_confident": "the confident mode count", "reverse_kl_confident": "confident reverse KL"}


def number(value: float) -> str:
    """A value as a reading prints it: 3 significant digits, integers with separators."""
    if value != value:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _finished(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [r for r in records if r["label"] == label and r.get("status") == "ok" and r.get("evaluations")]


def trend(records: list[dict[str, Any]], label: str, metric: str) -> tuple[str, float, float] | None:
    """("rises" | "falls" | "stays", first mean, last mean) of `metric` over a label's evaluations (mean over its
    finished seeds), by the rule in the module docstring; None without finished seeds."""
    runs = _finished(records, label)
    if not runs:
        return None
    first = statistics.fmean(r["evaluations"][0][metric] for r in runs)
    last = statistics.fmean(r["evaluations"][-1][metric] for r in runs)
    spread = statistics.stdev(r["evaluations"][-1][metric] for r in runs) if len(runs) >= 2 else 0.0
    word = "stays" if abs(last - first) <= spread else ("rises" if last > first else "falls")
    return word, first, last


def trend_sentence(records: list[dict[str, Any]], metric: str, labels: list[str] | None = None) -> str:
    """One sentence: which labels' `metric` rises, falls or stays over training, with first -> last means."""
    labels = labels or list(dict.fromkeys(r["label"] for r in records))
    groups: dict[str, list[str]] = {"falls": [], "rises": [], "stays": []}
    for label in labels:
        t = trend(records, label, metric)
        if t is not None:
            groups[t[0]].append(f"{label} ({number(t[1])} → {number(t[2])})")
    first_images = min((r["evaluations"][0]["images_seen"] for r in records if r.get("evaluations")), default=0)
    parts = [f"{word.replace('stays', 'stays within its seeds’ spread')} for {', '.join(items)}"
             for word, items in groups.items() if items]
    if not parts:
        return f"No run finished, so {METRIC_NAMES[metric]} has no trend."
    return (f"From the first evaluation ({first_images:,} images) to the last, {METRIC_NAMES[metric]} "
            + "; ".join(parts) + " (means over seeds).")


def baseline_sentence(records: list[dict[str, Any]], baselines: dict[str, Any], metric: str) -> str:
    """The untrained and real-data values of `metric`, and how much of that gap each label closes at the end."""
    real = statistics.fmean(bl.number(b[metric]) for b in baselines["real"])
    parts = []
    for label in dict.fromkeys(r["label"] for r in records):
        runs = _finished(records, label)
        if not runs:
            parts.append(f"{label} diverged in every seed")
            continue
        untrained = statistics.fmean(bl.number(u[metric]) for r in runs for u in bl.untrained_for(baselines, r["settings"],
                                                                                        r["seed"]))
        final = statistics.fmean(r[metric] for r in runs)
        parts.append(f"{label} {number(final)} ({bl.gap_closed(final, untrained, real):.0%} of the way from its "
                     f"untrained {number(untrained)})")
    return (f"At the end, {METRIC_NAMES[metric]} reads: " + "; ".join(parts)
            + f"; real data scores {number(real)} by the same protocol.")


def separation_sentence(table: list[dict[str, Any]]) -> str:
    """Which metrics may decide verdicts here (baselines rule 1), with the ratio of those that may not."""
    yes = [METRIC_NAMES[row["metric"]] for row in table if row["separates"]]
    no = [f"{METRIC_NAMES[row['metric']]} (gap {number(row['gap / sd'])}x the spread)"
          if row["gap / sd"] == row["gap / sd"] else METRIC_NAMES[row["metric"]] for row in table if not row["separates"]]
    if no and all(row["trained sd"] != row["trained sd"] for row in table):
        return ("No metric may decide verdicts here: with one seed per run there is no spread over seeds to measure "
                "the real-vs-untrained gap against (the separation rule needs at least two).")
    text = (f"By the separation rule (real-vs-untrained gap at least {bl.SEPARATION_RATIO:g}x the trained runs' "
            f"seed spread), {', '.join(yes) or 'no metric'} may decide verdicts here")
    if no:
        text += (f"; {' and '.join(no)} {'does' if len(no) == 1 else 'do'} not separate, so "
                 f"{'it is' if len(no) == 1 else 'they are'} shown for the paper's protocol and decide{'s' if len(no) == 1 else ''} nothing")
    return text + "."


def state_sentence(records: list[dict[str, Any]], states: dict[str, str]) -> str:
    """Which labels diverged, did not train or are degrading (baselines rules 2 and 3), or that none did."""
    notes = []
    for label, counts in bl.label_states(records, states).items():
        n = sum(counts.values())
        bad = [f"{state} in {k}/{n} seeds" for state, k in counts.items() if state not in ("trained", "undecided")]
        if bad:
            notes.append(f"{label}: {', '.join(bad)}")
    if all(state == "undecided" for state in states.values()):
        return "With no separating metric, no run can be told apart from its untrained baseline: states undecided."
    if not notes:
        return "Every run trained by the rules: none diverged, none stayed at its untrained level, none is degrading."
    return "States by the rules: " + "; ".join(notes) + "."


def results_reading(records: list[dict[str, Any]], baselines: dict[str, Any], table: list[dict[str, Any]],
                    states: dict[str, str], trend_metrics: tuple[str, ...] = ("fd_digits", "modes_confident"),
                    labels: list[str] | None = None) -> list[str]:
    """The reading of a results section: what the baselines say, which metrics separate, how the runs moved,
    and their states; 3-5 sentences, each made by a rule above."""
    sep = bl.separating_metrics(table)
    lead = sep[0] if sep else "fd_digits"
    out = [baseline_sentence(records, baselines, lead), separation_sentence(table)]
    out += [trend_sentence(records, m, labels) for m in trend_metrics]
    out.append(state_sentence(records, states))
    return out
