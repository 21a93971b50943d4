"""The explorables' tables hold what the library computes, and the page-side pieces behave (no browser here:
tests/test_book_pages.py runs ci/check_book.py, which moves the controls in Chromium)."""

from __future__ import annotations

import dataclasses
import html
import json
import re

import numpy as np
import pytest
import torch

pytest.importorskip("bokeh")

from bokeh.models import ColumnDataSource, CustomJS  # noqa: E402

from r3gan_core.book import explorables, profiles  # noqa: E402
from r3gan_core.convergence import dirac, toy  # noqa: E402

DIRAC = profiles.chapter_settings("dirac_gan", "smoke")["explorable"]


def models_of(layout) -> tuple[dict[str, ColumnDataSource], dict]:
    """The layout's named sources and its callback's lookups."""
    refs = layout.references()
    sources = {m.name: m for m in refs if isinstance(m, ColumnDataSource) and m.name}
    lookups = next(m for m in refs if isinstance(m, CustomJS)).args["lookups"]
    return sources, lookups


@pytest.mark.parametrize("scheme", dirac.SCHEMES)
@pytest.mark.parametrize("penalty", ["none", "r1", "r1+r2"])
def test_batched_simulation_equals_one_step_size_at_a_time(scheme, penalty):
    hs = [0.05, 0.2, 1.0, 4.0]  # 4.0 diverges for R1 + R2 from (1, 1)
    batch = dirac.simulate_step_sizes("rpgan", penalty, 1.0, hs, 120, (1.0, 1.0), scheme)
    for h, path in zip(hs, batch):
        one = dirac.simulate("rpgan", penalty, 1.0, h, 120, (1.0, 1.0), scheme)
        np.testing.assert_array_equal(path, one)


def test_batched_simulation_refuses_bad_step_sizes():
    with pytest.raises(ValueError, match="hs must be"):
        dirac.simulate_step_sizes("rpgan", "r1", 1.0, [0.1, -1.0], 10)
    with pytest.raises(ValueError, match="scheme"):
        dirac.simulate_step_sizes("rpgan", "r1", 1.0, [0.1], 10, scheme="leapfrog")


def test_every_dirac_state_on_the_page_is_what_the_library_computes():
    layout = explorables.dirac_explorable(DIRAC)
    sources, lookups = models_of(layout)
    paths = sources["dirac:path_table"].data
    keys = {k.rsplit("|", 1)[0] for k in lookups["paths"]}
    assert len(keys) == len(dirac.PENALTIES) * len(DIRAC["gammas"]) * len(DIRAC["hs"]) * len(dirac.SCHEMES)
    for key in keys:
        penalty, gamma, h, scheme = key.split("|")
        want = explorables.dirac_expected(DIRAC, penalty, float(gamma), float(h), scheme)
        got = np.stack([paths[lookups["paths"][f"{key}|x"]], paths[lookups["paths"][f"{key}|y"]]], axis=1)
        np.testing.assert_allclose(got, want["trajectory"], rtol=1e-6, atol=1e-4)
        assert lookups["rhos"][key] == pytest.approx(want["spectral_radius"], rel=1e-12)
        eigs = lookups["eigs"][f"{penalty}|{gamma}"]
        np.testing.assert_allclose(np.array(eigs[0]) + 1j * np.array(eigs[1]), want["eigenvalues"], atol=1e-12)
        verdict = "converges locally" if want["spectral_radius"] < 1 - 1e-9 else "locally"
        assert verdict in html.unescape(lookups["readouts"][key])


def test_coinciding_dirac_states_share_one_stored_column():
    """R1 and R2 are the same penalty on the Dirac game, and no penalty ignores gamma: stored once."""
    layout = explorables.dirac_explorable(DIRAC)
    _, lookups = models_of(layout)
    alias = lookups["paths"]
    assert alias["r1|1|0.2|simultaneous|x"] == alias["r2|1|0.2|simultaneous|x"]
    assert alias["none|0|0.2|alternating|y"] == alias["none|3|0.2|alternating|y"]
    assert alias["r1|1|0.2|simultaneous|x"] != alias["r1+r2|1|0.2|simultaneous|x"]


def test_the_readout_states_cycling_divergence_and_convergence_by_the_spectral_radius():
    path = np.array([[1.0, 1.0], [0.5, 0.5]])
    assert "converges locally" in explorables.dirac_readout("r1", 1.0, 0.2, "simultaneous", 0.9, path, 1)
    assert "cycles" in explorables.dirac_readout("none", 0.0, 0.2, "alternating", 1.0, path, 1)
    assert "diverges locally" in explorables.dirac_readout("none", 0.0, 0.2, "simultaneous", 1.005, path, 1)


def test_the_embedded_html_is_marked_names_its_settings_and_loads_nothing():
    text = explorables.to_html(explorables.dirac_explorable(DIRAC), "dirac", DIRAC)
    found = re.search(rf'<div class="{explorables.MARKER}" data-name="dirac" data-settings="([^"]*)">', text)
    assert found and json.loads(html.unescape(found.group(1)))["hs"] == DIRAC["hs"]
    assert "<script src" not in text and not re.search(r"https?://", text)  # nothing loaded, no address at all


def test_toy_snapshots_change_nothing_about_training():
    cfg = toy.ToyConfig(steps=40, batch=64, log_every=5, seed=3)
    plain = toy.train_toy(cfg, progress=False)
    watched = toy.train_toy(dataclasses.replace(cfg, snapshot_every=15), progress=False)
    assert torch.equal(plain.samples, watched.samples) and plain.history == watched.history
    assert plain.snapshots == [] and [s.step for s in watched.snapshots] == [0, 15, 30, 40]
    assert watched.snapshots[-1].logits.shape == (cfg.snapshot_grid, cfg.snapshot_grid)
    with pytest.raises(ValueError, match="snapshot_every"):
        toy.ToyConfig(snapshot_every=-1)


def test_toy_states_on_the_page_are_the_runs_snapshots():
    base = toy.ToyConfig(steps=30, batch=32, log_every=5, snapshot_every=10, dataset="ring")
    results = toy.train_grid(base, datasets=("ring",), losses=("rpgan",), penalties=("none", "r1+r2"),
                             progress=False)
    settings = explorables.toy_settings(base, seed=0)
    assert settings["steps"] == [0, 10, 20, 30]
    sources, lookups = models_of(explorables.toy_explorable(results, settings))
    points, images = sources["toy:point_table"].data, sources["toy:image_table"].data
    for penalty in ("none", "r1+r2"):
        run = results[("ring", "rpgan", penalty, 0)]
        for step in settings["steps"]:
            key = explorables.state_key("ring", "rpgan", penalty, step)
            snap = explorables.toy_state(run, step)
            assert snap.step == step
            np.testing.assert_allclose(points[lookups["points"][f"{key}|x"]], snap.points[:, 0], rtol=1e-6)
            np.testing.assert_allclose(images[lookups["images"][key]][0], explorables.standardised(snap.logits),
                                       atol=1e-6)
    # The check's own retraining (one thread) reproduces a stored state.
    want = explorables.toy_expected(settings, "ring", "rpgan", "r1+r2", 20)
    np.testing.assert_allclose(want["points"], explorables.toy_state(results[("ring", "rpgan", "r1+r2", 0)],
                                                                     20).points, rtol=1e-6, atol=1e-7)


def test_a_diverged_toy_run_shows_its_last_snapshot_and_says_so():
    cfg = toy.ToyConfig(steps=30, batch=32, log_every=5, snapshot_every=10, blowup=1e-9)  # fails at step 1
    run = toy.train_toy(cfg, progress=False)
    assert run.status == "fail"
    assert explorables.toy_state(run, 30).step == run.fail_step
    assert f"diverged at step {run.fail_step}" in explorables.toy_readout(run, 30)


def test_lazy_states_are_the_simulations_and_rates_of_the_library():
    from r3gan_core.book import lazy_study

    settings = profiles.chapter_settings("lazy_penalties", "smoke")
    study = lazy_study.dirac_study(settings)
    ex = explorables.lazy_settings(study, settings["explorable"]["hs"], settings["explorable"]["ks"],
                                   settings["explorable"]["periods"])
    sources, lookups = models_of(explorables.lazy_explorable(study, ex))
    for scheme in dirac.SCHEMES:
        for h in ex["hs"]:
            for k in ex["ks"]:
                key = explorables.state_key(scheme, h, k)
                want = explorables.lazy_expected(ex, h, k, scheme)
                got = sources["lazy:distance_table"].data[lookups["dists"][key]]
                np.testing.assert_allclose(got, want["distance"], rtol=1e-6, atol=1e-30)
                assert f"{want['rate']:.4f}" in lookups["texts"][key]


def test_bokeh_js_is_added_only_to_pages_with_an_explorable():
    from r3gan_core.book import sphinx_bokeh

    added = []

    class App:
        def add_js_file(self, name, **_):
            added.append(name)

    sphinx_bokeh.add_scripts(App(), "intro", "page.html", {"body": "<p>no explorable</p>"}, None)
    assert added == []
    sphinx_bokeh.add_scripts(App(), "dirac", "page.html", {"body": f'<div class="{explorables.MARKER}">'}, None)
    assert added == [f"{sphinx_bokeh.TARGET}/{name}" for name in sphinx_bokeh.FILES]
    assert all((sphinx_bokeh.bokeh_js_dir() / name).is_file() for name in sphinx_bokeh.FILES)


def _digest_run(label, seed, values, status="ok"):
    return {"label": label, "seed": seed, "status": status, "settings": {},
            "evaluations": [{"images_seen": i, "fd_digits": v, "modes_confident": 10 * v, "recall_digits": v / 100}
                            for i, v in values]}


def test_label_curves_are_means_and_sample_sds_over_the_seeds_that_reached_each_point():
    runs = [_digest_run("A", 0, [(100, 4.0), (200, 2.0)]), _digest_run("A", 1, [(100, 6.0), (200, 4.0)]),
            _digest_run("A", 2, [(100, 5.0)], status="fail")]  # stopped before 200
    curves = explorables.label_curves(explorables.runs_digest(runs))
    assert curves["A"][100]["fd_digits"] == pytest.approx((5.0, 1.0, 3))
    mean, sd, n = curves["A"][200]["fd_digits"]
    assert (mean, n) == (3.0, 2) and sd == pytest.approx(np.std([2.0, 4.0], ddof=1))


def test_the_runs_check_compares_the_marked_points_with_the_library():
    runs = [_digest_run("A", 0, [(100, 4.0), (200, 2.0)]), _digest_run("B", 0, [(100, 8.0), (200, 6.0)])]
    grids = {"A": torch.zeros(16, 3, 8, 8), "B": None}
    layout, settings = explorables.runs_explorable("x", "smoke", runs, grids, None)
    assert explorables.runs_moves(settings) == [{"images": "100", "label": "A"}, {"images": "200", "label": "B"}]
    sources, lookups = models_of(layout)
    assert lookups["marks"]["B|200"]["fd_digits"] == 6.0 and set(lookups["grids"]) == {"A"}
    right = {f"mark_{m}": {"y": [v]} for m, v in lookups["marks"]["B|200"].items()}
    assert explorables.runs_check(settings, {"label": "B", "images": "200"}, right) == []
    wrong = right | {"mark_fd_digits": {"y": [2.0]}}
    assert explorables.runs_check(settings, {"label": "B", "images": "200"}, wrong)


def test_stored_runs_on_a_page_are_checked_against_the_results_folder():
    import json as _json

    from r3gan_core.book import chapter

    record = chapter.published_results("config_e", "cpu")
    digest = _json.loads(_json.dumps(explorables.runs_digest(record["metrics"]["runs"])))
    settings = {"chapter": "config_e", "profile": "cpu", "metrics": list(explorables.RUN_METRICS), "runs": digest}
    assert explorables.stored_digest(settings) == digest
    edited = _json.loads(_json.dumps(digest))
    edited[0]["evaluations"][-1]["fd_digits"] += 1
    controls = {"images": str(digest[0]["evaluations"][-1]["images_seen"])}
    assert "not the stored results" in " ".join(explorables.runs_check({**settings, "runs": edited}, controls, {}))


def test_the_truncation_check_uses_the_sweeps_mean_over_seeds():
    rows = [{"seed": s, "threshold": t, "precision_digits": 0.1 * s, "recall_digits": 0.2, "fd_digits": fd}
            for s, fds in ((0, (10.0, 30.0)), (1, (20.0, 50.0))) for t, fd in zip((None, 0.5), fds)]
    grids = {"M": {"none": torch.zeros(16, 3, 8, 8), "0.5": torch.zeros(16, 3, 8, 8)}}
    layout, settings = explorables.truncation_explorable("x", "smoke", {"M": rows}, grids, None)
    assert settings["order"] == ["0.5", "none"]
    assert explorables.truncation_stats({"M": rows})["M"]["0.5"]["fd_digits"] == pytest.approx(
        (40.0, np.std([30.0, 50.0], ddof=1), 2))
    _, lookups = models_of(layout)
    assert lookups["marks"]["M|none"] == 15.0
    good = {"mark_fd_digits": {"x": [1], "y": [15.0]}}
    assert explorables.truncation_check(settings, {"model": "M", "threshold": "none"}, good) == []
    assert explorables.truncation_check(settings, {"model": "M", "threshold": "0.5"}, good)


def test_the_variance_explorable_holds_the_seeded_profile_the_check_recomputes():
    from r3gan_core.networks import anatomy

    rows = anatomy.init_variance_profile("E", "digits16", blocks_per_stage=1, batch=4)
    settings = {"preset": "digits16", "blocks_per_stage": 1, "batch": 4, "seed": 0, "configs": ["E"]}
    _, lookups = models_of(explorables.variance_explorable(rows, settings))
    init = anatomy.INIT_SCHEMES[-1]
    drawn = {"curve": {"y": lookups["curves"][f"E|D|{init}"]}}
    assert explorables.variance_check(settings, {"config": "E", "network": "D", "init": init}, drawn) == []
    assert explorables.variance_check(settings, {"config": "E", "network": "G", "init": init}, drawn)
