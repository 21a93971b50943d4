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
# # What R1 + R2 cost, and what lazy regularisation gives back
#
# The paper's recipe penalises D's input gradient on real data (R1) *and* on generated data (R2) at every step.
# Both need the gradient of a gradient, and users of the official R3GAN code report that this makes training
# several times slower. The maintainers suggest StyleGAN2's answer, **lazy regularisation**: apply the penalties on
# every k-th minibatch only, with their weight multiplied by k, so that their average strength is unchanged. And
# they warn that the convergence theory then no longer holds.
#
# This chapter, which the paper does not have, measures both halves: where lazy regularisation keeps local
# convergence on the Dirac-GAN, whether lazy runs reach the same quality on the 2D mixtures and on stacked digits,
# and what the penalties cost on this CPU and on a GPU. The library applies lazy R1 / R2 to any config:
# `TrainConfig(penalty_interval=k)`, or `r3gan train --penalty-interval K`.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (the findings, 2 CPU cores) | gpu (one GPU)
retrain = False        # cpu/gpu: True trains again even when results/lazy_penalties/<profile>/ holds stored runs
metrics_path = None    # set by ci/run_chapters.py
artifacts_dir = None   # set by ci/run_chapters.py
runs_dir = None        # set by ci/run_chapters.py: resumable run folders (a killed chapter continues there)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt

from r3gan_core.book import chapter, comparisons, experiments, explorables, lazy_study, tables
from r3gan_core.convergence import lazy

settings, prov, stored = chapter.chapter_start("lazy_penalties", profile, retrain=retrain)
kept = (stored or {}).get("metrics", {})
smoke_note = "(smoke profile: a few hundred images per run; this only exercises the code, it is not a finding)"

# %% [markdown]
# ## 1. The theory on the Dirac-GAN
#
# On the Dirac-GAN (chapter 1) one lazy period is a step with the penalty at weight kγ followed by k - 1 steps
# without it. Near the equilibrium each step is linear, so the period is the product of the step Jacobians, and
# lazy regularisation converges locally exactly when that product's spectral radius is below 1. The library
# computes it in closed form, and a test checks it against autograd through k real steps:

# %%
chapter.source(lazy.period_jacobian)

# %% [markdown]
# The heat maps give the *per-step* rate, the period's spectral radius to the power 1/k (blue converges, red
# diverges), over the step size h and the interval k, for R1 + R2 at the chapter's γ. The dashed line is a
# necessary condition in closed form: the period's determinant is 1 - 2khc (c the penalty's damping), so k must
# stay below 1/(hc).

# %%
dirac = kept.get("dirac") or lazy_study.dirac_study(settings)
fig = lazy_study.plot_dirac_study(dirac, prov)
plt.show()
dirac_reading = lazy_study.dirac_reading(dirac)
chapter.print_reading(dirac_reading)

# %% [markdown]
# Move the interval $k$ and the step size $h$ below: the left view is the map above with the chosen point, the right
# one the distance to the equilibrium after each period of a simulated run started $10^{-3}$ from it
# (`lazy.simulate_lazy`, computed when the chapter ran; the page only looks it up).

# %% tags=["remove-input"]
explorable = explorables.lazy_settings(dirac, settings["explorable"]["hs"], settings["explorable"]["ks"],
                                       settings["explorable"]["periods"])
explorables.show(explorables.lazy_explorable(dirac, explorable), "lazy", explorable)

# %% [markdown]
# So the maintainers' warning has a precise form: lazy regularisation keeps local convergence while k·h·c stays
# below about 1, the point where the once-per-period kick of weight kγ overshoots. A smaller step size buys a
# longer interval; a stronger penalty a shorter one.
#
# ## 2. 2D mixtures
#
# RpGAN with R1 + R2 on the ring and the grid of Gaussians (chapter 2's setting), the penalty applied every k-th D
# step with weight k, everything else equal. HQ fraction: samples within three standard deviations of a mode;
# reverse KL: of the modes' histogram to uniform.

# %%
toy_rows = kept.get("toy") or lazy_study.toy_runs(settings, progress=True)
tables.show(experiments.summary_table(
    [{**r, "label": f"{r['dataset']}, k = {r['interval']}", "status": "ok" if r["status"] == "ok" else "diverged"}
     for r in toy_rows], ("modes", "hq", "kl")), rename={"label": "run", "failed": "failed"})

# %%
fig = lazy_study.plot_toy_runs(toy_rows, prov)
plt.show()
toy_reading = lazy_study.toy_reading(toy_rows)
chapter.print_reading(toy_reading)
if profile == "smoke":
    print(smoke_note)

# %% [markdown]
# ## 3. Stacked digits: quality against time
#
# Config E with its recipe (RpGAN, R1 + R2, γ annealed) at penalty intervals 1, 4 and 16; lazy R1 *alone* at the
# largest interval (does dropping R2 matter once the penalty is lazy?); and no penalty at all. Every run trains
# with the same data, seeds and length; images per second and wall time are measured in the same runs, two
# one-thread runs side by side.

# %%
variants = lazy_study.stacked_variants(settings)
runs, grids = chapter.train_or_load(stored, lambda: experiments.run_variants(
    experiments.base_config("E", settings), variants, seeds=settings["seeds"], evaluations=settings["evaluations"],
    num_samples=settings["num_samples"], eval_options=experiments.evaluation_options(settings), runs_dir=runs_dir,
    workers=settings.get("workers", 1)))
baselines = chapter.run_baselines(stored, runs)
judgement = chapter.show_runs(runs, grids, prov, baselines)

# %% [markdown]
# Quality against the time it cost: each point is one run's final score and its training wall time; the line joins
# the variants whose means no other variant beats on both.

# %%
lead = (judgement["separating"] or ["fd_digits"])[0]
fig = lazy_study.plot_pareto(runs, lead, prov, baselines)
plt.show()
intervals = settings["intervals"]
verdicts = lazy_study.lazy_verdicts(runs, judgement, intervals)
largest = max(intervals)
verdicts.append(comparisons.decided_comparison(
    runs, lazy_study.interval_label(largest), lazy_study.interval_label(largest, "r1"), judgement,
    f"with the penalty every {largest}th step, R1 + R2 beats R1 alone",
    "no lazy runs; at every step R1 alone fails, Table 1"))
for line in verdicts:
    print("- (smoke profile, not a finding)" if profile == "smoke" else "-", line)

# %% [markdown]
# ## 4. What the penalties cost
#
# The trainer's iteration timed at each interval in one run of `benchmarks/bench_iteration.py --intervals` on this
# CPU, and, labelled as such, the GPU measurements stored under `benchmarks/measured/`: there the gradient of a
# gradient goes through `networks.conv`'s first-order backward, beside PyTorch's own double backward.

# %%
cost = lazy_study.cpu_cost_rows() + lazy_study.h200_cost_rows()
tables.show(cost, columns=["where", "what", "images / s", "overhead"], digits=3,
            rename={"overhead": "R1 + R2 overhead (×)"})

# %% [markdown]
# ## 5. What healthy training looks like
#
# Users ask what G and D's losses should do, and whether it is normal that the real and fake logits converge while
# the penalty's gradient norm goes to zero. The trainer logs all of them; here are the every-step runs (bands over
# seeds) beside the unpenalised ones.

# %%
health_labels = [lazy_study.interval_label(1), lazy_study.NO_PENALTY]
fig = lazy_study.plot_health(runs, health_labels, prov)
plt.show()
health_reading = lazy_study.health_reading(runs, health_labels)
chapter.print_reading(health_reading)
if profile == "smoke":
    print(smoke_note)

# %%
record = chapter.finish_chapter(prov, metrics_path, artifacts_dir, runs, grids, runs_dir=runs_dir, stored=stored,
                                settings=settings, baselines=baselines, judgement=judgement, verdicts=verdicts,
                                dirac=dirac, dirac_reading=dirac_reading, toy=toy_rows, toy_reading=toy_reading,
                                health_reading=health_reading)

# %% [markdown]
# ## Exercises
#
# :::{exercise}
# :label: lazy-ex-1
# The closed-form bound says k < 1/(hc). With R1 + R2 the damping c grows with γ. Predict the largest stable
# interval at γ = 4 and h = 0.1, then check it with `lazy.largest_stable_interval`.
# :::
#
# :::{exercise}
# :label: lazy-ex-2
# Lazy regularisation keeps the *average* penalty. Why can a once-per-period kick of weight kγ still diverge where
# the same average applied every step converges? Use the determinant of the period's Jacobian.
# :::

# %% [markdown]
# :::{solution-start} lazy-ex-1
# :class: dropdown
# :::
# The bound and the exact answer side by side:

# %%
print(f"bound 1/(hc) = {lazy.interval_bound('r1+r2', 4.0, 0.1):.3g}; largest stable interval "
      f"{lazy.largest_stable_interval('r1+r2', 4.0, 0.1)}")

# %% [markdown]
# :::{solution-end}
# :::
#
# :::{solution} lazy-ex-2
# :class: dropdown
# The free steps of the alternating scheme have determinant 1 and the penalised one 1 - 2hkc, so the period's
# determinant is 1 - 2khc. Once k·h·c > 1 it falls below -1, and a matrix whose determinant has modulus above 1
# has an eigenvalue outside the unit circle: the kick overshoots the equilibrium by more than it corrects, however
# small the average penalty is.
# :::
