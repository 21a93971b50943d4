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
# # Anatomy of the roadmap: configs A-E
#
# The R3GAN paper (Sec. 3, Table 2) walks from StyleGAN2 to its own baseline in five steps, training each
# configuration on FFHQ-256 for 5 M images:
#
# | config | what changes | FID |
# |---|---|---|
# | A | StyleGAN2, as released | 7.516 |
# | B | strip the tricks: mapping network, styles, (de)modulation, noise, minibatch stddev, equalised lr | 12.46 |
# | C | same networks; the loss becomes RpGAN + R1 + R2 | 11.65 |
# | D | ResNet-ify: 1-3-1 bottleneck blocks, no output skips, fix-up initialisation | 9.95 |
# | E | ResNeXt-ify: grouped 3x3 convs inside an inverted bottleneck | 7.045 |
#
# This chapter trains nothing. It opens the five networks of `r3gan_core.networks` side by side: their
# parameter counts against Table 2, their layers, where their parameters live, and why configs D and E can
# be deep without normalisation layers (their initialisation). Everything runs on a CPU in seconds (the
# FFHQ-256 networks are built on PyTorch's `meta` device, which allocates no memory), so the book shows
# the `cpu` profile; its numbers are exact counts, not training results.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (what the book shows; a CPU is enough for this chapter)
metrics_path = None    # set by ci/run_chapters.py: where this chapter's headline numbers go
artifacts_dir = None   # set by ci/run_chapters.py: a folder for small stored results (json, png)

# %% tags=["hide-input"]
from pathlib import Path

import pandas as pd
import seaborn as sns
import torch
from IPython.display import display

from r3gan_core import networks
from r3gan_core.book import explorables, tables
from r3gan_core.book.chapter import chapter_start, source, write_metrics
from r3gan_core.networks import anatomy, layers, resnet, stripped, stylegan2
from r3gan_core.book.plotting import add_footer

settings, prov, _ = chapter_start("anatomy", profile)
PRESET = settings["preset"]
BLOCKS, BATCH = settings["blocks_per_stage"], settings["batch"]
out_dir = Path(artifacts_dir) if artifacts_dir else None

# %% [markdown]
# ## Parameter counts against Table 2
#
# `anatomy.parameter_table` builds each configuration at FFHQ-256 on the meta device and counts its
# parameters. Where our widths come from (the docstring of `r3gan_core/networks/presets.py` has the details):
#
# * **A, B**: StyleGAN2's widths `min(16384 / resolution, 512)`. B's generator has 32,768 parameters more
#   than StyleGAN2's synthesis convolutions: exactly a bias-free linear map from the 64-dimensional $z$ to
#   the 512 channels of the 4x4 constant, so that is how $z$ enters B here.
# * **E**: the official preset (768 channels at 4-32 px, then 384, 192, 96; 16 channels per group).
# * **D**: not published. Twice E's widths with a classic 4x bottleneck (hidden width = width / 4, dense
#   3x3) reproduces D's discriminator to the thousand, and the generator to the thousand *with* the per-stage
#   output skips: Table 2's count for D's generator seems to have been taken on the output-skip variant
#   (FID 10.17) that the row also mentions.

# %%
table2 = pd.DataFrame(anatomy.parameter_table()).set_index("config")
skips = pd.DataFrame(anatomy.parameter_table(("D",), output_skips=True)).set_index("config")
skips.index = ["D + output skips"]
display(tables.show(pd.concat([table2, skips]), digits=5))

# %% [markdown]
# Config E on the other official presets (PAPER_FACTS Sec. 5; CIFAR-10 and ImageNet conditional). ImageNet's
# counts need 32 channels per group (the official code uses 96 groups at width 1536): with 16 they would
# come out 79.4 M / 83.0 M.

# %%
presets_table = pd.DataFrame(anatomy.preset_parameter_table("E")).set_index("preset")
display(tables.show(presets_table, digits=5))

# %% [markdown]
# ## Where the parameters live
#
# `anatomy.parameters_by_resolution` runs one forward pass on the meta device and files each layer's
# parameters under the feature-map size it works at. StyleGAN2 spends a tenth of its generator on the
# mapping network and another 3.8 M on the affine layers that turn $w$ into styles (counted at their
# conv's resolution); D and E put almost everything into the wide 4-32 px stages and keep the 128 and 256
# px stages thin.

# %%
by_res = []
with torch.device("meta"):
    for name in ("A", "B", "D", "E"):
        G, D = networks.build(name, "ffhq256")
        for net, counts in (("G", anatomy.parameters_by_resolution(G, torch.zeros(2, G.z_dim))),
                            ("D", anatomy.parameters_by_resolution(D, torch.zeros(2, 3, 256, 256)))):
            by_res += [{"config": name, "network": net, "feature map (px)": k.split("x")[0], "params (M)": v / 1e6}
                       for k, v in counts.items()]
by_res = pd.DataFrame(by_res)
order = [str(2 ** i) for i in range(2, 9)] + ["dense"]
bars = sns.catplot(data=by_res, x="feature map (px)", y="params (M)", hue="config", col="network", kind="bar",
                   order=order, height=3.0, aspect=1.3)
sns.move_legend(bars, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=5, title=None, frameon=False)
fig = bars.figure
fig.suptitle("Parameters by resolution at FFHQ-256\n(dense: mapping network, label embedding, D's head)", y=1.13)
add_footer(fig, prov)
if out_dir:
    fig.savefig(out_dir / "params_by_resolution.png", bbox_inches="tight")

# %% [markdown]
# ## The layers, config by config
#
# The same tables at the chapter's small preset (`digits16`: 16x16 grey digits, 64-channel stages), with
# the output shape of every module from one forward pass (`anatomy.describe`). Config C is B's networks
# (only the loss changes), so it is not repeated.

# %%
torch.manual_seed(0)
small = {name: networks.build(name, PRESET) for name in ("A", "B", "D", "E")}
z = torch.randn(2, small["E"][0].z_dim)
x = torch.randn(2, small["E"][1].channels, small["E"][1].resolution, small["E"][1].resolution)
G_a = small["A"][0]
print("Config A, generator (mapping + synthesis)\n" + anatomy.describe(G_a, torch.randn(2, G_a.z_dim), depth=3))

# %%
print("Config A, discriminator\n" + anatomy.describe(small["A"][1], x, depth=2))
print("\nConfig B / C, generator\n" + anatomy.describe(small["B"][0], z, depth=2))
print("\nConfig B / C, discriminator\n" + anatomy.describe(small["B"][1], x, depth=2))

# %%
print("Config D, generator\n" + anatomy.describe(small["D"][0], z, depth=3))
print("\nConfig E, discriminator\n" + anatomy.describe(small["E"][1], x, depth=3))

# %% [markdown]
# D and E share one module layout (a generator stage is a transition then residual blocks; a discriminator
# stage mirrors it), so their tables differ only in widths: D's blocks are 128 wide with a 32-channel
# bottleneck and a dense 3x3; E's are 64 wide, expand to 128 and split the 3x3 into groups of 16 channels.

# %% [markdown]
# ## The blocks' source
#
# The code below is the library's, shown with `inspect.getsource`, so what you read is what runs. First the
# residual block of D and E: three convolutions, two biased leaky ReLUs, and the last convolution set to
# zero at initialisation.

# %%
source(resnet.ResidualBlock, layers.fixup_gain, layers.init_weight_)

# %% [markdown]
# The ends of the networks: the generator's input is a learned 4x4 basis scaled per channel by a linear map
# of $z$ (and the label); the discriminator's output collapses each 4x4 channel with its own 4x4 filter,
# then a linear layer. The transitions between stages resample with the $[1, 3, 3, 1]$ FIR filter, which
# equals bilinear interpolation away from the border.

# %%
source(resnet.GenerativeBasis, resnet.DiscriminativeBasis, resnet.UpTransition, resnet.DownTransition,
       layers.upsample_2x)

# %% [markdown]
# What the roadmap removed: StyleGAN2's modulated convolution (config A) and, for contrast, B's plain
# residual discriminator block, which keeps StyleGAN2's structure and its $\sqrt{1/2}$ skip gain.

# %%
source(stylegan2.modulated_conv2d, stylegan2.SynthesisLayer, stripped.StrippedDiscriminatorBlock)

# %% [markdown]
# ## Why D and E need no normalisation: variance through depth
#
# Without normalisation layers, a residual network's activations grow with depth: each block adds its
# branch's output to the stream, and with He initialisation every branch has about the variance of its
# input, so the variance roughly doubles per block. R3GAN's fix-up initialisation (after Zhang et al.,
# 2019) sets the first two convolutions of each branch to $g = \sqrt{2 / (1 + 0.2^2)}\, L^{-1/4}$ times the
# He scale ($L$ = number of blocks) and the last one to zero. At initialisation every block is then the
# identity; once training moves the last convolution off zero, the $L^{-1/4}$ factors keep the sum of
# all branches bounded.
#
# `anatomy.init_variance_profile` measures, with forward hooks on every residual block, the output variance
# under three schemes: fix-up as built, fix-up with the last convolution drawn like the others (what
# training could make of it), and plain He initialisation everywhere. The generator is fed $z$, the
# discriminator unit-variance white noise; the steps in D's curves are the FIR low-pass of each
# downsampling, which keeps about a tenth of white noise's variance.

# %%
profile_rows = []
for name in ("D", "E"):
    profile_rows += anatomy.init_variance_profile(name, PRESET, blocks_per_stage=BLOCKS, batch=BATCH)
variance = pd.DataFrame(profile_rows)
grid = sns.relplot(data=variance, x="depth", y="variance", hue="init", style="init", col="network", row="config",
                   kind="line", markers=True, height=2.7, aspect=1.4, facet_kws={"sharey": False})
grid.set(yscale="log")
grid.set_axis_labels(f"residual block (forward order; {BLOCKS} per stage)", "output variance")
sns.move_legend(grid, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, title=None, frameon=False)
grid.figure.suptitle(f"Activation variance through depth at initialisation ({PRESET})", y=1.07)
add_footer(grid.figure, prov)
if out_dir:
    grid.figure.savefig(out_dir / "variance_through_depth.png", bbox_inches="tight")

# %% [markdown]
# One curve at a time: pick a config, a network and an initialisation (the other two initialisations stay in grey).
# The page looks up the curves measured above.

# %% tags=["remove-input"]
explorable = {"preset": PRESET, "blocks_per_stage": BLOCKS, "batch": BATCH, "seed": 0, "configs": ["D", "E"]}
explorables.show(explorables.variance_explorable(profile_rows, explorable), "var", explorable)

# %%
# Growth within a stage (last block / first block), the largest over stages: resampling steps excluded.
variance["stage"] = variance["block"].str.split(".").str[1]
per_stage = variance.groupby(["config", "network", "init", "stage"])["variance"].agg(lambda v: v.iloc[-1] / v.iloc[0])
growth = per_stage.groupby(["config", "network", "init"]).max().unstack("init")[list(anatomy.INIT_SCHEMES)]
growth.columns.name = "variance growth within a stage"
display(tables.show(growth, digits=3))

# %% [markdown]
# With He initialisation the variance of D/E's residual stream grows several-fold within every stage and
# by orders of magnitude across the network (the plot). With fix-up it stays put (every block is the
# identity), and even with every last convolution switched on it grows only slightly within a stage (the
# table), because the $L^{-1/4}$ gains keep each branch small next to the stream it adds to. That is what
# lets configs D and E do without normalisation layers, which the paper reports make training fail
# (Sec. 3.1, the rules config B established).

# %%
metrics = {
    "preset": PRESET,
    "params_ffhq256": {c: {"G": r["G ours (M)"], "D": r["D ours (M)"], "G_paper": r["G paper (M)"],
                           "D_paper": r["D paper (M)"], "G_diff_pct": r["G diff (%)"], "D_diff_pct": r["D diff (%)"]}
                       for c, r in table2.iterrows()},
    "params_d_with_output_skips": {"G": float(skips["G ours (M)"].iloc[0]), "D": float(skips["D ours (M)"].iloc[0])},
    "params_e_presets": {p: {"G": r["G ours (M)"], "D": r["D ours (M)"], "G_paper": r["G paper (M)"],
                             "D_paper": r["D paper (M)"]} for p, r in presets_table.iterrows()},
    "max_abs_diff_pct": float(table2[["G diff (%)", "D diff (%)"]].abs().max().max()),
    "variance_growth": {f"{c}/{n}": {k: float(v) for k, v in row.items()} for (c, n), row in growth.iterrows()},
}
record = write_metrics(metrics_path, metrics, prov.finish())
print(f"Largest difference from the paper's Table 2 parameter counts: {metrics['max_abs_diff_pct']:.2f}%.")
print(prov)

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: anatomy-ex-1
# Count the parameters of one residual block of config E at FFHQ-256's 768-wide stages by hand (three
# convolutions without bias, two activation biases; the 3x3 has 96 groups), then check with
# `anatomy.count_parameters`.
# :::
#
# :::{exercise}
# :label: anatomy-ex-2
# Config D's generator is 21,888 parameters short of Table 2 without output skips. Where does that
# number come from?
# :::
#
# :::{exercise}
# :label: anatomy-ex-3
# Remove the $L^{-1/4}$ factor (use the plain He gain in the first two convolutions) but keep the last
# convolution non-zero. How does the variance at the last block compare with fix-up's?
# :::
#
# :::{exercise}
# :label: anatomy-ex-4
# Config A counts `num_ws = 2 log2(resolution) - 2` style vectors. Why not one per layer with a style
# (there are more such layers)?
# :::

# %% [markdown]
# :::{solution-start} anatomy-ex-1
# :class: dropdown
# :::
# A 1x1 from 768 to 1536 channels, a grouped 3x3 (16 inputs per output), a 1x1 from 1536 back to 768, and two
# activation biases of 1536: the cell counts it both ways.

# %%
by_hand = 768 * 1536 + 1536 * 16 * 9 + 1536 * 768 + 2 * 1536
with torch.device("meta"):
    G_e, _ = networks.build("E", "ffhq256")
print(by_hand, anatomy.count_parameters(G_e.stages[0].blocks[0]))

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} anatomy-ex-2
# :class: dropdown
# :::
# The to-image 1x1 convolutions of the six lower stages (3 output channels each, no bias):

# %%
d_widths = networks.network_config("D", "ffhq256").widths
print(d_widths, 3 * sum(d_widths[:-1]))

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} anatomy-ex-3
# :class: dropdown
# :::
# Re-draw every branch convolution with He's gain; the residual stream then grows block after block:

# %%
torch.manual_seed(0)
_, D_e = networks.build("E", PRESET, blocks_per_stage=BLOCKS)
for _, block in anatomy.residual_blocks(D_e):
    for conv in (block.conv1, block.conv2, block.conv3):
        layers.init_weight_(conv.weight, layers.LRELU_GAIN)
noise = torch.randn(BATCH, D_e.channels, D_e.resolution, D_e.resolution)
he_rows = anatomy.activation_variance_through_depth(D_e, noise)
print([round(r["variance"], 2) for r in he_rows])

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution} anatomy-ex-4
# :class: dropdown
# Each synthesis block's to-image layer reuses the $w$ of the next block's first convolution (StyleGAN2's
# indexing), so a block consumes one $w$ per convolution and only the last to-image layer adds one:
# $1 + 2(\log_2 r - 2) + 1 = 2\log_2 r - 2$. Style mixing cuts this list at a random index.
# :::
