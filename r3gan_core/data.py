"""Datasets selected by one spec string; nothing is downloaded and no user file is ever written.

Every dataset is an `ImageDataset`: float32 images N x C x H x W in [-1, 1], optional integer labels.

Specs (scheme, then ':' and an argument):

==========================  =============================================================================
``digits`` / ``digits:16``  scikit-learn's embedded 8x8 digits (1,797 images, 10 classes). Default 8 px.
``stacked-digits:16``       three digits stacked as RGB, 1,000 modes: the StackedMNIST construction
                            (Metz et al. 2017, VEEGAN / PacGAN) on the embedded digits. Default 8 px.
``mnist:/folder``           MNIST IDX files (``train-images-idx3-ubyte`` + ``train-labels-idx1-ubyte``,
                            gzipped or not); 28 px digits padded to 32 px, as ProGAN's dataset tool did.
``stackedmnist:/folder``    three MNIST digits stacked as RGB, 32 px (ProGAN / R3GAN StackedMNIST).
``cifar10:/folder``         the CIFAR-10 python pickles (``data_batch_1`` .. ``data_batch_5``); 32 px RGB.
``folder:/folder``          PNG / JPEG files (searched recursively), optional StyleGAN ``dataset.json``.
``zip:/file.zip``           the same inside a zip archive.
``folder:/folder@64``       any path scheme with a trailing ``@R``: resize to R px (same as resolution=R).
==========================  =============================================================================

Resolution rules (one place, `_final_resolution`): every resolution is a power of two >= 4. `resolution=None`
keeps the native size (digits 8, MNIST 32 after padding, CIFAR 32, a folder's single image size). A given
resolution resizes (bilinear, antialiased). Folders and zips whose images have different sizes are an error
unless a resolution is given, in which case every image is resized to it; a folder of one size that is not a
power of two (e.g. 28 px) is an error that asks for a resolution. Non-square images are always an error (no
implicit cropping). A resolution is given either as `resolution=` or in the spec itself, ``digits:16`` or
``folder:/data@64`` (the only way on the command line, where ``--dataset`` takes a spec); when both are given
they must agree. A path that really ends in ``@digits`` and exists is read as that path.

Every image is read and checked while loading (empty sets, corrupt zip members, undecodable or
decompression-bomb images are ValueErrors naming the file), so bad data fails before a run writes anything.

`max_items`: for stacked specs, the number of stacked images (default `STACKED_DEFAULT_ITEMS`); otherwise a
seeded random subset of that size, kept in file order (like StyleGAN2-ADA's ``max_size``).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import pickle
import shlex
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .choices import require_choice

SCHEMES = ("digits", "stacked-digits", "mnist", "stackedmnist", "cifar10", "folder", "zip")
PATH_SCHEMES = ("mnist", "stackedmnist", "cifar10", "folder", "zip")
STACKED_SCHEMES = ("stacked-digits", "stackedmnist")  # each channel one digit, not a colour
STACKED_DEFAULT_ITEMS = 50_000  # stacked images drawn from random triples (seeded)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MNIST_PADDED = 32  # ProGAN's dataset_tool pads MNIST's 28 px to 32 px


# ----------------------------------------------------------------------------------------------------------
# The dataset


class ImageDataset(Dataset):
    """Images in [-1, 1] (float32, N x C x H x W) with optional labels, as a torch Dataset.

    A stacked dataset is stored lazily: `base` single-channel images and `stack_index` (N x C rows of base
    indices); `.images` materialises (and caches) the stacked tensor on first access, while `__getitem__` and
    `sample` compose only the requested items, so 50,000 stacked 32 px images cost no 600 MB up front.
    """

    def __init__(self, images: Tensor, labels: Tensor | None, name: str, *,
                 stack_index: Tensor | None = None, num_classes: int | None = None) -> None:
        super().__init__()
        if images.ndim != 4 or images.dtype != torch.float32:
            raise ValueError(f"images must be a float32 tensor N x C x H x W, got {images.dtype} "
                             f"{tuple(images.shape)}")
        if images.shape[2] != images.shape[3]:
            raise ValueError(f"images must be square, got {images.shape[2]} x {images.shape[3]}")
        if stack_index is not None:
            if images.shape[1] != 1 or stack_index.ndim != 2:
                raise ValueError("a stacked dataset needs single-channel base images and an N x C stack_index")
        count = len(stack_index) if stack_index is not None else len(images)
        if labels is not None:
            labels = labels.long()
            if labels.shape != (count,):
                raise ValueError(f"labels must have shape ({count},), got {tuple(labels.shape)}")
        self._base = images
        self._stack_index = stack_index
        self._stacked_cache: Tensor | None = None
        self.labels = labels
        self.name = name
        observed = int(labels.max()) + 1 if labels is not None and len(labels) else 0
        if num_classes is None:
            num_classes = observed
        elif observed > num_classes:
            raise ValueError(f"{name}: label {observed - 1} does not fit num_classes={num_classes}")
        self.num_classes = num_classes

    @property
    def images(self) -> Tensor:
        """All images as one N x C x H x W tensor (materialised once for stacked datasets)."""
        if self._stack_index is None:
            return self._base
        if self._stacked_cache is None:
            self._stacked_cache = self._compose(torch.arange(len(self)))
        return self._stacked_cache

    @property
    def channels(self) -> int:
        return self._stack_index.shape[1] if self._stack_index is not None else self._base.shape[1]

    @property
    def resolution(self) -> int:
        return self._base.shape[-1]

    @property
    def stacked(self) -> bool:
        return self._stack_index is not None

    def _compose(self, indices: Tensor) -> Tensor:
        """Stacked images for `indices`: channel c of item i is base image stack_index[i, c]."""
        rows = self._stack_index[indices]  # [n, C]
        return self._base[rows.flatten(), 0].view(len(indices), rows.shape[1], self.resolution, self.resolution)

    def __len__(self) -> int:
        return len(self._stack_index) if self._stack_index is not None else len(self._base)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if self._stack_index is not None and self._stacked_cache is None:
            image = self._compose(torch.tensor([index]))[0]
        else:
            image = self.images[index]
        label = int(self.labels[index]) if self.labels is not None else -1
        return image, label

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A batch of `n` items drawn uniformly with replacement: (images [n, C, H, W], labels [n], -1 = none)."""
        indices = torch.randint(len(self), (n,), generator=generator)
        if self._stack_index is not None and self._stacked_cache is None:
            images = self._compose(indices)
        else:
            images = self.images[indices]
        labels = self.labels[indices] if self.labels is not None else torch.full((n,), -1, dtype=torch.long)
        return images, labels

    def __repr__(self) -> str:
        return (f"ImageDataset(name={self.name!r}, items={len(self)}, channels={self.channels}, "
                f"resolution={self.resolution}, num_classes={self.num_classes})")


# ----------------------------------------------------------------------------------------------------------
# Small pure helpers


def is_power_of_two(n: int) -> bool:
    return isinstance(n, (int, np.integer)) and n > 0 and (n & (n - 1)) == 0


def require_resolution(resolution: int) -> int:
    """ValueError unless `resolution` is a power of two >= 4 (every network stage halves it down to 4x4)."""
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or resolution < 4 or not is_power_of_two(int(resolution)):
        raise ValueError(f"resolution must be a power of two >= 4 (4, 8, 16, 32, ...), got {resolution!r}")
    return int(resolution)


def uint8_to_unit_range(pixels: np.ndarray | Tensor, max_value: float = 255.0) -> Tensor:
    """Map [0, max_value] to [-1, 1] as float32: x / max_value * 2 - 1."""
    if isinstance(pixels, Tensor):
        return pixels.float() * (2.0 / max_value) - 1.0
    array = np.asarray(pixels)
    if array.dtype != np.float32 or not array.flags.writeable:  # PIL hands out read-only arrays
        array = array.astype(np.float32)
    return torch.from_numpy(array) * (2.0 / max_value) - 1.0


def resize_images(images: Tensor, resolution: int) -> Tensor:
    """Bilinear, antialiased resize of N x C x H x W images to resolution x resolution (no-op when equal)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=True,
                        align_corners=False)
    return out.clamp_(-1.0, 1.0)  # bilinear cannot overshoot, antialias filters can slightly


def pad_to(images: Tensor, size: int, value: float = -1.0) -> Tensor:
    """Pad N x C x H x W images symmetrically (extra pixel at the bottom/right) to size x size with `value`."""
    h, w = images.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"cannot pad {h} x {w} images to {size} x {size}")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(images, (left, size - w - left, top, size - h - top), value=value)


def seeded_subset(count: int, max_items: int | None, seed: int) -> np.ndarray:
    """Indices of a random subset of size max_items (sorted, so file order is kept); all when None/larger."""
    if max_items is None or max_items >= count:
        return np.arange(count)
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    return np.sort(np.random.default_rng(seed).permutation(count)[:max_items])


def stack_triples(num_base: int, count: int, channels: int, seed: int) -> Tensor:
    """A count x channels LongTensor of base indices drawn uniformly (seeded): the StackedMNIST construction."""
    if count < 1:
        raise ValueError(f"the number of stacked items must be >= 1, got {count}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(num_base, (count, channels), generator=generator)


def stacked_labels(digit_labels: Tensor, stack_index: Tensor) -> Tensor:
    """Mode label of each stacked item: digits read as a base-10 number, channel 0 (R) most significant."""
    digits = digit_labels[stack_index]  # [N, C]
    powers = 10 ** torch.arange(stack_index.shape[1] - 1, -1, -1)
    return (digits * powers).sum(1)


# ----------------------------------------------------------------------------------------------------------
# Spec parsing


def parse_spec(spec: str) -> tuple[str, str]:
    """Split 'scheme:argument' into its parts; ValueError names the valid schemes."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"a dataset spec must be a non-empty string like 'digits:16', got {spec!r}")
    scheme, _, argument = spec.partition(":")
    require_choice("dataset scheme", scheme, SCHEMES)
    if scheme in PATH_SCHEMES and not argument:
        raise ValueError(f"dataset spec {spec!r} needs a path: '{scheme}:/path/to/data'")
    return scheme, argument


def is_stacked(spec: str) -> bool:
    """Whether the spec's images are stacked digits (one digit per channel, StackedMNIST), not colour images."""
    return parse_spec(spec)[0] in STACKED_SCHEMES


def _next_power_of_two(size: int | None) -> int:
    """The smallest power of two >= max(size, 4): the resolution to suggest for images of `size` px."""
    return max(4, 1 << (int(size or 4) - 1).bit_length())


def _resolution_hint(suggestion: int, spec_form: str | None) -> str:
    """How to ask for a resolution, in Python and (when the spec is known) on the command line."""
    python = f"in Python pass resolution={suggestion} to load_dataset"
    if spec_form is None:
        return python
    return (f"{python}; on the command line end the spec with @{suggestion}: "
            f"--dataset {shlex.quote(f'{spec_form}@{suggestion}')}")


def _final_resolution(native: int | None, requested: int | None, what: str, spec_form: str | None = None) -> int:
    """The resolution to deliver: the requested one if given, else the native one (both validated).

    spec_form: the spec without a resolution (e.g. 'folder:/data'), so the error can show the '@R' form.
    """
    if requested is not None:
        return require_resolution(requested)
    if native is None or not is_power_of_two(native) or native < 4:
        hint = _resolution_hint(_next_power_of_two(native), spec_form)
        raise ValueError(f"{what} has native size {native}, not a power of two >= 4; resize it: {hint}")
    return native


def split_path_resolution(argument: str, spec: str) -> tuple[str, int | None]:
    """Split a path scheme's argument '/data@64' into ('/data', 64); no '@digits' suffix gives (argument, None).

    A path that itself ends in '@digits' and exists is read as that path (no resolution).
    """
    head, at, tail = argument.rpartition("@")
    if not at or not (tail.isascii() and tail.isdigit()) or not head or Path(argument).expanduser().exists():
        return argument, None
    resolution = int(tail)
    try:
        require_resolution(resolution)
    except ValueError:
        raise ValueError(f"dataset spec {spec!r}: the resolution after '@' must be a power of two >= 4 "
                         f"(4, 8, 16, 32, ...), got {resolution}") from None
    return head, resolution


def _reconcile_resolution(from_spec: int | None, resolution: int | None, spec: str) -> int | None:
    """The resolution written in the spec reconciled with the `resolution` argument (they must agree)."""
    if from_spec is None:
        return resolution
    if resolution is not None and resolution != from_spec:
        raise ValueError(f"dataset spec {spec!r} says resolution {from_spec} but resolution={resolution} "
                         "was passed; give one or make them agree")
    return from_spec


def _existing(path_text: str, spec_scheme: str) -> Path:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{spec_scheme} dataset path does not exist: {path}")
    return path


# ----------------------------------------------------------------------------------------------------------
# Embedded scikit-learn digits


def sklearn_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 digits as (images [N, 1, 8, 8] in [-1, 1], labels [N]); values 0..16 scaled."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = uint8_to_unit_range(bunch.images.astype(np.float32), max_value=16.0).unsqueeze(1)
    return images, torch.as_tensor(bunch.target, dtype=torch.long)


def _spec_resolution(argument: str, resolution: int | None, spec: str) -> int | None:
    """The resolution written in 'digits:16' reconciled with the `resolution` argument."""
    if not argument:
        return resolution
    try:
        from_spec = int(argument)
    except ValueError:
        raise ValueError(f"dataset spec {spec!r}: expected a resolution after ':', e.g. 'digits:16'") from None
    require_resolution(from_spec)
    return _reconcile_resolution(from_spec, resolution, spec)


# ----------------------------------------------------------------------------------------------------------
# MNIST IDX files (LeCun et al.; format: big-endian magic 0x00000803 / 0x00000801, dims, then uint8 data)

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def _read_maybe_gzip(path: Path) -> bytes:
    """The bytes of a file, gunzipped when it starts with the gzip magic; ValueError if the gzip is corrupt."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise ValueError(f"corrupt gzip file {path}: {error}") from None
    return raw


def parse_idx(data: bytes, expected_magic: int, source: str) -> np.ndarray:
    """Parse an IDX byte string into a uint8 array; ValueError on a wrong magic number or truncated data."""
    if len(data) < 4:
        raise ValueError(f"{source}: too short to be an IDX file ({len(data)} bytes)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise ValueError(f"{source}: IDX magic number is 0x{magic:08x}, expected 0x{expected_magic:08x} "
                         f"({'images' if expected_magic == IDX_IMAGES_MAGIC else 'labels'} file)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims)  # Python ints: np.prod would overflow int64 on a corrupt header
    found = len(data) - header
    if found != expected:
        problem = "truncated or corrupt file" if found < expected else "extra bytes after the data"
        raise ValueError(f"{source}: IDX dims {dims} need {expected:,} data bytes, found {found:,} ({problem})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, stems: Iterable[str]) -> Path:
    """The first existing file among the stems with or without '.gz'; FileNotFoundError lists what was tried."""
    tried = []
    for stem in stems:
        for name in (stem, stem + ".gz"):
            tried.append(name)
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"no MNIST file in {folder}; looked for: {', '.join(tried)}")


def read_mnist(folder: Path) -> tuple[Tensor, Tensor]:
    """The MNIST training set as (images [N, 1, 28, 28] in [-1, 1], labels [N]) from IDX files."""
    if not folder.is_dir():
        raise ValueError(f"mnist path must be a folder holding the IDX files, got {folder}")
    image_path = _find_idx(folder, ("train-images-idx3-ubyte", "train-images.idx3-ubyte"))
    label_path = _find_idx(folder, ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"))
    images = parse_idx(_read_maybe_gzip(image_path), IDX_IMAGES_MAGIC, str(image_path))
    labels = parse_idx(_read_maybe_gzip(label_path), IDX_LABELS_MAGIC, str(label_path))
    if len(images) == 0:
        raise ValueError(f"{image_path} holds zero images (IDX dims {images.shape}); an MNIST dataset needs at "
                         f"least one image (labels file: {label_path})")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"{image_path}: images are {images.shape[1]} x {images.shape[2]} pixels; each needs at "
                         "least one pixel")
    if len(images) != len(labels):
        raise ValueError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"{image_path}: images must be square, got {images.shape[1]} x {images.shape[2]}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_path}: digit labels must be 0..9, found {int(labels.max())}")
    return uint8_to_unit_range(images).unsqueeze(1), torch.as_tensor(labels.astype(np.int64))


def _mnist_padded(folder: Path) -> tuple[Tensor, Tensor]:
    """MNIST padded (with the background value -1) to the next power of two, 28 -> 32 as ProGAN did."""
    images, labels = read_mnist(folder)
    size = max(4, 1 << (images.shape[-1] - 1).bit_length())
    return pad_to(images, size), labels


# ----------------------------------------------------------------------------------------------------------
# CIFAR-10 python pickles (Krizhevsky 2009): dicts with b"data" (N x 3072 uint8, channel-major) and b"labels"

_CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays: a CIFAR batch needs nothing else, so nothing else runs."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _CIFAR_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch as (uint8 images [N, 3, 32, 32], int64 labels [N]); ValueError if it is not one."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError) as error:
        raise ValueError(f"{path} is not a readable CIFAR-10 pickle: {error}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR-10 batch (expected a dict, got {type(batch).__name__})")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 batch: it needs the keys b'data' and b'labels', has "
                         f"{sorted(map(repr, batch))}")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be uint8 N x 3072, got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: CIFAR-10 labels must be 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(folder: Path) -> tuple[Tensor, Tensor]:
    """The CIFAR-10 training set: every data_batch_k (k = 1..5) present; test_batch is not used."""
    if not folder.is_dir():
        raise ValueError(f"cifar10 path must be the 'cifar-10-batches-py' folder, got {folder}")
    paths = [folder / f"data_batch_{k}" for k in range(1, 6) if (folder / f"data_batch_{k}").is_file()]
    if not paths:
        raise FileNotFoundError(f"no CIFAR-10 training batches (data_batch_1 .. data_batch_5) in {folder}")
    parts = [read_cifar_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if len(images) == 0:
        raise ValueError(f"the CIFAR-10 batches in {folder} hold zero images ({', '.join(p.name for p in paths)} "
                         "each have an empty b'data'); a dataset needs at least one image")
    return uint8_to_unit_range(images), torch.as_tensor(labels)


# ----------------------------------------------------------------------------------------------------------
# Image folders and zips (the StyleGAN dataset layout: images plus an optional dataset.json of labels)

GRAYSCALE_MODES = ("1", "L", "LA")
MAX_LABEL = 2**31  # class labels from dataset.json lie in [0, MAX_LABEL)


def _error_name(error: BaseException) -> str:
    """An exception's class name for a message, with its module unless builtin ('zlib.error', 'OSError')."""
    cls = type(error)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def _decode_image(data: bytes, source: str) -> np.ndarray:
    """Decode PNG/JPEG bytes to uint8 H x W (grayscale) or H x W x 3 (anything else, converted to RGB).

    Every failure is a ValueError naming `source`: undecodable bytes, and images above PIL's decompression-bomb
    limit (`PIL.Image.MAX_IMAGE_PIXELS`; PIL's warning between 1x and 2x that limit is treated as an error too).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image = image.convert("L" if image.mode in GRAYSCALE_MODES else "RGB")
                return np.asarray(image, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"image {source} is too large to decode safely: {error} (PIL's decompression bomb "
                         f"guard, PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS})") from None
    except UnidentifiedImageError:
        raise ValueError(f"cannot read image {source}: not a PNG or JPEG file PIL can identify") from None
    except Exception as error:  # PIL's decoders raise many types on bad bytes; all mean "cannot read this file"
        raise ValueError(f"cannot read image {source}: {_error_name(error)}: {error}") from None


def _integer_label(value: object, fname: str, source: str) -> int:
    """A class label from dataset.json as an int; ValueError for anything but a whole number (1 or 1.0)."""
    whole = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if isinstance(value, bool) or not whole or not 0 <= value < MAX_LABEL:
        raise ValueError(f"{source}: the label of {fname!r} must be a whole number in [0, {MAX_LABEL}), got "
                         f"{value!r} (one class index per image; label vectors are not supported)")
    return int(value)


def _decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of a metadata file; ValueError naming it when the bytes are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{source} is not UTF-8 text: {error}") from None


def _parse_labels_json(text: str, source: str, names: list[str]) -> Tensor | None:
    """Labels from a StyleGAN dataset.json ({"labels": [[fname, label], ...]} or null), ordered like `names`."""
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON: {error}") from None
    raw = content.get("labels") if isinstance(content, dict) else None
    if raw is None:
        return None
    pairs_error = ValueError(f"{source}: 'labels' must be a list of [file name, integer label] pairs")
    if not isinstance(raw, list):
        raise pairs_error
    table = {}
    for pair in raw:
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
            raise pairs_error
        table[str(PurePosixPath(pair[0]))] = _integer_label(pair[1], pair[0], source)
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"{source} has no label for {len(missing)} image(s), e.g. {missing[0]!r}")
    return torch.tensor([table[n] for n in names], dtype=torch.long)


def _images_to_tensor(arrays: list[np.ndarray], names: list[str], resolution: int | None, where: str,
                      spec_form: str | None = None) -> Tensor:
    """Stack decoded images into N x C x R x R in [-1, 1], applying the folder resolution rules.

    spec_form: the dataset's spec without a resolution (e.g. 'folder:/data'), used to tell command-line users
    how to ask for one ('folder:/data@64').
    """
    sizes = sorted({a.shape[:2] for a in arrays})
    non_square = [n for n, a in zip(names, arrays) if a.shape[0] != a.shape[1]]
    if non_square:
        a = arrays[names.index(non_square[0])]
        raise ValueError(f"{where}: images must be square, {non_square[0]!r} is {a.shape[1]} x {a.shape[0]}")
    if len(sizes) > 1 and resolution is None:
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:6])
        hint = _resolution_hint(_next_power_of_two(sizes[-1][0]), spec_form)
        raise ValueError(f"{where}: images have mixed sizes ({shown}); resize them all to one resolution: {hint}")
    target = _final_resolution(sizes[0][0] if len(sizes) == 1 else None, resolution, where, spec_form)
    gray = all(a.ndim == 2 for a in arrays)
    tensors = []
    for a in arrays:
        if not gray and a.ndim == 2:  # a grayscale image in a colour dataset: replicate it
            a = np.repeat(a[:, :, None], 3, axis=2)
        x = uint8_to_unit_range(a[None] if gray else a.transpose(2, 0, 1))  # C x H x W
        tensors.append(resize_images(x[None], target)[0])
    return torch.stack(tensors)


def _load_image_collection(entries: list[tuple[str, Callable[[], bytes]]], labels_json: tuple[str, str] | None,
                           resolution: int | None, max_items: int | None, seed: int, where: str,
                           name: str, scheme: str) -> ImageDataset:
    """Shared body of folder: and zip:. `entries` are (posix relative name, reader) pairs, sorted.

    Every kept image is read and decoded here, so a bad file fails the load, never a later training step.
    num_classes counts the classes of the whole labelled set (max label + 1), also when max_items keeps a subset.
    """
    if not entries:
        raise ValueError(f"{where} holds no images with suffix {', '.join(IMAGE_SUFFIXES)}")
    names = [n for n, _ in entries]
    labels = _parse_labels_json(labels_json[1], labels_json[0], names) if labels_json else None
    num_classes = int(labels.max()) + 1 if labels is not None else None
    keep = seeded_subset(len(entries), max_items, seed)
    arrays = [_decode_image(entries[i][1](), f"{where}/{entries[i][0]}") for i in keep]
    images = _images_to_tensor(arrays, [names[i] for i in keep], resolution, where, f"{scheme}:{where}")
    if labels is not None:
        labels = labels[torch.as_tensor(keep)]
    return ImageDataset(images, labels, f"{name}-{images.shape[-1]}", num_classes=num_classes)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _read_file(path: Path) -> bytes:
    """The bytes of one dataset file; ValueError naming it when it cannot be read (permissions, I/O errors)."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def load_folder(path: Path, resolution: int | None, max_items: int | None, seed: int) -> ImageDataset:
    """Images under a folder (recursively, sorted by relative path) with an optional dataset.json."""
    if not path.is_dir():
        raise ValueError(f"folder dataset path must be a directory, got {path}")
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*")
                   if p.is_file() and _is_image_name(p.name))
    entries = [(rel, (lambda p=p: _read_file(p))) for rel, p in files]
    meta = path / "dataset.json"
    labels_json = (str(meta), _decode_text(_read_file(meta), str(meta))) if meta.is_file() else None
    return _load_image_collection(entries, labels_json, resolution, max_items, seed, str(path), path.name,
                                  "folder")


# What reading one zip member can raise: a bad CRC or header (BadZipFile), a corrupt deflate/bzip2/lzma stream
# (zlib.error, OSError, EOFError, ValueError), an unsupported compression method (NotImplementedError), or
# an encrypted member (RuntimeError).
_ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
                      RuntimeError)


def _read_member(archive: zipfile.ZipFile, path: Path, member: str) -> bytes:
    """The bytes of one zip member; ValueError naming the zip and the member when it cannot be extracted."""
    try:
        return archive.read(member)
    except _ZIP_MEMBER_ERRORS as error:
        raise ValueError(f"{path}: cannot read member {member!r} (corrupt or unsupported entry): "
                         f"{_error_name(error)}: {error}") from None


def load_zip(path: Path, resolution: int | None, max_items: int | None, seed: int) -> ImageDataset:
    """Images inside a zip (sorted by member name) with an optional dataset.json at its root."""
    if not path.is_file():
        raise ValueError(f"zip dataset path must be a .zip file, got {path}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path} is not a readable zip archive: {error}") from None
    with archive:
        members = sorted(n for n in archive.namelist() if not n.endswith("/") and _is_image_name(n))
        entries = [(m, (lambda m=m: _read_member(archive, path, m))) for m in members]
        labels_json = None
        if "dataset.json" in archive.namelist():
            source = f"{path}/dataset.json"
            labels_json = (source, _decode_text(_read_member(archive, path, "dataset.json"), source))
        return _load_image_collection(entries, labels_json, resolution, max_items, seed, str(path),
                                      path.stem, "zip")


# ----------------------------------------------------------------------------------------------------------
# The entry point


def _subset(images: Tensor, labels: Tensor | None, max_items: int | None,
            seed: int) -> tuple[Tensor, Tensor | None]:
    """The seeded `max_items` subset of a labelled set (everything when None)."""
    keep = torch.as_tensor(seeded_subset(len(images), max_items, seed))
    return images[keep], (labels[keep] if labels is not None else None)


def _stacked(base: Tensor, digit_labels: Tensor, max_items: int | None, seed: int, name: str) -> ImageDataset:
    """Stack three random base digits per item as RGB (1000 modes), labels 100*d0 + 10*d1 + d2."""
    count = STACKED_DEFAULT_ITEMS if max_items is None else max_items
    index = stack_triples(len(base), count, 3, seed)
    return ImageDataset(base, stacked_labels(digit_labels, index), name, stack_index=index, num_classes=1000)


def load_dataset(spec: str, resolution: int | None = None, *, max_items: int | None = None,
                 seed: int = 0) -> ImageDataset:
    """Load the dataset named by `spec` (see the module docstring for specs and resolution rules).

    resolution: None = the dataset's native size; else a power of two >= 4 to resize to.
    max_items:  stacked specs: how many stacked images (None = STACKED_DEFAULT_ITEMS); others: a seeded
                random subset of that size (None = everything).
    seed:       the seed of stacked triples and of the max_items subset.
    """
    scheme, argument = parse_spec(spec)
    if resolution is not None:
        require_resolution(resolution)
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1 or None, got {max_items}")

    if scheme in ("digits", "stacked-digits"):
        target = _spec_resolution(argument, resolution, spec) or 8
        images, labels = sklearn_digits()
        images = resize_images(images, target)
        if scheme == "digits":
            images, labels = _subset(images, labels, max_items, seed)
            return ImageDataset(images, labels, f"digits-{target}", num_classes=10)
        return _stacked(images, labels, max_items, seed, f"stacked-digits-{target}")

    path_text, from_spec = split_path_resolution(argument, spec)
    resolution = _reconcile_resolution(from_spec, resolution, spec)
    path = _existing(path_text, scheme)
    if scheme in ("mnist", "stackedmnist"):
        images, labels = _mnist_padded(path)
        images = resize_images(images, _final_resolution(images.shape[-1], resolution, spec))
        if scheme == "mnist":
            images, labels = _subset(images, labels, max_items, seed)
            return ImageDataset(images, labels, f"mnist-{images.shape[-1]}", num_classes=10)
        return _stacked(images, labels, max_items, seed, f"stackedmnist-{images.shape[-1]}")
    if scheme == "cifar10":
        images, labels = read_cifar10(path)
        images = resize_images(images, _final_resolution(32, resolution, spec))
        images, labels = _subset(images, labels, max_items, seed)
        return ImageDataset(images, labels, f"cifar10-{images.shape[-1]}", num_classes=10)
    if scheme == "folder":
        return load_folder(path, resolution, max_items, seed)
    return load_zip(path, resolution, max_items, seed)


def describe_schemes() -> str:
    """One line per scheme, for CLI help."""
    return "\n".join([
        "digits[:R]            scikit-learn's embedded 8x8 digits (R = 8 by default)",
        "stacked-digits[:R]    three embedded digits stacked as RGB, 1000 modes",
        "mnist:/folder         MNIST IDX files, padded to 32 px",
        "stackedmnist:/folder  three MNIST digits stacked as RGB, 32 px",
        "cifar10:/folder       CIFAR-10 python pickles (data_batch_1..5)",
        "folder:/folder        PNG/JPEG images (+ optional dataset.json labels)",
        "zip:/file.zip         the same inside a zip",
        "SPEC@R                any path spec above resized to R px, e.g. folder:/folder@64, zip:/file.zip@32",
    ])


__all__ = ["SCHEMES", "STACKED_DEFAULT_ITEMS", "ImageDataset", "load_dataset", "parse_spec",
           "split_path_resolution", "require_resolution", "resize_images", "pad_to", "sklearn_digits",
           "read_mnist", "parse_idx", "read_cifar10", "read_cifar_batch", "describe_schemes"]
