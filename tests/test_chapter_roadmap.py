"""The mode-coverage, config A-E and roadmap chapters in the smoke profile: what their metrics.json must hold."""

from __future__ import annotations

import pytest
from conftest import chapter_metrics

pytestmark = pytest.mark.chapters


def _check_run(run: dict) -> None:
    assert run["status"] in {"ok", "diverged"}
    assert run["images_seen"] > 0 and run["steps"] > 0
    if run["status"] == "ok":
        assert 0 <= run["modes"] <= 1000
        assert 0 <= run["reverse_kl"] <= 6.91  # log 1000 bounds the reverse KL against uniform over 1000 modes
        assert 0 <= run["precision_digits"] <= 1 and 0 <= run["recall_digits"] <= 1
        assert run["fd_digits"] >= 0 and run["images_per_second"] > 0
        assert run["evaluations"][-1]["images_seen"] == run["images_seen"]


def test_mode_coverage_has_the_four_table1_variants(smoke_book):
    metrics = chapter_metrics(smoke_book, "mode_coverage")
    labels = [r["label"] for r in metrics["runs"]]
    assert labels == ["GAN + R1", "RpGAN + R1", "GAN + R1 + R2", "RpGAN + R1 + R2"]
    for run in metrics["runs"]:
        _check_run(run)
        assert run["settings"]["penalty"] == ("r1" if run["label"].endswith("+ R1") else "r1+r2")
        assert run["settings"]["loss"] == ("rpgan" if run["label"].startswith("RpGAN") else "gan")
    assert len(metrics["verdicts"]) == 3


@pytest.mark.parametrize("config", "ABCDE")
def test_config_chapter_trains_its_own_recipe(smoke_book, config):
    metrics = chapter_metrics(smoke_book, f"config_{config.lower()}")
    (run,) = metrics["runs"]
    _check_run(run)
    assert run["label"] == f"Config {config}" and run["settings"]["config"] == config
    expected = {"A": ("gan", "r1"), "B": ("gan", "r1")}.get(config, ("rpgan", "r1+r2"))
    assert (run["settings"]["loss"], run["settings"]["penalty"]) == expected


def test_roadmap_gathers_the_five_configs(smoke_book):
    metrics = chapter_metrics(smoke_book, "roadmap")
    assert sorted(metrics["sources"]) == list("ABCDE")
    assert all(s.startswith("smoke profile") for s in metrics["sources"].values())
    assert [r["label"] for r in metrics["runs"]] == [f"Config {c}" for c in "ABCDE"]
    assert any("Spearman" in v for v in metrics["verdicts"])
