"""The recipe sweeps (r3gan_core.book.recipes): the grid, the rules that score and judge it, and the reading."""

from __future__ import annotations

import math

import pytest

from r3gan_core.book import recipe_views, recipes
from r3gan_core.book.profiles import RECIPE_SWEEP, chapter_settings


@pytest.mark.parametrize("config", list("ABCDE"))
def test_the_cpu_grid_brackets_the_prescribed_recipe(config):
    settings = chapter_settings(f"config_{config.lower()}", "cpu")
    cells = recipes.sweep_cells(config, settings, RECIPE_SWEEP["cpu"])
    pres = recipes.prescribed_recipe(config, settings)
    assert len(cells) == 9 and len({c.label for c in cells}) == 9
    (own,) = [c for c in cells if c.prescribed]
    assert recipes._pair(own.lr) == pres["lr"] and recipes._pair(own.gamma) == pytest.approx(pres["gamma"])
    lrs = sorted({recipes._pair(c.lr)[0] for c in cells})
    assert lrs[0] < pres["lr"][0] < lrs[-1]  # bracketed
    for c in cells:  # both ends of a schedule scaled by the same factor
        lr = recipes._pair(c.lr)
        assert lr[0] / pres["lr"][0] == pytest.approx(c.lr_factor) == pytest.approx(lr[1] / pres["lr"][1])
    if config == "A":  # StyleGAN2-ADA's own cifar and paper256 gammas are in A's grid
        assert {0.01, 1.0} <= {recipes._pair(c.gamma)[0] for c in cells}
    else:
        gammas = sorted({recipes._pair(c.gamma)[0] for c in cells})
        assert gammas[0] < pres["gamma"][0] < gammas[-1]


def test_a_grid_without_its_prescribed_recipe_is_refused():
    settings = chapter_settings("config_e", "cpu")
    with pytest.raises(ValueError, match="must hold its prescribed recipe exactly once"):
        recipes.sweep_cells("E", settings, {**RECIPE_SWEEP["cpu"], "lr_factors": [0.5, 2.0]})


def _run(label, fd, modes, status="ok", middle=None, prescribed=False, seed=0):
    evals = [{"images_seen": 32, "fd_digits": middle[0], "modes_confident": middle[1]}] if middle else []
    evals.append({"images_seen": 64, "fd_digits": fd, "modes_confident": modes})
    return {"label": label, "run": label.replace(" ", "_") + f"_s{seed}", "seed": seed, "status": status,
            "fd_digits": fd, "modes_confident": modes, "evaluations": evals, "images_seen": 64,
            "settings": {"config": "E", "preset": "stacked8", "network": None, "conditional": False},
            "cell": {"prescribed": prescribed, "lr_factor": 1.0, "gamma_factor": 1.0, "lr": [1, 1], "gamma": [1, 1]}}


BASELINES = {"untrained": [{"label": "untrained Config E", "config": "E", "preset": "stacked8", "network": None,
                            "conditional": False, "seed": 0, "fd_digits": 800.0, "modes_confident": 0.0}],
             "real": [{"seed": 0, "fd_digits": 0.0, "modes_confident": 1000.0}]}
JUDGEMENT = {"separating": ["fd_digits", "modes_confident"]}
CHAPTER_RUNS = [{"status": "ok", "fd_digits": 100 + d, "modes_confident": 700 + 10 * d} for d in (-5, 0, 5)]


def test_score_states_and_best_follow_the_rules():
    runs = [_run("own", 160.0, 680.0, middle=(170.0, 670.0), prescribed=True),
            _run("better", 80.0, 840.0, middle=(90.0, 830.0)),
            _run("best but degrading", 40.0, 900.0, middle=(20.0, 960.0)),  # worse by > the seed sd on both
            _run("untrained-like", 790.0, 5.0, middle=(790.0, 5.0)),
            _run("diverged", float("nan"), float("nan"), status="diverged")]
    judged = recipes.judge_sweep(runs, BASELINES, JUDGEMENT, CHAPTER_RUNS)
    assert judged["spreads"] == {"fd_digits": pytest.approx(5.0), "modes_confident": pytest.approx(50.0)}
    # score = mean of gap closed: fd (800 - 80) / 800 = 0.9, modes 840 / 1000 = 0.84
    assert judged["scores"]["better"] == pytest.approx((0.9 + 0.84) / 2)
    assert judged["scores"]["diverged"] is None
    assert judged["states"] == {"own": "trained", "better": "trained", "best but degrading": "degrading",
                                "untrained-like": "did not train", "diverged": "diverged"}
    assert judged["best"] == "better" and judged["prescribed"] == "own"


def test_degrading_needs_a_majority_beyond_the_spread():
    spreads = {"fd_digits": 5.0, "modes_confident": 50.0}
    metrics = list(spreads)
    assert recipes.run_degrades(_run("x", 120.0, 600.0, middle=(100.0, 700.0)), metrics, spreads)
    assert not recipes.run_degrades(_run("x", 104.0, 600.0, middle=(100.0, 700.0)), metrics, spreads)  # 1 of 2
    assert not recipes.run_degrades(_run("x", 120.0, 600.0), metrics, spreads)  # one evaluation: no trend


def test_the_reading_states_the_best_cell_with_its_numbers():
    runs = [_run("own", 160.0, 680.0, middle=(170.0, 670.0), prescribed=True),
            _run("better", 80.0, 840.0, middle=(90.0, 830.0))]
    record = {"sweep": runs, "judgement": recipes.judge_sweep(runs, BASELINES, JUDGEMENT, CHAPTER_RUNS)}
    text = " ".join(recipe_views.sweep_reading(record))
    assert "Of the 2 cells, 2 trained" in text
    assert "The best cell is better" in text and "FD-digits 80 against the prescribed 160" in text
    nothing = {"sweep": runs, "judgement": recipes.judge_sweep(runs, BASELINES, {"separating": []}, CHAPTER_RUNS)}
    assert recipe_views.sweep_reading(nothing)[0].startswith("No metric separates")
    assert nothing["judgement"]["best"] is None and math.isnan(nothing["judgement"]["spreads"].get("x", math.nan))
