"""A small digit classifier: the "pretrained MNIST classifier" of the VEEGAN / PacGAN mode-count protocol.

Trained deterministically on scikit-learn's embedded 8x8 digits (fixed stratified split, fixed seed, a few
seconds on a CPU), so mode counts and FD-digits need no download. Inputs of any square resolution are resized
to 8x8 (block averaging for multiples of 8, see `to_input_resolution`), so `digits:16` round-trips.

Two cheap robustness measures, both switchable in `ClassifierConfig`:

* augmentation: random shifts of up to one pixel, and a random round trip through 16 or 32 px (the blur that
  upsampled training data and generator outputs carry);
* outlier exposure (Hendrycks, Mazeika, Dietterich, ICLR 2019, "Deep Anomaly Detection with Outlier
  Exposure"): noise images in every batch are trained toward the uniform distribution, so noise gets low
  confidence. The argmax protocol is unchanged; only a confidence threshold (`modes.mode_coverage`) uses it.

Caveat: the classifier has only seen scikit-learn's digits. Scale normalisation differs from MNIST's (a 20 px
digit in a 28 px frame); on real MNIST files check the real data's own mode count before trusting fakes'.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..training.checkpoint import save_atomic
from ..data import resize_images, sklearn_digits

CLASSIFIER_VERSION = 1  # bump when the architecture or training code changes: it is part of the cache key
INPUT_RESOLUTION = 8
NUM_CLASSES = 10


@dataclass(frozen=True)
class ClassifierConfig:
    """Training settings; their hash (with CLASSIFIER_VERSION) keys the on-disk cache."""

    seed: int = 0               # weight init, batch order, augmentation and outlier noise
    split_seed: int = 0         # train_test_split(random_state=...)
    test_fraction: float = 0.25
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3            # Adam, cosine-decayed to 0
    weight_decay: float = 1e-4
    width: int = 32             # channels of the first conv stage
    feature_dim: int = 64       # penultimate layer: the FD-digits feature space (per channel)
    max_shift: int = 1          # augmentation: random translation in pixels
    resample_prob: float = 0.3  # augmentation: fraction of a batch sent through an upsample / downsample trip
    outlier_fraction: float = 0.25  # outlier exposure: noise images per real image (0 = off)
    outlier_weight: float = 0.5     # weight of the uniform-target loss (Hendrycks et al. use 0.5)


class DigitNet(nn.Module):
    """conv-conv-pool-conv-pool, then a `feature_dim` penultimate layer and 10 logits; 8x8 input.

    The features it returns are the penultimate layer's pre-activations (no dead ReLU units, closer to Gaussian)
    standardised by fixed per-unit statistics of the clean training digits (buffers set once after training by
    `set_feature_statistics`): unit scale, so the KID kernel (x.y / d + 1)^3 sees x.y / d of order 1, as with
    Inception features, instead of cubing hundreds.
    """

    def __init__(self, width: int, feature_dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 8 -> 4
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 4 -> 2
            nn.Flatten(),
            nn.Linear(2 * width * 4, feature_dim),  # features: this layer's pre-activations
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(feature_dim, NUM_CLASSES))
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_scale", torch.ones(feature_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits [N, 10], standardised features [N, feature_dim]) of 8x8 single-channel images in [-1, 1]."""
        hidden = self.body(x)
        return self.head(hidden), (hidden - self.feature_mean) / self.feature_scale

    @torch.no_grad()
    def set_feature_statistics(self, reference: Tensor) -> None:
        """Standardise features by the mean and std of `reference` inputs' activations.

        A unit that barely varies on the reference gets the floor 0.1 x median std instead of its own, so a fake
        that moves it cannot blow the distance up by dividing by ~0.
        """
        hidden = self.body(reference)
        std = hidden.std(0)
        self.feature_mean.copy_(hidden.mean(0))
        self.feature_scale.copy_(std.clamp_min(0.1 * float(std.median().clamp_min(1e-6))))


# ----------------------------------------------------------------------------------------------------------
# Inputs


def as_image_batch(images: Tensor | np.ndarray) -> Tensor:
    """float32 CPU tensor N x C x H x W; an N x H x W input is read as single-channel."""
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"expected square images N x C x H x W (or N x H x W), got shape {tuple(x.shape)}")
    return x


def to_input_resolution(images: Tensor) -> Tensor:
    """Resize N x 1 x H x W to 8x8: block averaging when H is a multiple of 8, else bilinear (antialiased).

    Block averaging is how the digits were made (UCI optdigits: counts over 4x4 blocks of 32x32 bitmaps), and it
    undoes `r3gan_core.data`'s bilinear upsampling with less blur than an antialiased bilinear filter.
    """
    size = images.shape[-1]
    if size == INPUT_RESOLUTION:
        return images
    if size % INPUT_RESOLUTION == 0:
        return F.avg_pool2d(images, size // INPUT_RESOLUTION)
    return resize_images(images, INPUT_RESOLUTION)


def to_classifier_input(images: Tensor) -> Tensor:
    """N x C x H x W -> (N*C) x 1 x 8 x 8: each channel becomes one digit."""
    n, c, h, w = images.shape
    return to_input_resolution(images.reshape(n * c, 1, h, w))


# ----------------------------------------------------------------------------------------------------------
# Training


@contextlib.contextmanager
def one_thread():
    """Run torch on one CPU thread, then restore the count.

    For a net this small, threads only add synchronisation (10x slower on a busy 2-core machine), and a fixed
    thread count makes results identical on every machine regardless of its core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def digits_split(config: ClassifierConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train images, train labels, test images, test labels): a stratified split of sklearn's digits."""
    from sklearn.model_selection import train_test_split

    images, labels = sklearn_digits()
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=config.test_fraction,
                                           random_state=config.split_seed, stratify=labels.numpy())
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by up to max_shift pixels in x and y, filling with the background -1."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # [n, h, 1]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # [n, 1, w]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def random_resample(images: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """Send a random `prob` fraction through 8 -> 16 or 32 -> 8 px (the blur of upsampled data)."""
    if prob <= 0:
        return images
    out = images.clone()
    chosen = torch.rand(len(images), generator=generator) < prob
    big = torch.rand(len(images), generator=generator) < 0.5
    for size, mask in ((16, chosen & ~big), (32, chosen & big)):
        if mask.any():
            out[mask] = to_input_resolution(resize_images(images[mask], size))
    return out


def noise_images(n: int, generator: torch.Generator) -> Tensor:
    """Outlier-exposure inputs: a third white noise, a third smooth noise (4x4 upsampled), a third blobs."""
    kinds = torch.randint(0, 3, (n,), generator=generator)
    white = torch.rand(n, 1, 8, 8, generator=generator) * 2 - 1
    smooth = resize_images(torch.rand(n, 1, 4, 4, generator=generator) * 2 - 1, INPUT_RESOLUTION)
    # Blobs: a random level plus a random-width Gaussian bump, the look of an untrained generator's output.
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    centre = torch.rand(n, 2, generator=generator) * 7
    sigma = 0.8 + 2.5 * torch.rand(n, generator=generator)
    bump = torch.exp(-((yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2)
                     / (2 * sigma[:, None, None] ** 2))
    level = torch.rand(n, 1, 1, generator=generator) * 2 - 1
    blobs = (level + 2 * bump).clamp(-1, 1).unsqueeze(1)
    choice = kinds[:, None, None, None]
    return torch.where(choice == 0, white, torch.where(choice == 1, smooth, blobs))


def train_digit_classifier(config: ClassifierConfig = ClassifierConfig()) -> "DigitClassifier":
    """Train from scratch (no cache), on one thread: deterministic for a given config and torch build.

    The loss is cross-entropy on augmented digits plus, for outlier exposure, outlier_weight times the
    cross-entropy between the uniform distribution and the prediction on noise images:
    L = CE(f(x), y) + lambda * mean_k(-log softmax(f(u))_k).
    """
    with one_thread():
        return _train(config)


def _train(config: ClassifierConfig) -> "DigitClassifier":
    train_x, train_y, test_x, test_y = digits_split(config)
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(config.seed)
        net = DigitNet(config.width, config.feature_dim)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_x) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    num_outliers = round(config.outlier_fraction * config.batch_size)
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            x = random_resample(random_shift(train_x[idx], config.max_shift, generator),
                                config.resample_prob, generator)
            logits, _ = net(x)
            loss = F.cross_entropy(logits, train_y[idx])
            if num_outliers > 0:
                noise_logits, _ = net(noise_images(num_outliers, generator))
                loss = loss + config.outlier_weight * (-F.log_softmax(noise_logits, 1).mean())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    net.eval()
    net.set_feature_statistics(train_x)
    classifier = DigitClassifier(net, accuracy=0.0, config=config)
    classifier.accuracy = float((classifier.predict(test_x) == test_y).float().mean())
    return classifier


# ----------------------------------------------------------------------------------------------------------
# The classifier


class DigitClassifier:
    """A trained DigitNet with numpy/torch-friendly prediction helpers (CPU, no grad, batched)."""

    def __init__(self, net: DigitNet, accuracy: float, config: ClassifierConfig, batch_size: int = 1024) -> None:
        self.net = net.eval().requires_grad_(False)
        self.accuracy = accuracy  # held-out accuracy on the test split of sklearn's digits
        self.config = config
        self.batch_size = batch_size

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def channel_outputs(self, images: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
        """(probabilities [N, C, 10], features [N, C * feature_dim]) from one pass over every channel."""
        x = as_image_batch(images)
        probs, feats = self._run(to_classifier_input(x))
        return probs.view(len(x), x.shape[1], NUM_CLASSES), feats.view(len(x), x.shape[1] * self.feature_dim)

    def _run(self, digits: Tensor) -> tuple[Tensor, Tensor]:
        """(probabilities, features) of (M, 1, 8, 8) inputs, in batches."""
        probs, feats = [], []
        with torch.inference_mode(), one_thread():
            for start in range(0, len(digits), self.batch_size):
                logits, features = self.net(digits[start:start + self.batch_size])
                probs.append(logits.softmax(1))
                feats.append(features)
        if not probs:
            return torch.zeros(0, NUM_CLASSES), torch.zeros(0, self.feature_dim)
        return torch.cat(probs), torch.cat(feats)

    def channel_proba(self, images: Tensor | np.ndarray) -> Tensor:
        """Class probabilities of every channel: [N, C, 10] (each channel read as one digit)."""
        return self.channel_outputs(images)[0]

    def predict_proba(self, images: Tensor | np.ndarray) -> Tensor:
        """Class probabilities [N, 10] of single-channel images (any square size, values in [-1, 1])."""
        x = as_image_batch(images)
        if x.shape[1] != 1:
            raise ValueError(f"predict_proba takes single-channel images, got {x.shape[1]} channels; "
                             "use channel_proba for stacked digits")
        return self.channel_proba(x)[:, 0]

    def predict(self, images: Tensor | np.ndarray) -> Tensor:
        """Most likely digit [N] of single-channel images."""
        return self.predict_proba(images).argmax(1)

    def features(self, images: Tensor | np.ndarray) -> Tensor:
        """Penultimate-layer features (standardised, see DigitNet) [N, C * feature_dim]: per-channel features
        concatenated in channel order."""
        return self.channel_outputs(images)[1]

    def __repr__(self) -> str:
        return f"DigitClassifier(held-out accuracy={self.accuracy:.4f}, feature_dim={self.feature_dim})"


# ----------------------------------------------------------------------------------------------------------
# Caching: in-process (lru_cache) and on disk ($R3GAN_CACHE or ~/.cache/r3gan_core; R3GAN_CACHE=off disables)


def config_key(config: ClassifierConfig) -> str:
    """A short hash of the training settings and CLASSIFIER_VERSION."""
    text = json.dumps({"version": CLASSIFIER_VERSION, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir() -> Path | None:
    """The on-disk cache folder, or None when R3GAN_CACHE is 'off' / 'none' / '0'."""
    value = os.environ.get("R3GAN_CACHE")
    if value is not None and value.strip().lower() in ("off", "none", "0", ""):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "r3gan_core"


def _load_cached(path: Path, config: ClassifierConfig) -> DigitClassifier | None:
    """The classifier stored at `path` if it is readable and was trained with `config`; else None."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("version") != CLASSIFIER_VERSION or payload.get("config") != asdict(config):
            return None
        net = DigitNet(config.width, config.feature_dim)
        net.load_state_dict(payload["state_dict"])
        return DigitClassifier(net, float(payload["accuracy"]), config)
    except Exception as error:  # a corrupt or foreign cache file: retrain rather than fail
        warnings.warn(f"ignoring unreadable classifier cache {path}: {error}", stacklevel=3)
        return None


def load_or_train(config: ClassifierConfig) -> DigitClassifier:
    """The cached classifier for `config` if present on disk, else train it and try to store it."""
    folder = cache_dir()
    path = folder / f"digit_classifier-{config_key(config)}.pt" if folder is not None else None
    if path is not None and path.is_file():
        cached = _load_cached(path, config)
        if cached is not None:
            return cached
    classifier = train_digit_classifier(config)
    if path is not None:
        payload = {"version": CLASSIFIER_VERSION, "config": asdict(config), "accuracy": classifier.accuracy,
                   "state_dict": classifier.net.state_dict()}
        try:
            save_atomic(payload, path)
        except OSError as error:  # a read-only home is not a reason to fail an evaluation
            warnings.warn(f"could not cache the digit classifier at {path}: {error}", stacklevel=2)
    return classifier


@functools.lru_cache(maxsize=4)
def _cached_classifier(config: ClassifierConfig) -> DigitClassifier:
    return load_or_train(config)


def digit_classifier(config: ClassifierConfig | None = None) -> DigitClassifier:
    """The digit classifier for `config` (default settings when None), trained once and cached."""
    return _cached_classifier(config or ClassifierConfig())
