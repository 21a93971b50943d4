"""r3gan_core: a small PyTorch library that reproduces R3GAN (Huang et al., NeurIPS 2024).

Three layers, one folder each where they have more than one module:

The library (what a researcher imports)
  losses        GAN / RpGAN losses, the zero-centred penalties R1, R2 (paper Sec. 2), the divergence rule
  networks/     generators and discriminators of roadmap configurations A-E (Sec. 3, Table 2)
  training/     the loop (training.train), one iteration's phases (training.steps), recipes and schedules,
                EMA, checkpoints, distributed helpers, the files a run writes
  data          datasets selected by one spec string; nothing is downloaded
  metrics/      digit classifier, mode coverage, Frechet distance, KID, precision/recall, Inception wiring
  sampling      seeded latents, images from a generator, image grids
  biggan        truncation, spectral norms, orthogonal regularisation (BigGAN's tricks)
  report, choices   provenance and atomic writing; argument checks with clear messages
  cli           `r3gan train / sample / evaluate`
The convergence toys
  convergence/  dirac (Dirac-GAN, Sec. 2.2, App. B-C) and toy (2D mixtures, small MLPs)
The book layer (used by the chapters and ci/run_chapters.py only; nothing outside it imports it)
  book/         chapter, profiles, experiments, comparisons, biggan_study, plotting, paper
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = ("biggan", "book", "choices", "cli", "convergence", "data", "losses", "metrics", "networks", "report",
                "sampling", "training")


def __getattr__(name: str):
    """`r3gan_core.networks` and the other modules are reachable as attributes, imported on first use."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'r3gan_core' has no attribute {name!r}")
