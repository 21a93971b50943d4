"""Metrics for generated digits and for features in general.

  classifier        the digit classifier (scikit-learn digits, deterministic, cached) behind the digit metrics
  modes             mode coverage and reverse KL (VEEGAN / PacGAN protocol, StackedMNIST's 1000 modes)
  frechet           Frechet distance between Gaussian fits (FID's formula; FD-digits in the classifier's space)
  kid               kernel distance: unbiased MMD^2 with the cubic polynomial kernel (KID's formula)
  precision_recall  improved precision / recall with k-NN balls (Kynkaanniemi et al. 2019)
  evaluate          fd_digits, evaluate_images (all of the above at once), and the optional Inception metrics
                    (inception_metrics: FID / KID / P-R through torch-fidelity from a local weights file)
"""

from .classifier import ClassifierConfig, DigitClassifier, digit_classifier, train_digit_classifier
from .evaluate import (InceptionUnavailable, evaluate_images, fd_digits, find_inception_weights, inception_metrics,
                       inception_ready)
from .frechet import feature_statistics, frechet_distance, frechet_distance_features
from .kid import kernel_distance, mmd2_unbiased, polynomial_kernel
from .modes import (DEFAULT_CONFIDENCE, VEEGAN_NUM_SAMPLES, count_modes, coverage_from_probs, mode_counts,
                    mode_coverage, reverse_kl_to_uniform)
from .precision_recall import precision_recall

__all__ = [
    "ClassifierConfig", "DigitClassifier", "digit_classifier", "train_digit_classifier",
    "InceptionUnavailable", "evaluate_images", "fd_digits", "find_inception_weights", "inception_metrics",
    "inception_ready",
    "feature_statistics", "frechet_distance", "frechet_distance_features",
    "kernel_distance", "mmd2_unbiased", "polynomial_kernel",
    "DEFAULT_CONFIDENCE", "VEEGAN_NUM_SAMPLES", "count_modes", "coverage_from_probs", "mode_counts",
    "mode_coverage", "reverse_kl_to_uniform", "precision_recall",
]
