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
# # 2D toys: GAN and RpGAN with R1, R2 on mixtures
#
# The Dirac-GAN chapter showed, on a two-parameter game, why a GAN without a penalty does not converge and
# how a zero-centred penalty damps it. It could not tell GAN from RpGAN, or R1 from R2. This chapter trains
# real (small) networks on the two classic 2D mixtures of VEEGAN (Srivastava et al. 2017) and PacGAN
# (Lin et al. 2018), and tries every combination of
#
# * the loss: classic GAN or RpGAN (paper Sec. 2, Eq. 2), and
# * the penalty: none, R1 (reals), R2 (fakes), or R1 + R2, each at weight $\gamma/2$,
#
# with the same functions the image models use (`losses.discriminator_objective`,
# `losses.generator_objective`). The R3GAN paper makes these claims, which we test here:
#
# 1. **Table 1:** with R1 alone, both GAN and RpGAN fail (diverge) on StackedMNIST, whatever $\gamma$.
# 2. **Sec. 3.1:** the reason: with R1 only, $D$'s gradient on *fake* samples explodes.
# 3. **Table 1:** with R1 + R2, both losses train.
# 4. **Table 1:** RpGAN + R1 + R2 covers more modes with a lower reverse KL than GAN + R1 + R2.
# 5. **Table 1:** RpGAN + R1 + R2 covers every mode.
# 6. **Sec. 2.2 (Dirac-GAN):** without a penalty, training does not settle.
#
# Claims 1-5 were made on StackedMNIST with a ResNet, not on a 2D toy; a 2D toy is a cheap, transparent
# place to look for the same *mechanisms*, not a replication of Table 1. Whether each claim shows up here is
# decided by code from the measured numbers, printed near the end; the text around it only states what to
# expect and why.
#
# Library: `r3gan_core/toy.py` (mixtures, MLPs, trainer, metrics, figures). The whole chapter runs on a CPU,
# so the book shows the `cpu` profile.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (what the book shows; a CPU is enough for this chapter)
metrics_path = None    # set by ci/run_chapters.py: where this chapter's headline numbers go
artifacts_dir = None   # set by ci/run_chapters.py: a folder for small stored results (json, png)
retrain = False        # cpu: train again instead of showing the stored runs (results/toy_2d/cpu/)

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from r3gan_core.convergence import toy
from r3gan_core.book import explorables, tables
from r3gan_core.book.chapter import chapter_start, results_dir, write_metrics
from r3gan_core.book.plotting import add_footer
from r3gan_core.report import describe_settings

torch.set_num_threads(1)  # tiny MLPs: one thread is as fast as two and leaves the other core free
# The toys train on the CPU even where a GPU is present, and the provenance says so.
settings, prov, stored = chapter_start("toy_2d", profile, device="cpu", retrain=retrain, trains=True)
out_dir = Path(artifacts_dir) if artifacts_dir else None
RUNS_FILE = "toy_runs.pt"  # every run of the grid: config, history, snapshots, final samples and G's weights

# %% [markdown]
# ## The data and the metrics
#
# * **Ring:** 8 Gaussians with means on the unit circle at angles $2\pi k/8$, $k = 0..7$, std $0.01$
#   (PacGAN). Placing the means with `linspace(0, 2*pi, 8)` is a known bug: it repeats angle $0$ and leaves
#   7 distinct modes ({numref}`toy-2d-ex-1`).
# * **Grid:** 25 Gaussians at $\{-4, -2, 0, 2, 4\}^2$, std $0.05$.
#
# From 2,500 generated samples (VEEGAN / PacGAN protocol): a sample is *high quality* within 3 std of its
# nearest mode; a mode is *covered* if it has at least one high-quality sample; the reverse KL is
# $\mathrm{KL}(p \,\|\, \mathrm{uniform}_K) = \sum_k p_k \log(K p_k)$ of the histogram of high-quality samples
# over the $K$ modes. Before trusting the metrics on a generator, check them on the data itself: true
# samples should cover every mode, be about 99% high quality (a 2D Gaussian puts $1 - e^{-9/2} = 98.9\%$ of
# its mass within 3 std) and have a KL near 0. And check what *noise* scores: samples spread uniformly over
# the plotted square hit some of the small high-quality discs by chance, so a mode count or a KL means
# little without the high-quality fraction beside it. Last, an untrained generator (the same network, before its
# first step): a trained run that scores no better than it did not train.

# %%
reference = {}
for name in settings["datasets"]:
    true = toy.mode_metrics(toy.sample_mixture(name, settings["samples"], torch.Generator().manual_seed(0)), name)
    noise = toy.uniform_baseline(name, settings["samples"])
    untrained = toy.untrained_baseline(toy.replace(toy.config_from_settings(settings), dataset=name,
                                                   seed=settings["seeds"][0]))
    reference[name] = {"num_modes": true.num_modes, "true_modes": true.modes, "true_hq": true.high_quality,
                       "true_kl": true.reverse_kl, "uniform_modes": noise.modes, "uniform_hq": noise.high_quality,
                       "uniform_kl": noise.reverse_kl, "untrained_modes": untrained.modes,
                       "untrained_hq": untrained.high_quality, "untrained_kl": untrained.reverse_kl}
    print(f"{name}: true samples cover {true.modes}/{true.num_modes} modes, high quality {true.high_quality:.3f}, "
          f"KL {true.reverse_kl:.4f}; uniform noise covers {noise.modes}/{noise.num_modes}, "
          f"high quality {noise.high_quality:.4f}, KL {noise.reverse_kl:.3f}; an untrained generator (seed "
          f"{settings['seeds'][0]}) covers {untrained.modes}/{untrained.num_modes}, high quality "
          f"{untrained.high_quality:.4f}, KL {untrained.reverse_kl:.3f}")
fig = toy.plot_mixtures(tuple(settings["datasets"]), n=settings["samples"])
add_footer(fig, prov)
plt.show()

# %% [markdown]
# ## The runs
#
# Generator and discriminator are MLPs with 3 hidden layers of width 64, leaky ReLU (0.2), no
# normalisation (the paper's rule), a 2D latent. A fixed scale (1 for the ring, 4 for the grid) puts $G$'s
# unit-size outputs at the data's size and divides $D$'s input by the same number (the grid spans 8 units, the
# ring 2). The penalties are taken in data coordinates, so on the
# grid they weigh $4^2 = 16$ times less in $D$'s own (scaled) coordinates. One iteration is one $D$ step
# then one $G$ step (fresh $z$ and, for RpGAN, a fresh real batch), Adam with betas $(0, 0.99)$ as in the
# paper.
#
# Choices, and why:
#
# * $\gamma = 0.1$: the low end of the paper's StackedMNIST sweep (0.1 to 100, Sec. 3.1). A small $\gamma$
#   smooths $D$ the least, so $D$ can resolve modes of std 0.01, and it leaves $D$ the most freedom to grow
#   steep where the fakes are, which is where the paper locates the R1-only failure. {numref}`toy-2d-ex-2` tries others.
# * learning rate $3 \cdot 10^{-3}$ decayed by a cosine to $10^{-5}$: the paper's schedule shape (Sec. 5).
# * steps, batch and seeds are set by the profile (printed above): the cpu profile runs two seeds of every
#   combination, 32 runs, so that claim 4, a comparison of close numbers, is judged seed by seed.

# %%
base = toy.config_from_settings(settings)
print("every run: " + describe_settings({k: v for k, v in vars(base).items()
                                          if k not in ("dataset", "loss", "penalty", "seed")}))
if stored is None:
    results = toy.train_grid(base, datasets=tuple(settings["datasets"]), seeds=tuple(settings["seeds"]),
                             progress=False)
else:  # the stored runs: their final G re-derives every sample and mode count (tests/test_stored_results.py)
    results = toy.load_results(results_dir("toy_2d", profile) / "generators" / RUNS_FILE)
rows = toy.summary_rows(results)
prov.count(images_seen=toy.images_seen(results), steps=base.steps)  # figure footers state the work done
print(f"{len(results)} runs" + (f", {prov.elapsed():.0f} s so far" if stored is None else ", as stored"))

# %% [markdown]
# ## What the generators learned
#
# Each panel is one run of the first seed: 2,500 final samples (blue) over the true means (red crosses).
# Titles give the
# modes covered and the high-quality fraction, or the step at which the run was stopped as divergent
# (a non-finite value, or a loss, a mean gradient norm or the logit gap above $10^4$).

# %%
for name in settings["datasets"]:
    fig = toy.plot_sample_grid(results, name, seed=settings["seeds"][0])
    add_footer(fig, prov)
    if out_dir is not None:
        fig.savefig(out_dir / f"samples_{name}.png", bbox_inches="tight")
    plt.show()

# %% [markdown]
# ### Watch them train
#
# Pick a dataset, a loss and a penalty, and move the slider over training steps: the blue points are $G$'s
# outputs for a fixed set of latents (first seed), the red crosses the true means, and the colour is $D$'s logit
# over the window, standardised per step (red: $D$ calls it real). The page looks up states the chapter stored
# while training (`ToyConfig.snapshot_every`, which draws no random numbers, so the runs are the ones above);
# the sentence under it counts the modes those points cover with `toy.mode_metrics`.

# %% tags=["remove-input"]
explorable = explorables.toy_settings(base, seed=settings["seeds"][0])
explorables.show(explorables.toy_explorable(results, explorable), "toy", explorable)

# %% [markdown]
# The table has one row per run. *HQ fraction* is the high-quality fraction, *reverse KL* the reverse KL of the
# high-quality histogram (inf when there is none), the gradient norms $\lVert\nabla D\rVert$ are $D$'s mean
# $\lVert\nabla_x D(x)\rVert$ on reals and on fakes over the last 10-step window, and *peak
# $\lVert\nabla D\rVert$ fakes* is the largest such window mean during training.

# %%
table = pd.DataFrame(rows).drop(columns=["num_modes"]).set_index(["dataset", "loss", "penalty", "seed"])
if out_dir is not None:
    table.to_csv(out_dir / "runs.csv")
tables.show(table.drop(columns=["wall_s"]), digits=3)  # every column but the run's wall time

# %% [markdown]
# ## D's gradient on reals and on fakes
#
# Curves are means over seeds of 10-step window means, on a log scale.
# The paper's diagnosis of the R1-only failure (Sec. 3.1) is that $D$'s gradient on fakes explodes: R1
# keeps $D$ flat on the data, but nothing stops it from becoming steep where the fakes are. If that
# happens here, the `r1` curves for fakes (dashed) should climb away from the others. Without any penalty
# we expect, from the Dirac-GAN, gradients that stay large instead of decaying as $D$ flattens.

# %%
for name in settings["datasets"]:
    fig = toy.plot_grad_norms(results, name)
    add_footer(fig, prov)
    if out_dir is not None:
        fig.savefig(out_dir / f"grad_norms_{name}.png", bbox_inches="tight")
    plt.show()

# %% [markdown]
# ## Which claims reproduce here
#
# The sentences below are computed from the table (medians over seeds when there are several): each claim
# is marked REPRODUCES, PARTLY REPRODUCES or DOES NOT REPRODUCE, with the numbers behind it. The rules
# (`toy.claim_verdicts`): "explodes" (claim 2) and "does not settle" (claim 6) need a factor of 10 over
# R1 + R2 or a failed run, a factor above 1 counts as partly; claim 4 needs RpGAN ahead in every seed *and*
# KL ranges over seeds that do not overlap, ahead in some seed counts as partly. What to expect:
# Mescheder et al. (2018) trained GAN + R1 on 2D mixtures without trouble, so claims 1 and 2 may well not
# show up on a toy whose discriminator is a small, smooth MLP; the paper's failures were on images.
# With smoke settings these sentences describe a run of a few seconds and are not findings.

# %%
verdicts = [line for name in settings["datasets"] for line in toy.claim_verdicts(rows, name)]
if profile == "smoke":
    print("SMOKE PROFILE: a few training steps; these verdicts only show that the code runs.\n")
print("\n".join(verdicts))

# %%
metrics = {"runs": toy.headline_metrics(rows), "verdicts": verdicts, "reference": reference,
           "config": {k: v for k, v in vars(base).items() if k not in ("dataset", "loss", "penalty", "seed")},
           "datasets": settings["datasets"], "seeds": settings["seeds"], "settings": settings}
if out_dir is not None:  # --publish stores it under results/toy_2d/<profile>/generators/
    toy.save_results(results, out_dir / "generators" / RUNS_FILE)
if stored is None:  # stored runs keep the provenance of their training
    prov.finish(images_seen=toy.images_seen(results), steps=base.steps)
write_metrics(metrics_path, metrics, prov)
print(prov)

# %% [markdown]
# ## What to take away
#
# * The mode metrics are only as good as their sanity check: true samples must give full coverage, about
#   99% high quality and a KL near 0 (first cell), and a broken ring ({numref}`toy-2d-ex-1`) is caught at once.
# * Read the printed verdicts together with the figures and the uniform-noise reference of the first cell:
#   a short CPU run reaches far lower high-quality fractions than PacGAN's long runs, a mode count or KL
#   close to what noise scores says little, and one seed cannot separate close KL values.
# * Whether R1 alone fails here is read off the verdicts above, not assumed; the image chapters (mode coverage
#   on stacked digits) are where Table 1 itself is tested.
#
# ## Exercises
#
# :::{exercise}
# :label: toy-2d-ex-1
# Build the ring with the buggy `linspace(0, 2*pi, 8)` angles and sample a *perfect* generator of that
# wrong ring. What do `mode_metrics` report against the correct ring, and why?
# :::
#
# :::{exercise}
# :label: toy-2d-ex-2
# Give R1 alone more chances to fail: train GAN + R1 on the ring with $\gamma \in \{0.01, 1, 10\}$ and a
# constant learning rate, and compare $D$'s peak gradient norm on fakes with R1 + R2 at the same
# $\gamma$.
# :::
#
# :::{exercise}
# :label: toy-2d-ex-3
# Our divergence check bounds the gap between the mean real and fake logits, not the logits. Show that
# adding a constant to every logit leaves the RpGAN loss unchanged but not the GAN loss.
# :::
#
# :::{exercise}
# :label: toy-2d-ex-4
# The reverse KL uses only high-quality samples. Construct two sample sets with the same KL and very
# different high-quality fractions. Which number would you report first, and why does PacGAN report both?
# :::

# %% [markdown]
# :::{solution-start} toy-2d-ex-1
# :class: dropdown
# :::
# `linspace(0, 2*pi, 8)` spaces 8 angles over a closed interval, so the last equals the first: 7 distinct
# means at multiples of $2\pi/7$, one of them with double weight. Against the correct ring only the angle-0
# mode coincides (twice: angles $0$ and $2\pi$); the other wrong means sit 0.11 to 0.34 from the nearest
# true mean, 11 to 34 std, so nothing there counts as high quality. Expect 1 covered mode, about 25% high
# quality and a KL of $\log 8 = 2.08$; the cell measures it.

# %%
angles = torch.linspace(0, 2 * torch.pi, 8)
bad_means = torch.stack([angles.cos(), angles.sin()], dim=1)
g = torch.Generator().manual_seed(0)
bad = bad_means[torch.randint(8, (2500,), generator=g)] + 0.01 * torch.randn(2500, 2, generator=g)
print("distinct buggy means:", len(torch.unique(bad_means.round(decimals=4), dim=0)))
m = toy.mode_metrics(bad, "ring")
print(f"scored against the true ring: {m.modes} of {m.num_modes} modes covered, high quality {m.high_quality:.3f}, "
      f"reverse KL {m.reverse_kl:.3f}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} toy-2d-ex-2
# :class: dropdown
# :::
# The cell runs short versions (a quarter of the profile's steps, constant learning rate) and prints the
# ratio of peak fake-side gradient norms, R1 over R1 + R2. A ratio near 1-3 with status `ok` means no
# explosion at that $\gamma$; a `fail` or a ratio of 10 or more would be the paper's mechanism.

# %%
for gamma in (0.01, 1.0, 10.0):
    short = dict(dataset="ring", loss="gan", gamma=gamma, lr_final=None, steps=max(base.steps // 4, 10))
    r1, both = (toy.train_toy(toy.ToyConfig(**{**vars(base), **short, "penalty": p}), progress=False)
                for p in ("r1", "r1+r2"))
    print(f"gamma={gamma:g}: R1 {r1.status}, R1+R2 {both.status}, peak fake grad "
          f"{r1.peak('grad_norm_fake'):.3g} vs {both.peak('grad_norm_fake'):.3g} "
          f"(x{r1.peak('grad_norm_fake') / both.peak('grad_norm_fake'):.2f}); "
          f"high quality {r1.metrics.high_quality:.2f} vs {both.metrics.high_quality:.2f}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} toy-2d-ex-3
# :class: dropdown
# :::
# RpGAN's $D$ loss is $\mathrm{softplus}(-(D(x) - D(G(z))))$: it depends on a difference of logits, so
# $D + c$ gives the same loss and the same gradients, and nothing in the loss pins the logits' level. The
# GAN loss $\mathrm{softplus}(-D(x)) + \mathrm{softplus}(D(G(z)))$ changes with $c$. A drifting logit level
# is therefore no sign of divergence for RpGAN; a growing gap between reals and fakes is.

# %%
from r3gan_core.losses import discriminator_loss

real_logits, fake_logits = torch.randn(5), torch.randn(5)
for loss in ("gan", "rpgan"):
    shift = (discriminator_loss(loss, real_logits + 3.0, fake_logits + 3.0)
             - discriminator_loss(loss, real_logits, fake_logits)).abs().max()
    print(f"{loss}: largest change of the per-sample loss after adding 3 to every logit = {shift:.2e}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} toy-2d-ex-4
# :class: dropdown
# :::
# Put 10 samples exactly on each ring mode and scatter 2,420 far away: KL 0 and 3% high quality. Put 312
# or 313 samples on each mode: KL about 0 and 100% high quality. The KL only describes how the *good*
# samples are spread over the modes; the high-quality fraction says how many are good. Report coverage and
# high quality first, KL to compare balance, which is why PacGAN's tables carry all three.

# %%
means, std = toy.mixture("ring")
few = torch.cat([means.repeat_interleave(10, 0), torch.full((2420, 2), 5.0)])
many = means.repeat(313, 1)[:2500]
for label, s in (("10 per mode + far junk", few), ("~313 per mode", many)):
    m = toy.mode_metrics(s, "ring")
    print(f"{label}: modes {m.modes}, high quality {m.high_quality:.3f}, KL {m.reverse_kl:.4f}")

# %% [markdown]
# :::{solution-end}
# :::
