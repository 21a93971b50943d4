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
# 2. **Spectral monitoring** (BigGAN Sec. 4.1): the top singular value sigma_0 of each weight, by power
#    iteration. In BigGAN, sigma_0 of a few G layers (the first one most) grows through training and explodes
#    at collapse; D's spectra are noisy and jump.
# 3. **Orthogonal regularisation** (BigGAN Eq. 3): beta ||W^T W (.) (1 - I)||_F^2 with beta = 1e-4, which BigGAN
#    credits for making G *amenable to truncation*.
# 4. **Penalty strength** (BigGAN Sec. 4.1): R1 with gamma = 10 stabilised their D but cost about 45% of the
#    Inception Score.
#
# Quality is measured in the digit classifier's feature space: **FD-digits** (a Frechet distance, not an FID),
# improved precision (fidelity) and recall (diversity) with k = 3 neighbours, and the number of the 1000
# stacked-digit modes covered. There is no Inception Score here; precision plays its part (fidelity).

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, about a minute) | gpu (one GPU, ~10 min: an estimate); no cpu tier yet
metrics_path = None    # set by ci/run_chapters.py: where this chapter's headline numbers go
artifacts_dir = None   # set by ci/run_chapters.py: a folder for small stored results (json, png)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

from r3gan_core import biggan
from r3gan_core.book import biggan_study, chapter, experiments, tables
from r3gan_core.book.profiles import chapter_settings
from r3gan_core.training import copy_config

# Tiny networks: one thread is faster and immune to a busy CPU (set first, so the provenance states it).
torch.set_num_threads(chapter_settings("biggan", profile)["threads"] or torch.get_num_threads())
settings, prov, _ = chapter.chapter_start("biggan", profile, trains=False)
published = chapter.published_results("biggan", "gpu")  # stored gpu-profile results, when a GPU run made them
if published is None:
    print("No stored results for this chapter: it has no cpu tier yet, and no GPU run has stored its gpu profile. "
          "Everything below is the smoke profile: it shows that the code runs, not findings.")

# %% [markdown]
# ## The model: Config E, RpGAN + R1 + R2
#
# One base configuration serves every run: Config E at the profile's preset, its own recipe (RpGAN, R1 + R2 with
# gamma 1 -> 0.1), sigma_0 of every G and D weight every `spectral_every` images, and one sample grid at the end.
# `train_keep_generator` trains and scores the run like every other chapter, and also hands back its EMA
# generator, which the truncation sweep samples from.

# %%
seed = settings["seeds"][0]
base = experiments.base_config("E", settings, threads=settings["threads"],
                               spectral_every=settings["spectral_every"], spectral_iters=settings["spectral_iters"],
                               sample_every=settings["total_images"])
run_args = dict(evaluations=settings["evaluations"], num_samples=settings["num_samples"],
                eval_options=settings["eval"], seed=seed)
stable, G_stable, stable_grid = biggan_study.train_keep_generator(base, "RpGAN + R1 + R2", **run_args)
chapter.count_runs(prov, [stable])  # figure footers state the images trained so far
print(f"{stable['label']}: {stable['status']}, {stable['images_seen']:,} images, "
      f"{stable['images_per_second']} img/s, FD-digits {stable['fd_digits']:.4g}")

# %% [markdown]
# ## 1. The truncation trick
#
# BigGAN samples z from a truncated normal: every entry with |z| > threshold is redrawn until it falls inside.
# A small threshold keeps latents near the mode of the prior, where G is best trained: samples get cleaner and
# more alike. The library function is short:

# %%
chapter.source(biggan.truncated_normal)

# %% [markdown]
# The sweep samples the *same* latent seed at every threshold, so each latent only has its out-of-range entries
# redrawn, and scores each set against the real data. The first row is no truncation at all.

# %%
sweeps, sweep_grids = {}, {}
sweep_args = dict(num_samples=settings["num_samples"], seed=seed, eval_options=settings["eval"],
                  grid_count=settings["grid_count"], threads=settings["threads"])
sweeps[stable["label"]], sweep_grids[stable["label"]] = biggan_study.truncation_sweep(
    G_stable, base, settings["thresholds"], **sweep_args)
tables.show(biggan_study.truncation_table(sweeps))

# %% [markdown]
# The trade-off as curves (precision = fidelity, recall and modes = diversity, FD-digits = both; "none" = no
# truncation, the loosest threshold of all) and as samples. In the smoke profile G has barely begun to train:
# the curves and grids only show that the code runs, **not findings**.

# %%
fig = biggan_study.plot_truncation_curves({stable["label"]: sweeps[stable["label"]]}, prov)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_curves")
plt.show()
fig = biggan_study.plot_truncation_grids({stable["label"]: sweep_grids[stable["label"]]}, prov)
plt.show()

# %% [markdown]
# ## 2. Spectral monitoring: does sigma_0 announce a collapse?
#
# BigGAN tracked the top singular value of every weight and found that G's first layer's sigma_0 climbs and then
# explodes when training collapses. The trainer measures it by power iteration (`spectral_every`,
# `spectral_iters`), the estimate spectral normalisation uses:

# %%
chapter.source(biggan.top_singular_value)

# %% [markdown]
# To see a collapse we need a run that fails. The paper's Table 1 says RpGAN with R1 *alone* diverges on stacked
# digits; so we train it beside the stable run, measuring the same spectra.

# %%
r1_runs, r1_grids = experiments.run_variants(base, {"RpGAN + R1": {"penalty": "r1"}}, seeds=[seed],
                                             evaluations=settings["evaluations"],
                                             num_samples=settings["num_samples"], eval_options=settings["eval"])
r1_only = r1_runs[0]
chapter.count_runs(prov, [stable], r1_runs)
print(f"{r1_only['label']}: {r1_only['status']} after {r1_only['images_seen']:,} images {r1_only['message']}")

# %% [markdown]
# Each panel shows sigma_0 of every weight of one network over training (log scale), coloured from the input side
# (dark) to the output side (yellow); the first layer is black (in G, the linear map from z to the 4x4 input);
# a red dashed line marks a divergence. Smoke-profile curves cover a few dozen steps: **not findings**.

# %%
fig = biggan_study.plot_spectra([stable, r1_only], prov)
biggan_study.keep_figure(fig, artifacts_dir, "spectra")
plt.show()

# %% [markdown]
# The verdict is computed from the spectra: a layer "blew up" when its sigma_0 at least doubled over the second
# half of the measurements (the second half, because zero-initialised residual convs grow from nothing by design).

# %%
spectral_verdicts = biggan_study.spectral_verdicts(stable, r1_only)
for line in spectral_verdicts:
    print("-", line)
if profile == "smoke":
    print(f"(smoke profile: {settings['total_images']:,} images per run; these lines only exercise the code)")

# %% [markdown]
# ## 3. Orthogonal regularisation and graceful truncation
#
# BigGAN found that many of its models produced saturated artefacts when sampled with a truncated latent, and
# that penalising the overlap between G's filters fixed it. The penalty (added to G's loss when
# `TrainConfig.ortho_beta` is set) masks the diagonal, so filter *norms* stay free:

# %%
chapter.source(biggan.orthogonal_penalty)

# %% [markdown]
# Same seed, same data, same recipe; only `ortho_beta` differs. Then the same sweep.

# %%
ortho_label = f"{stable['label']} + ortho {settings['ortho_beta']:g}"
ortho, G_ortho, ortho_grid = biggan_study.train_keep_generator(
    copy_config(base, ortho_beta=settings["ortho_beta"]), ortho_label, **run_args)
chapter.count_runs(prov, [stable, ortho], r1_runs)
sweeps[ortho_label], sweep_grids[ortho_label] = biggan_study.truncation_sweep(
    G_ortho, base, settings["thresholds"], **sweep_args)
print(f"{ortho_label}: {ortho['status']}, FD-digits {ortho['fd_digits']:.4g}; "
      f"without: {stable['fd_digits']:.4g}")

# %% [markdown]
# If BigGAN's claim holds, the regularised model's curves should bend less as the threshold shrinks. Smoke
# numbers: **not findings**.

# %%
fig = biggan_study.plot_truncation_curves(sweeps, prov)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_ortho")
plt.show()
fig = biggan_study.plot_truncation_grids(sweep_grids, prov)
biggan_study.keep_figure(fig, artifacts_dir, "truncation_grids")
plt.show()

# %%
truncation_verdicts = biggan_study.truncation_verdicts(sweeps, plain=stable["label"], ortho=ortho_label)
for line in truncation_verdicts:
    print("-", line)
if profile == "smoke":
    print("(smoke profile: these verdicts only exercise the code)")

# %% [markdown]
# ## 4. Penalty strength: stability against quality
#
# BigGAN tried R1 on its discriminator: gamma = 10 stabilised training, at the price of about 45% of the
# Inception Score. R3GAN's recipe uses R1 + R2 and anneals gamma. Here gamma is held constant at each value of the
# sweep (R1 + R2, everything else as above). Stability is whether the run survives, how large D's gradient on
# fakes got over the second half of training (the paper's diagnosis of failing runs) and how much the spectra
# grew; quality is FD-digits, precision and recall, and `fd_cost_pct` is how much worse FD-digits is than at the
# best gamma.

# %%
gamma_variants = {f"R1 + R2, gamma {g:g}": {"gamma": float(g)} for g in settings["gammas"]}
gamma_runs, gamma_grids = experiments.run_variants(base, gamma_variants, seeds=[seed],
                                                   evaluations=settings["evaluations"],
                                                   num_samples=settings["num_samples"], eval_options=settings["eval"])
chapter.count_runs(prov, [stable, ortho], r1_runs, gamma_runs)
gamma_rows = biggan_study.gamma_sweep_rows(gamma_runs)
tables.show(pd.DataFrame(gamma_rows).drop(columns=["label", "seed", "images_seen"]))

# %%
fig = biggan_study.plot_gamma_sweep(gamma_rows, prov)
biggan_study.keep_figure(fig, artifacts_dir, "gamma_sweep")
plt.show()
gamma_verdicts = biggan_study.gamma_verdicts(gamma_rows)
for line in gamma_verdicts:
    print("-", line)
if profile == "smoke":
    print("(smoke profile: these verdicts only exercise the code)")

# %% [markdown]
# ## What was measured
#
# Every verdict above is computed from this run's data. The headline numbers, spectra and sweeps go to
# `metrics.json`; the sample grids of every run beside it.

# %%
runs = [stable, ortho, r1_only, *gamma_runs]
grids = {stable["label"]: stable_grid, ortho_label: ortho_grid, **r1_grids, **gamma_grids}
record = chapter.finish_chapter(
    prov, metrics_path, artifacts_dir, runs, grids, settings=settings, truncation=sweeps,
    truncation_verdicts=truncation_verdicts, spectral={r["label"]: biggan_study.spectral_summary(r)
                                                       for r in (stable, r1_only)},
    spectral_verdicts=spectral_verdicts, gamma_sweep=gamma_rows, gamma_verdicts=gamma_verdicts)

# %% [markdown]
# ## Stored gpu-profile results
#
# The book build executes the smoke profile above. Results of the gpu profile, when a GPU run stored them under
# `results/biggan/gpu/`, are shown here with their provenance (their sample grids are the PNG files there).

# %%
if published is not None:
    full, where = published["metrics"], published["provenance"]["device"] + " (stored gpu profile)"
    full_runs = {r["label"]: r for r in full["runs"]}
    display(tables.show(biggan_study.truncation_table(full["truncation"])))
    display(tables.show(pd.DataFrame(full["gamma_sweep"]).drop(columns=["label", "seed", "images_seen"])))
    biggan_study.plot_truncation_curves(full["truncation"], where)
    biggan_study.plot_spectra([full_runs[label] for label in full["spectral"]], where)
    biggan_study.plot_gamma_sweep(full["gamma_sweep"], where)
    plt.show()
    for line in full["truncation_verdicts"] + full["spectral_verdicts"] + full["gamma_verdicts"]:
        print("-", line)

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
# Power iteration is an estimate. For the trained `G_stable`, compare `biggan.spectral_norms(G_stable, iters)`
# with `torch.linalg.svdvals` for iters = 1, 5 and 50. Which layers need the most iterations, and why?
# :::
#
# :::{exercise}
# :label: biggan-ex-3
# Did the regulariser do its job? Compare `biggan.orthogonal_penalty_total` of `G_stable` and `G_ortho`
# (with beta = 1, so the numbers are readable).
# :::
#
# :::{exercise}
# :label: biggan-ex-4
# BigGAN's own setting was R1 *only* at gamma = 10. Train that variant (`{"penalty": "r1", "gamma": 10.0}`)
# and put it beside the R1 + R2 sweep. Is it stable at this scale? What does it cost?
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
    print(f"{name}: sum ||W W^T (.) (1 - I)||_F^2 = {biggan.orthogonal_penalty_total(G.cpu(), 1.0).item():.4g}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} biggan-ex-4
# :class: dropdown
# :::
# One more run of the profile's length, beside the R1 + R2 sweep; read stability and quality as in section 4.

# %%
biggan_r1 = {"R1 only, gamma 10 (BigGAN)": {"penalty": "r1", "gamma": 10.0}}
bigg_runs, _ = experiments.run_variants(base, biggan_r1, seeds=[seed], num_samples=settings["num_samples"],
                                        eval_options=settings["eval"])
tables.show(biggan_study.gamma_sweep_rows(bigg_runs + gamma_runs),
            columns=["label", "gamma", "status", "fd_digits", "precision_digits", "recall_digits",
                     "late_max_grad_norm_fake"])

# %% [markdown]
# :::{solution-end}
# :::
