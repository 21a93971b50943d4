"""The paper's published numbers, the ones the chapters put beside ours (PAPER_FACTS Sec. 3-5).

These are citations of the paper, never measurements of this project; tables label them "paper".
"""

from __future__ import annotations

# Table 1: StackedMNIST, the same small ResNet without normalisation. None = the run failed (diverged).
TABLE1_MODE_COVERAGE: dict[str, dict[str, float | None]] = {
    "GAN + R1": {"modes": None, "reverse_kl": None},
    "RpGAN + R1": {"modes": None, "reverse_kl": None},
    "GAN + R1 + R2": {"modes": 693, "reverse_kl": 0.9270},
    "RpGAN + R1 + R2": {"modes": 1000, "reverse_kl": 0.0781},
}

# Table 1's variants as (loss, penalty) for r3gan_core.losses.
TABLE1_VARIANTS: dict[str, tuple[str, str]] = {
    "GAN + R1": ("gan", "r1"),
    "RpGAN + R1": ("rpgan", "r1"),
    "GAN + R1 + R2": ("gan", "r1+r2"),
    "RpGAN + R1 + R2": ("rpgan", "r1+r2"),
}

# Table 2: FFHQ-256, 5 M real images seen by D per config; parameters in millions.
TABLE2_ROADMAP: dict[str, dict[str, float | str]] = {
    "A": {"what": "StyleGAN2 (official)", "fid": 7.516, "g_params_m": 24.767, "d_params_m": 24.001},
    "B": {"what": "strip all StyleGAN2 features", "fid": 12.46, "g_params_m": 18.890, "d_params_m": 23.996},
    "C": {"what": "+ RpGAN, + R2 (well-behaved loss)", "fid": 11.65, "g_params_m": 18.890, "d_params_m": 23.996},
    "D": {"what": "ResNet-ify (1-3-1 bottleneck)", "fid": 9.95, "g_params_m": 23.400, "d_params_m": 23.282},
    "E": {"what": "ResNeXt-ify + inverted bottleneck", "fid": 7.045, "g_params_m": 23.058, "d_params_m": 23.010},
}

# Table 3: StackedMNIST results of Config E and the baselines (modes / 1000, reverse KL).
TABLE3_STACKEDMNIST: dict[str, dict[str, float]] = {
    "R3GAN (Config E)": {"modes": 1000, "reverse_kl": 0.029},
    "StyleGAN2": {"modes": 940, "reverse_kl": 0.42},
    "DCGAN": {"modes": 99, "reverse_kl": 3.40},
    "PacGAN": {"modes": 992, "reverse_kl": 0.28},
    "PresGAN": {"modes": 1000, "reverse_kl": 0.12},
    "DDGAN": {"modes": 1000, "reverse_kl": 0.071},
}
