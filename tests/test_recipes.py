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


def _config_runs(config, fds, label=None, run_prefix=None):
    """Three seeds of one config with final FD-digits / confident modes (and a middle evaluation that is no worse)."""
    out = []
    for seed, fd in enumerate(fds):
        r = _run(label or f"Config {config}", fd, 1000 - fd, middle=(fd + 1, 999 - fd), seed=seed)
        r["run"] = f"{run_prefix or 'config_' + config.lower()}_s{seed}"
        r["settings"] = {**r["settings"], "config": config}
        out.append(r)
    return out


def test_the_tuned_roadmap_judges_both_orders_and_says_whether_a_was_the_recipe(monkeypatch):
    from r3gan_core.book import baselines as bl, comparisons

    untrained = [{**BASELINES["untrained"][0], "label": f"untrained Config {c}", "config": c, "seed": s}
                 for c in "ABCDE" for s in range(3)]
    baselines = {"untrained": untrained, "real": [{"seed": s, "fd_digits": 0.0, "modes_confident": 1000.0}
                                                  for s in range(3)]}
    # prescribed: A degrades (its middle evaluation was far better), E is worse than C; tuned: A fixed, E best
    prescribed = _config_runs("A", [400, 410, 420]) + _config_runs("B", [200, 205, 210]) + \
        _config_runs("C", [100, 102, 104]) + _config_runs("D", [150, 152, 154]) + _config_runs("E", [120, 122, 124])
    for r in prescribed[:3]:
        r["evaluations"][0].update(fd_digits=150.0, modes_confident=850.0)
    tuned = {c: _config_runs(c, fds, label=f"Config {c} tuned", run_prefix=f"{c.lower()}_best")
             for c, fds in {"A": [90, 92, 94], "B": [180, 182, 184], "C": [100, 101, 102], "D": [95, 96, 97],
                            "E": [60, 61, 62]}.items()}
    stored = {f"config_{c.lower()}": {"metrics": {"tuned": runs, "judgement": {"best": f"{c} lr x4 gamma x1"}}}
              for c, runs in tuned.items()}
    monkeypatch.setattr(recipes, "stored_sweep", lambda chapter, profile: stored.get(chapter))
    judgement = bl.judge(prescribed, baselines)
    assert judgement["separating"] == ["fd_digits", "modes_confident"]
    verdicts = comparisons.roadmap_verdicts(prescribed, judgement)
    result = recipe_views.tuned_roadmap(prescribed, baselines, "cpu")
    assert result["missing"] == [] and {r["label"] for r in result["runs"]} == {f"Config {c}" for c in "ABCDE"}
    reading = recipe_views.tuned_reading(verdicts, result, judgement["states"])
    text = " ".join(reading)
    assert "Prescribed recipes: Our order" in text and "Tuned recipes: Our order" in text
    assert "'The modern network (C -> E) helps' reads THE OPPOSITE at this scale under the prescribed recipes and " \
           "REPRODUCED under the tuned ones." in text
    assert "Config A degrades in 3/3 seeds at its prescribed recipe and at its best cell (A lr x4 gamma x1) is " \
           "trained 3/3: its collapse was the recipe." in text
    table = recipe_views.tuned_rows(prescribed, judgement["states"], result)
    assert list(table.index[:2]) == ["Config A, prescribed", "Config A, tuned"]
    assert table.loc["Config A, prescribed", "state"] == "degrading 3/3"


def test_a_run_folder_of_other_settings_is_refused_not_reused(tmp_path):
    """A sweep cell's folder must never be read back as another cell's run (its evaluations would be reported
    under the other recipe's name): train_and_evaluate checks the folder's config.json first."""
    import json

    from r3gan_core.book import experiments
    from r3gan_core.report import jsonable
    from r3gan_core.training import copy_config

    cfg = copy_config(experiments.base_config("E", chapter_settings("config_e", "smoke"), lr=(8e-4, 2e-4)),
                      out_dir=str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"train_config": jsonable(cfg.as_dict())}))
    experiments.require_same_run(cfg, tmp_path)  # the same run: fine
    with pytest.raises(ValueError, match=r"holds a run with other settings \(lr: folder \[0.0008, 0.0002\], asked 0.001"):
        experiments.train_and_evaluate(copy_config(cfg, lr=1e-3), label="x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # nothing written
