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
# # Config D: ResNet-ify
#
# With a loss that converges, the network can be modernised the way classifiers were (paper Sec. 3.3). Config D
# rebuilds G and D from **residual blocks with a 1-3-1 bottleneck**: a 1x1 convolution narrows the width, a 3x3
# works on the narrow features, a 1x1 widens back, and the branch's output is *added* to the block's input. The
# branch starts with a convolution and puts its activations between the convolutions (conv, act, conv, act, conv),
# so it is not a pre-activation block: nothing acts on the skip path or on the branch's input before its first
# convolution. There is no normalisation anywhere; the biases live in the activations.
#
# Two details keep such a deep network trainable without normalisation:
#
# - **Fix-up initialisation**: the first two convolutions of a block start at N(0, g / sqrt(fan_in)) with
#   g = sqrt(2 / (1 + 0.2^2)) L^(-1/4), L the number of blocks, and the *last* convolution starts at zero, so
#   every block is the identity at initialisation (the anatomy chapter measures the effect on activations).
# - **Transition layers** between resolutions: bilinear ([1,3,3,1] FIR) resampling and a 1x1 convolution when the
#   width changes.
#
# The paper's FID falls from 11.65 to 9.95 (10.17 while the output skips are kept; D removes them).

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (the findings, 2 CPU cores) | gpu (one GPU) | paper (FFHQ-256, documented)
retrain = False        # cpu/gpu: True trains again even when results/<chapter>/<profile>/ holds stored runs
metrics_path = None    # set by ci/run_chapters.py
artifacts_dir = None   # set by ci/run_chapters.py
runs_dir = None        # set by ci/run_chapters.py: resumable run folders (a killed chapter continues there)

# %% tags=["hide-input"]
from r3gan_core.book import chapter, experiments, recipe_views
from r3gan_core.networks.layers import fixup_gain
from r3gan_core.networks.resnet import DownTransition, ResidualBlock, UpTransition

settings, prov, stored = chapter.chapter_start("config_d", profile, retrain=retrain)

# %% [markdown]
# ## The code of the blocks
#
# From `r3gan_core.networks.resnet`: the residual block (Config D uses it with a dense 3x3 and a narrowing
# bottleneck, expansion below 1), the fix-up gain, and G's and D's transition layers.

# %%
chapter.source(ResidualBlock, fixup_gain, UpTransition, DownTransition)

# %% [markdown]
# ## Training Config D (RpGAN + R1 + R2, as from Config C on)

# %%
runs, grids = chapter.train_or_load(stored, lambda: experiments.roadmap_step("D", settings, runs_dir))
baselines = chapter.run_baselines(stored, runs)
judgement = chapter.show_runs(runs, grids, prov, baselines)

# %%
record = chapter.finish_chapter(prov, metrics_path, artifacts_dir, runs, grids, runs_dir=runs_dir, stored=stored,
                                settings=settings, baselines=baselines, judgement=judgement)

# %% [markdown]
# ## Is the recipe right at this scale?
#
# Config D trains with the roadmap's shared recipe, made for FFHQ-256 and 5 M images. The sweep scales its
# learning rate and gamma schedules up and down around it.
# One seed per cell, the roadmap's length; the prescribed cell is the seed-0 run above. Each cell is scored by how
# much of the gap from the untrained generator to real data it closes on the metrics that separate (the table
# above), and the best cell is the highest-scoring one that trained without degrading (`r3gan_core.book.recipes`).

# %%
sweep = recipe_views.sweep_for_chapter("D", profile, runs, baselines, judgement, stored, runs_dir)
sweep_reading = recipe_views.show_sweep(sweep, prov, "D")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: config-d-ex-1
# Train Config D with output skips (`network={"output_skips": True}` in `experiments.base_config`): the
# paper's 10.17 variant. Does removing them help at this scale?
# :::
#
# :::{exercise}
# :label: config-d-ex-2
# Replace the zero initialisation of each block's last convolution by the fix-up gain. Use
# `r3gan_core.networks.anatomy.activation_variance_through_depth` to see what happens to the activations.
# :::
#
# :::{exercise}
# :label: config-d-ex-3
# Why can a residual network without normalisation (identity skips, zero-initialised branches) still train deep,
# while a plain one of the same depth struggles?
# :::

# %% [markdown]
# :::{solution} config-d-ex-1
# :class: dropdown
# The book does not run this (three runs, about 15 minutes here):
#
# ```python
# cfg = experiments.base_config("D", settings, network={"output_skips": True})
# records, grids = experiments.run_variants(cfg, {"D + output skips (10.17)": {}}, seeds=settings["seeds"])
# ```
#
# "Helps" means: the runs without skips (this chapter's) are better on the separating metrics by the verdict rule
# (`comparisons.decided_comparison`), with both sides trained. In the paper the variant with skips scored 10.17
# against 9.34 without; at 8x8 there are only two stages (4x4 and 8x8), so the skips add one coarse image, and a
# small or unseparated difference is the likely outcome.
# :::

# %% [markdown]
# :::{solution-start} config-d-ex-2
# :class: dropdown
# :::
# A start: with the last convolution at zero, every residual branch outputs exactly zero at initialisation (the
# cell shows it). Draw that convolution with `fixup_gain` instead and compare
# `activation_variance_through_depth` before and after.

# %%
import torch

from r3gan_core.networks import build
from r3gan_core.networks.anatomy import residual_blocks

_, D = build("D", settings["preset"])
for name, block in residual_blocks(D)[:3]:
    out = block.branch(torch.randn(2, block.conv1.in_channels, 4, 4))
    print(f"{name}: max |branch output| at initialisation = {out.abs().max().item():.1e}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution} config-d-ex-3
# :class: dropdown
# With identity skips, each block adds its branch to the stream instead of replacing it: the network starts as the
# identity (every branch is zero) and the gradient reaches every block through the skips unchanged. A plain
# network of the same depth multiplies one layer Jacobian per layer, and without normalisation the scale of that
# product drifts exponentially with depth, so activations and gradients explode or vanish; the anatomy chapter
# measures the variance through depth under both initialisations.
# :::
