"""Figures a reader can read: the text size each notebook PNG records, and stacked samples split into digits."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from r3gan_core.book import plotting  # noqa: E402
from r3gan_core.data import is_stacked, load_dataset  # noqa: E402
from r3gan_core.sampling import split_stacked  # noqa: E402


def test_min_text_px_is_the_smallest_visible_font_in_pixels_at_the_figure_dpi():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
    ax.set_title("title", fontsize=14)
    ax.tick_params(labelsize=9)
    ax.text(0.5, 0.5, "note", fontsize=6)
    hidden = ax.text(0.1, 0.1, "hidden", fontsize=2)
    hidden.set_visible(False)
    ax.text(0.2, 0.2, "   ", fontsize=1)  # blank text is not seen
    assert plotting.min_text_px(fig) == pytest.approx(6 * 100 / 72)
    fig.set_dpi(200)
    assert plotting.min_text_px(fig) == pytest.approx(6 * 200 / 72)
    plt.close(fig)


def test_figure_png_records_the_text_size_in_a_png_text_chunk():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=8)
    with Image.open(io.BytesIO(plotting.figure_png(fig))) as image:
        recorded = float(image.info[plotting.TEXT_PX_KEY])
        width = image.size[0]
    plt.close(fig)
    assert recorded == pytest.approx(8 * 100 / 72, abs=0.01)
    assert 250 < width < 320  # the tight box of a 3-inch figure at 100 dpi: the size the reader's scale refers to


def test_split_stacked_puts_each_channel_side_by_side():
    images = load_dataset("stacked-digits", max_items=5).images
    split = split_stacked(images)
    n, c, h, w = images.shape
    assert split.shape == (n, 1, h, c * w)
    for i in range(c):
        assert torch.equal(split[:, 0, :, i * w:(i + 1) * w], images[:, i])
    gapped = split_stacked(images, gap=2)
    assert gapped.shape == (n, 1, h, c * w + 2 * (c - 1))
    assert torch.all(gapped[:, 0, :, w:w + 2] == 1.0)  # white
    with pytest.raises(ValueError, match="N x C x H x W"):
        split_stacked(images[0])


def test_is_stacked_names_the_stacked_schemes_only():
    assert is_stacked("stacked-digits") and is_stacked("stacked-digits:16") and is_stacked("stackedmnist:/data")
    assert not is_stacked("digits") and not is_stacked("cifar10:/data")
    with pytest.raises(ValueError, match="dataset scheme"):
        is_stacked("stacked")
