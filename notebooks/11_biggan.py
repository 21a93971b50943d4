# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # BigGAN's lessons: truncation, spectra, orthogonal regularisation
#
# BigGAN (Brock, Donahue, Simonyan 2019) scaled GANs to ImageNet at 512x512 with a *bag of tricks*: sample from
# a truncated latent, regularise G towards orthogonal filters, watch the singular values of every weight for
# signs of collapse, and accept a costly gradient penalty when stability matters more than quality. R3GAN argues
# the opposite: with a well-behaved loss (RpGAN + R1 + R2) the tricks are unnecessary. This chapter measures four
# of BigGAN's lessons on the R3GAN network (Config E) trained on stacked digits:
#
# 1. **Truncation trick** (BigGAN Sec. 3.1): resample latent entries with |z| above a threshold. It trades
#    diversity for fidelity: IS rises, FID first improves, then worsens.
# 2. **Spectral monitoring** (BigGAN Sec. 4.1): the top singular value $\sigma_0$ of each weight, by power
#    iteration. In BigGAN, $\sigma_0$ of a few G layers (the first one most) grows through training and explodes
#    at collapse; D's spectra are noisy and jump.
# 3. **Orthogonal regularisation** (BigGAN Eq. 3): $\beta\,\lVert W^\top W \odot (\mathbf{1} - I)\rVert_F^2$ with $\beta = 10^{-4}$, which BigGAN
#    credits for making G *amenable to truncation*.
# 4. **Penalty strength** (BigGAN Sec. 4.1): R1 with $\gamma = 10$ stabilised their D but cost about 45% of the
#    Inception Score.
#
# Quality is measured in the digit classifier's feature space: **FD-digits** (a Frechet distance, not an FID),
# improved precision (fidelity) and recall (diversity) with k = 3 neighbours, and the number of the 1000
# stacked-digit modes covered. There is no Inception Score here; precision plays its part (fidelity).

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, about a minute) | cpu (the findings, 2 CPU cores, ~1 h) | gpu (one GPU, ~10 min: an estimate)
retrain = False        # cpu/gpu: True trains again even when results/biggan/<profile>/ holds stored runs
metrics_path = None    # set by ci/run_chapters.py: where this chapter's headline numbers go
artifacts_dir = None   # set by ci/run_chapters.py: a folder for small stored results (json, png)
runs_dir = None        # set by ci/run_chapters.py: resumable run folders (None = a temporary folder)

# %% tags=["hide-input"]
import tempfile

import matplotlib.pyplot as plt
import torch

from r3gan_core import biggan
from IPython.display import display

from r3gan_core.book import (baselines as baselines_rules, biggan_study, chapter, experiments, explorables, plotting,
                             readings, tables)

settings, prov, stored = chapter.chapter_start("biggan", profile, retrain=retrain)
runs_dir = runs_dir or tempfile.mkdtemp(prefix="r3gan-biggan-")  # the truncation sweeps sample the runs' G_ema
smoke_note = "(smoke profile: a few hundred images per run; this only exercises the code, it is not a finding)"

# %% [markdown]
# ## The runs: Config E, one recipe, a few changes
#
# Every run is Config E at the profile's preset with its own recipe (RpGAN, R1 + R2 with $\gamma$ from 1 to 0.1), $\sigma_0$
# of every G and D weight measured every `spectral_every` images; `biggan_study.study_variants` names what each
# run changes: orthogonal regularisation, R1 alone, a constant $\gamma$, or BigGAN's own R1 at $\gamma = 10$. Each
# variant trains with every seed of the profile, two runs side by side.

# %%
base = biggan_study.study_config(settings)
variants = biggan_study.study_variants(settings)
runs, grids = chapter.train_or_load(stored, lambda: experiments.run_variants(
    base, variants, seeds=settings["seeds"], evaluations=settings["evaluations"], num_samples=settings["num_samples"],
    eval_options=experiments.evaluation_options(settings), runs_dir=runs_dir, workers=settings.get("workers", 1)))
chapter.count_runs(prov, runs)
print(f"{len(runs)} runs, {settings['total_images']:,} real images each, seeds {settings['seeds']}")
baselines = chapter.run_baselines(stored, runs)
judgement = baselines_rules.judge(runs, baselines)
tables.show(chapter.results_table(runs, baselines, judgement["states"]),
            rename={"label": "run", "failed": "diverged / seeds"},
            columns=["label", "state", "fd_digits", "modes_confident", "precision_digits", "recall_digits", "modes"])

# %% [markdown]
# Below the runs, the two baselines by the same protocol and sample count (`r3gan_core.book.baselines`): Config E's
# untrained generator (each seed's initialisation) and a fresh draw of real data. A metric decides this chapter's
# verdicts only if it separates those two by at least ten times the runs' spread over seeds:

# %%
display(chapter.separation_view(judgement))
judgement["reading"] = readings.results_reading(runs, baselines, judgement["separation"], judgement["states"])
chapter.print_reading(judgement["reading"])

# %% [markdown]
# ## 1. The truncation trick
#
# BigGAN samples z from a truncated normal: every entry with |z| > threshold is redrawn until it falls inside.
# A small threshold keeps latents near the mode of the prior, where G is best trained: samples get cleaner and
# more alike. The library function is short:

# %%
chapter.source(biggan.truncated_normal)

# %% [markdown]
# The sweep samples each trained generator (every seed) from the *same* latent seed at every threshold, so each
# latent only has its out-of-range entries redrawn, and scores each set against the real data. The first row of
# each model is no truncation at all; the table gives mean ± sd over seeds.

# %%
ortho_label = biggan_study.ortho_label(settings)
generators = biggan_study.run_generators(runs, (biggan_study.STABLE, ortho_label), stored=stored, runs_dir=runs_dir)
sweeps = stored["metrics"]["truncation"] if stored else biggan_study.truncation_sweeps(generators, base, settings)
sweep_grids = biggan_study.truncation_grids(generators, settings, seed=settings["seeds"][0])
G_stable, G_ortho = (generators.get((label, settings["seeds"][0])) for label in (biggan_study.STABLE, ortho_label))
tables.show(biggan_study.truncation_table(sweeps, baselines), columns=["model", "threshold", *biggan_study.TRUNCATION_PLOTTED])

# %% [markdown]
# The trade-off as curves (precision = fidelity, recall and modes = diversity, FD-digits = both; "none" = no
# truncation, the loosest threshold of all) and as samples of the first seed.

# %%
stable_only = {biggan_study.STABLE: sweeps[biggan_study.STABLE]}
fig = biggan_study.plot_truncation_curves(stable_only, prov, baselines)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_curves")
plt.show()
fig = biggan_study.plot_truncation_grids({biggan_study.STABLE: sweep_grids[biggan_study.STABLE]}, prov)
plt.show()
if profile == "smoke":
    print(smoke_note)

# %% [markdown]
# Pick a model and move the threshold: the samples are the first seed's at that threshold (the draw the sweep
# scored), the curve is FD-digits against the threshold for every model (the chosen one in red; dashed line the
# untrained generator, dotted real data), and the sentence gives precision, recall and FD-digits over the seeds.
# The page looks up states this chapter computed from the stored generators.

# %% tags=["remove-input"]
layout, explorable = explorables.truncation_explorable("biggan", profile, sweeps, sweep_grids, baselines)
explorables.show(layout, "trunc", explorable)

# %% [markdown]
# ### Why truncation greys these samples
#
# BigGAN found that truncation trades diversity for fidelity. Here the grids go grey as the threshold shrinks. A
# hypothesis: Config E's generator starts from a learned 4x4 basis *scaled by a linear map of z*
# (`GenerativeBasis`), and what follows is convolutions and leaky ReLUs with small biases, so G(s·z) ≈ s·G(z). If
# so, shrinking |z| shrinks the output towards 0, mid-grey, whatever the latent's direction. Three measurements
# test it: how far G is from that homogeneity, the contrast of its samples against the latent scale, and a
# truncation that keeps each latent's *norm* (its entries truncated, then the latent rescaled to the length it had).

# %%
chapter.source(biggan_study.norm_kept_latents)

# %%
study = (stored["metrics"].get("truncation_study") if stored else None) or biggan_study.truncation_study(
    generators, biggan_study.STABLE, base, settings)
fig = biggan_study.plot_truncation_study(study, sweeps, prov)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_study")
plt.show()
study_reading = biggan_study.truncation_study_reading(study, sweeps)
chapter.print_reading(study_reading)
if profile == "smoke":
    print(smoke_note)

# %% [markdown]
# ## 2. Spectral monitoring: does $\sigma_0$ announce a collapse?
#
# BigGAN tracked the top singular value of every weight and found that G's first layer's $\sigma_0$ climbs and then
# explodes when training collapses. The trainer measures it by power iteration (`spectral_every`,
# `spectral_iters`), the estimate spectral normalisation uses:

# %%
chapter.source(biggan.top_singular_value)

# %% [markdown]
# To see a collapse we need a run that fails. The paper's Table 1 says RpGAN with R1 *alone* diverges on stacked
# digits; so it trained beside the recipe, measuring the same spectra. Each panel shows $\sigma_0$ of every weight of
# one network over training of the first seed (log scale), coloured from the input side (dark) to the output side
# (yellow); the first layer is black (in G, the linear map from z to the 4x4 input); a red dashed line marks a
# divergence by the chapter's rule (`profiles.BLOWUP`).

# %%
first = settings["seeds"][0]
pair = [next(r for r in runs if r["label"] == label and r["seed"] == first)
        for label in (biggan_study.STABLE, biggan_study.R1_ONLY)]
fig = biggan_study.plot_spectra(pair, prov)
biggan_study.keep_figure(fig, artifacts_dir, "spectra")
plt.show()

# %% [markdown]
# The verdicts are computed from the spectra of every seed: a layer "blew up" when its $\sigma_0$ at least doubled
# over the second half of the measurements (the second half, because zero-initialised residual convs grow from
# nothing by design).

# %%
spectral_verdicts = biggan_study.spectral_verdicts_by_seed(runs)
for line in spectral_verdicts:
    print("-", line)
if profile == "smoke":
    print(smoke_note)

# %% [markdown]
# ## 3. Orthogonal regularisation and graceful truncation
#
# BigGAN found that many of its models produced saturated artefacts when sampled with a truncated latent, and
# that penalising the overlap between G's filters fixed it. The penalty (added to G's loss when
# `TrainConfig.ortho_beta` is set) masks the diagonal, so filter *norms* stay free:

# %%
chapter.source(biggan.orthogonal_penalty)

# %% [markdown]
# Same seeds, same data, same recipe; only `ortho_beta` differs. If BigGAN's claim holds, the regularised model's
# curves bend less as the threshold shrinks.

# %%
fig = biggan_study.plot_truncation_curves(sweeps, prov, baselines)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_ortho")
plt.show()
fig = biggan_study.plot_truncation_grids(sweep_grids, prov)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_grids")
plt.show()

# %%
truncation_verdicts = biggan_study.truncation_verdicts(sweeps, plain=biggan_study.STABLE, ortho=ortho_label)
for line in truncation_verdicts:
    print("-", line)
if profile == "smoke":
    print(smoke_note)

# %% [markdown]
# ## 4. Penalty strength: stability against quality
#
# BigGAN tried R1 on its discriminator: $\gamma = 10$ stabilised training, at the price of about 45% of the
# Inception Score. R3GAN's recipe uses R1 + R2 and anneals $\gamma$. Here $\gamma$ is held constant at each value of the
# sweep (R1 + R2, everything else as above). Stability is whether the run survives, how large D's gradient on
# fakes got over the second half of training (the paper's diagnosis of failing runs) and how much the spectra
# grew; quality is FD-digits, precision and recall, and `fd_cost_pct` is how much worse FD-digits is than the
# best $\gamma$'s mean.

# %%
gamma_runs = [r for r in runs if r["label"] in {biggan_study.gamma_label(g) for g in settings["gammas"]}]
gamma_rows = biggan_study.gamma_sweep_rows(gamma_runs)
tables.show(biggan_study.gamma_table(gamma_rows), columns=["gamma", "failed", "fd_digits", "fd_cost_pct",
                                                          "recall_digits", "late_max_grad_norm_fake"])

# %%
fig = biggan_study.plot_gamma_sweep(gamma_rows, prov, baselines)
biggan_study.keep_figure(fig, artifacts_dir, "gamma_sweep")
plt.show()
gamma_verdicts = biggan_study.gamma_verdicts(gamma_rows)
for line in gamma_verdicts:
    print("-", line)
if profile == "smoke":
    print(smoke_note)

# %% [markdown]
# BigGAN's own setting was R1 *alone* at $\gamma = 10$. It trained beside the sweep; here it is next to the
# R1 + R2 runs at the same $\gamma$ and next to R1 alone under the recipe's annealed $\gamma$.

# %%
biggan_rows = biggan_study.gamma_sweep_rows(
    [r for r in runs if r["label"] in (biggan_study.BIGGAN_R1, biggan_study.gamma_label(10.0), biggan_study.R1_ONLY)])
tables.show(biggan_rows, columns=["label", "seed", "status", "fd_digits", "precision_digits", "recall_digits",
                                  "late_max_grad_norm_fake"])

# %% [markdown]
# ## What was measured
#
# Every verdict above is computed from this page's data: the runs, the spectra and the sweeps, all in
# `metrics.json`, with the sample grids and each run's final generator beside it.

# %%
spectral = {r["run"]: biggan_study.spectral_summary(r) for r in runs
            if r["label"] in (biggan_study.STABLE, biggan_study.R1_ONLY)}
record = chapter.finish_chapter(
    prov, metrics_path, artifacts_dir, runs, grids, runs_dir=runs_dir, stored=stored, settings=settings,
    baselines=baselines, judgement=judgement, truncation_study=study, truncation_study_reading=study_reading,
    truncation=sweeps, truncation_verdicts=truncation_verdicts, spectral=spectral,
    spectral_verdicts=spectral_verdicts, gamma_sweep=gamma_rows, gamma_verdicts=gamma_verdicts)

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: biggan-ex-1
# Truncation shrinks the latent. Estimate $\mathbb{E}[z_i^2]$ of a latent entry truncated at each threshold of the
# sweep (draw 100,000 entries with `biggan.truncated_normal`). At which threshold does the latent keep half its
# variance?
# :::
#
# :::{exercise}
# :label: biggan-ex-2
# Power iteration is an estimate. For the trained `G_stable` (the first seed's), compare `biggan.spectral_norms(G_stable, iters)`
# with `torch.linalg.svdvals` for iters = 1, 5 and 50. Which layers need the most iterations, and why?
# :::
#
# :::{exercise}
# :label: biggan-ex-3
# Did the regulariser do its job? Compare `biggan.orthogonal_penalty_total` of `G_stable` and `G_ortho`
# (with $\beta = 1$, so the numbers are readable).
# :::
#
# :::{exercise}
# :label: biggan-ex-4
# The verdict on orthogonal regularisation pools the seeds. Seed by seed, at which threshold is the ratio
# FD-digits(threshold) / FD-digits(untruncated) furthest apart between the two models, and does the sign of the
# difference agree across seeds?
# :::

# %% [markdown]
# :::{solution-start} biggan-ex-1
# :class: dropdown
# :::
# The variance of $N(0, 1)$ truncated to $[-t, t]$ is $1 - 2t\varphi(t) / (2\Phi(t) - 1)$: about $0.29$ at $t = 1$
# and $0.50$ at $t = 1.4$, so "half the variance" sits between the sweep's 1.0 and 1.5. The cell estimates it:

# %%
for t in settings["thresholds"]:
    z = biggan.truncated_normal((100_000,), t, generator=torch.Generator().manual_seed(0))
    print(f"threshold {t:g}: E[z^2] = {z.square().mean():.3f}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} biggan-ex-2
# :class: dropdown
# :::
# The error shrinks like $(\sigma_1 / \sigma_0)^{2k}$ after $k$ iterations, so layers whose top two singular
# values are close converge slowest: here mostly the grouped 3x3 convolutions, still near their random
# initialisation.

# %%
exact = {n: torch.linalg.svdvals(biggan.as_matrix(p.detach()))[0].item() for n, p in biggan.matrix_weights(G_stable)}
for iters in (1, 5, 50):
    est = biggan.spectral_norms(G_stable.cpu(), iters)
    worst = max(exact, key=lambda n: abs(est[n] - exact[n]) / exact[n])
    print(f"{iters:>2} iterations: worst relative error {abs(est[worst] - exact[worst]) / exact[worst]:.2e} ({worst})")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} biggan-ex-3
# :class: dropdown
# :::
# $\beta = 1$ makes the penalty the plain sum of squared off-diagonal Gram entries:

# %%
for name, G in (("without", G_stable), ("with ortho", G_ortho)):
    print(f"{name}: orthogonality penalty at β = 1, summed over layers: {biggan.orthogonal_penalty_total(G.cpu(), 1.0).item():.4g}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} biggan-ex-4
# :class: dropdown
# :::
# The sweeps hold every seed's rows; divide each threshold's FD-digits by the same seed's untruncated one.

# %%
def fd_ratios(rows):
    by_seed = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[r["threshold"]] = r["fd_digits"]
    return {s: {t: v / row[None] for t, v in row.items() if t is not None} for s, row in by_seed.items()}


plain, ortho = fd_ratios(sweeps[biggan_study.STABLE]), fd_ratios(sweeps.get(ortho_label, []))
for s in sorted(set(plain) & set(ortho)):
    gaps = {t: ortho[s][t] - plain[s][t] for t in plain[s]}
    t = max(gaps, key=lambda k: abs(gaps[k]))
    print(f"seed {s}: largest gap at threshold {t:g}: ortho - plain = {gaps[t]:+.3f} "
          f"(signs over thresholds: {' '.join('+' if g > 0 else '-' for g in gaps.values())})")

# %% [markdown]
# :::{solution-end}
# :::
