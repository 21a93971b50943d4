"""r3gan_core: a small PyTorch library that reproduces R3GAN (Huang et al., NeurIPS 2024).

Modules (each has one job):
  losses      GAN / RpGAN losses and the zero-centred penalties R1, R2 (paper Sec. 2)
  dirac       Dirac-GAN and DiracRpGAN: vector fields, eigenvalues, simulation (Sec. 2.2, App. B-C)
  toy         2D mixtures, small MLPs, the toy trainer and VEEGAN/PacGAN metrics (Sec. 3, Table 1 spirit)
  networks    generators and discriminators of roadmap configurations A-E (Sec. 3, Table 2)
  data        datasets selected by one spec string; nothing is downloaded
  metrics     digit classifier, mode coverage, Frechet distance, KID, precision/recall
  train       the device-agnostic trainer (CPU, one GPU, torchrun)
  profiles    the smoke / cpu / gpu / paper settings of every chapter
  report      provenance (device, commit, wall time) and atomic JSON writing
  plotting    shared figure helpers (provenance footers, sample grids)
"""

__version__ = "0.1.0"
