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
# # Config A: StyleGAN2, the starting point
#
# The roadmap starts from the official StyleGAN2 (paper Sec. 3, Table 2, FID 7.516 on FFHQ-256 after 5 M images).
# It is a strong model carried by a long list of tricks, each added to keep training from failing:
#
# - a **mapping network** (8 layers, learning rate x 0.01) turns z into a style vector w, normalised first;
# - **modulated and demodulated 3x3 convolutions** inject one style per layer, with per-pixel **noise inputs**;
# - a **skip generator** (an RGB output per resolution, summed) and a **residual discriminator** (skip gain
#   sqrt(0.5)) with **minibatch standard deviation** to fight mode collapse;
# - **equalised learning rate** (weights stored at unit variance, scaled at run time), [1,3,3,1] FIR resampling;
# - the non-saturating loss with **lazy R1** (every 16 steps), **path-length regularisation** (every 4 steps)
#   and **style mixing** (probability 0.9).
#
# R3GAN's point is that most of these exist to patch an ill-behaved loss. This chapter trains Config A on stacked
# digits so that the next chapters can take the tricks away one at a time and watch what happens.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (the findings, 2 CPU cores) | gpu (one GPU) | paper (FFHQ-256, documented)
retrain = False        # cpu/gpu: True trains again even when results/<chapter>/<profile>/ holds stored runs
metrics_path = None    # set by ci/run_chapters.py
artifacts_dir = None   # set by ci/run_chapters.py
runs_dir = None        # set by ci/run_chapters.py: resumable run folders (a killed chapter continues there)

# %% tags=["hide-input"]
from r3gan_core.book import chapter, experiments, tables, recipe_views
from r3gan_core.networks.stylegan2 import MappingNetwork, MinibatchStd, modulated_conv2d

settings, prov, stored = chapter.chapter_start("config_a", profile, retrain=retrain)

# %% [markdown]
# ## The code of the tricks
#
# Taken from `r3gan_core.networks.stylegan2`, not retyped: the weight (de)modulation at the heart of StyleGAN2,
# the mapping network and minibatch standard deviation.

# %%
chapter.source(modulated_conv2d, MappingNetwork, MinibatchStd)

# %% [markdown]
# ## The recipe
#
# Lazy R1 applies the penalty every 16th D step with its weight multiplied by 16; path length every 4th G step.

# %%
tables.show(chapter.recipe_table("A", settings["preset"]), transpose=True)

# %% [markdown]
# ## Training Config A

# %%
runs, grids = chapter.train_or_load(stored, lambda: experiments.roadmap_step("A", settings, runs_dir))
baselines = chapter.run_baselines(stored, runs)
judgement = chapter.show_runs(runs, grids, prov, baselines)

# %%
record = chapter.finish_chapter(prov, metrics_path, artifacts_dir, runs, grids, runs_dir=runs_dir, stored=stored,
                                settings=settings, baselines=baselines, judgement=judgement)

# %% [markdown]
# ## Is the recipe right at this scale?
#
# Config A's recipe is StyleGAN2-ADA's `auto` rule extrapolated by us to 8x8 (gamma 2e-4, lr 2.5e-3). Is the state
# the table above gives Config A a property of the network, or of that recipe? The sweep trains it on a grid of
# learning rates and of gammas that holds the official code's own `cifar` (0.01) and `paper256` (1) values.
# One seed per cell, the roadmap's length; the prescribed cell is the seed-0 run above. Each cell is scored by how
# much of the gap from the untrained generator to real data it closes on the metrics that separate (the table
# above), and the best cell is the highest-scoring one that trained without degrading (`r3gan_core.book.recipes`).

# %%
sweep = recipe_views.sweep_for_chapter("A", profile, runs, baselines, judgement, stored, runs_dir)
sweep_reading = recipe_views.show_sweep(sweep, prov, "A")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: config-a-ex-1
# Turn style mixing off (`style_mixing=0.0` in `experiments.base_config("A", settings, style_mixing=0.0)`) and
# retrain. Does any metric move beyond the spread between seeds?
# :::
#
# :::{exercise}
# :label: config-a-ex-2
# Lazy R1 multiplies the penalty by 16 on the steps where it applies. Why does that keep the *average*
# regularisation strength the same, and why might it still behave differently from R1 at every step?
# :::
#
# :::{exercise}
# :label: config-a-ex-3
# Count the parameters of the mapping network at `ffhq256` and compare them with the synthesis network's.
# :::

# %% [markdown]
# :::{solution} config-a-ex-1
# :class: dropdown
# The book does not run this: three more runs of Config A's size (about 15 minutes here).
#
# ```python
# cfg = experiments.base_config("A", settings, style_mixing=0.0)
# records, grids = experiments.run_variants(cfg, {"A, no style mixing": {}}, seeds=settings["seeds"])
# ```
#
# "Beyond the spread between seeds" is the book's separation rule: a metric moves only if the difference of the
# means exceeds the pooled sd over seeds by the factor `baselines.separation_table` uses, on a metric that
# separates real data from the untrained generator. Style mixing regularises the mapping network's disentangling;
# at 8x8 with a 64k-image budget there is little for it to act on, so expect no separated change, and note that
# Config A is *degrading* here with or without it (the state column says which).
# :::

# %% [markdown]
# :::{solution} config-a-ex-2
# :class: dropdown
# Over 16 D steps, R1 at weight $16\gamma$ once adds the same total penalty gradient as R1 at $\gamma$ on every
# step, so the average strength is unchanged. The path differs: the penalty arrives as one large kick that Adam
# normalises by a second-moment estimate averaged over about a hundred steps, and between kicks D moves without
# any penalty on its input gradient. Lazy R1 is a cheaper approximation, not the same optimiser trajectory.
# :::

# %% [markdown]
# :::{solution-start} config-a-ex-3
# :class: dropdown
# :::
# The mapping network is 8 dense 512x512 layers; the synthesis network holds nearly all the rest.

# %%
from r3gan_core.networks import build
from r3gan_core.networks.anatomy import count_parameters

G, _ = build("A", "ffhq256")
print(f"mapping {count_parameters(G.mapping):,} of {count_parameters(G):,} generator parameters")

# %% [markdown]
# :::{solution-end}
# :::
