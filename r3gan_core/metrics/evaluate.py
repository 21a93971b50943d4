"""One call that scores generated digits against real ones, and the optional Inception metrics.

Every distance in evaluate_images lives in the digit classifier's feature space and is labelled "-digits"
(FD-digits, KID-digits): PAPER_FACTS Sec. 7 accepts a domain classifier's Frechet distance as the offline stand-in
for FID, provided it is never called FID. The paper's own numbers (FID, KID, precision / recall in Inception-v3
space) come from `inception_metrics`, or from evaluate_images(..., inception_weights=PATH) beside the digit ones:
they need torch-fidelity and its Inception-v3 weights file (weights-inception-2015-12-05-6726825d.pth) on disk, and
this library never downloads it. Where either is missing, evaluate_images keeps the digit metrics and says why on
stderr; inception_metrics raises InceptionUnavailable, whose message names the file and where to put it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import torch
from torch import Tensor

from .classifier import DigitClassifier, digit_classifier
from .frechet import as_feature_matrix, feature_statistics, frechet_distance, frechet_distance_features
from .kid import KID_SUBSET_SIZE, KID_SUBSETS, kernel_distance, subset_indices, within_first_set
from .modes import DEFAULT_CONFIDENCE, VEEGAN_NUM_SAMPLES, coverage_from_probs
from .precision_recall import PR_NEIGHBOURS, knn_radii, precision_recall

FEATURE_SPACE = ("penultimate layer of r3gan_core's digit classifier (per channel, concatenated): "
                 "FD-digits, not comparable to Inception FID")
PR_SAMPLES = 5_000  # per set; k-NN balls cost O(n^2)
INCEPTION_WEIGHTS_NAME = "pt_inception-2015-12-05"  # torch-fidelity's name for the TF-compatible Inception-v3
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # its weights file, as torch-fidelity names it
INCEPTION_WEIGHTS_GLOB = "weights-inception-2015-12-05-*.pth"  # what torch hub's checkpoints folder is searched for
INCEPTION_SEARCH = "auto"  # as a weights path: search $R3GAN_INCEPTION_WEIGHTS, then torch hub's checkpoints folder
INCEPTION_LAYER = "2048"  # torch-fidelity's name of the pool3 features that FID, KID and P/R use
INCEPTION_FEATURE_SPACE = (f"Inception-v3 pool3, 2048-d (torch-fidelity's inception-v3-compat extractor, "
                           f"{INCEPTION_WEIGHTS_NAME} weights)")
INCEPTION_KEYS = ("fid", "kid", "kid_std", "precision", "recall")  # the Inception numbers in a result


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


@dataclass
class RealReference:
    """The real half of evaluate_images, computed once (`real_reference`) for every evaluation against the same real
    images: a run's evaluations, or the re-derivation of many stored runs. evaluate_images(reference, fake, ...)
    gives exactly the numbers evaluate_images(real, fake, ...) gives with the same settings."""

    stacked: bool
    num_samples: int | None
    seed: int
    pr_samples: int
    classifier: DigitClassifier
    images: Tensor  # the scored real rows (random_rows(real, num_samples, seed))
    probs: Tensor  # their class probabilities per channel [N, C, 10]
    features: Tensor  # their features [N, C * feature_dim]
    statistics: tuple[np.ndarray, np.ndarray]  # mean and covariance of `features` (FD-digits)
    pr_features: Tensor  # float64 rows of precision / recall (random_rows(features, pr_samples, seed))
    pr_radii: Tensor  # their k-NN radii (k = PR_NEIGHBOURS)
    kid_within: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict)  # (n_fake, subsets, size) ->

    def kid_within_real(self, num_fake: int, num_subsets: int, subset_size: int) -> np.ndarray:
        """The real subsets' within-set kernel means for a fake set of `num_fake` rows (computed once per shape)."""
        key = (num_fake, num_subsets, subset_size)
        if key not in self.kid_within:
            subsets = subset_indices(len(self.features), num_fake, num_subsets, subset_size, self.seed)
            self.kid_within[key] = within_first_set(self.features, subsets)
        return self.kid_within[key]


def real_reference(real: Any, stacked: bool, num_samples: int | None = VEEGAN_NUM_SAMPLES, *,
                   pr_samples: int = PR_SAMPLES, classifier: DigitClassifier | None = None,
                   seed: int = 0) -> RealReference:
    """What evaluate_images computes from the real images alone (rows, classifier outputs, Gaussian fit, k-NN radii),
    for passing to evaluate_images in their place. The settings must match the evaluate_images calls it serves."""
    real_x = _checked_images(real, "real", stacked)
    classifier = classifier or digit_classifier()
    real_x = random_rows(real_x, num_samples, seed)
    probs, features = classifier.channel_outputs(real_x)
    pr_features = torch.from_numpy(as_feature_matrix(random_rows(features, pr_samples, seed), "real features"))
    return RealReference(stacked=stacked, num_samples=num_samples, seed=seed, pr_samples=pr_samples,
                         classifier=classifier, images=real_x, probs=probs, features=features,
                         statistics=feature_statistics(features), pr_features=pr_features,
                         pr_radii=knn_radii(pr_features, PR_NEIGHBOURS))


def _checked_images(images: Any, what: str, stacked: bool) -> Tensor:
    x = as_images(images, what)
    channels = 3 if stacked else 1
    if x.shape[1] != channels:
        raise ValueError(f"{what} images have {x.shape[1]} channels; stacked={stacked} needs {channels} "
                         "(3 = stacked digits, 1000 modes; 1 = single digits, 10 modes)")
    return x


def _matching_reference(reference: RealReference, stacked: bool, num_samples: int | None, seed: int,
                        pr_samples: int, classifier: DigitClassifier | None) -> RealReference:
    """`reference` if it was made with these settings; ValueError naming each one that differs."""
    wanted = {"stacked": stacked, "num_samples": num_samples, "seed": seed, "pr_samples": pr_samples}
    differ = [f"{k}={getattr(reference, k)!r} (this call: {v!r})" for k, v in wanted.items()
              if getattr(reference, k) != v]
    if classifier is not None and classifier is not reference.classifier:
        differ.append("classifier (this call passes another one)")
    if differ:
        raise ValueError("the RealReference was made with other settings than this evaluation: " + ", ".join(differ)
                         + "; make it with real_reference(..., the same settings)")
    return reference


def evaluate_images(real: Any, fake: Any, stacked: bool, num_samples: int | None = VEEGAN_NUM_SAMPLES, *,
                    pr_samples: int = PR_SAMPLES, kid_subsets: int = KID_SUBSETS,
                    kid_subset_size: int = KID_SUBSET_SIZE, threshold: float = DEFAULT_CONFIDENCE,
                    classifier: DigitClassifier | None = None, seed: int = 0,
                    inception_weights: str | os.PathLike | None = None,
                    inception_device: str | None = None) -> dict[str, Any]:
    """FD-digits, KID-digits, precision / recall (k = 3), and modes / reverse KL of `fake` against `real`.

    real, fake:   images N x C x H x W in [-1, 1] (tensors, arrays or ImageDatasets); C = 3 when stacked
                  (1000 modes), C = 1 otherwise (10 modes). `real` may instead be a RealReference
                  (real_reference, made with the same stacked / num_samples / seed / pr_samples): the same numbers,
                  without recomputing the real half.
    num_samples:  at most this many of each set are used (a seeded random subset; None = all). The mode
                  protocol uses 26,000 generated samples (VEEGAN / PacGAN).
    pr_samples:   at most this many of each for precision / recall.
    threshold:    the confidence level of the second, noise-robust mode count (`modes_confident`); the
                  plain count (`modes`, `reverse_kl`) follows the paper's protocol and counts every sample.
    inception_weights:  None (default) = digit metrics only. A path to torch-fidelity's Inception-v3 weights file
                  (weights-inception-2015-12-05-6726825d.pth), or "auto" to search $R3GAN_INCEPTION_WEIGHTS and
                  torch hub's checkpoints folder, adds `fid`, `kid`, `kid_std`, `precision`, `recall` in
                  Inception-v3 space (inception_metrics) on the same samples, same KID and P/R settings and seeds.
                  When the file or torch-fidelity is missing, the digit metrics are returned alone, with a note on
                  stderr and the reason under `inception_skipped`; nothing is downloaded.
    inception_device:   where Inception-v3 runs (None = CUDA when there is one).
    """
    if isinstance(real, RealReference):
        ref = _matching_reference(real, stacked, num_samples, seed, pr_samples, classifier)
    else:
        ref = real_reference(real, stacked, num_samples, pr_samples=pr_samples, classifier=classifier, seed=seed)
    classifier, real_x, real_p, real_f = ref.classifier, ref.images, ref.probs, ref.features
    fake_x = random_rows(_checked_images(fake, "fake", stacked), num_samples, seed + 1)
    fake_p, fake_f = classifier.channel_outputs(fake_x)
    kid_mean, kid_std = kernel_distance(real_f, fake_f, kid_subsets, kid_subset_size, seed,
                                        within1=ref.kid_within_real(len(fake_f), kid_subsets, kid_subset_size))
    pr = precision_recall(ref.pr_features, random_rows(fake_f, pr_samples, seed + 1), PR_NEIGHBOURS,
                          real_radii=ref.pr_radii)
    plain, _ = coverage_from_probs(fake_p)
    confident, _ = coverage_from_probs(fake_p, threshold)
    real_plain, _ = coverage_from_probs(real_p)
    real_confident, _ = coverage_from_probs(real_p, threshold)
    result = {
        "fd_digits": frechet_distance(*ref.statistics, *feature_statistics(fake_f)),
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
    if inception_weights is not None:
        try:
            path = inception_ready(inception_weights)
        except InceptionUnavailable as err:
            print(f"r3gan_core: Inception metrics skipped; falling back to the digit-feature metrics alone "
                  f"(FD-digits, KID-digits, precision / recall on digit features). {err}", file=sys.stderr)
            result["inception_skipped"] = str(err)
        else:
            result.update(inception_metrics(real_x, fake_x, weights_path=path, kid_subsets=kid_subsets,
                                            kid_subset_size=kid_subset_size, pr_samples=pr_samples, seed=seed,
                                            device=inception_device))
    return result


# ----------------------------------------------------------------------------------------------------------
# Inception metrics (optional; nothing is downloaded)
#
# The paper's FID / KID / precision-recall live in Inception-v3's pool3 space. They come from torch-fidelity
# (`pip install 'r3gan-core[inception]'`) and its Inception-v3 weights, a file the user keeps on disk:
#   inception_ready      where the weights file is, and whether torch-fidelity imports (InceptionUnavailable if not)
#   inception_features   images -> 2048-d pool3 features through torch-fidelity's feature extractor, built from the
#                        local file (the one step that needs the weights; tests replace it)
#   inception_scores     features -> FID, KID, precision / recall with torch-fidelity's own metric functions
#   inception_metrics    the three in a row


class InceptionUnavailable(RuntimeError):
    """Inception metrics cannot run here: torch-fidelity or its weights file is missing (nothing is downloaded)."""


def inception_weights_folder() -> Path:
    """torch hub's checkpoints folder (torch.hub.get_dir()/checkpoints, under $TORCH_HOME), searched for the file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _weights_help(problem: str) -> str:
    """`problem`, then which file Inception metrics need and the places it can go."""
    return (f"{problem}. Inception metrics (FID, KID, precision / recall in Inception-v3 space) need torch-fidelity's "
            f"Inception-v3 weights '{INCEPTION_WEIGHTS_NAME}', the file {INCEPTION_WEIGHTS_FILE}, on disk; r3gan_core "
            "never downloads it. Give its path (r3gan evaluate --inception-weights PATH; weights_path= or "
            "inception_weights= in Python; or $R3GAN_INCEPTION_WEIGHTS), or put it in "
            f"{inception_weights_folder()}/ (torch hub's checkpoints folder, searched when no path is given)")


def find_inception_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """The Inception-v3 weights file torch-fidelity uses, found locally; InceptionUnavailable if there is none.

    weights_path None or "auto" (INCEPTION_SEARCH) searches: $R3GAN_INCEPTION_WEIGHTS, then torch hub's checkpoints
    folder (torch.hub.get_dir()/checkpoints/weights-inception-2015-12-05-*.pth, where torch-fidelity caches it).
    A path that is given, there or in the variable, must be a file: it is never replaced by one found elsewhere.
    """
    given = None if weights_path is None or str(weights_path) in ("", INCEPTION_SEARCH) else weights_path
    for what, candidate in (("Inception weights file", given),
                            ("$R3GAN_INCEPTION_WEIGHTS", os.environ.get("R3GAN_INCEPTION_WEIGHTS"))):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise InceptionUnavailable(_weights_help(f"{what} not found: {path} is not a file"))
            return path
    folder = inception_weights_folder()
    found = sorted(glob.glob(str(folder / INCEPTION_WEIGHTS_GLOB)))
    if found:
        return Path(found[0])
    raise InceptionUnavailable(_weights_help(f"No Inception weights file was given, and {folder}/ has none"))


def _import_torch_fidelity():
    """The torch_fidelity module; InceptionUnavailable naming the install command when it is absent or broken."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise InceptionUnavailable(
            "Inception metrics need torch-fidelity, which is not installed: pip install 'r3gan-core[inception]' "
            f"(it needs torchvision built for the installed torch {torch.__version__}; install torch-fidelity with "
            "--no-deps if pip would replace torch). For digit datasets, fd_digits / evaluate_images need neither")
    try:
        import torch_fidelity
    except Exception as err:  # torch-fidelity imports torchvision at import time
        raise InceptionUnavailable(
            f"torch-fidelity is installed but could not be imported ({type(err).__name__}: {err}); it imports "
            f"torchvision, which must be installed and built for the installed torch {torch.__version__} "
            "(pip install 'r3gan-core[inception]' installs both)") from err
    return torch_fidelity


def inception_ready(weights_path: str | os.PathLike | None = None) -> Path:
    """The weights file, once both it and an importable torch-fidelity are there; otherwise InceptionUnavailable
    saying everything that is missing (the file and where to put it, the install command). Cheap: no network."""
    problems, path = [], None
    try:
        path = find_inception_weights(weights_path)
    except InceptionUnavailable as err:
        problems.append(str(err))
    try:
        _import_torch_fidelity()
    except InceptionUnavailable as err:
        problems.append(str(err))
    if problems:
        raise InceptionUnavailable(". ".join(problems) + ".")
    return path


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


def inception_features(image_sets: list[Tensor], weights_path: str | os.PathLike, *, device: str = "cpu",
                       batch_size: int = 64) -> list[Tensor]:
    """2048-d Inception-v3 pool3 features (float32, CPU) of each image set ([-1, 1], N x C x H x W).

    torch-fidelity's own extractor ('inception-v3-compat': TensorFlow-compatible resizing to 299 x 299 and
    weights), built once from the local file through its `feature_extractor_weights_path` argument, the same
    argument torch_fidelity.calculate_metrics forwards to it. With a path it loads that file and never calls
    torch.hub's download; r3gan_core always gives one (find_inception_weights).
    """
    torch_fidelity = _import_torch_fidelity()
    extractor = torch_fidelity.FeatureExtractorInceptionV3(
        "inception-v3-compat", [INCEPTION_LAYER], feature_extractor_weights_path=str(weights_path))
    extractor = extractor.to(device).eval()
    out = []
    with torch.no_grad():
        for images in image_sets:
            x = as_images(images, "images")
            batches = [extractor(_uint8_rgb(x[s:s + batch_size]).to(device))[0].float().cpu()
                       for s in range(0, len(x), batch_size)]
            out.append(torch.cat(batches))
    return out


def inception_scores(real_features: Tensor, fake_features: Tensor, *, kid_subsets: int = KID_SUBSETS,
                     kid_subset_size: int = KID_SUBSET_SIZE, pr_samples: int | None = PR_SAMPLES,
                     seed: int = 0) -> dict[str, Any]:
    """FID, KID (mean, std) and precision / recall from Inception features, by torch-fidelity's own functions.

    The arithmetic is torch-fidelity's (metric_fid, metric_kid, metric_prc, as its calculate_metrics runs them
    with input1 = fake, input2 = real and rng_seed = seed), so the numbers are the ones it reports for these
    features. KID: `kid_subsets` subsets of min(kid_subset_size, n_real, n_fake) rows. Precision / recall
    (k = 3) on at most `pr_samples` rows of each (the same seeded rows evaluate_images uses), by torch-fidelity's
    `prc` where it has one (>= 0.4), else by r3gan_core.metrics.precision_recall on the same features; `pr_source`
    says which.
    """
    torch_fidelity = _import_torch_fidelity()
    from torch_fidelity import metric_fid, metric_kid

    real = torch.as_tensor(real_features).detach().to("cpu", torch.float32)
    fake = torch.as_tensor(fake_features).detach().to("cpu", torch.float32)
    fid = metric_fid.fid_statistics_to_metric(metric_fid.fid_features_to_statistics(fake),
                                              metric_fid.fid_features_to_statistics(real), False)
    kid = metric_kid.kid_features_to_metric(fake, real, kid_subsets=kid_subsets,
                                            kid_subset_size=min(kid_subset_size, len(real), len(fake)),
                                            rng_seed=seed, verbose=False)
    real_pr, fake_pr = random_rows(real, pr_samples, seed), random_rows(fake, pr_samples, seed + 1)
    try:
        from torch_fidelity import metric_prc
    except ImportError:  # torch-fidelity 0.3 has no precision / recall
        pr = precision_recall(real_pr, fake_pr, PR_NEIGHBOURS)
        pr_source = (f"r3gan_core.metrics.precision_recall, k = {PR_NEIGHBOURS} (torch-fidelity "
                     f"{torch_fidelity.__version__} has no prc)")
    else:
        pr = metric_prc.prc_features_to_metric(fake_pr, real_pr, prc_neighborhood=PR_NEIGHBOURS,
                                               save_cpu_ram=True, verbose=False)
        pr_source = f"torch-fidelity {torch_fidelity.__version__} prc, k = {PR_NEIGHBOURS}"
    return {"fid": float(fid[metric_fid.KEY_METRIC_FID]),
            "kid": float(kid[metric_kid.KEY_METRIC_KID_MEAN]),
            "kid_std": float(kid[metric_kid.KEY_METRIC_KID_STD]),
            "precision": float(pr["precision"]),
            "recall": float(pr["recall"]),
            "inception_pr_source": pr_source,
            "inception_pr_samples": min(len(real_pr), len(fake_pr))}


def inception_metrics(real: Any, fake: Any, *, weights_path: str | os.PathLike | None = None,
                      kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
                      pr_samples: int | None = PR_SAMPLES, seed: int = 0, device: str | None = None,
                      batch_size: int = 64) -> dict[str, Any]:
    """FID, KID and precision / recall of `fake` against `real` in Inception-v3 space (the paper's metrics).

    real, fake:    images N x C x H x W in [-1, 1] (tensors, arrays or ImageDatasets), C = 1 or 3; all are used.
    weights_path:  torch-fidelity's weights file weights-inception-2015-12-05-6726825d.pth; None or "auto"
                   searches $R3GAN_INCEPTION_WEIGHTS and torch hub's checkpoints folder (find_inception_weights).
    device:        where Inception-v3 runs (None = CUDA when there is one); seed: KID subsets and P/R rows.

    Features come from torch-fidelity's extractor loaded from the local file (inception_features), the metrics
    from torch-fidelity's functions (inception_scores). InceptionUnavailable (a RuntimeError) says what is missing
    (the file and where to put it, or the install command) when torch-fidelity or the weights are not there:
    never a download.
    """
    path = inception_ready(weights_path)
    real_x, fake_x = as_images(real, "real"), as_images(fake, "fake")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    real_f, fake_f = inception_features([real_x, fake_x], path, device=device, batch_size=batch_size)
    scores = inception_scores(real_f, fake_f, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                              pr_samples=pr_samples, seed=seed)
    return {**scores, "num_real": len(real_x), "num_fake": len(fake_x),
            "inception_feature_space": INCEPTION_FEATURE_SPACE, "inception_weights": str(path)}
