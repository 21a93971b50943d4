"""The anatomy chapter (notebooks/03_anatomy.py), executed in the smoke profile by the real runner.

Its headline numbers are exact parameter counts (networks built on the meta device), so the smoke run must
reproduce Table 2 of the paper; the variance-through-depth numbers are checked for their direction only.
"""

from __future__ import annotations

import pytest
from conftest import chapter_metrics

pytestmark = pytest.mark.chapters

# Paper Table 2 (FFHQ-256), millions: (G, D)
TABLE_2 = {"A": (24.767, 24.001), "B": (18.890, 23.996), "C": (18.890, 23.996), "D": (23.400, 23.282),
           "E": (23.058, 23.010)}


@pytest.fixture(scope="module")
def metrics(smoke_book):
    return chapter_metrics(smoke_book, "anatomy")


@pytest.mark.parametrize("config", sorted(TABLE_2))
def test_parameter_counts_within_one_percent_of_table_2(metrics, config):
    row = metrics["params_ffhq256"][config]
    g_paper, d_paper = TABLE_2[config]
    assert row["G"] == pytest.approx(g_paper, rel=0.01)
    assert row["D"] == pytest.approx(d_paper, rel=0.01)
    assert (row["G_paper"], row["D_paper"]) == (g_paper, d_paper)


def test_reported_differences_are_consistent(metrics):
    rows = metrics["params_ffhq256"].values()
    for r in rows:  # the chapter's percentages are computed, not typed in (counts are rounded to 1e-3 M)
        assert r["G_diff_pct"] == pytest.approx(100 * (r["G"] - r["G_paper"]) / r["G_paper"], abs=0.01)
        assert r["D_diff_pct"] == pytest.approx(100 * (r["D"] - r["D_paper"]) / r["D_paper"], abs=0.01)
    worst = max(max(abs(r["G_diff_pct"]), abs(r["D_diff_pct"])) for r in rows)
    assert metrics["max_abs_diff_pct"] == pytest.approx(worst) and worst < 1.0
    # Table 2's D generator count is met exactly by the output-skip variant
    assert metrics["params_d_with_output_skips"]["G"] == pytest.approx(23.400, abs=0.001)


def test_config_e_presets_match_official_counts(metrics):
    expected = {"ffhq64": (22.43, 22.38), "cifar10": (20.78, 21.28), "imagenet32": (82.9, 86.6),
                "imagenet64": (103.6, 107.2)}
    for preset, (g, d) in expected.items():
        row = metrics["params_e_presets"][preset]
        assert (row["G"], row["D"]) == (pytest.approx(g, rel=0.01), pytest.approx(d, rel=0.01))


def test_fixup_keeps_variance_flat_and_naive_init_does_not(metrics):
    for key, row in metrics["variance_growth"].items():
        assert row["fix-up (at init)"] == pytest.approx(1.0, abs=1e-4), key
        assert row["fix-up, last conv non-zero"] < 1.5, key
        assert row["naive He init"] > 2.0, key
