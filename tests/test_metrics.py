"""r3gan_core.metrics: known answers for every formula, the classifier's accuracy and determinism, and the mode
protocol's sanity checks (real stacked digits cover ~1000 modes; one repeated image covers 1, KL = log 1000)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from r3gan_core.data import load_dataset
from r3gan_core.metrics import (ClassifierConfig, count_modes, digit_classifier, evaluate_images, fd_digits,
                                feature_statistics, find_inception_weights, frechet_distance,
                                frechet_distance_features, inception_metrics, kernel_distance, mmd2_unbiased,
                                mode_counts, mode_coverage, polynomial_kernel, precision_recall,
                                reverse_kl_to_uniform, train_digit_classifier)
from r3gan_core.metrics import classifier as classifier_module
from r3gan_core.metrics.modes import mode_indices


@pytest.fixture(scope="module")
def classifier():
    return digit_classifier()


@pytest.fixture(scope="module")
def stacked_real():
    """26,000 real stacked digits at 16 px (the VEEGAN / PacGAN sample count)."""
    return load_dataset("stacked-digits:16", max_items=26_000, seed=0).images


# ----------------------------------------------------------------------------------------------------------
# Classifier


def test_classifier_accuracy_and_cache(classifier):
    assert classifier.accuracy >= 0.97
    assert digit_classifier() is classifier  # in-process cache
    x = load_dataset("digits").images[:10]
    probs = classifier.predict_proba(x)
    assert probs.shape == (10, 10) and torch.allclose(probs.sum(1), torch.ones(10))
    assert classifier.features(x).shape == (10, classifier.feature_dim)
    stacked = x[:4].repeat(1, 3, 1, 1)
    assert classifier.features(stacked).shape == (4, 3 * classifier.feature_dim)
    assert classifier.channel_proba(stacked).shape == (4, 3, 10)
    with pytest.raises(ValueError, match="channel_proba"):
        classifier.predict_proba(stacked)


def test_classifier_reads_upsampled_digits(classifier):
    """The held-out digits upsampled to 16 and 32 px (as data.py does) are still classified >= 97%."""
    _, _, test_x, test_y = classifier_module.digits_split(classifier.config)
    from r3gan_core.data import resize_images

    for size in (16, 32):
        assert (classifier.predict(resize_images(test_x, size)) == test_y).float().mean() >= 0.97


def test_classifier_training_is_deterministic():
    config = ClassifierConfig(epochs=2)  # determinism is a property of the code path, not of the length
    a, b = train_digit_classifier(config), train_digit_classifier(config)
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    assert torch.equal(a.predict_proba(x), b.predict_proba(x)) and torch.equal(a.features(x), b.features(x))
    assert a.accuracy == b.accuracy
    state = torch.get_rng_state()
    train_digit_classifier(ClassifierConfig(epochs=1))
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is left alone


def test_disk_cache_round_trip_and_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("R3GAN_CACHE", str(tmp_path))
    config = ClassifierConfig(epochs=1, seed=5)
    first = classifier_module.load_or_train(config)
    files = list(tmp_path.glob("digit_classifier-*.pt"))
    assert len(files) == 1 and classifier_module.config_key(config) in files[0].name
    assert not list(tmp_path.glob("*.tmp"))  # written atomically: no leftovers
    second = classifier_module.load_or_train(config)
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    assert torch.equal(first.predict_proba(x), second.predict_proba(x)) and first.accuracy == second.accuracy
    files[0].write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable classifier cache"):
        third = classifier_module.load_or_train(config)
    assert torch.equal(first.predict_proba(x), third.predict_proba(x))
    assert classifier_module.config_key(config) != classifier_module.config_key(ClassifierConfig(epochs=2))
    monkeypatch.setenv("R3GAN_CACHE", "off")
    assert classifier_module.cache_dir() is None


def test_noise_is_not_confident(classifier):
    """Outlier exposure: white noise gets low confidence, real digits high."""
    noise = torch.rand(2000, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert (classifier.predict_proba(noise).max(1).values > 0.5).float().mean() < 0.02
    real = load_dataset("digits:16").images
    assert (classifier.predict_proba(real).max(1).values > 0.5).float().mean() > 0.97


# ----------------------------------------------------------------------------------------------------------
# Modes and reverse KL


def test_reverse_kl_and_mode_count_formulas():
    assert reverse_kl_to_uniform(np.full(1000, 26)) == pytest.approx(0.0, abs=1e-12)
    one_hot = np.zeros(1000)
    one_hot[42] = 26_000
    assert reverse_kl_to_uniform(one_hot) == pytest.approx(math.log(1000))
    assert reverse_kl_to_uniform(np.array([1, 1, 0, 0])) == pytest.approx(math.log(2))  # 2 x 0.5 log(4 x 0.5)
    assert math.isnan(reverse_kl_to_uniform(np.zeros(10)))
    assert count_modes(np.array([0, 3, 1, 0])) == 2
    assert mode_indices(torch.tensor([[1, 2, 3], [0, 0, 9]])).tolist() == [123, 9]


def test_real_stacked_digits_cover_all_modes(classifier, stacked_real):
    result = mode_coverage(stacked_real, classifier)
    assert result["num_modes"] == 1000 and result["num_samples"] == 26_000
    assert result["modes"] > 990
    assert result["reverse_kl"] < 0.1
    assert result["threshold"] is None and "every sample counted" in result["rule"]
    assert result["confident_fraction"] > 0.9
    counts = mode_counts(stacked_real[:2000], classifier)
    assert counts.shape == (1000,) and counts.sum() == 2000


def test_one_repeated_image_is_one_mode(classifier, stacked_real):
    result = mode_coverage(stacked_real[:1].expand(5000, -1, -1, -1), classifier)
    assert result["modes"] == 1
    assert result["reverse_kl"] == pytest.approx(math.log(1000), abs=1e-9)


def test_single_channel_digits_have_10_modes(classifier):
    result = mode_coverage(load_dataset("digits").images, classifier)
    assert result["num_modes"] == 10 and result["modes"] == 10 and result["reverse_kl"] < 0.01


def test_confidence_threshold_drops_noise(classifier, stacked_real):
    noise = torch.rand(3000, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    plain = mode_coverage(noise, classifier)
    strict = mode_coverage(noise, classifier, threshold=0.5)
    assert plain["num_counted"] == 3000 and plain["modes"] >= 1  # plain counting counts noise too
    assert strict["num_counted"] < 30 and strict["confident_fraction"] < 0.01
    assert "max probability > 0.5" in strict["rule"] and strict["threshold"] == 0.5
    real = mode_coverage(stacked_real[:3000], classifier, threshold=0.5)
    assert real["confident_fraction"] > 0.9 and real["num_counted"] == round(real["confident_fraction"] * 3000)
    none_left = mode_coverage(noise[:10], classifier, threshold=0.999)
    assert none_left["modes"] == 0 and math.isnan(none_left["reverse_kl"])
    with pytest.raises(ValueError, match="threshold"):
        mode_coverage(noise[:10], classifier, threshold=1.5)


# ----------------------------------------------------------------------------------------------------------
# Frechet distance


def test_frechet_distance_closed_form_diagonal():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # commuting (diagonal) covariances: sum (sqrt(s1) - sqrt(s2))^2 for the trace term
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    for method in ("eigh", "sqrtm"):
        assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method) == pytest.approx(expected)


def test_frechet_distance_general_covariances_match_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    reference = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                 - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2, "sqrtm") == pytest.approx(reference, rel=1e-9)
    # one-dimensional case: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])) \
        == pytest.approx(4.0 + 1.0)
    with pytest.raises(ValueError, match="Frechet method"):
        frechet_distance(mu1, s1, mu2, s2, "svd")


def test_frechet_distance_of_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 4))
    y = rng.normal(size=(20_000, 4)) * 2 + 1  # N(1, 4 I)
    expected = 4 * 1.0 + 4 * (1 - 2) ** 2  # ||mu||^2 + sum (1 - 2)^2
    assert frechet_distance_features(x, y) == pytest.approx(expected, rel=0.05)
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-8)
    mu, sigma = feature_statistics(x)
    assert mu.shape == (4,) and sigma.shape == (4, 4)
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(x[:1])
    with pytest.raises(ValueError, match="NaN"):
        feature_statistics(np.full((3, 2), np.nan))


def test_frechet_distance_of_rank_deficient_features():
    """Fewer samples than dimensions (singular covariances) still give a finite, non-negative distance."""
    x = np.random.default_rng(2).normal(size=(10, 50))
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(frechet_distance_features(x, x + 1.0))


# ----------------------------------------------------------------------------------------------------------
# KID


def test_polynomial_kernel_and_unbiased_mmd():
    x, y = np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])
    assert polynomial_kernel(x, y)[0, 0] == pytest.approx((11 / 2 + 1) ** 3)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    # brute-force unbiased MMD^2 from its definition
    k = lambda u, v: (u @ v / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(a[i], a[j]) for i in range(4) for j in range(4) if i != j) / (4 * 3)
    yy = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(a[i], b[j]) for i in range(4) for j in range(5)) / 20
    assert mmd2_unbiased(a, b) == pytest.approx(xx + yy - 2 * xy)


def test_kid_identical_near_zero_shifted_positive():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same_mean, same_std = kernel_distance(x, y, num_subsets=10, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    identical, _ = kernel_distance(x, x, num_subsets=10, subset_size=200)
    shifted, _ = kernel_distance(x, y + 1.0, num_subsets=10, subset_size=200)
    assert abs(identical) < 0.01 * shifted and shifted > 0.1
    again = kernel_distance(x, y + 1.0, num_subsets=10, subset_size=200)
    assert again[0] == shifted  # seeded


# ----------------------------------------------------------------------------------------------------------
# Precision and recall


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 8))
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    far = rng.normal(size=(300, 8)) + 100.0
    assert precision_recall(x, far) == {"precision": 0.0, "recall": 0.0}
    half = np.concatenate([x[:150], far[:150]])  # half the fakes are real points, half are far away
    assert precision_recall(x, half)["precision"] == pytest.approx(0.5)


def test_precision_recall_duplicates_and_errors():
    x = np.ones((10, 4))  # all-identical points: radii 0, every point still inside its own ball
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    with pytest.raises(ValueError, match="more than 3 samples"):
        precision_recall(x[:3], x[:3])
    with pytest.raises(ValueError, match="dimensions differ"):
        precision_recall(np.ones((10, 4)), np.ones((10, 5)))


# ----------------------------------------------------------------------------------------------------------
# FD-digits and evaluate_images


def test_fd_digits(classifier, stacked_real):
    real_a, real_b = stacked_real[:3000], stacked_real[3000:6000]
    noise = torch.rand(3000, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    close, far = fd_digits(real_a, real_b, classifier), fd_digits(real_a, noise, classifier)
    assert close < 1.0 < 50 * close < far


def test_evaluate_images_keys_and_values(classifier, stacked_real):
    real, fake = stacked_real[:1500], stacked_real[1500:3000]
    result = evaluate_images(real, fake, stacked=True, num_samples=1000, pr_samples=500, kid_subsets=10,
                             kid_subset_size=200, classifier=classifier)
    assert result["num_real"] == result["num_fake"] == 1000 and result["num_pr_samples"] == 500
    assert result["num_modes"] == 1000 and result["real_modes"] > 600
    assert result["precision_digits"] > 0.7 and result["recall_digits"] > 0.7
    assert result["fd_digits"] < 5 and abs(result["kid_digits"]) < 0.05
    assert result["confidence_threshold"] == 0.5 and "FD-digits" in result["feature_space"]
    assert not any("fid" in key.lower().split("_") for key in result)  # never labelled FID
    single = evaluate_images(load_dataset("digits").images, load_dataset("digits").images[:500], stacked=False,
                             pr_samples=200, kid_subsets=5, kid_subset_size=100, classifier=classifier)
    assert single["num_modes"] == 10 and single["modes"] == 10
    with pytest.raises(ValueError, match="stacked=True needs 3"):
        evaluate_images(real[:, :1], fake[:, :1], stacked=True, classifier=classifier)


# ----------------------------------------------------------------------------------------------------------


def test_a_real_reference_gives_exactly_the_numbers_of_the_real_images(classifier, stacked_real):
    """RealReference is a cache, not an approximation: every key equal, for two fake sets and in any order."""
    from r3gan_core.metrics.evaluate import real_reference

    real, settings = stacked_real[:1500], dict(num_samples=1000, pr_samples=400, seed=3, classifier=classifier)
    options = dict(kid_subsets=7, kid_subset_size=150)
    reference = real_reference(real, True, **settings)
    for fake in (stacked_real[1500:2700], (stacked_real[3000:4200] * 0.6).flip(0)):
        direct = evaluate_images(real, fake, stacked=True, **settings, **options)
        assert evaluate_images(reference, fake, stacked=True, **settings, **options) == direct
    with pytest.raises(ValueError, match=r"seed=3 \(this call: 4\)"):
        evaluate_images(reference, fake, stacked=True, **{**settings, "seed": 4}, **options)
    with pytest.raises(ValueError, match="pr_samples"):
        evaluate_images(reference, fake, stacked=True, **{**settings, "pr_samples": 500}, **options)


def test_kid_and_precision_recall_take_the_real_half_precomputed():
    from r3gan_core.metrics.kid import subset_indices, within_first_set
    from r3gan_core.metrics.precision_recall import knn_radii

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 6)), rng.normal(0.3, 1.0, size=(250, 6))
    subsets = subset_indices(len(x), len(y), 9, 80, seed=5)
    assert kernel_distance(x, y, 9, 80, 5, within1=within_first_set(x, subsets)) == kernel_distance(x, y, 9, 80, 5)
    with pytest.raises(ValueError, match="within1 has 8 subsets"):
        kernel_distance(x, y, 9, 80, 5, within1=within_first_set(x, subsets[:8]))
    radii = knn_radii(torch.from_numpy(x))
    assert precision_recall(x, y, real_radii=radii) == precision_recall(x, y)
    with pytest.raises(ValueError, match="one radius per real row"):
        precision_recall(x, y, real_radii=radii[:10])
# Inception metrics: optional, never downloaded


def test_inception_metrics_fail_clearly_when_unavailable(monkeypatch, tmp_path):
    import importlib.util

    images = torch.zeros(4, 3, 8, 8)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub: no weights anywhere
    monkeypatch.delenv("R3GAN_INCEPTION_WEIGHTS", raising=False)
    if importlib.util.find_spec("torch_fidelity") is None:
        with pytest.raises(RuntimeError, match="torch-fidelity, which is not installed"):
            inception_metrics(images, images)
    # Pretend torch-fidelity is installed: the missing weights must then be the error, not a download.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "torch_fidelity" else real_find_spec(name, *a))
    with pytest.raises(RuntimeError, match="never downloads"):
        inception_metrics(images, images)
    with pytest.raises(RuntimeError, match="not found"):
        find_inception_weights(tmp_path / "missing.pth")
    weights = tmp_path / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    assert find_inception_weights() == weights
