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
# # Config B: StyleGAN2 stripped bare
#
# Config B removes *every* StyleGAN2 feature that is not essential (paper Sec. 3.2): z normalisation, minibatch
# standard deviation, equalised learning rate, the mapping network, style injection, weight modulation and
# demodulation, noise inputs, mixing regularisation, path-length regularisation and lazy regularisation. What is
# left is a plain convolutional G that scales a learned 4x4 constant by a linear map of z, keeps the output
# skips, and a ResNet D; bilinear resampling, leaky ReLU, no normalisation, no tanh, z of dimension 64.
#
# The paper's FID gets *worse*, 7.516 -> 12.46, and this is the honest starting point: a minimal network with
# the classic non-saturating loss and R1. The authors also note that breaking three rules makes this network
# fail outright: an ill-behaved loss, a large learning rate with momentum, or normalisation layers.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (the findings, 2 CPU cores) | gpu (one GPU) | paper (FFHQ-256, documented)
retrain = False        # cpu/gpu: True trains again even when results/<chapter>/<profile>/ holds stored runs
metrics_path = None    # set by ci/run_chapters.py
artifacts_dir = None   # set by ci/run_chapters.py
runs_dir = None        # set by ci/run_chapters.py: resumable run folders (a killed chapter continues there)

# %% tags=["hide-input"]
from r3gan_core.book import chapter, experiments, tables, recipe_views
from r3gan_core.networks.stripped import StrippedDiscriminatorBlock, StrippedGeneratorBlock

settings, prov, stored = chapter.chapter_start("config_b", profile, retrain=retrain)

# %% [markdown]
# ## What remains of the network
#
# One generator block and one discriminator block of Config B, from `r3gan_core.networks.stripped`:

# %%
chapter.source(StrippedGeneratorBlock, StrippedDiscriminatorBlock)

# %% [markdown]
# ## The recipe: the classic loss with R1 at every step

# %%
tables.show(chapter.recipe_table("AB", settings["preset"]), transpose=True)

# %% [markdown]
# ## Training Config B

# %%
runs, grids = chapter.train_or_load(stored, lambda: experiments.roadmap_step("B", settings, runs_dir))
baselines = chapter.run_baselines(stored, runs)
judgement = chapter.show_runs(runs, grids, prov, baselines)

# %%
record = chapter.finish_chapter(prov, metrics_path, artifacts_dir, runs, grids, runs_dir=runs_dir, stored=stored,
                                settings=settings, baselines=baselines, judgement=judgement)

# %% [markdown]
# ## Is the recipe right at this scale?
#
# Config B keeps the paper's recipe (lr and gamma on cosine schedules from FFHQ-256's 5 M-image run). At 64k
# images that may be too few effective updates, so the sweep scales both schedules up and down.
# One seed per cell, the roadmap's length; the prescribed cell is the seed-0 run above. Each cell is scored by how
# much of the gap from the untrained generator to real data it closes on the metrics that separate (the table
# above), and the best cell is the highest-scoring one that trained without degrading (`r3gan_core.book.recipes`).

# %%
sweep = recipe_views.sweep_for_chapter("B", profile, runs, baselines, judgement, stored, runs_dir)
sweep_reading = recipe_views.show_sweep(sweep, prov, "B")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: config-b-ex-1
# Give Config B a normalisation layer's worth of trouble: train it with `lr=2.5e-3` (pass `lr=2.5e-3` to
# `experiments.base_config`). Does it diverge, as the paper warns for a large learning rate?
# :::
#
# :::{exercise}
# :label: config-b-ex-2
# Config B keeps the output skips of StyleGAN2's generator. Find them in `StrippedGenerator.forward` and
# explain what each resolution contributes to the final image.
# :::
#
# :::{exercise}
# :label: config-b-ex-3
# Why can removing the equalised learning rate change training even though the network computes the same
# function at initialisation?
# :::

# %% [markdown]
# :::{solution} config-b-ex-1
# :class: dropdown
# The book does not run this (three runs, about 15 minutes here):
#
# ```python
# cfg = experiments.base_config("B", settings, lr=2.5e-3)
# records, grids = experiments.run_variants(cfg, {"B, lr 2.5e-3": {}}, seeds=settings["seeds"])
# ```
#
# The answer is the state column: *diverged* when the trainer's blow-up guard stopped a run (a loss, a gradient
# norm or the logit gap past `blowup`), *did not train* or *degrading* by the book's rules, *trained* otherwise.
# Without normalisation layers nothing bounds the activations, so a step 50 times the paper's 5e-5 is where to
# expect trouble, but whether it comes within 64k images at 8x8 is what the run measures.
# :::

# %% [markdown]
# :::{solution} config-b-ex-2
# :class: dropdown
# In `StrippedGenerator.forward` each resolution's block ends in a 1x1 "to image" convolution, and the image is
# the running sum of those outputs, each upsampled to the next resolution before the next is added. So the 4x4
# stage paints the coarse layout (a blurry colour field), and every later stage adds the detail its resolution can
# carry; the final image is their sum. Print `chapter.source(StrippedGenerator.forward)` to follow it; Config D
# removes these skips (only the last stage writes the image), which is exercise {numref}`config-d-ex-1`'s question.
# :::

# %% [markdown]
# :::{solution-start} config-b-ex-3
# :class: dropdown
# :::
# Adam's update size is about lr per parameter whatever the gradient's scale, so storing weights at
# unit variance and scaling them at run time (equalised lr) changes each layer's *effective* step size.

# %%
from r3gan_core.networks.layers import EqualizedConv2d

chapter.source(EqualizedConv2d)

# %% [markdown]
# :::{solution-end}
# :::
