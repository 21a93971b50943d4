"""Inception metrics through torch-fidelity, from a weights file on disk; checked without the real weights.

r3gan_core reads Inception-v3 features with torch-fidelity's own extractor (`evaluate.inception_features`, the one
step that needs the real weights) and turns them into FID / KID / precision-recall with torch-fidelity's own
functions (`evaluate.inception_scores`). Here the extraction step is replaced by a fixed random projection of the
pixels, so that torch-fidelity's arithmetic can be checked against r3gan_core's frechet.py / kid.py /
precision_recall.py on the very same features, and against torch_fidelity.calculate_metrics itself. The real
extractor is checked on a weights file of random Inception-v3 weights: it must read that file and never download.

Without torch-fidelity, the tests that need it skip; the rest (messages, fallbacks, the arithmetic r3gan_core
compares against) run anyway. torch-fidelity imports torchvision at import time, for extractors and datasets that
the Inception path never uses; where torchvision is not installed (no CPU build of it exists for this torch on the
project's package index), the `torch_fidelity` fixture lends it an empty stand-in for the duration of this module.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from r3gan_core.book import experiments
from r3gan_core.book.profiles import CHAPTERS, chapter_profiles, chapter_settings
from r3gan_core.cli import EXIT_BAD_INPUT, main
from r3gan_core.data import load_dataset
from r3gan_core.metrics import evaluate as ev
from r3gan_core.metrics.frechet import frechet_distance_features
from r3gan_core.metrics.kid import kernel_distance
from r3gan_core.metrics.precision_recall import precision_recall

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INSTALL = "pip install 'r3gan-core[inception]'"
PROJECTION_SEED, PROJECTION_DIM = 1234, 24
TINY_TRAIN = ["train", "--config", "E", "--preset", "stacked8", "--batch", "8", "--log-every", "8", "--no-progress",
              "--device", "cpu", "--network", "widths=16,16", "--max-items", "2000", "--total-images", "16"]


# ---------------------------------------------------------------------------------------------------------
# Stand-ins: projection features, image sets, weights files, a world without torch-fidelity
# ---------------------------------------------------------------------------------------------------------
def project_uint8(x: Tensor) -> Tensor:
    """Fixed random projection of uint8 RGB images N x 3 x H x W to PROJECTION_DIM features (float32)."""
    pixels = x.flatten(1).to(torch.float64) / 255.0
    weights = torch.randn(pixels.shape[1], PROJECTION_DIM, generator=torch.Generator().manual_seed(PROJECTION_SEED),
                          dtype=torch.float64)
    return torch.tanh(pixels @ weights / pixels.shape[1] ** 0.5).to(torch.float32)


def projection_features(images) -> Tensor:
    """What the tests use for Inception features: the projection of the uint8 RGB images torch-fidelity sees."""
    return project_uint8(ev._uint8_rgb(ev.as_images(images, "images")))


class FakeExtraction:
    """Replaces evaluate.inception_features: projection features, and a record of the weights path it was given."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, image_sets, weights_path, *, device="cpu", batch_size=64):
        self.paths.append(str(weights_path))
        return [projection_features(x) for x in image_sets]


def image_sets(n_real: int = 100, n_fake: int = 100, channels: int = 3, size: int = 8) -> tuple[Tensor, Tensor]:
    """Seeded real and fake images in [-1, 1] from two different distributions."""
    gen = torch.Generator().manual_seed(5)
    real = torch.rand(n_real, channels, size, size, generator=gen) * 2 - 1
    fake = (torch.rand(n_fake, channels, size, size, generator=gen) * 1.6 - 0.6).clamp(-1, 1)
    return real, fake


@pytest.fixture
def hub(monkeypatch, tmp_path) -> Path:
    """An empty torch hub and no $R3GAN_INCEPTION_WEIGHTS: no weights anywhere unless a test puts them there."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.delenv("R3GAN_INCEPTION_WEIGHTS", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def weights_file(tmp_path) -> Path:
    """A file of the right name (its bytes are never read where the extraction is replaced)."""
    path = tmp_path / "weights" / WEIGHTS_FILE
    path.parent.mkdir()
    path.write_bytes(b"stand-in: the tests that use this file replace the feature extraction")
    return path


@pytest.fixture
def no_torch_fidelity(monkeypatch):
    """importlib.util.find_spec answers that torch-fidelity is not installed."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "torch_fidelity" else real_find_spec(name, *a, **k))


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    """Empty torchvision modules with the names torch-fidelity imports at import time."""
    modules = {name: types.ModuleType(name) for name in
               ("torchvision", "torchvision.datasets", "torchvision.transforms", "torchvision.transforms.functional",
                "torchvision.models")}
    root = modules["torchvision"]
    root.__path__ = []
    root.datasets, root.transforms, root.models = (modules["torchvision.datasets"], modules["torchvision.transforms"],
                                                    modules["torchvision.models"])
    root.transforms.functional = modules["torchvision.transforms.functional"]
    for name in ("CIFAR10", "CIFAR100", "STL10"):
        setattr(root.datasets, name, type(name, (), {}))
    return modules


@pytest.fixture(scope="module")
def torch_fidelity():
    """torch_fidelity, imported (with the torchvision stand-in if torchvision is absent); skip when not installed."""
    if importlib.util.find_spec("torch_fidelity") is None:
        pytest.skip("torch-fidelity is not installed (pip install 'r3gan-core[inception]', or ci/setup.sh)")
    before = set(sys.modules)
    lent = {}
    try:
        module = importlib.import_module("torch_fidelity")
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != "torchvision":
            pytest.skip(f"torch-fidelity does not import: {err}")
        for name in [n for n in sys.modules if n.split(".")[0] in ("torch_fidelity", "torchvision")]:
            del sys.modules[name]
        lent = _torchvision_stand_in()
        sys.modules.update(lent)
        module = importlib.import_module("torch_fidelity")
    yield module
    for name in set(sys.modules) - before:
        if name.split(".")[0] in ("torch_fidelity", "torchvision"):
            del sys.modules[name]
    for name in lent:
        sys.modules.pop(name, None)


# ---------------------------------------------------------------------------------------------------------
# Where the weights file is, and what is said when it or torch-fidelity is missing (no torch-fidelity needed)
# ---------------------------------------------------------------------------------------------------------
def test_a_missing_weights_file_is_named_with_where_to_put_it(hub, tmp_path):
    missing = tmp_path / "nowhere" / WEIGHTS_FILE
    with pytest.raises(ev.InceptionUnavailable) as given:
        ev.find_inception_weights(missing)
    with pytest.raises(ev.InceptionUnavailable) as searched:
        ev.find_inception_weights()
    for message in (str(given.value), str(searched.value)):
        assert WEIGHTS_FILE in message and "pt_inception-2015-12-05" in message
        assert "--inception-weights PATH" in message and f"{hub}/" in message
        assert "never downloads" in message
    assert f"not found: {missing} is not a file" in str(given.value)
    assert f"{hub}/ has none" in str(searched.value)


def test_the_weights_file_is_looked_up_in_order(hub, monkeypatch, tmp_path):
    in_hub = hub / WEIGHTS_FILE
    in_hub.parent.mkdir(parents=True)
    in_hub.write_bytes(b"")
    assert ev.find_inception_weights() == in_hub == ev.find_inception_weights("auto")
    elsewhere = tmp_path / "mine.pth"
    elsewhere.write_bytes(b"")
    monkeypatch.setenv("R3GAN_INCEPTION_WEIGHTS", str(elsewhere))
    assert ev.find_inception_weights() == elsewhere  # the variable before torch hub's folder
    given = tmp_path / "given.pth"
    given.write_bytes(b"")
    assert ev.find_inception_weights(given) == given  # a path given before both
    with pytest.raises(ev.InceptionUnavailable, match="not found"):  # a path given is never swapped for another file
        ev.find_inception_weights(tmp_path / "typo.pth")
    monkeypatch.setenv("R3GAN_INCEPTION_WEIGHTS", str(tmp_path / "gone.pth"))
    with pytest.raises(ev.InceptionUnavailable, match=r"\$R3GAN_INCEPTION_WEIGHTS not found"):
        ev.find_inception_weights()


def test_without_torch_fidelity_the_message_names_the_install(no_torch_fidelity, hub, weights_file):
    with pytest.raises(ev.InceptionUnavailable) as err:
        ev.inception_ready(weights_file)
    message = str(err.value)
    assert "torch-fidelity, which is not installed" in message and INSTALL in message
    assert WEIGHTS_FILE not in message  # the file is there: only what is missing is named
    with pytest.raises(ev.InceptionUnavailable, match="not installed"):
        ev.inception_metrics(*image_sets(10, 10), weights_path=weights_file)
    with pytest.raises(ev.InceptionUnavailable) as both:  # file and package missing: both are said
        ev.inception_ready()
    assert INSTALL in str(both.value) and WEIGHTS_FILE in str(both.value) and f"{hub}/" in str(both.value)


def test_a_torch_fidelity_that_does_not_import_is_reported(monkeypatch, weights_file):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: object() if name == "torch_fidelity" else real_find_spec(name, *a, **k))
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # `import torch_fidelity` raises ImportError
    with pytest.raises(ev.InceptionUnavailable) as err:
        ev.inception_ready(weights_file)
    assert "installed but could not be imported" in str(err.value) and "torchvision" in str(err.value)


def test_images_reach_torch_fidelity_as_uint8_rgb():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]).reshape(1, 1, 2, 3)
    out = ev._uint8_rgb(x)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 2, 3)
    assert out[0, 0].flatten().tolist() == [0, 64, 128, 191, 255, 255]  # (x + 1) * 127.5, rounded, clamped
    assert torch.equal(out[0, 0], out[0, 2])  # grayscale replicated
    rgb = torch.rand(2, 3, 4, 4) * 2 - 1
    assert torch.equal(ev._uint8_rgb(rgb)[:, 1], ev._uint8_rgb(rgb[:, 1:2])[:, 0])  # colour channels kept apart


# ---------------------------------------------------------------------------------------------------------
# The arithmetic r3gan_core checks torch-fidelity against (no torch-fidelity needed)
# ---------------------------------------------------------------------------------------------------------
def test_our_frechet_distance_equals_the_eigenvalue_formula_of_fid_code():
    """FID code (TTUR, torch-fidelity) takes Tr((S1 S2)^(1/2)) as the sum of the square roots of the eigenvalues of
    the non-symmetric S1 S2; frechet.py takes it through a symmetric product. Same number on projection features."""
    real, fake = (projection_features(x).double().numpy() for x in image_sets(150, 120))
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    trace_root = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(np.complex128)).real.sum()
    reference = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * trace_root)
    assert reference > 1e-3
    assert frechet_distance_features(real, fake) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance_features(real, real) == pytest.approx(0.0, abs=1e-9)


def test_our_kid_on_whole_sets_is_the_unbiased_mmd_of_the_cubic_kernel():
    """One subset of all rows is a permutation of each set: the estimate is then exactly the unbiased MMD^2, written
    here sum by sum, so any subset choice that covers whole sets (torch-fidelity's too) must give this number."""
    real, fake = (projection_features(x).double().numpy() for x in image_sets(40, 40))
    d = real.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    m = len(real)
    xx = sum(k(real[i], real[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(fake[i], fake[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(real[i], fake[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kernel_distance(real, fake, num_subsets=3, subset_size=m)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)
    assert abs(xx + yy - 2 * xy) > 1e-4


# ---------------------------------------------------------------------------------------------------------
# torch-fidelity's path on the same features (needs torch-fidelity)
# ---------------------------------------------------------------------------------------------------------
def test_torch_fidelity_arithmetic_equals_ours_on_the_same_features(torch_fidelity, weights_file, monkeypatch):
    extraction = FakeExtraction()
    monkeypatch.setattr(ev, "inception_features", extraction)
    real, fake = image_sets(100, 100)
    got = ev.inception_metrics(real, fake, weights_path=weights_file, kid_subsets=1, kid_subset_size=100,
                               pr_samples=None, seed=0, device="cpu")
    assert extraction.paths == [str(weights_file)]  # the file given is the file the features are read with
    real_f, fake_f = projection_features(real), projection_features(fake)
    fid = frechet_distance_features(real_f, fake_f)
    assert fid > 1e-2 and got["fid"] == pytest.approx(fid, rel=1e-6)
    kid, _ = kernel_distance(real_f, fake_f, num_subsets=1, subset_size=100)  # whole sets: the subsets align
    # torch-fidelity sums float32 kernel matrices (measured 8e-6 relative here); ours are float64
    assert kid > 1e-3 and got["kid"] == pytest.approx(kid, rel=5e-5) and got["kid_std"] == 0.0
    pr = precision_recall(real_f, fake_f)
    assert 0 < pr["precision"] < 1 and 0 < pr["recall"] < 1
    # torch-fidelity averages in float32: the counts agree, the fractions to float32 rounding
    assert (got["precision"], got["recall"]) == pytest.approx((pr["precision"], pr["recall"]), abs=1e-6)
    assert got["num_real"] == got["num_fake"] == got["inception_pr_samples"] == 100
    assert "prc" in got["inception_pr_source"] or "r3gan_core" in got["inception_pr_source"]
    assert got["inception_weights"] == str(weights_file) and "Inception-v3" in got["inception_feature_space"]


def test_torch_fidelity_kid_over_subsets_agrees_with_ours_within_sampling_error(torch_fidelity, weights_file,
                                                                               monkeypatch):
    """Different subsets (torch-fidelity's RandomState, our default_rng): the means differ by subset sampling only."""
    monkeypatch.setattr(ev, "inception_features", FakeExtraction())
    real, fake = image_sets(200, 160)
    got = ev.inception_metrics(real, fake, weights_path=weights_file, kid_subsets=50, kid_subset_size=60,
                               pr_samples=None, seed=3, device="cpu")
    mean, std = kernel_distance(projection_features(real), projection_features(fake), 50, 60, seed=3)
    assert got["kid_std"] > 0 and std > 0
    standard_error = ((got["kid_std"] ** 2 + std ** 2) / 50) ** 0.5
    assert abs(got["kid"] - mean) < 4 * standard_error
    assert mean > 4 * standard_error  # the distributions differ: a KID of 0 would fail above


def test_the_composition_equals_torch_fidelity_calculate_metrics(torch_fidelity, weights_file, monkeypatch):
    """inception_scores on extracted features gives what torch_fidelity.calculate_metrics reports for the same
    extractor (registered here as a projection), the same seed and settings: input1 = fake, input2 = real."""
    name = "r3gan-test-projection"
    seen_paths: list[str | None] = []

    class ProjectionExtractor(torch_fidelity.FeatureExtractorBase):
        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            seen_paths.append(feature_extractor_weights_path)

        @staticmethod
        def get_provided_features_list():
            return ("projection",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "projection"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x):
            return (project_uint8(x),)

    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, name, ProjectionExtractor)
    real, fake = image_sets(120, 90)
    has_prc = "prc" in importlib.import_module("torch_fidelity.defaults").DEFAULTS
    theirs = torch_fidelity.calculate_metrics(
        input1=ev._Uint8Images(fake), input2=ev._Uint8Images(real), fid=True, kid=True, prc=has_prc,
        feature_extractor=name, feature_extractor_weights_path=str(weights_file), kid_subsets=10,
        kid_subset_size=50, rng_seed=7, batch_size=32, cuda=False, cache=False, save_cpu_ram=True, verbose=False)
    assert seen_paths == [str(weights_file)]  # calculate_metrics hands the local file to the extractor
    monkeypatch.setattr(ev, "inception_features", FakeExtraction())
    ours = ev.inception_metrics(real, fake, weights_path=weights_file, kid_subsets=10, kid_subset_size=50,
                                pr_samples=None, seed=7, device="cpu")
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)
    assert ours["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-4)
    if has_prc:
        assert (ours["precision"], ours["recall"]) == pytest.approx((theirs["precision"], theirs["recall"]), abs=1e-9)


def test_the_real_extractor_reads_the_local_file_and_never_downloads(torch_fidelity, tmp_path, monkeypatch):
    """torch-fidelity's Inception-v3 with random weights saved to a file: inception_features must build it from that
    file (torch.load of exactly that path) with every download route closed, and give that network's features."""
    from torch_fidelity import feature_extractor_inceptionv3 as inception_module

    cls = torch_fidelity.FeatureExtractorInceptionV3
    with monkeypatch.context() as m:  # a randomly initialised network, never loaded from anywhere
        m.setattr(inception_module, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(cls, "load_state_dict", lambda self, *a, **k: None)
        reference = cls("inception-v3-compat", ["2048"]).eval()
    path = tmp_path / WEIGHTS_FILE
    torch.save(reference.state_dict(), path)

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(inception_module, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    loaded: list[str] = []
    real_load = torch.load

    def spying_load(f, *args, **kwargs):
        loaded.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spying_load)
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    (features,) = ev.inception_features([images], path, device="cpu", batch_size=2)
    assert loaded == [str(path)]
    assert features.shape == (3, 2048) and features.dtype == torch.float32 and torch.isfinite(features).all()
    with torch.no_grad():
        expected = reference(ev._uint8_rgb(images))[0]
    assert torch.allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert features.std(0).max() > 0


# ---------------------------------------------------------------------------------------------------------
# evaluate_images and the book's profiles
# ---------------------------------------------------------------------------------------------------------
TINY_EVAL = {"num_samples": 300, "pr_samples": 120, "kid_subsets": 3, "kid_subset_size": 100}


@pytest.fixture(scope="module")
def digits() -> tuple[Tensor, Tensor]:
    real = load_dataset("digits").images
    return real[:600], (real[600:1000] + 0.3 * torch.randn(400, *real.shape[1:],
                                                          generator=torch.Generator().manual_seed(1))).clamp(-1, 1)


def test_evaluate_images_falls_back_to_the_digit_metrics_with_a_note(digits, hub, tmp_path, capsys):
    real, fake = digits
    plain = ev.evaluate_images(real, fake, stacked=False, **TINY_EVAL)
    assert "inception_skipped" not in plain and capsys.readouterr().err == ""
    missing = tmp_path / WEIGHTS_FILE
    got = ev.evaluate_images(real, fake, stacked=False, inception_weights=missing, **TINY_EVAL)
    err = capsys.readouterr().err
    assert "Inception metrics skipped; falling back to the digit-feature metrics" in err
    assert str(missing) in err and f"{hub}/" in err
    assert not set(ev.INCEPTION_KEYS) & set(got) and WEIGHTS_FILE in got["inception_skipped"]
    assert {k: v for k, v in got.items() if k != "inception_skipped"} == plain  # the digit numbers are untouched


def test_evaluate_images_adds_inception_numbers_beside_the_digit_ones(torch_fidelity, digits, weights_file,
                                                                      monkeypatch, capsys):
    monkeypatch.setattr(ev, "inception_features", FakeExtraction())
    real, fake = digits
    got = ev.evaluate_images(real, fake, stacked=False, inception_weights=weights_file, seed=2, **TINY_EVAL)
    assert capsys.readouterr().err == ""
    assert got["fd_digits"] > 0 and got["feature_space"] == ev.FEATURE_SPACE
    real_x, fake_x = ev.random_rows(real, 300, 2), ev.random_rows(fake, 300, 3)  # the samples the digits used
    assert got["fid"] == pytest.approx(frechet_distance_features(projection_features(real_x),
                                                                 projection_features(fake_x)), rel=1e-6)
    assert got["inception_pr_samples"] == got["num_pr_samples"] == 120 and 0 <= got["precision"] <= 1
    assert "kid" in got and "recall" in got


def test_the_gpu_and_paper_profiles_carry_inception_weights():
    image_chapters = [n for n in CHAPTERS if "gpu" in chapter_profiles(n)]
    assert {"mode_coverage", "config_e", "roadmap", "biggan"} <= set(image_chapters)
    for name in image_chapters:
        for profile in chapter_profiles(name):
            settings = chapter_settings(name, profile)
            if profile in ("gpu", "paper"):
                assert settings["inception_weights"] is None  # off unless a path is set
                assert experiments.evaluation_options(settings) == settings["eval"]
            else:
                assert "inception_weights" not in settings  # smoke / cpu: stored results are checked against them
    settings = {**chapter_settings("mode_coverage", "gpu"), "inception_weights": Path("/w") / WEIGHTS_FILE,
                "eval": {"kid_subsets": 10}}
    assert experiments.evaluation_options(settings) == {"kid_subsets": 10,
                                                        "inception_weights": f"/w/{WEIGHTS_FILE}"}
    assert settings["eval"] == {"kid_subsets": 10}  # the profile's own dict is not changed


def test_run_summaries_show_inception_numbers_only_when_made():
    def result(final):
        return experiments.ExperimentResult(
            label="x", status="ok", message="", images_seen=1, steps=1, wall_time=1.0, eval_time=0.0,
            images_per_second=1.0, evaluations=[final], records=[], spectral=[], samples=None, checkpoint_path=None)

    assert "fid" not in result({"fd_digits": 1.0}).summary()
    summary = result({"fd_digits": 1.0, "fid": 12.5, "kid": 0.01, "precision": 0.7, "recall": 0.4}).summary()
    assert (summary["fid"], summary["kid"], summary["precision"], summary["recall"]) == (12.5, 0.01, 0.7, 0.4)


# ---------------------------------------------------------------------------------------------------------
# r3gan evaluate --inception-weights
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inception_cli")
    assert main(TINY_TRAIN + ["--out-dir", str(out / "run")]) == 0
    return out / "run" / "checkpoint.pt"


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """A folder of 40 small RGB PNGs: data that is not digits."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _record(out: str) -> dict:
    return json.loads(out[out.index("{"):])


def test_cli_other_data_without_the_weights_exits_2_naming_the_file(checkpoint, image_folder, hub, tmp_path,
                                                                     capsys):
    missing = tmp_path / "nowhere" / WEIGHTS_FILE
    base = ["evaluate", "--checkpoint", str(checkpoint), "--dataset", f"folder:{image_folder}", "--num-samples", "20"]
    for extra, named in ((["--inception-weights", str(missing)], str(missing)), ([], "has none"),
                         (["--inception-weights"], "has none")):
        assert main(base + extra) == EXIT_BAD_INPUT == 2
        captured = capsys.readouterr()
        assert captured.out == "" and "Traceback" not in captured.err
        assert captured.err.startswith("r3gan evaluate: error: dataset 'folder:")
        assert WEIGHTS_FILE in captured.err and f"{hub}/" in captured.err and "--inception-weights PATH" in captured.err
        assert named in captured.err


def test_cli_digit_data_without_the_weights_falls_back_with_a_note(checkpoint, hub, tmp_path, capsys):
    missing = tmp_path / WEIGHTS_FILE
    code = main(["evaluate", "--checkpoint", str(checkpoint), "--num-samples", "200", "--inception-weights",
                 str(missing)])
    captured = capsys.readouterr()
    assert code == 0
    record = _record(captured.out)
    assert record["fd_digits"] > 0 and record["num_modes"] == 1000 and "fid" not in record
    assert "r3gan evaluate: note: Inception metrics skipped; falling back to the digit-feature metrics" in captured.err
    assert str(missing) in captured.err and f"{hub}/" in captured.err and WEIGHTS_FILE in captured.err


def test_cli_without_torch_fidelity_says_how_to_install_it(checkpoint, image_folder, no_torch_fidelity, weights_file,
                                                          capsys):
    other = ["evaluate", "--checkpoint", str(checkpoint), "--dataset", f"folder:{image_folder}", "--num-samples", "20",
             "--inception-weights", str(weights_file)]
    assert main(other) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert INSTALL in err and "Traceback" not in err
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--num-samples", "200", "--inception-weights",
                 str(weights_file)]) == 0
    captured = capsys.readouterr()
    assert "fid" not in _record(captured.out) and "note: Inception metrics skipped" in captured.err
    assert INSTALL in captured.err


def test_cli_reports_inception_metrics_from_the_weights_file(torch_fidelity, checkpoint, image_folder, weights_file,
                                                            monkeypatch, capsys):
    extraction = FakeExtraction()
    monkeypatch.setattr(ev, "inception_features", extraction)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--num-samples", "200", "--inception-weights",
                 str(weights_file)]) == 0
    captured = capsys.readouterr()
    digits = _record(captured.out)
    assert captured.err == "" and digits["fd_digits"] > 0 and digits["fid"] > 0 and "precision" in digits
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--dataset", f"folder:{image_folder}",
                 "--num-samples", "30", "--inception-weights", str(weights_file)]) == 0
    other = _record(capsys.readouterr().out)
    assert "fd_digits" not in other and other["fid"] > 0 and other["num_real"] == 30 and other["num_fake"] == 30
    assert other["inception_weights"] == str(weights_file)
    assert extraction.paths == [str(weights_file)] * 2
