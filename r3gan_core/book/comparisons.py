"""Our runs beside the paper's tables: verdicts computed from the data, never written in advance.

table1_verdicts   mode coverage (Table 1): do R1-only runs fail, does D's gradient on fakes explode, does
                  RpGAN + R1 + R2 cover more modes than GAN + R1 + R2?
roadmap_*         the roadmap (Table 2): gather the five config chapters' runs and rank them against the paper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .chapter import published_results, sibling_results
from .experiments import finite_mean, runs_labelled, summary_table


SEPARATION_RULE = "every seed of one beats every seed of the other, or Welch's t-test p < 0.05 (never with one seed each)"


def mean_sd(values: list[float]) -> str:
    """'mean ± sd' over seeds (sd with ddof 1; a single value alone)."""
    import statistics

    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def separated(better: list[float], worse: list[float], higher_is_better: bool) -> tuple[bool, str]:
    """Whether `better` beats `worse` by SEPARATION_RULE; returns (separated, how: 'all n seeds' or the p-value)."""
    sign = 1 if higher_is_better else -1
    a, b = [sign * v for v in better], [sign * v for v in worse]
    if not a or not b:
        return False, "no data"
    if len(a) < 2 and len(b) < 2:  # one draw each shows no seed-to-seed spread: never a separation
        return False, "one seed each: cannot separate"
    if min(a) > max(b):
        return True, f"every seed ordered ({len(a)} vs {len(b)})"
    if len(a) < 2 or len(b) < 2:
        return False, "seeds overlap"
    from scipy.stats import ttest_ind

    p = float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    return p < 0.05, f"Welch p = {p:.3g}"


def decided_comparison(records: list[dict[str, Any]], better: str, worse: str, judgement: dict[str, Any],
                       claim: str, paper_numbers: str, protocol: tuple[str, ...] = ()) -> str:
    """The paper's claim "`better` beats `worse`", decided only on the metrics that separate (judgement: a
    baselines.judge of the runs) by SEPARATION_RULE per metric, with the states of both labels.

    REPRODUCED: every separating metric orders them as the paper does; THE OPPOSITE: every one orders them the other
    way; PARTLY / PARTLY THE OPPOSITE: some do and none disagrees; MIXED: some each way; NOT SEPARATED otherwise. A
    label that did not train or is degrading in some seed (baselines rules 2 and 3) makes a REPRODUCED read NOT
    DECIDED, and is named in every case. `protocol`: metrics of the paper's own protocol to report beside, with
    whether they separate here."""
    from .baselines import HIGHER_IS_BETTER, state_note
    from .readings import METRIC_NAMES

    sep = judgement["separating"]
    a = [r for r in runs_labelled(records, better) if r["status"] == "ok"]
    b = [r for r in runs_labelled(records, worse) if r["status"] == "ok"]
    if not a or not b:
        return f"NOT DECIDED: {claim}: every seed of {better if not a else worse} diverged."
    agree, against, parts = 0, 0, []
    for m in sep:
        ok, how = separated([r[m] for r in a], [r[m] for r in b], HIGHER_IS_BETTER[m])
        opp, opp_how = separated([r[m] for r in b], [r[m] for r in a], HIGHER_IS_BETTER[m])
        agree, against = agree + ok, against + opp
        parts.append(f"{METRIC_NAMES[m]} {mean_sd([r[m] for r in a])} vs {mean_sd([r[m] for r in b])} "
                     f"({how if ok or not opp else 'the other way: ' + opp_how})")
    if not sep:
        word = "NOT DECIDED"
    elif agree == len(sep):
        word = "REPRODUCED"
    elif against == len(sep):
        word = "THE OPPOSITE at this scale"
    elif agree and against:
        word = "MIXED at this scale"
    elif agree:
        word = "PARTLY"
    elif against:
        word = "PARTLY THE OPPOSITE at this scale"
    else:
        word = "NOT SEPARATED at this scale"
    notes = [n for n in (state_note(label, judgement["label_states"].get(label, {})) for label in (better, worse)) if n]
    if notes and word == "REPRODUCED":
        word = "NOT DECIDED"
        notes.append("the separating metrics order them as the paper does, but a comparison with such a run "
                     "decides nothing")
    text = f"{word}: {claim}: " + ("; ".join(parts) if parts else "no metric separates trained from untrained here")
    rows = {row["metric"]: row for row in judgement["separation"]}
    for m in (m for m in protocol if m in rows and all(m in r for r in a + b)):
        ratio = rows[m]["gap / sd"]
        used = ("decides with the others" if m in sep else
                f"does not separate here, gap {ratio:.2g}x the spread: decides nothing" if ratio == ratio else
                "no seed spread to judge it by: decides nothing")
        text += (f"; by the paper's protocol, {METRIC_NAMES[m]} {mean_sd([r[m] for r in a])} vs "
                 f"{mean_sd([r[m] for r in b])} ({used})")
    text += f" (over {len(a)} and {len(b)} seeds; the paper: {paper_numbers})"
    return text + (". " + "; ".join(notes) + "." if notes else ".")


# When may a digit classifier trained on 8x8 scikit-learn digits judge a data set's modes? When the real data,
# scored by the same protocol, covers nearly every mode nearly uniformly (our stacked digits: 1000 modes, KL 0.02).
CLASSIFIER_FIT_RULE = {"min_modes_fraction": 0.99, "max_reverse_kl": 0.1}


def classifier_fit_verdict(real_images, num_samples: int = 26_000, seed: int = 0) -> tuple[bool, str]:
    """Score the *real* data's own modes and reverse KL; the classifier is fit to judge the data when they pass
    CLASSIFIER_FIT_RULE. Returns (fit, a sentence with the numbers and the rule)."""
    from ..metrics import mode_coverage
    from ..metrics.evaluate import random_rows

    scores = mode_coverage(random_rows(real_images, num_samples, seed))
    rule = CLASSIFIER_FIT_RULE
    fit = (scores["modes"] >= rule["min_modes_fraction"] * scores["num_modes"]
           and scores["reverse_kl"] <= rule["max_reverse_kl"])
    return fit, (f"{'FIT' if fit else 'NOT FIT'}: the real data itself scores {scores['modes']} / "
                 f"{scores['num_modes']} modes, reverse KL {scores['reverse_kl']:.3f} over {scores['num_samples']:,} "
                 f"samples (rule: at least {rule['min_modes_fraction']:.0%} of the modes and KL at most "
                 f"{rule['max_reverse_kl']}); {'its mode counts of generated data can be read' if fit else 'its mode counts of generated data would measure the classifier, not the GAN'}.")


def gradient_ratio(run: dict[str, Any]) -> float:
    """Peak over the run's log records of D's mean input-gradient norm on fakes / on reals (diverged runs: up to
    the divergence)."""
    ratios = [r["grad_norm_fake"] / max(r["grad_norm_real"], 1e-12) for r in run.get("records", [])
              if r.get("grad_norm_fake") is not None and r.get("grad_norm_real") is not None]
    ratios = [v for v in ratios if v == v]
    return max(ratios) if ratios else float("nan")


def table1_verdicts(records: list[dict[str, Any]], judgement: dict[str, Any] | None = None) -> list[str]:
    """Compare the runs with the paper's Table 1 claims; each sentence states what the data showed and by which
    rule (failures per seed; decided_comparison, on the metrics that separate by `judgement`, for RpGAN against
    GAN; without a judgement that comparison is left out)."""
    out = []
    r1_only = runs_labelled(records, "GAN + R1") + runs_labelled(records, "RpGAN + R1")
    both = runs_labelled(records, "GAN + R1 + R2") + runs_labelled(records, "RpGAN + R1 + R2")
    failed = sum(r["status"] != "ok" for r in r1_only)
    images = max((r["images_seen"] for r in records), default=0)
    if failed == len(r1_only) and r1_only:
        out.append(f"REPRODUCED: every R1-only run diverged ({failed}/{len(r1_only)}), as in the paper.")
    elif failed:
        out.append(f"PARTLY: {failed}/{len(r1_only)} R1-only runs diverged (the paper: all of them).")
    else:
        out.append(f"NOT REPRODUCED at this scale: none of the {len(r1_only)} R1-only runs diverged within "
                   f"{images:,} images each (the paper's runs failed over 10 M images).")
    ratio_r1 = [v for v in map(gradient_ratio, r1_only) if v == v]
    ratio_both = [v for v in map(gradient_ratio, both) if v == v]
    if ratio_r1 and ratio_both:
        ok, how = separated(ratio_r1, ratio_both, higher_is_better=True)
        out.append(f"{'SUPPORTED' if ok else 'NOT SEPARATED at this scale'}: peak ratio of D's gradient norm on fakes "
                   f"to reals is {mean_sd(ratio_r1)} with R1 only vs {mean_sd(ratio_both)} with R1 + R2 ({how}; "
                   "the paper: D's gradient on fakes explodes with R1 only).")
    else:
        out.append("Gradient-norm comparison not possible: no run logged D's gradient norms.")
    if judgement is not None:
        out.append(decided_comparison(records, "RpGAN + R1 + R2", "GAN + R1 + R2", judgement,
                                      "RpGAN + R1 + R2 beats GAN + R1 + R2", "1000 modes / KL 0.0781 vs 693 / 0.9270",
                                      protocol=("modes", "reverse_kl")))
    return out


def gather_roadmap(artifacts_dir: str | Path | None, profile: str
                   ) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any] | None]:
    """Run records of config_a .. config_e: from this runner output folder when the chapters ran in `profile`,
    else from their stored results of `profile` (results/<chapter>/<profile>/). Returns the records, per config
    where they came from, and the chapters' baselines merged (every config's untrained entries, the real-data
    entries once; None when a chapter has none)."""
    records: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    merged: dict[str, Any] | None = {"untrained": [], "real": []}
    for config in "ABCDE":
        chapter = f"config_{config.lower()}"
        found = sibling_results(artifacts_dir, chapter)
        if found is not None and found["provenance"]["profile"] == profile:
            p = found["provenance"]
            sources[config] = f"{profile} profile, {p['device']}, commit {p['commit']}, {p['date']}"
        else:
            found = published_results(chapter, profile)
            if found is None:
                sources[config] = f"missing: run the {chapter} chapter in the {profile} profile first"
                continue
            p = found["provenance"]
            sources[config] = f"stored {profile} results ({p['device']}, commit {p['commit']}, {p['date']})"
        records.extend(found["metrics"]["runs"])
        found_baselines = found["metrics"].get("baselines")
        if found_baselines is None or merged is None:
            merged = None
            continue
        merged["untrained"] += found_baselines["untrained"]
        if not merged["real"]:
            merged.update(real=found_baselines["real"], protocol=found_baselines.get("protocol"))
        elif found_baselines.get("protocol") != merged.get("protocol"):
            raise ValueError(f"{chapter}'s baselines were made under another protocol than the other configs'")
    return records, sources, (merged if records else None)


def roadmap_table(records: list[dict[str, Any]]):
    """Table 2 (paper) beside our metrics per config (mean over seeds; 'fail' where every seed diverged)."""
    from .paper import TABLE2_ROADMAP

    ours = summary_table(records, ("fd_digits", "modes", "reverse_kl", "recall_digits", "images_per_second")) \
        if records else None
    rows = []
    for config, ref in TABLE2_ROADMAP.items():
        row = {"config": config, "change": ref["what"], "paper FID (FFHQ-256)": ref["fid"],
               "paper G / D params (M)": f"{ref['g_params_m']} / {ref['d_params_m']}"}
        label = f"Config {config}"
        if ours is not None and label in ours.index:
            row.update({f"ours {k}": v for k, v in ours.loc[label].items() if k not in ("seeds",)})
        rows.append(row)
    import pandas as pd

    return pd.DataFrame(rows).set_index("config")


# The paper's steps the roadmap verdicts decide: (better, worse, the claim, Table 2's numbers).
ROADMAP_STEPS = (("A", "B", "stripping StyleGAN2 (A -> B) hurts", "A 7.516 vs B 12.46 FID"),
                 ("E", "C", "the modern network (C -> E) helps", "E 7.045 vs C 11.65 FID"),
                 ("E", "A", "Config E beats Config A", "7.045 vs 7.516 FID"))


def roadmap_verdicts(records: list[dict[str, Any]], judgement: dict[str, Any]) -> list[str]:
    """What the runs say about Table 2, computed from the data: rank agreement with the paper's FIDs of each
    separating metric's mean order, and the paper's steps (stripping StyleGAN2 hurts, A -> B; the modern network
    helps, C -> E; E beats A) by decided_comparison, on the metrics that separate (judgement: baselines.judge)."""
    from scipy.stats import spearmanr

    from .baselines import HIGHER_IS_BETTER
    from .paper import TABLE2_ROADMAP
    from .readings import METRIC_NAMES

    out = []
    for label in dict.fromkeys(r["label"] for r in records):
        runs = runs_labelled(records, label)
        failed = sum(r["status"] != "ok" for r in runs)
        if failed:
            out.append(f"{label}: {failed}/{len(runs)} seeds diverged (its means average the other seeds).")
    have = [c for c in TABLE2_ROADMAP if any(r["status"] == "ok" for r in runs_labelled(records, f"Config {c}"))]
    if len(have) < 3:
        return out + [f"Only {len(have)} config(s) have results; the trend needs at least three."]
    for m in judgement["separating"][:1] or ["fd_digits"]:
        means = {c: finite_mean([r[m] for r in runs_labelled(records, f"Config {c}") if r["status"] == "ok"])
                 for c in have}
        sign = -1 if HIGHER_IS_BETTER[m] else 1  # lower FID is better: rank our "badness" against it
        rho, p = spearmanr([TABLE2_ROADMAP[c]["fid"] for c in have], [sign * means[c] for c in have])
        order = " < ".join(sorted(have, key=lambda c: sign * means[c]))
        out.append(f"Our order by mean {METRIC_NAMES[m]} (best first): {order.replace(' < ', ', ')}. Rank agreement "
                   f"with the paper's FIDs over {', '.join(have)}: Spearman rho = {rho:.2f} (p = {p:.2f}; 1 = the "
                   "same ordering).")
    for better, worse, claim, paper_numbers in ROADMAP_STEPS:
        if better in have and worse in have:
            out.append(decided_comparison(records, f"Config {better}", f"Config {worse}", judgement, claim,
                                          paper_numbers))
    return out
