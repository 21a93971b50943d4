"""The one profiles table: every chapter's `smoke`, `full` and (where it applies) `paper` settings.

* smoke: CPU, CI, fast. Its numbers only show that the code paths run; chapters never present them as findings.
* full:  one GPU, minutes (for the convergence chapters a CPU is enough, and the book shows this profile).
* paper: the paper's schedule for the preset, documented as commands; never run in CI.

Chapters read their settings with `chapter_settings(chapter, profile)`; `ci/run_chapters.py` reads
`CHAPTERS` for the order and `book_profile` for which profile the book build executes.
"""

from __future__ import annotations

import copy
from typing import Any

from .choices import require_choice

PROFILES = ("smoke", "full", "paper")

# Order of the book. `book` says which profile the book build executes on a machine without a GPU:
# "full" for chapters cheap enough for a CPU, "smoke" for the rest (their published full results, when
# stored under results/<chapter>/, are shown beside).
CHAPTERS: dict[str, dict[str, Any]] = {
    "dirac_gan": {
        "title": "Dirac-GAN: why GANs cycle and how R1/R2 damp them",
        "book": "full",
        "smoke": {"steps": 200, "grid": 9, "gamma_points": 31},
        "full": {"steps": 500, "grid": 17, "gamma_points": 121},
    },
    "toy_2d": {
        "title": "2D toys: GAN and RpGAN with R1, R2 on mixtures",
        "book": "full",
        "smoke": {"steps": 150, "batch": 128, "samples": 2500, "datasets": ["ring"], "seeds": [0]},
        "full": {"steps": 2000, "batch": 256, "samples": 2500, "datasets": ["ring", "grid"], "seeds": [0]},
    },
    "anatomy": {
        "title": "Anatomy of the roadmap: configs A-E",
        "book": "full",
        "smoke": {"preset": "digits16"},
        "full": {"preset": "digits16"},
    },
    "mode_coverage": {
        "title": "Mode coverage on stacked digits (Table 1)",
        "book": "gpu",
    },
    "config_a": {"title": "Config A: StyleGAN2", "book": "gpu"},
    "config_b": {"title": "Config B: StyleGAN2 stripped bare", "book": "gpu"},
    "config_c": {"title": "Config C: a well-behaved loss", "book": "gpu"},
    "config_d": {"title": "Config D: ResNet-ify", "book": "gpu"},
    "config_e": {"title": "Config E: ResNeXt-ify and the inverted bottleneck", "book": "gpu"},
    "roadmap": {"title": "The roadmap in one table (Table 2)", "book": "gpu"},
    "biggan": {"title": "BigGAN's lessons: truncation, spectra, orthogonal regularisation", "book": "gpu"},
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


def book_profile(chapter: str, have_gpu: bool) -> str:
    """The profile the book build executes for `chapter`: 'full' where it is CPU-cheap or a GPU is present."""
    require_choice("chapter", chapter, CHAPTERS)
    mode = CHAPTERS[chapter]["book"]
    if mode == "full" or (mode == "gpu" and have_gpu):
        return "full"
    return "smoke"
