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
# # Config E: ResNeXt-ify and the inverted bottleneck, the R3GAN network
#
# The last step borrows two ideas from ResNeXt and ConvNeXt (paper Sec. 3.4):
#
# - **grouped 3x3 convolutions** (16 channels per group) raise the width the block can afford for the same
#   parameters (FID 9.95 -> 7.507);
# - the **inverted bottleneck**: the first 1x1 convolution *widens* the features (expansion ratio 2), the grouped
#   3x3 works on the wide features, and the last 1x1 narrows them back (7.507 -> 7.045).
#
# The result is the R3GAN network: 7.045 FID on FFHQ-256 at 5 M images, better than StyleGAN2's 7.516 with fewer
# parameters and none of its tricks, and with longer training the paper's headline 2.75.
#
# In `r3gan_core` Configs D and E share one `ResidualBlock`: the two changes are two numbers of `ResNetConfig`,
# `channels_per_group` and `expansion`.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (the findings, 2 CPU cores) | gpu (one GPU) | paper (FFHQ-256, documented)
retrain = False        # cpu/gpu: True trains again even when results/<chapter>/<profile>/ holds stored runs
metrics_path = None    # set by ci/run_chapters.py
artifacts_dir = None   # set by ci/run_chapters.py
runs_dir = None        # set by ci/run_chapters.py: resumable run folders (a killed chapter continues there)

# %% tags=["hide-input"]
import dataclasses

from r3gan_core.book import chapter, experiments, recipe_views
from r3gan_core.networks import network_config
from r3gan_core.report import describe_settings
from r3gan_core.networks.resnet import ResNetConfig

settings, prov, stored = chapter.chapter_start("config_e", profile, retrain=retrain)

# %% [markdown]
# ## The code of the change
#
# The configuration that makes a block grouped and inverted, and the two configs at the same preset:

# %%
chapter.source(ResNetConfig.hidden, ResNetConfig.groups)

# %%
for config in "DE":
    print(f"Config {config}: " + describe_settings(dataclasses.asdict(network_config(config, "ffhq256"))))

# %% [markdown]
# ## Training Config E

# %%
runs, grids = chapter.train_or_load(stored, lambda: experiments.roadmap_step("E", settings, runs_dir))
baselines = chapter.run_baselines(stored, runs)
judgement = chapter.show_runs(runs, grids, prov, baselines)

# %%
record = chapter.finish_chapter(prov, metrics_path, artifacts_dir, runs, grids, runs_dir=runs_dir, stored=stored,
                                settings=settings, baselines=baselines, judgement=judgement)

# %% [markdown]
# ## Is the recipe right at this scale?
#
# Config E, R3GAN itself, trains with the paper's recipe for FFHQ-256 and 5 M images. The sweep scales its learning
# rate and gamma schedules up and down, so that E meets A and C each at its best recipe.
# One seed per cell, the roadmap's length; the prescribed cell is the seed-0 run above. Each cell is scored by how
# much of the gap from the untrained generator to real data it closes on the metrics that separate (the table
# above), and the best cell is the highest-scoring one that trained without degrading (`r3gan_core.book.recipes`).

# %%
sweep = recipe_views.sweep_for_chapter("E", profile, runs, baselines, judgement, stored, runs_dir)
sweep_reading = recipe_views.show_sweep(sweep, prov, "E")

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: config-e-ex-1
# Train Config E with `network={"channels_per_group": None}` (a dense 3x3 with the inverted bottleneck). Which
# of the two changes matters more at this scale?
# :::
#
# :::{exercise}
# :label: config-e-ex-2
# Count the parameters of one residual block at width 768 in Config D and in Config E. Where did E spend the
# parameters grouping saved?
# :::
#
# :::{exercise}
# :label: config-e-ex-3
# The paper's ImageNet presets use 32 channels per group instead of 16. Build `imagenet64` with
# `channels_per_group=16` and compare the parameter count with the paper's 103.6 M.
# :::

# %% [markdown]
# :::{solution} config-e-ex-1
# :class: dropdown
# The book does not run this (three runs, about 15 minutes here):
#
# ```python
# cfg = experiments.base_config("E", settings, network={"channels_per_group": None})
# records, grids = experiments.run_variants(cfg, {"E, dense 3x3": {}}, seeds=settings["seeds"])
# ```
#
# The two changes from D to E are grouping (`channels_per_group`) and the inverted bottleneck (`expansion`). This
# run keeps the bottleneck and drops the grouping, so: if it lands with E, grouping did not matter and the
# bottleneck did; if it lands with D, grouping did. Decide "lands with" by the verdict rule on the separating
# metrics; the roadmap chapter's D-E comparison gives the spread to beat.
# :::

# %% [markdown]
# :::{solution-start} config-e-ex-3
# :class: dropdown
# :::
# Built on the meta device (nothing is allocated), the two settings of `channels_per_group` give:

# %%
import torch

from r3gan_core.networks import build
from r3gan_core.networks.anatomy import count_parameters

for cpg in (32, 16):
    with torch.device("meta"):
        G, D = build("E", "imagenet64", conditional=True, channels_per_group=cpg)
    print(f"channels_per_group {cpg}: G {count_parameters(G) / 1e6:.1f} M, D {count_parameters(D) / 1e6:.1f} M "
          "(paper: 103.6 M and 107.2 M at 32)")

# %% [markdown]
# Halving the channels per group doubles the number of groups, which halves the grouped 3x3's parameters; the 1x1
# convolutions around it do not change, so the total falls by less than the 3x3's share.
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} config-e-ex-2
# :class: dropdown
# :::
# Grouping divides the 3x3's parameters by the number of groups; E spends them on a wider hidden layer:

# %%
from r3gan_core.networks.anatomy import count_parameters
from r3gan_core.networks.resnet import ResidualBlock

for config in "DE":
    cfg = network_config(config, "ffhq256")
    block = ResidualBlock(768, cfg.hidden(768), cfg.groups(768), num_blocks_total=8)
    print(config, f"hidden {cfg.hidden(768)}, groups {cfg.groups(768)}, {count_parameters(block):,} parameters")

# %% [markdown]
# :::{solution-end}
# :::
