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


def table1_verdicts(records: list[dict[str, Any]]) -> list[str]:
    """Compare the runs with the paper's Table 1 claims; each sentence states what the data showed."""
    out = []
    r1_only = runs_labelled(records, "GAN + R1") + runs_labelled(records, "RpGAN + R1")
    both = runs_labelled(records, "GAN + R1 + R2") + runs_labelled(records, "RpGAN + R1 + R2")
    failed = sum(r["status"] != "ok" for r in r1_only)
    images = max((r["images_seen"] for r in records), default=0)
    if failed == len(r1_only) and r1_only:
        out.append(f"REPRODUCED: every R1-only run diverged ({failed}/{len(r1_only)}), as in the paper.")
    elif failed:
        out.append(f"PARTLY: {failed} of {len(r1_only)} R1-only runs diverged (the paper: all of them).")
    else:
        out.append(f"NOT REPRODUCED at this scale: none of the {len(r1_only)} R1-only runs diverged within "
                   f"{images:,} images (the paper's runs failed over 10 M images).")
    ratio_r1 = finite_mean([(r.get("grad_norm_fake") or 0) / max(r.get("grad_norm_real") or 1e-12, 1e-12)
                      for r in r1_only if r["status"] == "ok"])
    ratio_both = finite_mean([(r.get("grad_norm_fake") or 0) / max(r.get("grad_norm_real") or 1e-12, 1e-12)
                        for r in both if r["status"] == "ok"])
    if ratio_r1 == ratio_r1 and ratio_both == ratio_both:
        word = "SUPPORTED" if ratio_r1 > 2 * ratio_both else "NOT SEEN"
        out.append(f"{word}: at the end of training, D's gradient norm on fakes / on reals is {ratio_r1:.3g} with "
                   f"R1 only and {ratio_both:.3g} with R1 + R2 (the paper: it explodes with R1 only).")
    rp, gan = runs_labelled(records, "RpGAN + R1 + R2"), runs_labelled(records, "GAN + R1 + R2")
    if rp and gan and all(r["status"] == "ok" for r in rp + gan):
        m_rp, m_gan = finite_mean([r["modes"] for r in rp]), finite_mean([r["modes"] for r in gan])
        k_rp, k_gan = finite_mean([r["reverse_kl"] for r in rp]), finite_mean([r["reverse_kl"] for r in gan])
        better = m_rp > m_gan and k_rp < k_gan
        out.append(f"{'REPRODUCED' if better else 'NOT REPRODUCED'}: RpGAN + R1 + R2 {m_rp:.0f} modes, KL {k_rp:.3f} "
                   f"vs GAN + R1 + R2 {m_gan:.0f} modes, KL {k_gan:.3f} (the paper: 1000 / 0.0781 vs 693 / 0.9270).")
    else:
        out.append("R1 + R2 comparison not possible: a run with both penalties diverged.")
    return out


def gather_roadmap(artifacts_dir: str | Path | None, profile: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run records of config_a .. config_e: from this runner output folder when the chapters ran in `profile`,
    else from their published full results. Returns the records and, per config, where they came from."""
    records: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    for config in "ABCDE":
        chapter = f"config_{config.lower()}"
        found = sibling_results(artifacts_dir, chapter)
        if found is not None and found["provenance"]["profile"] == profile:
            sources[config] = f"this build ({profile} profile, {found['provenance']['device']})"
        else:
            found = published_results(chapter)
            if found is None:
                sources[config] = "missing: run its chapter first"
                continue
            sources[config] = f"published full results ({found['provenance']['device']}, {found['provenance']['date']})"
        records.extend(found["metrics"]["runs"])
    return records, sources


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


def roadmap_verdicts(records: list[dict[str, Any]]) -> list[str]:
    """What the runs say about Table 2's trend, computed from the data (rank agreement with the paper's FIDs)."""
    from scipy.stats import spearmanr

    from .paper import TABLE2_ROADMAP

    means = {c: finite_mean([r.get("fd_digits") for r in runs_labelled(records, f"Config {c}") if r["status"] == "ok"])
             for c in TABLE2_ROADMAP}
    have = [c for c, v in means.items() if v == v]
    out = []
    failed = sorted({r["label"] for r in records if r["status"] != "ok"})
    if failed:
        out.append(f"Diverged runs: {', '.join(failed)}.")
    if len(have) < 3:
        return out + [f"Only {len(have)} config(s) have results; the trend needs at least three."]
    rho, p = spearmanr([TABLE2_ROADMAP[c]["fid"] for c in have], [means[c] for c in have])
    out.append(f"Rank agreement between the paper's FIDs and our FD-digits over {', '.join(have)}: "
               f"Spearman rho = {rho:.2f} (p = {p:.2f}; 1 = the same ordering).")
    if "A" in have and "E" in have:
        word = "REPRODUCED" if means["E"] < means["A"] else "NOT REPRODUCED"
        out.append(f"{word}: Config E {'beats' if means['E'] < means['A'] else 'does not beat'} Config A "
                   f"(FD-digits {means['E']:.4g} vs {means['A']:.4g}; the paper: 7.045 vs 7.516 FID).")
    if "B" in have and "A" in have:
        word = "REPRODUCED" if means["B"] > means["A"] else "NOT REPRODUCED"
        out.append(f"{word}: stripping StyleGAN2 (B) {'hurts' if means['B'] > means['A'] else 'does not hurt'} "
                   f"(FD-digits {means['B']:.4g} vs A {means['A']:.4g}; the paper: 12.46 vs 7.516).")
    return out

