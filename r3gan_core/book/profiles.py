"""The one profiles table: every chapter's `smoke`, `cpu`, `gpu` and (where it applies) `paper` settings.

* smoke: CPU, CI, seconds per chapter. Its numbers only show that the code paths run; never findings.
* cpu:   the findings tier, sized by measurement for the project's 2-core CPU (at most 75 minutes a chapter):
         what the published book shows. Image chapters train two one-thread runs side by side (`workers`) in
         resumable run folders; `ci/run_chapters.py --profile cpu --only NAME --publish` stores them under
         results/<chapter>/cpu/, and the book renders those stored results without retraining.
* gpu:   one GPU, larger scale (run when a GPU is lent; sizes are estimates until a GPU run measures them).
* paper: the paper's schedule for the preset, documented as commands; never run here.

Chapters read their settings with `chapter_settings(chapter, profile)`; `ci/run_chapters.py` reads
`CHAPTERS` for the order and `book_profile` for which profile the book build executes.
"""

from __future__ import annotations

import copy
from typing import Any

from ..choices import require_choice

PROFILES = ("smoke", "cpu", "gpu", "paper")
BOOK_PROFILE = "cpu"  # what the published book shows for every chapter

# The divergence rule of the image chapters, the 2D toys' rule (losses.divergence_reason): a run "fails" when a
# value goes non-finite or a loss, a mean input-gradient norm of D or the logit gap exceeds this.
BLOWUP = 1e4

# Evaluation settings of smoke runs (r3gan_core.metrics.evaluate_images): fewer KID subsets and P/R samples.
SMOKE_EVAL = {"pr_samples": 1_000, "kid_subsets": 10, "kid_subset_size": 500}

# `inception_weights` of the gpu and paper profiles: the Inception metrics the paper reports (FID, KID, precision /
# recall in Inception-v3 space, through torch-fidelity) beside the digit ones at every evaluation
# (experiments.evaluation_options -> metrics.evaluate_images). None: digit metrics only. Otherwise the path of
# torch-fidelity's weights file weights-inception-2015-12-05-6726825d.pth, or "auto" to look in
# $R3GAN_INCEPTION_WEIGHTS and then torch hub's checkpoints folder (torch.hub.get_dir()/checkpoints/). Nothing is
# downloaded: without the file, or without torch-fidelity (pip install 'r3gan-core[inception]'), digit data keeps
# the digit metrics alone and stderr says which file is missing and where to put it. smoke and cpu have no such
# setting (their stored results are checked against these tables).
INCEPTION_WEIGHTS = None

# The five roadmap chapters train under one table, so their numbers compare (the paper: 5 M images per config).
ROADMAP: dict[str, dict[str, Any]] = {
    # smoke: a few steps per config on a CPU; threads=1 keeps torch from oversubscribing a shared machine.
    "smoke": {"preset": "stacked8", "batch": 32, "total_images": 512, "seeds": [0], "evaluations": 2,
              "num_samples": 1_000, "max_items": 5_000, "eval": SMOKE_EVAL, "threads": 1},
    # cpu: the findings tier on 2 cores: 3 seeds per config, two one-thread runs side by side (sized by a pilot).
    "cpu": {"preset": "stacked8", "batch": 64, "total_images": 64_000, "seeds": [0, 1, 2], "evaluations": 4,
            "num_samples": 10_000, "max_items": 50_000, "eval": {}, "threads": 1, "workers": 2, "blowup": BLOWUP},
    # gpu: one GPU, 2 M images x 2 seeds per config. Projected from probes on one H200 (benchmarks/profile_cost.py,
    # 2026-11-26, benchmarks/measured/h200-2026-11-26/): A 38.5 min, B 8.0, C 7.7, D 9.7, E 11.7 (76 min in all).
    "gpu": {"preset": "stacked16", "batch": 256, "total_images": 2_000_000, "seeds": [0, 1], "evaluations": 5,
             "num_samples": 26_000, "max_items": 50_000, "eval": {}, "threads": None,
             "inception_weights": INCEPTION_WEIGHTS},
    # paper: FFHQ-256, 5 M real images per config (Table 2) - needs an image folder and days of GPU time:
    #   r3gan train --config E --preset ffhq256 --dataset folder:/data/ffhq256 --total-images 5000000
    # The ffhq256 preset ramps ADA augmentation p 0 -> 0.3 (configs B-E; needs kornia, the 'augment' extra) on its
    # T = 20 M images, like gamma: about 0.04 at 5 M unless --schedule-images 5000000 (or --aug-p) says otherwise.
    "paper": {"preset": "ffhq256", "batch": 256, "total_images": 5_000_000, "seeds": [0], "evaluations": 10,
              "num_samples": 50_000, "max_items": None, "eval": {}, "threads": None,
              "inception_weights": INCEPTION_WEIGHTS},
}

# The recipe sweeps of the roadmap configs (r3gan_core.book.recipes, ci/run_recipes.py; stored under results/recipes/).
# lr_factors / gamma_factors scale both ends of each config's prescribed schedules (ROADMAP's settings, the config's
# recipe); Config A's gammas are absolute: its prescribed 2e-4 (StyleGAN2-ADA's `auto` rule, our extrapolation to
# 8x8), the official `cifar` value 0.01 and `paper256`'s 1. One seed per cell, `evaluations` per run (the middle one
# judges degrading); the best cell is then trained for every seed of the chapter ("tuned"), and for long_configs at
# long_images ("long", long_seeds).
RECIPE_SWEEP: dict[str, dict[str, Any]] = {
    # smoke: the code path only: one cell beside the prescribed one, in the config chapters' smoke runs.
    "smoke": {"lr_factors": [1.0, 4.0], "gamma_factors": [1.0], "seed": 0,
              "evaluations": 2, "long_configs": ["A", "C", "E"], "long_images": 1_024, "long_seeds": [0],
              "long_evaluations": 2},
    # cpu: 3 x 3 per config at the roadmap's 64k images (8 runs each beside the chapter's own seed-0 run).
    "cpu": {"lr_factors": [0.25, 1.0, 4.0], "gamma_factors": [0.1, 1.0, 10.0],
            "A": {"lr_factors": [0.4, 1.0, 2.5], "gammas": [2e-4, 0.01, 1.0]}, "seed": 0, "evaluations": 2,
            "long_configs": ["A", "C", "E"], "long_images": 256_000, "long_seeds": [0, 1, 2], "long_evaluations": 4},
}

# The lazy-penalties chapter's step sizes on the Dirac-GAN: 40 of them, evenly spaced in log from 0.005 to 0.5.
LAZY_DIRAC_HS = [round(0.005 * 100 ** (i / 39), 6) for i in range(40)]

# Order of the book. The book build executes every chapter in BOOK_PROFILE; image chapters then render their
# stored results (results/<chapter>/cpu/) instead of training, unless a reader passes retrain=True.
CHAPTERS: dict[str, dict[str, Any]] = {
    "dirac_gan": {
        "title": "Dirac-GAN: why GANs cycle and how R1/R2 damp them",
        # steps/h/start are the paper's demonstration (500 steps of h = 0.2 from (1, 1)), cheap even in smoke;
        # grid = quiver arrows per axis, gamma_points = the eigenvalue sweep over [0, 3], h_points = step sizes.
        # explorable: the states the page can show (every penalty x gammas x hs x scheme), each path `steps` long.
        "smoke": {"steps": 500, "h": 0.2, "start": [1.0, 1.0], "gamma": 1.0, "grid": 9, "gamma_points": 31,
                  "h_points": 30,
                  "explorable": {"loss": "rpgan", "gammas": [0.0, 0.5, 1.0, 3.0], "hs": [0.05, 0.2, 1.0],
                                 "steps": 100, "start": [1.0, 1.0], "arrows": 9, "radius_points": 40}},
        "cpu": {"steps": 500, "h": 0.2, "start": [1.0, 1.0], "gamma": 1.0, "grid": 17, "gamma_points": 121,
                "h_points": 150,
                "explorable": {"loss": "rpgan", "gammas": [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
                               "hs": [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0], "steps": 200, "start": [1.0, 1.0],
                               "arrows": 15, "radius_points": 80}},
    },
    "toy_2d": {
        "title": "2D toys: GAN and RpGAN with R1, R2 on mixtures",
        # Both datasets x {gan, rpgan} x {none, r1, r2, r1+r2} per seed. MLPs width 64, depth 3, z_dim 2 (ToyConfig);
        # lr cosine lr -> lr_final; gamma on (gamma/2)(R1 + R2). cpu: 32 runs, about 3.5 min on one free CPU core.
        # snapshot_every: G's points and D's logits kept for the explorable (no effect on training).
        "smoke": {"steps": 100, "batch": 128, "samples": 2500, "datasets": ["ring", "grid"], "seeds": [0],
                  "gamma": 0.1, "lr": 3e-3, "lr_final": 1e-5, "log_every": 5, "snapshot_every": 25},
        "cpu": {"steps": 2000, "batch": 256, "samples": 2500, "datasets": ["ring", "grid"], "seeds": [0, 1],
                 "gamma": 0.1, "lr": 3e-3, "lr_final": 1e-5, "log_every": 10, "snapshot_every": 200},
    },
    "anatomy": {
        "title": "Anatomy of the roadmap: configs A-E",
        # preset: the small networks whose layers are listed; blocks_per_stage / batch: the variance-through-depth
        # measurement (forward passes only; FFHQ-256 counts are built on the meta device in every profile).
        "smoke": {"preset": "digits16", "blocks_per_stage": 2, "batch": 8},
        "cpu": {"preset": "digits16", "blocks_per_stage": 4, "batch": 8},
    },
    "mode_coverage": {
        "title": "Mode coverage on stacked digits (Table 1)",
        # smoke: a few hundred images per run; the numbers only show that every code path runs.
        "smoke": {"preset": "stacked8", "batch": 32, "total_images": 1_024, "seeds": [0], "evaluations": 2,
                  "num_samples": 1_000, "max_items": 5_000, "eval": SMOKE_EVAL, "threads": 1},
        # cpu: the findings tier on 2 cores: 12 runs (4 losses x 3 seeds), two one-thread runs side by side.
        "cpu": {"preset": "stacked8", "batch": 64, "total_images": 128_000, "seeds": [0, 1, 2], "evaluations": 4,
                "num_samples": 10_000, "max_items": 50_000, "eval": {}, "threads": 1, "workers": 2, "blowup": BLOWUP},
        # gpu: one GPU, 12 runs of 400k images: projected 26 min on one H200 (benchmarks/profile_cost.py,
        # 2026-11-26; 60 evaluations of 15 s each are 15 of those minutes).
        "gpu": {"preset": "stacked16", "batch": 256, "total_images": 400_000, "seeds": [0, 1, 2],
                 "evaluations": 5, "num_samples": 26_000, "max_items": 50_000, "eval": {}, "threads": None,
                 "inception_weights": INCEPTION_WEIGHTS},
        # paper: StackedMNIST at 32x32, 10 Mimg, batch 512, lr 2e-4, gamma 1 -> 0.1 (documented, never run here).
        "paper": {"preset": "stackedmnist", "batch": 512, "total_images": 10_000_000, "seeds": [0, 1, 2],
                  "evaluations": 10, "num_samples": 26_000, "max_items": None, "eval": {}, "threads": None,
                  "inception_weights": INCEPTION_WEIGHTS},
    },
    "config_a": {"title": "Config A: StyleGAN2", **ROADMAP},
    "config_b": {"title": "Config B: StyleGAN2 stripped bare", **ROADMAP},
    "config_c": {"title": "Config C: a well-behaved loss", **ROADMAP},
    "config_d": {"title": "Config D: ResNet-ify", **ROADMAP},
    "config_e": {"title": "Config E: ResNeXt-ify and the inverted bottleneck", **ROADMAP},
    # The roadmap chapter trains nothing: it gathers the five config chapters' results.
    "roadmap": {"title": "The roadmap in one table (Table 2)", **ROADMAP},
    "biggan": {
        "title": "BigGAN's lessons: truncation, spectra, orthogonal regularisation",
        # Runs: RpGAN + R1 + R2 (the recipe), the same + orthogonal regularisation (ortho_beta), RpGAN + R1 only,
        # and R1 + R2 at each constant gamma in `gammas`; spectra of every weight every `spectral_every` images.
        # thresholds: the truncation sweep (plus no truncation); grid_count: samples per threshold in the grids.
        # smoke: 512 images per run, one thread (the chapter in about 40 s on 2 idle cores);
        # its numbers only show that every code path runs.
        "smoke": {"preset": "stacked8", "batch": 32, "total_images": 512, "seeds": [0], "evaluations": 2,
                  "num_samples": 1_000, "max_items": 5_000, "eval": SMOKE_EVAL, "threads": 1,
                  "spectral_every": 64, "spectral_iters": 10, "thresholds": [0.5, 1.0, 1.5],
                  "ortho_beta": 1e-4, "gammas": [0.1, 1.0, 10.0], "grid_count": 16},
        # cpu: the findings tier on 2 cores: 7 variants (the recipe, + ortho, R1 only, 3 constant gammas, BigGAN's R1
        # at gamma 10) x 3 seeds
        # of 64k images (the roadmap's length), two one-thread runs side by side; the truncation sweep re-samples
        # the stored generators of the recipe and the ortho runs (3 thresholds + none, every seed).
        "cpu": {"preset": "stacked8", "batch": 64, "total_images": 64_000, "seeds": [0, 1, 2], "evaluations": 2,
                "num_samples": 10_000, "max_items": 50_000, "eval": {}, "threads": 1, "workers": 2, "blowup": BLOWUP,
                "spectral_every": 4_000, "spectral_iters": 10, "thresholds": [0.5, 1.0, 1.5],
                "ortho_beta": 1e-4, "gammas": [0.1, 1.0, 10.0], "grid_count": 16},
        # gpu: one GPU, 9 runs of 300k images (the recipe, + ortho, R1 only, 5 constant gammas, BigGAN's R1) plus 18
        # run evaluations of 10k samples: projected 8 min of training and evaluation on one H200
        # (benchmarks/profile_cost.py, 2026-11-26), before the 14 truncation points (not probed). One seed: its
        # comparisons read "not separated" until the profile has three.
        "gpu": {"preset": "stacked16", "batch": 256, "total_images": 300_000, "seeds": [0], "evaluations": 2,
                 "num_samples": 10_000, "max_items": 50_000, "eval": {}, "threads": None,
                 "spectral_every": 10_000, "spectral_iters": 20, "thresholds": [0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
                 "ortho_beta": 1e-4, "gammas": [0.01, 0.1, 1.0, 10.0, 100.0], "grid_count": 16,
                 "inception_weights": INCEPTION_WEIGHTS},
    },
    "lazy_penalties": {
        "title": "What R1 + R2 cost, and what lazy regularisation gives back",
        # intervals: the stacked-digits runs of Config E's recipe (plus lazy R1 alone at the largest, and no
        # penalty); toy: the 2D mixtures at each of its intervals; dirac: the period map's stability over h and k
        # (penalty, gamma), with simulations checked at the largest stable interval and one beyond, for each check_h;
        # explorable: the h and k its controls offer (a subset of dirac's grid) and the periods it simulates.
        "smoke": {"preset": "stacked8", "batch": 32, "total_images": 512, "seeds": [0], "evaluations": 2,
                  "num_samples": 1_000, "max_items": 5_000, "eval": SMOKE_EVAL, "threads": 1, "intervals": [1, 4, 16],
                  "toy": {"steps": 100, "batch": 128, "samples": 2500, "datasets": ["ring"], "seeds": [0],
                          "gamma": 0.1, "lr": 3e-3, "lr_final": 1e-5, "log_every": 5, "intervals": [1, 4, 16]},
                  "dirac": {"penalty": "r1+r2", "gamma": 1.0, "hs": [0.01, 0.03, 0.1, 0.3], "ks": [1, 2, 4, 8, 16],
                            "check_hs": [0.2]},
                  "explorable": {"hs": [0.03, 0.3], "ks": [1, 4, 16], "periods": 10}},
        # cpu: 15 stacked-digits runs of 64k images (5 variants x 3 seeds), two one-thread runs side by side, the
        # roadmap's length and evaluation; 30 toy runs of 2,000 steps (about 3.5 min on one core).
        "cpu": {"preset": "stacked8", "batch": 64, "total_images": 64_000, "seeds": [0, 1, 2], "evaluations": 4,
                "num_samples": 10_000, "max_items": 50_000, "eval": {}, "threads": 1, "workers": 2, "blowup": BLOWUP,
                "intervals": [1, 4, 16],
                "toy": {"steps": 2000, "batch": 256, "samples": 2500, "datasets": ["ring", "grid"], "seeds": [0, 1, 2],
                        "gamma": 0.1, "lr": 3e-3, "lr_final": 1e-5, "log_every": 10, "intervals": [1, 2, 4, 8, 16]},
                "dirac": {"penalty": "r1+r2", "gamma": 1.0, "hs": LAZY_DIRAC_HS,
                          "ks": list(range(1, 65)), "check_hs": [0.01, 0.1, 0.2]},
                "explorable": {"hs": LAZY_DIRAC_HS[::4], "ks": [1, 2, 4, 8, 16, 32, 64], "periods": 30}},
        # gpu: one GPU, stacked16, 1 M images per run, 2 seeds (an estimate until a GPU run measures it).
        "gpu": {"preset": "stacked16", "batch": 256, "total_images": 1_000_000, "seeds": [0, 1], "evaluations": 4,
                "num_samples": 26_000, "max_items": 50_000, "eval": {}, "threads": None, "intervals": [1, 4, 16],
                "inception_weights": INCEPTION_WEIGHTS,
                "toy": {"steps": 2000, "batch": 256, "samples": 2500, "datasets": ["ring", "grid"], "seeds": [0, 1, 2],
                        "gamma": 0.1, "lr": 3e-3, "lr_final": 1e-5, "log_every": 10, "intervals": [1, 2, 4, 8, 16]},
                "dirac": {"penalty": "r1+r2", "gamma": 1.0, "hs": LAZY_DIRAC_HS,
                          "ks": list(range(1, 65)), "check_hs": [0.01, 0.1, 0.2]},
                "explorable": {"hs": LAZY_DIRAC_HS[::4], "ks": [1, 2, 4, 8, 16, 32, 64], "periods": 30}},
    },
}


def chapter_names() -> tuple[str, ...]:
    return tuple(CHAPTERS)


def chapter_profiles(chapter: str) -> tuple[str, ...]:
    require_choice("chapter", chapter, CHAPTERS)
    return tuple(p for p in PROFILES if p in CHAPTERS[chapter])


def chapter_settings(chapter: str, profile: str) -> dict[str, Any]:
    """A copy of the settings of `chapter` under `profile`; ValueError names the valid choices."""
    require_choice("chapter", chapter, CHAPTERS)
    require_choice("profile", profile, PROFILES)
    require_choice(f"profile for chapter {chapter!r}", profile, chapter_profiles(chapter))
    return copy.deepcopy(CHAPTERS[chapter][profile])


def book_profile(chapter: str) -> str:
    """The profile the book build executes for `chapter` (BOOK_PROFILE where the chapter defines it, else smoke)."""
    return BOOK_PROFILE if BOOK_PROFILE in chapter_profiles(chapter) else "smoke"
