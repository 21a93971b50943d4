"""The decisive pairs of the roadmap trained 4x longer (issue 21, item 3): tuned Config A against tuned E, and tuned C
against tuned E, at RECIPE_SWEEP's long_images, 3 seeds each. Does the ordering the tuned roadmap found at 64k images
hold, flip or separate with more images? Every sentence is made by LONGER_RULE from the stored runs.

The long runs are stored in results/recipes/ ("long" of each config's record, ci/run_recipes.py --phase long). Their
recipe is the config's best sweep cell, with every cosine schedule stretched over the longer run (schedule_images =
total images), so a long run's 64k-image point is not the 64k run: the comparison is of final against final.
"""

from __future__ import annotations

from typing import Any

from . import recipes
from .comparisons import ROADMAP_STEPS
from .plotting import images_label

# The decisive pairs, in the order the page shows them: E against A, then E against C.
PAIRS = tuple(sorted((step for step in ROADMAP_STEPS if step[0] == "E"), key=lambda step: step[1]))
CURVES = ("fd_digits", "recall_digits", "modes_confident")  # the curves drawn (the table covers every metric)
LONGER_RULE = ("per metric that separates trained from untrained generators at both lengths: the side that wins by "
               "the separation rule at the tuned runs' length (short) and at the long runs' length (their final "
               "values); 'holds' = the same side wins at both, 'flips' = each length a different side, 'separates' = "
               "tied short and one side wins long, 'closes' = one side wins short and they tie long; the pair "
               "FLIPS if any metric flips, else CLOSES if some close and none holds or separates, else PARTLY CLOSES if "
               "some close, else SEPARATES FURTHER if any separates, else HOLDS if any holds, else is NOT SEPARATED "
               "at either length")


def long_runs(profile: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Per config with long runs stored: its runs relabelled "Config X" (as the tuned roadmap labels them), and the
    provenance of its long phase (how, where and when ci/run_recipes.py trained them)."""
    runs, phases = {}, {}
    for config in "ABCDE":
        metrics = (recipes.stored_sweep(f"config_{config.lower()}", profile) or {}).get("metrics", {})
        if metrics.get("long"):
            runs[config] = [{**r, "label": f"Config {config}"} for r in metrics["long"]]
            phases[config] = metrics.get("phases", {}).get("long", {})
    return runs, phases


def curves_footer(result: dict[str, Any], profile: str) -> str:
    """How the long-run figure was produced: profile, device, seeds, images per run, each config's summed
    training + evaluation time of its long runs, and the command and commit that trained them."""
    from .profiles import chapter_settings

    runs, phases = result["runs"], result["phases"]
    seeds = ",".join(map(str, sorted({r["seed"] for r in runs})))
    devices = ", ".join(sorted({p.get("device", "?").split(" (")[0] for p in phases.values()}))
    threads = "/".join(sorted({str(p.get("extra", {}).get("threads", "?")) for p in phases.values()}))
    workers = "/".join(sorted({str(chapter_settings(f"config_{c.lower()}", profile).get("workers", 1)) for c in phases}))
    commits = ",".join(sorted({p.get("commit", "?") for p in phases.values()}))
    walls: dict[str, float] = {}
    for r in runs:
        walls[r["label"]] = walls.get(r["label"], 0.0) + r.get("wall_time_s", 0.0) + r.get("eval_time_s", 0.0)
    times = ", ".join(f"{label[-1]} {w / 60:.0f} min" for label, w in sorted(walls.items()))
    return (f"profile={profile} · device={devices}, {threads} thread per run, {workers} runs side by side per config "
            f"· seeds={seeds}\nlong runs {result['images']:,} images each, short (tuned) {result['short_images']:,} "
            f"· run time {times} (summed over seeds)\nci/run_recipes.py --phase long · commit={commits}")


def winner(runs_x: list[dict[str, Any]], runs_y: list[dict[str, Any]], metric: str, x: str, y: str) -> str | None:
    """x or y when its finished runs beat the other's on `metric` by comparisons.SEPARATION_RULE, else None."""
    from .baselines import HIGHER_IS_BETTER, number
    from .comparisons import separated

    a = [number(r[metric]) for r in runs_x if r["status"] == "ok"]
    b = [number(r[metric]) for r in runs_y if r["status"] == "ok"]
    if separated(a, b, HIGHER_IS_BETTER[metric])[0]:
        return x
    if separated(b, a, HIGHER_IS_BETTER[metric])[0]:
        return y
    return None


def change(short: str | None, long: str | None) -> str:
    """One metric's change of winner from the short length to the long one (LONGER_RULE)."""
    if short and long:
        return "holds" if short == long else "flips"
    return "separates" if long else ("closes" if short else "not separated")


def pair_word(changes: dict[str, str]) -> str:
    """The pair's word from its metrics' changes (LONGER_RULE)."""
    found = set(changes.values())
    if "flips" in found:
        return "FLIPS"
    if "closes" in found:
        return "PARTLY CLOSES" if found & {"holds", "separates"} else "CLOSES"
    for change_, word in (("separates", "SEPARATES FURTHER"), ("holds", "HOLDS")):
        if change_ in found:
            return word
    return "NOT SEPARATED at either length"


def compare_pair(better: str, worse: str, short: dict[str, list[dict[str, Any]]], long: dict[str, list[dict[str, Any]]],
                 metrics: list[str]) -> dict[str, Any]:
    """Winner per metric short (the tuned runs per config) and long, its change, and the pair's word."""
    rows, changes = [], {}
    for m in metrics:
        w_short = winner(short[better], short[worse], m, better, worse)
        w_long = winner(long[better], long[worse], m, better, worse)
        changes[m] = change(w_short, w_long)
        rows.append({"metric": m, "short": w_short or "tie", "long": w_long or "tie", "change": changes[m]})
    return {"pair": f"{worse} vs {better}", "rows": rows, "changes": changes, "word": pair_word(changes)}


def longer_training(tuned: dict[str, Any] | None, baselines: dict[str, Any] | None, profile: str
                    ) -> dict[str, Any] | None:
    """The long runs judged (baselines.judge, the roadmap's baselines), each pair compared with the tuned runs
    (short) by LONGER_RULE, and the roadmap's verdict sentences on the long runs. None when nothing is stored."""
    from . import baselines as bl
    from .comparisons import decided_comparison

    found, phases = long_runs(profile)
    if tuned is None or baselines is None or not found:
        return None
    runs = [r for rs in found.values() for r in rs]
    judgement = bl.judge(runs, baselines)
    short = {c: [r for r in tuned["runs"] if r["label"] == f"Config {c}"] for c in "ABCDE"}
    both = [m for m in judgement["separating"] if m in tuned["judgement"]["separating"]]
    pairs, verdicts, missing = [], [], []
    for better, worse, claim, paper_numbers in PAIRS:
        if not (better in found and worse in found and short[better] and short[worse]):
            missing.append(f"{worse} vs {better}")
            continue
        pairs.append(compare_pair(better, worse, short, found, both))
        verdicts.append(decided_comparison(runs, f"Config {better}", f"Config {worse}", judgement, claim,
                                           paper_numbers))
    return {"runs": runs, "judgement": judgement, "metrics": both, "pairs": pairs, "verdicts": verdicts,
            "missing": missing, "images": max(r["images_seen"] for r in runs),
            "short_images": max(r["images_seen"] for r in tuned["runs"]), "phases": phases, "rule": LONGER_RULE}



def longer_reading(result: dict[str, Any], tuned: dict[str, Any]) -> list[str]:
    """The reading under the long runs, each sentence by LONGER_RULE or the book's state rules on stored numbers."""
    from .baselines import number
    from .comparisons import mean_sd
    from .readings import METRIC_NAMES

    out, states = [], result["judgement"]["states"]
    for config in dict.fromkeys(r["label"] for r in result["runs"]):
        runs = [r for r in result["runs"] if r["label"] == config and r["status"] == "ok"]
        short = [r for r in tuned["runs"] if r["label"] == config and r["status"] == "ok"]
        st = [states[r["run"]] for r in result["runs"] if r["label"] == config]
        numbers = "; ".join(
            f"{METRIC_NAMES[m]} {mean_sd([number(r[m]) for r in runs]) if runs else 'n/a (diverged)'} vs "
            f"{mean_sd([number(r[m]) for r in short]) if short else 'no finished run'}"
            for m in ("fd_digits", "modes_confident"))
        out.append(f"{config} at {result['images']:,} images: " +
                   ", ".join(f"{s} {st.count(s)}/{len(st)}" for s in dict.fromkeys(st)) +
                   f"; against its tuned runs of {result['short_images']:,} images, {numbers}. " +
                   _more_images(runs, short, result["metrics"]))
    for pair in result["pairs"]:
        parts = [f"{METRIC_NAMES[row['metric']]} {row['change']} ({row['short']} -> {row['long']})"
                 for row in pair["rows"]]
        ratio = result["images"] / result["short_images"]
        out.append(f"{pair['pair']}: the {images_label(result['short_images'])} ordering {pair['word']} with {ratio:g}x "
                   "the images (winner per metric, short -> long): "
                   + ("; ".join(parts) if parts else "no metric separates at both lengths") + ".")
    if result["missing"]:
        out.append(f"Not stored yet: the long runs of {', '.join(result['missing'])}; those pairs are not judged.")
    return out


def _more_images(long: list[dict[str, Any]], short: list[dict[str, Any]], metrics: list[str]) -> str:
    """What the longer training changed for one config, by the separation rule (long runs against its tuned runs)."""
    from .readings import METRIC_NAMES

    sides = {m: winner(long, short, m, "better", "worse") or "no different" for m in metrics}
    groups = {side: [METRIC_NAMES[m] for m in metrics if sides[m] == side] for side in ("better", "worse",
                                                                                         "no different")}
    parts = [f"{side} on {', '.join(names)}" for side, names in groups.items() if names]
    return ("By the separation rule the longer runs are " + "; ".join(parts) + "." if parts else
            "No metric separates at both lengths.")


def show_longer_training(tuned: dict[str, Any] | None, baselines: dict[str, Any] | None, profile: str
                         ) -> dict[str, Any] | None:
    """The roadmap chapter's long-run section: the curves of the long and the short tuned runs against their
    baselines, the change table per pair, the verdicts at the long length and the reading (printed)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import plotting, tables
    from .chapter import print_reading

    if tuned is None:
        print("The long runs are compared with the tuned roadmap's runs, and there are none (above).")
        return None
    result = longer_training(tuned, baselines, profile)
    if result is None:
        print(f"No long runs are stored for the {profile} profile yet (`python ci/run_recipes.py --config X --phase "
              "long --publish` after the config's tuned runs).")
        return None
    configs = sorted({r["label"] for r in result["runs"]})
    short = [{**r, "length": f"{images_label(result['short_images'])} run"} for r in tuned["runs"] if r["label"] in configs]
    long = [{**r, "length": f"{images_label(result['images'])} run"} for r in result["runs"]]
    shown = tuple(m for m in CURVES if m in result["metrics"]) or tuple(result["metrics"][:3]) or ("fd_digits",)
    plotting.plot_metric_curves(short + long, shown, curves_footer(result, profile), baselines=baselines,
                                log_y=("fd_digits",), style="length")
    plt.show()
    rows = [{"pair": p["pair"], **row} for p in result["pairs"] for row in p["rows"]]
    if rows:
        display(tables.show(rows, caption=LONGER_RULE, rename={
            "short": f"wins at {images_label(result['short_images'])}", "long": f"wins at {images_label(result['images'])}"}))
    for line in result["verdicts"]:
        print("-", line)
    result["reading"] = longer_reading(result, tuned)
    print_reading(result["reading"])
    return result
