"""One call that scores generated digits against real ones, and the optional Inception metrics.

Every distance here lives in the digit classifier's feature space and is labelled "-digits" (FD-digits,
KID-digits): PAPER_FACTS Sec. 7 accepts a domain classifier's Frechet distance as the offline stand-in for FID,
provided it is never called FID. True Inception metrics need torch-fidelity and its weights on disk; this
library never downloads them (`inception_metrics`).
"""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .classifier import DigitClassifier, digit_classifier
from .frechet import frechet_distance_features
from .kid import KID_SUBSET_SIZE, KID_SUBSETS, kernel_distance
from .modes import DEFAULT_CONFIDENCE, VEEGAN_NUM_SAMPLES, coverage_from_probs
from .precision_recall import PR_NEIGHBOURS, precision_recall

FEATURE_SPACE = ("penultimate layer of r3gan_core's digit classifier (per channel, concatenated): "
                 "FD-digits, not comparable to Inception FID")
PR_SAMPLES = 5_000  # per set; k-NN balls cost O(n^2)
INCEPTION_WEIGHTS_GLOB = "weights-inception-2015-12-05-*.pth"  # torch-fidelity's file name


def as_images(images: Any, what: str) -> Tensor:
    """A float32 CPU tensor N x C x H x W from a tensor, an array or anything with `.images` (ImageDataset)."""
    if hasattr(images, "images"):
        images = images.images
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"{what} must be images N x C x H x W, got shape {tuple(x.shape)}")
    return x


def random_rows(x: Tensor, count: int | None, seed: int) -> Tensor:
    """A seeded random subset of `count` rows (all rows, in order, when count is None or >= len(x))."""
    if count is None or count >= len(x):
        return x
    generator = torch.Generator().manual_seed(seed)
    return x[torch.randperm(len(x), generator=generator)[:count]]


def fd_digits(real_images: Any, fake_images: Any, classifier: DigitClassifier | None = None) -> float:
    """FD-digits: the Frechet distance between real and fake images in the digit classifier's feature space.

    Three-channel (stacked) images use each channel's features concatenated. Not an FID: never label it so.
    """
    classifier = classifier or digit_classifier()
    real = classifier.features(as_images(real_images, "real_images"))
    fake = classifier.features(as_images(fake_images, "fake_images"))
    return frechet_distance_features(real, fake)


def evaluate_images(real: Any, fake: Any, stacked: bool, num_samples: int | None = VEEGAN_NUM_SAMPLES, *,
                    pr_samples: int = PR_SAMPLES, kid_subsets: int = KID_SUBSETS,
                    kid_subset_size: int = KID_SUBSET_SIZE, threshold: float = DEFAULT_CONFIDENCE,
                    classifier: DigitClassifier | None = None, seed: int = 0) -> dict[str, Any]:
    """FD-digits, KID-digits, precision / recall (k = 3), and modes / reverse KL of `fake` against `real`.

    real, fake:   images N x C x H x W in [-1, 1] (tensors, arrays or ImageDatasets); C = 3 when stacked
                  (1000 modes), C = 1 otherwise (10 modes).
    num_samples:  at most this many of each set are used (a seeded random subset; None = all). The mode
                  protocol uses 26,000 generated samples (VEEGAN / PacGAN).
    pr_samples:   at most this many of each for precision / recall.
    threshold:    the confidence level of the second, noise-robust mode count (`modes_confident`); the
                  plain count (`modes`, `reverse_kl`) follows the paper's protocol and counts every sample.
    """
    real_x, fake_x = as_images(real, "real"), as_images(fake, "fake")
    channels = 3 if stacked else 1
    for what, x in (("real", real_x), ("fake", fake_x)):
        if x.shape[1] != channels:
            raise ValueError(f"{what} images have {x.shape[1]} channels; stacked={stacked} needs {channels} "
                             "(3 = stacked digits, 1000 modes; 1 = single digits, 10 modes)")
    classifier = classifier or digit_classifier()
    real_x, fake_x = random_rows(real_x, num_samples, seed), random_rows(fake_x, num_samples, seed + 1)
    (real_p, real_f), (fake_p, fake_f) = classifier.channel_outputs(real_x), classifier.channel_outputs(fake_x)
    kid_mean, kid_std = kernel_distance(real_f, fake_f, kid_subsets, kid_subset_size, seed)
    pr = precision_recall(random_rows(real_f, pr_samples, seed), random_rows(fake_f, pr_samples, seed + 1),
                          PR_NEIGHBOURS)
    plain, _ = coverage_from_probs(fake_p)
    confident, _ = coverage_from_probs(fake_p, threshold)
    real_plain, _ = coverage_from_probs(real_p)
    real_confident, _ = coverage_from_probs(real_p, threshold)
    return {
        "fd_digits": frechet_distance_features(real_f, fake_f),
        "kid_digits": kid_mean,
        "kid_digits_std": kid_std,
        "precision_digits": pr["precision"],
        "recall_digits": pr["recall"],
        "modes": plain["modes"],
        "num_modes": plain["num_modes"],
        "reverse_kl": plain["reverse_kl"],
        "mode_rule": plain["rule"],
        "modes_confident": confident["modes"],
        "reverse_kl_confident": confident["reverse_kl"],
        "mode_rule_confident": confident["rule"],
        "confidence_threshold": threshold,
        "confident_fraction": confident["confident_fraction"],
        "real_modes": real_plain["modes"],
        "real_reverse_kl": real_plain["reverse_kl"],
        "real_confident_fraction": real_confident["confident_fraction"],
        "num_real": len(real_x),
        "num_fake": len(fake_x),
        "num_pr_samples": min(pr_samples, len(real_x), len(fake_x)),
        "feature_space": FEATURE_SPACE,
        "classifier_accuracy": classifier.accuracy,
    }


# ----------------------------------------------------------------------------------------------------------
# Inception metrics (optional; nothing is downloaded)


def find_inception_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """The Inception-v3 weights file torch-fidelity uses, found locally; RuntimeError if there is none.

    Looked up in order: `weights_path`, $R3GAN_INCEPTION_WEIGHTS, then torch hub's checkpoints folder
    (torch.hub.get_dir()/checkpoints/weights-inception-2015-12-05-*.pth, where torch-fidelity caches it).
    """
    candidates = [weights_path, os.environ.get("R3GAN_INCEPTION_WEIGHTS")]
    for candidate in candidates:
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise RuntimeError(f"Inception weights file not found: {path}")
            return path
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(glob.glob(str(hub / INCEPTION_WEIGHTS_GLOB)))
    if found:
        return Path(found[0])
    raise RuntimeError(
        "Inception metrics need the Inception-v3 weights ('pt_inception-2015-12-05', file "
        f"{INCEPTION_WEIGHTS_GLOB}) on disk, and r3gan_core never downloads them. Looked in: weights_path, "
        f"$R3GAN_INCEPTION_WEIGHTS, {hub}. Copy the file there (or pass weights_path), or use fd_digits.")


def _uint8_rgb(images: Tensor) -> Tensor:
    """[-1, 1] float N x C x H x W -> uint8 N x 3 x H x W (grayscale replicated), as torch-fidelity expects."""
    x = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _Uint8Images(torch.utils.data.Dataset):
    """A minimal dataset of uint8 RGB images for torch_fidelity.calculate_metrics."""

    def __init__(self, images: Tensor) -> None:
        self.images = _uint8_rgb(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]


def inception_metrics(real: Any, fake: Any, *, weights_path: str | os.PathLike | None = None,
                      kid_subset_size: int = KID_SUBSET_SIZE) -> dict[str, float]:
    """FID and KID on Inception-v3 features through torch-fidelity, only when it is installed AND its weights
    are on disk; otherwise a RuntimeError that says which is missing (never a download)."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise RuntimeError("inception_metrics needs torch-fidelity, which is not installed "
                           "(pip install 'r3gan-core[inception]'), plus its Inception weights on disk; "
                           "r3gan_core never downloads them. For digit datasets use fd_digits / evaluate_images.")
    path = find_inception_weights(weights_path)
    import torch_fidelity

    real_x, fake_x = as_images(real, "real"), as_images(fake, "fake")
    result = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(fake_x), input2=_Uint8Images(real_x), fid=True, kid=True, isc=False, prc=False,
        kid_subset_size=min(kid_subset_size, len(real_x), len(fake_x)), feature_extractor_weights_path=str(path),
        cuda=torch.cuda.is_available(), cache=False, verbose=False)
    return {"fid": float(result["frechet_inception_distance"]),
            "kid": float(result["kernel_inception_distance_mean"]),
            "kid_std": float(result["kernel_inception_distance_std"]),
            "feature_space": "Inception-v3 pool3 (torch-fidelity, pt_inception-2015-12-05)"}

