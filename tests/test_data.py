"""r3gan_core.data: every spec round-trips tiny files built here, and every bad input fails with a clear error."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from r3gan_core.data import (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, SCHEMES, STACKED_DEFAULT_ITEMS, ImageDataset,
                             load_dataset, pad_to, parse_idx, require_resolution, resize_images)

# ----------------------------------------------------------------------------------------------------------
# Builders of tiny files


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, one uint32 per dimension, then the uint8 data."""
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_arrays(n: int = 6, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def write_mnist(folder: Path, compress: bool, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    images, labels = mnist_arrays(n)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("train-images-idx3-ubyte", idx_bytes(images, IDX_IMAGES_MAGIC)),
                       ("train-labels-idx1-ubyte", idx_bytes(labels, IDX_LABELS_MAGIC))):
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


def write_cifar(folder: Path, batches: int = 2, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python batches: dicts with b'data' (N x 3072 uint8, R then G then B planes) and b'labels'."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    all_data, all_labels = [], []
    for k in range(1, batches + 1):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / f"data_batch_{k}", "wb") as f:
            pickle.dump({b"batch_label": b"training batch", b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * n}, f)
        all_data.append(data)
        all_labels += labels
    return np.concatenate(all_data), np.array(all_labels)


def png_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def folder_images(n: int = 4, size: int = 8, rgb: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    shape = (size, size, 3) if rgb else (size, size)
    return {f"img{i:02d}.png": rng.integers(0, 256, shape, dtype=np.uint8) for i in range(n)}


def write_folder(folder: Path, images: dict[str, np.ndarray], labels: dict[str, int] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in images.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(png_bytes(array))
    if labels is not None:
        (folder / "dataset.json").write_text(json.dumps({"labels": [[k, v] for k, v in labels.items()]}))


def tree_digest(root: Path) -> str:
    """A hash of every file's path, bytes and mtime under root: detects any modification."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes() + str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


def load_read_only(spec: str, root: Path, *args, **kwargs) -> ImageDataset:
    """`load_dataset(spec, ...)`, asserting that it created or changed no file under `root` (user files untouched)."""
    before = tree_digest(root)
    ds = load_dataset(spec, *args, **kwargs)
    assert tree_digest(root) == before
    return ds


def assert_load_fails(error: type[Exception], match: str, *args, **kwargs) -> None:
    """`load_dataset(*args, **kwargs)` must raise `error` with a message matching the regex `match`."""
    with pytest.raises(error, match=match):
        load_dataset(*args, **kwargs)


def to_unit(pixels: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(pixels.astype(np.float32) / 255.0 * 2 - 1)


# ----------------------------------------------------------------------------------------------------------
# Embedded digits


def test_digits_default_values_shape_labels():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    bunch = load_digits()
    assert isinstance(ds, ImageDataset) and len(ds) == 1797
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == torch.float32
    assert (ds.channels, ds.resolution, ds.num_classes, ds.name) == (1, 8, 10, "digits-8")
    expected = torch.as_tensor(bunch.images, dtype=torch.float32) / 16 * 2 - 1
    torch.testing.assert_close(ds.images[:, 0], expected)
    assert ds.images.min() == -1 and ds.images.max() == 1
    assert torch.equal(ds.labels, torch.as_tensor(bunch.target))
    image, label = ds[5]
    assert image.shape == (1, 8, 8) and label == int(bunch.target[5])


def test_digits_resolution_from_spec_or_argument():
    a, b = load_dataset("digits:16"), load_dataset("digits", 16)
    assert a.images.shape == (1797, 1, 16, 16) and torch.equal(a.images, b.images)
    assert a.images.min() >= -1 and a.images.max() <= 1
    assert_load_fails(ValueError, "resolution 16 but resolution=32", "digits:16", 32)
    assert_load_fails(ValueError, "expected a resolution", "digits:big")


def test_digits_max_items_is_a_seeded_subset():
    a, b = load_dataset("digits", max_items=100, seed=3), load_dataset("digits", max_items=100, seed=3)
    c = load_dataset("digits", max_items=100, seed=4)
    assert len(a) == 100 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_stacked_digits_channels_are_digits_and_labels_are_triples():
    base = load_dataset("digits:16")
    ds = load_dataset("stacked-digits:16", max_items=500, seed=7)
    assert len(ds) == 500 and ds.images.shape == (500, 3, 16, 16)
    assert (ds.channels, ds.resolution, ds.num_classes) == (3, 16, 1000)
    # Every channel of every item is one of the base digits, and the label reads the three digits in order.
    for i in range(0, 500, 37):
        image, label = ds[i]
        digits = []
        for c in range(3):
            matches = (base.images[:, 0] == image[c]).flatten(1).all(1).nonzero().flatten()
            assert len(matches) >= 1
            digits.append(int(base.labels[matches[0]]))
        assert label == 100 * digits[0] + 10 * digits[1] + digits[2]
        assert torch.equal(image, ds.images[i])
    assert ds.labels.min() >= 0 and ds.labels.max() < 1000


def test_stacked_digits_deterministic_default_count_and_sample():
    a, b = load_dataset("stacked-digits", seed=1), load_dataset("stacked-digits", seed=1)
    assert len(a) == STACKED_DEFAULT_ITEMS and a.resolution == 8
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, load_dataset("stacked-digits", seed=2).labels)
    images, labels = a.sample(16, torch.Generator().manual_seed(0))
    again, labels_again = a.sample(16, torch.Generator().manual_seed(0))
    assert images.shape == (16, 3, 8, 8) and labels.shape == (16,)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    # 16 random items carry the labels of the composed images
    full = a.images
    assert full.shape == (STACKED_DEFAULT_ITEMS, 3, 8, 8)


def test_sample_without_labels_gives_minus_one(tmp_path):
    write_folder(tmp_path / "f", folder_images())
    ds = load_dataset(f"folder:{tmp_path / 'f'}")
    images, labels = ds.sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 8, 8) and torch.equal(labels, torch.full((5,), -1))
    assert ds[0][1] == -1 and ds.labels is None and ds.num_classes == 0


@pytest.mark.parametrize("bad", [0, 2, 3, 12, 24, -8, 2.0, True])
def test_resolution_must_be_a_power_of_two_at_least_4(bad):
    assert_load_fails(ValueError, "power of two >= 4", "digits", bad)
    with pytest.raises(ValueError, match="power of two"):
        require_resolution(bad)


def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        load_dataset("imagenet:/data")
    for scheme in SCHEMES:
        assert repr(scheme) in str(info.value)


@pytest.mark.parametrize("scheme", ["mnist", "stackedmnist", "cifar10", "folder", "zip"])
def test_missing_path(tmp_path, scheme):
    assert_load_fails(FileNotFoundError, "does not exist", f"{scheme}:{tmp_path / 'nothing here'}")
    assert_load_fails(ValueError, "needs a path", f"{scheme}:")


def test_resize_and_pad_helpers():
    x = torch.full((2, 1, 8, 8), 0.5)
    assert torch.allclose(resize_images(x, 16), torch.full((2, 1, 16, 16), 0.5))
    padded = pad_to(torch.zeros(1, 1, 28, 28), 32)
    assert padded.shape == (1, 1, 32, 32)
    assert (padded[..., 2:30, 2:30] == 0).all()
    assert padded[..., :2, :].eq(-1).all() and padded[..., 30:, :].eq(-1).all() and padded[..., :2].eq(-1).all()


# ----------------------------------------------------------------------------------------------------------
# MNIST IDX


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_round_trip_padded_to_32(tmp_path, compress):
    images, labels = write_mnist(tmp_path / "mnist", compress)
    ds = load_read_only(f"mnist:{tmp_path / 'mnist'}", tmp_path)
    assert ds.images.shape == (6, 1, 32, 32) and ds.name == "mnist-32" and ds.num_classes == 10
    torch.testing.assert_close(ds.images[:, 0, 2:30, 2:30], to_unit(images))
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (ds.images[:, 0][:, border] == -1).all()  # padding is the background value
    assert torch.equal(ds.labels, torch.as_tensor(labels.astype(np.int64)))


def test_mnist_resize_and_stackedmnist(tmp_path):
    images, labels = write_mnist(tmp_path / "m", compress=True)
    small = load_dataset(f"mnist:{tmp_path / 'm'}", 16)
    assert small.images.shape == (6, 1, 16, 16)
    ds = load_dataset(f"stackedmnist:{tmp_path / 'm'}", max_items=40, seed=0)
    assert ds.images.shape == (40, 3, 32, 32) and ds.num_classes == 1000 and ds.name == "stackedmnist-32"
    single = load_dataset(f"mnist:{tmp_path / 'm'}")
    for i in range(40):
        image, label = ds[i]
        digits = []
        for c in range(3):
            j = int((single.images[:, 0] == image[c]).flatten(1).all(1).nonzero()[0])
            digits.append(int(labels[j]))
        assert label == 100 * digits[0] + 10 * digits[1] + digits[2]


def test_mnist_wrong_magic(tmp_path):
    write_mnist(tmp_path, compress=False)
    images, _ = mnist_arrays()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images, 0x00000804))
    assert_load_fails(ValueError, "magic number", f"mnist:{tmp_path}")


def test_mnist_labels_file_in_images_place(tmp_path):
    write_mnist(tmp_path, compress=False)
    labels = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(labels)
    assert_load_fails(ValueError, "expected 0x00000803", f"mnist:{tmp_path}")


def test_mnist_truncated(tmp_path):
    write_mnist(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    assert_load_fails(ValueError, "truncated", f"mnist:{tmp_path}")
    with pytest.raises(ValueError, match="too short"):
        parse_idx(b"\x00\x00", IDX_IMAGES_MAGIC, "x")


def test_mnist_corrupt_gzip(tmp_path):
    write_mnist(tmp_path, compress=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    assert_load_fails(ValueError, "corrupt gzip", f"mnist:{tmp_path}")


def test_mnist_missing_labels_and_count_mismatch(tmp_path):
    write_mnist(tmp_path, compress=False)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    assert_load_fails(FileNotFoundError, "train-labels-idx1-ubyte", f"mnist:{tmp_path}")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8), IDX_LABELS_MAGIC))
    assert_load_fails(ValueError, "6 images but .* 3 labels", f"mnist:{tmp_path}")


def test_mnist_path_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    assert_load_fails(ValueError, "folder", f"mnist:{tmp_path / 'file'}")


# ----------------------------------------------------------------------------------------------------------
# CIFAR-10 pickles


def test_cifar10_round_trip(tmp_path):
    data, labels = write_cifar(tmp_path / "c", batches=2)
    (tmp_path / "c" / "test_batch").write_bytes(b"ignored")  # the test batch is not read
    ds = load_read_only(f"cifar10:{tmp_path / 'c'}", tmp_path)
    assert ds.images.shape == (8, 3, 32, 32) and ds.num_classes == 10 and ds.name == "cifar10-32"
    torch.testing.assert_close(ds.images, to_unit(data.reshape(-1, 3, 32, 32)))
    # channel-major layout: the first 1024 values are the red plane
    torch.testing.assert_close(ds.images[0, 0].flatten(), to_unit(data[0, :1024]))
    assert torch.equal(ds.labels, torch.as_tensor(labels))
    assert load_read_only(f"cifar10:{tmp_path / 'c'}", tmp_path, 8).images.shape == (8, 3, 8, 8)


def test_cifar10_bad_pickles(tmp_path):
    write_cifar(tmp_path, batches=1)
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"this is not a pickle")
    assert_load_fails(ValueError, "not a readable CIFAR-10 pickle", f"cifar10:{tmp_path}")
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    assert_load_fails(ValueError, "b'labels'", f"cifar10:{tmp_path}")
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    assert_load_fails(ValueError, "N x 3072", f"cifar10:{tmp_path}")
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}))
    assert_load_fails(ValueError, "labels of shape", f"cifar10:{tmp_path}")


class _Sneaky:
    """A pickle that would call a function when loaded: the loader must refuse it."""

    def __reduce__(self):
        return (print, ("this should never run",))


def test_cifar10_refuses_code_in_pickles(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": _Sneaky(), b"labels": []}))
    assert_load_fails(ValueError, "refusing to load builtins.print", f"cifar10:{tmp_path}")


def test_cifar10_no_batches(tmp_path):
    (tmp_path / "test_batch").write_bytes(b"x")
    assert_load_fails(FileNotFoundError, "data_batch_1", f"cifar10:{tmp_path}")


# ----------------------------------------------------------------------------------------------------------
# Folders and zips


def test_folder_grayscale_with_labels(tmp_path):
    images = folder_images(4)
    labels = {name: i % 3 for i, name in enumerate(images)}
    write_folder(tmp_path / "f", images, labels)
    ds = load_read_only(f"folder:{tmp_path / 'f'}", tmp_path)
    assert ds.images.shape == (4, 1, 8, 8) and ds.num_classes == 3
    torch.testing.assert_close(ds.images[:, 0], to_unit(np.stack(list(images.values()))))
    assert ds.labels.tolist() == [0, 1, 2, 0]


def test_folder_rgb_recursive_and_resized(tmp_path):
    images = folder_images(3, size=16, rgb=True)
    images = {f"sub/{k}" if i == 1 else k: v for i, (k, v) in enumerate(images.items())}
    write_folder(tmp_path, images)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.images.shape == (3, 3, 16, 16)
    by_name = sorted(images)  # sorted relative posix paths
    expected = to_unit(images["sub/img01.png"]).permute(2, 0, 1)
    torch.testing.assert_close(ds.images[by_name.index("sub/img01.png")], expected)
    assert load_dataset(f"folder:{tmp_path}", 8).images.shape == (3, 3, 8, 8)


def test_folder_mixed_sizes_need_a_resolution(tmp_path):
    write_folder(tmp_path, {"a.png": np.zeros((8, 8), np.uint8), "b.png": np.zeros((16, 16), np.uint8)})
    assert_load_fails(ValueError, "mixed sizes .*8x8, 16x16.*resolution", f"folder:{tmp_path}")
    assert load_dataset(f"folder:{tmp_path}", 8).images.shape == (2, 1, 8, 8)


def test_folder_non_power_of_two_needs_a_resolution(tmp_path):
    write_folder(tmp_path, {"a.png": np.zeros((28, 28), np.uint8)})
    assert_load_fails(ValueError, "native size 28.*resolution=.*32", f"folder:{tmp_path}")
    assert load_dataset(f"folder:{tmp_path}", 32).images.shape == (1, 1, 32, 32)


def test_folder_wrong_shape_corrupt_empty_and_unlabelled(tmp_path):
    write_folder(tmp_path / "wide", {"a.png": np.zeros((8, 16), np.uint8)})
    assert_load_fails(ValueError, "must be square", f"folder:{tmp_path / 'wide'}", 8)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG not really")
    assert_load_fails(ValueError, "cannot read image .*x.png", f"folder:{tmp_path / 'bad'}")
    (tmp_path / "empty").mkdir()
    assert_load_fails(ValueError, "holds no images", f"folder:{tmp_path / 'empty'}")
    write_folder(tmp_path / "partial", folder_images(2), {"img00.png": 1})
    assert_load_fails(ValueError, "no label for 1 image.*img01.png", f"folder:{tmp_path / 'partial'}")
    write_folder(tmp_path / "badjson", folder_images(1))
    (tmp_path / "badjson" / "dataset.json").write_text("{not json")
    assert_load_fails(ValueError, "not valid JSON", f"folder:{tmp_path / 'badjson'}")


def test_zip_round_trip_with_labels(tmp_path):
    images = folder_images(5, rgb=True)
    labels = {name: i for i, name in enumerate(images)}
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in images.items():
            archive.writestr(name, png_bytes(array))
        archive.writestr("dataset.json", json.dumps({"labels": [[k, v] for k, v in labels.items()]}))
        archive.writestr("notes.txt", "not an image")
    ds = load_read_only(f"zip:{path}", tmp_path)
    assert ds.images.shape == (5, 3, 8, 8) and ds.labels.tolist() == [0, 1, 2, 3, 4] and ds.name == "set-8"
    torch.testing.assert_close(ds.images, to_unit(np.stack(list(images.values()))).permute(0, 3, 1, 2))
    subset = load_read_only(f"zip:{path}", tmp_path, max_items=2, seed=0)
    assert len(subset) == 2 and subset.labels.tolist() == sorted(subset.labels.tolist())


def test_zip_corrupt(tmp_path):
    path = tmp_path / "bad.zip"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    assert_load_fails(ValueError, "not a readable zip", f"zip:{path}")
    assert_load_fails(ValueError, ".zip file", f"zip:{tmp_path}")
