"""r3gan_core.data fails at load time, with a ValueError naming the file, on data a training run cannot use.

Every file is built here in tmp_path: empty MNIST / CIFAR-10 sets, zips with corrupt members, decompression
bombs (PIL's pixel limit lowered for the test), IDX headers whose sizes overflow int64, and mixed-size folders
resized through the 'folder:PATH@R' spec form that the command line uses.
"""

from __future__ import annotations

import io
import json
import pickle
import shlex
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from r3gan_core.cli import EXIT_BAD_INPUT, build_parser, main, train_config_from_args
from r3gan_core.data import (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, ImageDataset, describe_schemes, load_dataset,
                             parse_idx, seeded_subset, split_path_resolution)
from r3gan_core.training.config import load_data

# ----------------------------------------------------------------------------------------------------------
# Tiny file builders


def idx_file(shape: tuple[int, ...], magic: int, body: bytes) -> bytes:
    """An IDX file whose header claims `shape` (any uint32 dims) followed by `body`."""
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in shape) + body


def png(size: int, value: int = 128, rgb: bool = False) -> bytes:
    """A size x size PNG filled with `value` (grayscale or RGB)."""
    shape = (size, size, 3) if rgb else (size, size)
    buffer = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_pngs(folder: Path, sizes: dict[str, int]) -> Path:
    """PNG files name -> size in `folder` (created); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        (folder / name).write_bytes(png(size))
    return folder


def zip_with(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def member_data_offset(path: Path, member: str) -> tuple[int, int]:
    """(offset, length) of `member`'s stored (compressed) bytes inside the zip file at `path`."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def overwrite(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def assert_fails(match_parts: list[str], spec: str, *args, error: type[Exception] = ValueError, **kwargs) -> str:
    """load_dataset(spec, ...) raises `error` whose message contains every string in `match_parts`."""
    with pytest.raises(error) as info:
        load_dataset(spec, *args, **kwargs)
    message = str(info.value)
    for part in match_parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# ----------------------------------------------------------------------------------------------------------
# (a) empty sets, corrupt zip members, decompression bombs, undecodable images, label counts


@pytest.mark.parametrize("scheme", ["mnist", "stackedmnist"])
def test_mnist_with_zero_images_names_the_file(tmp_path, scheme):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_file((0, 28, 28), IDX_IMAGES_MAGIC, b""))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_file((0,), IDX_LABELS_MAGIC, b""))
    assert_fails([str(tmp_path / "train-images-idx3-ubyte"), "zero images"], f"{scheme}:{tmp_path}")


def test_mnist_with_zero_pixel_images_names_the_file(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_file((3, 0, 0), IDX_IMAGES_MAGIC, b""))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_file((3,), IDX_LABELS_MAGIC, bytes(3)))
    assert_fails([str(tmp_path / "train-images-idx3-ubyte"), "0 x 0 pixels"], f"mnist:{tmp_path}")


def test_cifar10_with_zero_images_names_the_batches(tmp_path):
    for k in (1, 2):
        with open(tmp_path / f"data_batch_{k}", "wb") as f:
            pickle.dump({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, f)
    assert_fails([str(tmp_path), "data_batch_1, data_batch_2", "zero images"], f"cifar10:{tmp_path}")


def test_zip_corrupt_deflate_member_names_zip_and_member(tmp_path):
    path = zip_with(tmp_path / "set.zip", {"a.png": png(8), "b.png": png(8, 9)})
    offset, _ = member_data_offset(path, "b.png")
    overwrite(path, offset, b"\xff" * 8)  # first deflate block header 0b11: a reserved (invalid) block type
    assert_fails([str(path), "'b.png'", "cannot read member", "error"], f"zip:{path}")


def test_zip_member_with_bad_crc_names_zip_and_member(tmp_path):
    path = zip_with(tmp_path / "set.zip", {"a.png": png(8), "b.png": png(8, 9)}, zipfile.ZIP_STORED)
    offset, length = member_data_offset(path, "a.png")
    overwrite(path, offset + length - 5, b"\x00\x01\x02")  # stored bytes change, the recorded CRC-32 does not
    assert_fails([str(path), "'a.png'", "CRC"], f"zip:{path}")


def test_zip_corrupt_dataset_json_names_the_member(tmp_path):
    labels = json.dumps({"labels": [["a.png", 0]]}).encode()
    path = zip_with(tmp_path / "set.zip", {"a.png": png(8), "dataset.json": labels})
    offset, _ = member_data_offset(path, "dataset.json")
    overwrite(path, offset, b"\xff" * 4)
    assert_fails([str(path), "'dataset.json'"], f"zip:{path}")


def test_dataset_json_that_is_not_utf8_names_the_file(tmp_path):
    folder = write_pngs(tmp_path / "f", {"a.png": 8})
    (folder / "dataset.json").write_bytes(b'{"labels": [["a.png", 0]], "x": "\xff\xfe"}')
    assert_fails([str(folder / "dataset.json"), "not UTF-8"], f"folder:{folder}")


def test_decompression_bomb_error_names_the_file(tmp_path, monkeypatch):
    folder = write_pngs(tmp_path / "f", {"ok.png": 4, "bomb.png": 8})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)  # 8x8 = 64 > 2 x 16: PIL raises DecompressionBombError
    assert_fails([str(folder / "bomb.png"), "decompression bomb"], f"folder:{folder}")


def test_decompression_bomb_warning_is_an_error_naming_the_file(tmp_path, monkeypatch):
    path = zip_with(tmp_path / "set.zip", {"ok.png": png(4), "big.png": png(5)})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)  # 5x5 = 25 in (16, 32]: PIL only warns
    assert_fails([f"{path}/big.png", "decompression bomb"], f"zip:{path}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 25)  # at the limit: no warning, the set loads
    assert load_dataset(f"zip:{path}", 4).images.shape == (2, 1, 4, 4)


def noise_png(size: int) -> bytes:
    """A size x size grayscale PNG of random pixels (its compressed data is about size**2 bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("name, data", [
    ("truncated.png", noise_png(16)[:120]),               # a valid header, the image data cut short
    ("garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(40)),     # a JPEG signature, nothing decodable after it
    ("empty.png", b""),
])
def test_undecodable_image_names_the_file(tmp_path, name, data):
    folder = write_pngs(tmp_path / "f", {"good.png": 8})
    (folder / name).write_bytes(data)
    assert_fails([str(folder / name), "cannot read image"], f"folder:{folder}")


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_num_classes_counts_every_label_in_dataset_json_not_just_the_subset(tmp_path, container):
    names = [f"img{i}.png" for i in range(6)]
    labels = {n: (7 if i == 5 else i % 2) for i, n in enumerate(names)}  # one image carries class 7
    meta = json.dumps({"labels": [[n, v] for n, v in labels.items()]}).encode()
    members = {**{n: png(8, 10 * i) for i, n in enumerate(names)}, "dataset.json": meta}
    if container == "zip":
        path = zip_with(tmp_path / "set.zip", members)
    else:
        path = tmp_path / "f"
        path.mkdir()
        for n, data in members.items():
            (path / n).write_bytes(data)
    full = load_dataset(f"{container}:{path}")
    assert full.num_classes == 8 and full.labels.tolist() == [0, 1, 0, 1, 0, 7]
    seed = next(s for s in range(100) if 5 not in seeded_subset(6, 3, s))  # a subset without the class-7 image
    subset = load_dataset(f"{container}:{path}", max_items=3, seed=seed)
    assert len(subset) == 3 and 7 not in subset.labels.tolist()
    assert subset.num_classes == 8


@pytest.mark.parametrize("bad", [1.5, "3", True, [0, 1], -1, 2**40, None])
def test_dataset_json_labels_must_be_whole_numbers(tmp_path, bad):
    folder = write_pngs(tmp_path / "f", {"a.png": 8, "b.png": 8})
    (folder / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0], ["b.png", bad]]}))
    assert_fails([str(folder / "dataset.json"), "'b.png'", "whole number"], f"folder:{folder}")


def test_dataset_json_whole_float_labels_are_accepted(tmp_path):
    folder = write_pngs(tmp_path / "f", {"a.png": 8, "b.png": 8})
    (folder / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0.0], ["b.png", 2.0]]}))
    ds = load_dataset(f"folder:{folder}")
    assert ds.labels.tolist() == [0, 2] and ds.num_classes == 3


def test_cli_train_on_a_corrupt_zip_fails_before_writing(tmp_path, capsys):
    path = zip_with(tmp_path / "set.zip", {"a.png": png(8), "b.png": png(8, 9)})
    offset, _ = member_data_offset(path, "b.png")
    overwrite(path, offset, b"\xff" * 8)
    out_dir = tmp_path / "run"
    code = main(["train", "--dataset", f"zip:{path}", "--out-dir", str(out_dir), "--device", "cpu",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.startswith("r3gan train: error: ") and str(path) in err and "'b.png'" in err
    assert "Traceback" not in err
    assert not out_dir.exists()  # the data check ran before the run folder was created


# ----------------------------------------------------------------------------------------------------------
# (b) IDX sizes computed with Python ints


def test_idx_huge_dims_report_exact_expected_and_found_bytes():
    dims = (2**31, 2**31, 2**31)  # 2**93 bytes: np.prod over int64 wraps this to 0
    with pytest.raises(ValueError) as info:
        parse_idx(idx_file(dims, IDX_IMAGES_MAGIC, b"\x00" * 5), IDX_IMAGES_MAGIC, "huge-idx")
    message = str(info.value)
    assert "huge-idx" in message and f"need {2**93:,} data bytes" in message and "found 5 " in message
    assert "truncated" in message
    with pytest.raises(ValueError, match=f"need {2**93:,} data bytes, found 0 "):
        parse_idx(idx_file(dims, IDX_IMAGES_MAGIC, b""), IDX_IMAGES_MAGIC, "huge-idx")


def test_idx_huge_dims_through_mnist_name_the_file(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_file((2**31,) * 3, IDX_IMAGES_MAGIC, bytes(5)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_file((1,), IDX_LABELS_MAGIC, bytes(1)))
    assert_fails([str(tmp_path / "train-images-idx3-ubyte"), f"{2**93:,}", "found 5"], f"mnist:{tmp_path}")


def test_idx_extra_bytes_are_reported_as_such():
    with pytest.raises(ValueError, match=r"labels-idx: IDX dims \(3,\) need 3 data bytes, found 5 \(extra bytes"):
        parse_idx(idx_file((3,), IDX_LABELS_MAGIC, bytes(5)), IDX_LABELS_MAGIC, "labels-idx")


# ----------------------------------------------------------------------------------------------------------
# (c) the resolution in the spec: 'folder:PATH@R' / 'zip:FILE@R'


def test_mixed_size_folder_resizes_through_the_spec_form(tmp_path):
    folder = write_pngs(tmp_path / "mixed", {"a.png": 8, "b.png": 16, "c.png": 32})
    ds = load_dataset(f"folder:{folder}@16")
    assert ds.images.shape == (3, 1, 16, 16) and ds.name == "mixed-16"
    assert load_dataset(f"folder:{folder}@16", 16).images.shape == (3, 1, 16, 16)  # both given, agreeing


def test_mixed_size_zip_resizes_through_the_spec_form(tmp_path):
    path = zip_with(tmp_path / "mixed.zip", {"a.png": png(8), "b.png": png(16)})
    assert load_dataset(f"zip:{path}@8").images.shape == (2, 1, 8, 8)


def test_mixed_size_error_names_both_ways_to_resize(tmp_path):
    folder = write_pngs(tmp_path / "mixed", {"a.png": 8, "b.png": 12})
    message = assert_fails(["mixed sizes", "8x8, 12x12", "resolution=16"], f"folder:{folder}")
    assert f"--dataset {shlex.quote(f'folder:{folder}@16')}" in message
    path = zip_with(tmp_path / "mixed.zip", {"a.png": png(8), "b.png": png(12)})
    message = assert_fails(["mixed sizes", "resolution=16"], f"zip:{path}")
    assert f"--dataset {shlex.quote(f'zip:{path}@16')}" in message
    assert load_dataset(f"folder:{folder}@16").images.shape == (2, 1, 16, 16)  # and the suggestion works


def test_non_power_of_two_error_names_both_ways_to_resize(tmp_path):
    folder = write_pngs(tmp_path / "odd", {"a.png": 28})
    message = assert_fails(["native size 28", "resolution=32"], f"folder:{folder}")
    assert f"--dataset {shlex.quote(f'folder:{folder}@32')}" in message
    assert load_dataset(f"folder:{folder}@32").images.shape == (1, 1, 32, 32)


def test_spec_form_is_what_the_command_line_trains_on(tmp_path, capsys):
    folder = write_pngs(tmp_path / "mixed", {"a.png": 8, "b.png": 16})
    cfg = train_config_from_args(build_parser().parse_args(["train", "--dataset", f"folder:{folder}@8"]))
    assert load_data(cfg).images.shape == (2, 1, 8, 8)  # what `r3gan train` loads, no training started
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "folder:/path@64" in capsys.readouterr().out  # documented in --dataset's help
    assert "folder:/folder@64" in describe_schemes()


def test_dataset_labels_must_fit_the_given_num_classes():
    images = torch.zeros(2, 1, 4, 4)
    assert ImageDataset(images, torch.tensor([0, 2]), "x").num_classes == 3
    assert ImageDataset(images, torch.tensor([0, 2]), "x", num_classes=10).num_classes == 10
    with pytest.raises(ValueError, match="x: label 2 does not fit num_classes=2"):
        ImageDataset(images, torch.tensor([0, 2]), "x", num_classes=2)


def test_spec_form_resolution_errors(tmp_path):
    folder = write_pngs(tmp_path / "f", {"a.png": 8})
    assert_fails([f"folder:{folder}@24", "after '@'", "power of two"], f"folder:{folder}@24")
    assert_fails(["says resolution 8 but resolution=16"], f"folder:{folder}@8", 16)
    assert_fails([str(tmp_path / "missing")], f"folder:{tmp_path / 'missing'}@8", error=FileNotFoundError)


def test_spec_form_keeps_an_existing_path_that_ends_in_at_digits(tmp_path):
    folder = write_pngs(tmp_path / "faces@64", {"a.png": 8})
    assert split_path_resolution(str(folder), "spec") == (str(folder), None)
    assert load_dataset(f"folder:{folder}").images.shape == (1, 1, 8, 8)
    assert split_path_resolution(f"{tmp_path}/other@64", "spec") == (f"{tmp_path}/other", 64)
    assert split_path_resolution(f"{tmp_path}/x@abc", "spec") == (f"{tmp_path}/x@abc", None)
