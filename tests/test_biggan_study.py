"""The BigGAN chapter helpers of r3gan_core.book.biggan_study: verdicts on synthetic records, and a tiny real run
that ties run_variants, run_generators and truncation_sweep together."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from r3gan_core.book import biggan_study, experiments  # noqa: E402
from r3gan_core.biggan import matrix_weights  # noqa: E402
from r3gan_core.networks import build  # noqa: E402

TINY_EVAL = {"pr_samples": 200, "kid_subsets": 2, "kid_subset_size": 100}


def _run(label: str, status: str, g_first: list, g_other: list, d: list, step: int = 100) -> dict:
    """A run record with spectra: G layers 'first', 'other'; D layer 'only'; one measurement every `step`."""
    spectral = [{"images_seen": i * step, "G": {"first": a, "other": b}, "D": {"only": c}}
                for i, (a, b, c) in enumerate(zip(g_first, g_other, d))]
    return {"label": label, "status": status, "images_seen": (len(spectral) - 1) * step, "spectral": spectral}


FLAT = [1.0, 1.0, 1.0, 1.0, 1.0]


# ----- spectra -----

def test_spectral_growth_is_last_over_mid_run_and_skips_nan():
    # a zero-initialised layer reads NaN at step 0 (stored as the string 'nan') and is skipped
    record = _run("r", "ok", ["nan", 1.0, 2.0, 3.0, 6.0], FLAT, FLAT)
    growth = biggan_study.spectral_growth(record, "G")
    assert growth["first"] == pytest.approx(6.0 / 2.0)  # mid-run = first measurement at >= 200 of 400 images
    assert growth["other"] == pytest.approx(1.0)
    series = biggan_study._spectral_series(record, "G")
    assert [i for i, _ in series["first"]] == [100, 200, 300, 400]


def test_spectral_verdict_seen_when_only_the_diverging_run_blows_up():
    stable = _run("stable", "ok", FLAT, FLAT, FLAT)
    unstable = _run("r1", "diverged", [1.0, 1.0, 1.1, 2.0, 9.0], FLAT, FLAT)
    verdicts = biggan_study.spectral_verdicts(stable, unstable)
    assert verdicts[0].startswith("SEEN: r1 diverged at 400 images")
    assert "first in G" in verdicts[0]
    summary = biggan_study.spectral_summary(unstable)
    assert summary["G"]["first_layer"] == "first" and summary["G"]["top_layer"] == "first"
    assert summary["G"]["max_sigma"] == 9.0 and summary["measurements"] == 5


def test_spectral_verdict_not_seen_when_both_blow_up_or_neither():
    grows = [1.0, 1.0, 1.0, 2.0, 5.0]
    both = biggan_study.spectral_verdicts(_run("s", "ok", grows, FLAT, FLAT), _run("u", "diverged", grows, FLAT, FLAT))
    assert both[0].startswith("NOT SEEN") and "so did the other run" in both[0]
    calm = biggan_study.spectral_verdicts(_run("s", "ok", FLAT, FLAT, FLAT), _run("u", "diverged", FLAT, FLAT, FLAT))
    assert calm[0].startswith("NOT SEEN") and "no layer" in calm[0]


def test_spectral_verdict_not_testable_without_divergence():
    verdicts = biggan_study.spectral_verdicts(_run("s", "ok", FLAT, FLAT, FLAT), _run("u", "ok", FLAT, FLAT, FLAT))
    assert verdicts[0].startswith("NOT TESTABLE") and len(verdicts) == 2


# ----- gamma sweep -----

def _gamma_run(gamma: float, status: str, fd: float | None, norms: list[float], seed: int = 0) -> dict:
    record = _run(f"g{gamma}", status, FLAT, FLAT, FLAT)
    record.update(settings={"gamma": [gamma, gamma]}, seed=seed, fd_digits=fd, precision_digits=0.5,
                  recall_digits=0.4, modes=900, records=[{"grad_norm_fake": v} for v in norms])
    return record


def test_gamma_sweep_rows_sorted_with_costs_and_late_norms():
    rows = biggan_study.gamma_sweep_rows([_gamma_run(10.0, "ok", 30.0, [9.0, 1.0, 2.0, 3.0]),
                                         _gamma_run(0.1, "diverged", None, [1.0, 5.0, 50.0]),
                                         _gamma_run(1.0, "ok", 20.0, [1.0, 1.0, "nan", 4.0])])
    assert [r["gamma"] for r in rows] == [0.1, 1.0, 10.0]
    assert [r["fd_cost_pct"] for r in rows] == [None, pytest.approx(0.0), pytest.approx(50.0)]
    assert [r["late_max_grad_norm_fake"] for r in rows] == [50.0, 4.0, 3.0]  # second half of each log only
    assert rows[0]["precision_digits"] is None  # a diverged run has no quality numbers
    verdicts = biggan_study.gamma_verdicts(rows)
    assert verdicts[0] == "stability: 1 of 3 runs diverged (gamma = 0.1)."
    assert verdicts[1].startswith("STABILISED BY GAMMA")
    # one seed per gamma: 50% worse, but one draw each is never a separation
    assert verdicts[2].startswith("NOT SEPARATED at this scale") and "50% worse" in verdicts[2]


def test_gamma_verdicts_over_seeds():
    runs = [_gamma_run(1.0, "ok", fd, [1.0], seed=s) for s, fd in enumerate((20.0, 21.0, 19.0))]
    runs += [_gamma_run(10.0, "ok", fd, [1.0], seed=s) for s, fd in enumerate((30.0, 29.0, 31.0))]
    runs += [_gamma_run(0.1, "diverged", None, [1.0], seed=0), _gamma_run(0.1, "ok", 25.0, [1.0], seed=1)]
    rows = biggan_study.gamma_sweep_rows(runs)
    assert [(r["gamma"], r["seed"]) for r in rows][:2] == [(0.1, 0), (0.1, 1)]
    assert rows[-1]["fd_cost_pct"] == pytest.approx(100 * (31.0 - 20.0) / 20.0)  # against gamma 1's mean
    verdicts = biggan_study.gamma_verdicts(rows)
    assert verdicts[0] == "stability: 1 of 8 runs diverged (gamma = 0.1)."
    assert not any(v.startswith("STABILISED") for v in verdicts)  # gamma 0.1 did not fail on every seed
    assert verdicts[1].startswith("PRICE SEEN") and "50% worse" in verdicts[1] and "every seed ordered" in verdicts[1]
    table = biggan_study.gamma_table(rows)
    assert list(table["failed"]) == ["1/2", "0/3", "0/3"]
    assert table.loc[1.0, "fd_digits"] == "20 ± 1"


# ----- truncation verdicts -----

def _sweep(fds: list[float], precision: list[float], recall: list[float], seed: int = 0) -> list[dict]:
    thresholds = [None, 0.5, 1.0]
    return [{"seed": seed, "threshold": t, "fd_digits": f, "precision_digits": p, "recall_digits": r, "modes": 100}
            for t, f, p, r in zip(thresholds, fds, precision, recall)]


def test_truncation_verdicts():
    plain = _sweep([10.0, 30.0, 20.0], [0.5, 0.7, 0.6], [0.5, 0.2, 0.4])
    ortho = _sweep([10.0, 12.0, 10.0], [0.5, 0.5, 0.5], [0.5, 0.45, 0.5])
    verdicts = biggan_study.truncation_verdicts({"plain": plain, "ortho": ortho}, "plain", "ortho")
    assert verdicts[0].startswith("SEEN (plain; both on 1/1 seeds): truncating at 0.5")
    assert verdicts[1].startswith("NOT SEEN (no fidelity gained) (ortho; both on 0/1 seeds)")  # only recall fell
    assert verdicts[2].startswith("NOT SEPARATED") and "1.1x" in verdicts[2] and "2.5x" in verdicts[2]
    table = biggan_study.truncation_table({"plain": plain})
    assert list(table.index.get_level_values("threshold")) == ["none", "0.5", "1"]


def test_truncation_verdicts_over_seeds():
    plain = [row for s in range(3) for row in _sweep([10.0, 30.0 + s, 20.0], [0.5, 0.7, 0.6], [0.5, 0.2, 0.4], s)]
    ortho = [row for s in range(3) for row in _sweep([10.0, 12.0 + s, 10.0], [0.5, 0.6, 0.5], [0.5, 0.6, 0.5], s)]
    verdicts = biggan_study.truncation_verdicts({"plain": plain, "ortho": ortho}, "plain", "ortho")
    assert verdicts[0].startswith("SEEN (plain; both on 3/3 seeds)") and "precision 0.5 ± 0 -> 0.7 ± 0" in verdicts[0]
    assert verdicts[1].startswith("PARTLY (ortho; both on 0/3 seeds)")  # precision rose, recall did not fall
    assert verdicts[2].startswith("SUPPORTED") and "every seed ordered (3 vs 3)" in verdicts[2]
    reverse = biggan_study.truncation_verdicts({"plain": ortho, "ortho": plain}, "plain", "ortho")
    assert reverse[2].startswith("NOT SUPPORTED (the opposite separated)")
    table = biggan_study.truncation_table({"plain": plain})
    assert table.loc[("plain", "0.5"), "fd_digits"] == "31 ± 1" and table.loc[("plain", "none"), "seeds"] == 3


# ----- figures and small utilities -----

def test_figures_draw_from_plain_records(tmp_path):
    stable, unstable = _run("s", "ok", FLAT, FLAT, FLAT), _run("u", "diverged", [1, 1, 1, 2, 9], FLAT, FLAT)
    sweeps = {"plain": _sweep([10.0, 30.0, 20.0], [0.5, 0.7, 0.6], [0.5, 0.2, 0.4])
              + _sweep([11.0, 31.0, 21.0], [0.5, 0.7, 0.6], [0.5, 0.2, 0.4], seed=1)}
    rows = biggan_study.gamma_sweep_rows([_gamma_run(1.0, "ok", 20.0, [1.0, 2.0]),
                                         _gamma_run(0.1, "diverged", None, [1.0, 2.0])])
    grids = {"plain": {name: torch.zeros(4, 3, 8, 8) for name in ("none", "0.5", "1")}}
    figures = [biggan_study.plot_spectra([stable, unstable], "test"), biggan_study.plot_truncation_curves(sweeps, "t"),
               biggan_study.plot_gamma_sweep(rows, "test"), biggan_study.plot_truncation_grids(grids, "test")]
    biggan_study.keep_figure(figures[0], tmp_path / "out", "spectra")
    assert (tmp_path / "out" / "spectra.png").stat().st_size > 1000
    assert biggan_study.keep_figure(figures[1], None, "unused") is figures[1]
    for fig in figures:
        plt.close(fig)


def test_threshold_names_and_thread_guard():
    assert [biggan_study.threshold_name(t) for t in (None, 0.5, 1.0, 2)] == ["none", "0.5", "1", "2"]
    before = torch.get_num_threads()
    inside = 2 if before == 1 else 1  # differs from the current count (conftest pins one thread)
    with experiments.torch_threads(inside):
        assert torch.get_num_threads() == inside
    assert torch.get_num_threads() == before
    with experiments.torch_threads(None):
        assert torch.get_num_threads() == before


# ----- a tiny real run -----

def test_truncation_sweep_rows_grids_and_order():
    G, _ = build("E", "stacked8")
    cfg = experiments.base_config("E", {"preset": "stacked8", "batch": 32, "total_images": 64, "max_items": 500})
    rows = biggan_study.truncation_sweep(G.eval(), cfg, [1.0, 0.5], num_samples=200, eval_options=TINY_EVAL,
                                         threads=1, seed=2)
    assert [r["threshold"] for r in rows] == [None, 0.5, 1.0] and {r["seed"] for r in rows} == {2}
    assert set(biggan_study.TRUNCATION_COLUMNS) <= set(rows[0])
    settings = {"thresholds": [1.0, 0.5], "num_samples": 200, "grid_count": 4}
    grids = biggan_study.truncation_grids({("m", 2): G.eval(), ("m", 3): G.eval()}, settings, seed=2)
    assert list(grids) == ["m"] and list(grids["m"]) == ["none", "0.5", "1"]
    assert all(g.shape == (4, 3, 8, 8) for g in grids["m"].values())
    # the grid is the first images of the draw the sweep scored
    assert torch.equal(grids["m"]["0.5"], biggan_study.truncation_samples(G.eval(), 0.5, 200, 2)[:4])
    with pytest.raises(ValueError, match="diverged"):
        biggan_study.truncation_sweep(None, cfg, [0.5], num_samples=10)


def test_run_generators_give_the_evaluated_generators(tmp_path):
    settings = {"preset": "stacked8", "batch": 32, "total_images": 64, "max_items": 500, "threads": 1,
                "spectral_every": 32, "spectral_iters": 2, "thresholds": [0.5], "num_samples": 200, "eval": TINY_EVAL}
    cfg = biggan_study.study_config(settings)
    runs, _ = experiments.run_variants(cfg, {"tiny": {}}, seeds=[3], num_samples=200, eval_options=TINY_EVAL,
                                       runs_dir=tmp_path)
    assert runs[0]["status"] == "ok" and len(runs[0]["spectral"]) == 3
    generators = biggan_study.run_generators(runs, ["tiny"], runs_dir=tmp_path)
    assert list(generators) == [("tiny", 3)] and not generators[("tiny", 3)].training
    sweeps = biggan_study.truncation_sweeps(generators, cfg, settings)
    # the untruncated row repeats the run's own evaluation: the loaded generator is the one that was scored
    assert sweeps["tiny"][0]["fd_digits"] == pytest.approx(runs[0]["fd_digits"], rel=1e-4)
    assert sweeps["tiny"][0]["modes"] == runs[0]["modes"]
    with pytest.raises(ValueError, match="runs_dir"):
        biggan_study.run_generators(runs, ["tiny"])


def test_study_variants_name_every_run():
    settings = {"ortho_beta": 1e-4, "gammas": [0.1, 10.0]}
    variants = biggan_study.study_variants(settings)
    assert variants[biggan_study.STABLE] == {} and variants[biggan_study.R1_ONLY] == {"penalty": "r1"}
    assert variants[biggan_study.ortho_label(settings)] == {"ortho_beta": 1e-4}
    assert variants["R1 + R2, gamma 0.1"] == {"gamma": 0.1} and variants["R1 + R2, gamma 10"] == {"gamma": 10.0}
    assert variants[biggan_study.BIGGAN_R1] == {"penalty": "r1", "gamma": 10.0} and len(variants) == 6


def test_spectral_series_follows_network_order_not_stored_key_order():
    # stored JSON sorts keys: 'stages.0.blocks...' comes before G's real first layer 'stages.0.transition.scale'
    G, _ = build("E", "stacked8")
    names = [n for n, _ in matrix_weights(G)]
    record = {"settings": {"config": "E", "preset": "stacked8"},
              "spectral": [{"images_seen": 0, "G": {n: 1.0 for n in sorted(names)}, "D": {}}]}
    assert list(biggan_study._spectral_series(record, "G")) == names
    record["settings"] = {}  # without config and preset: the stored order
    assert list(biggan_study._spectral_series(record, "G")) == sorted(names)
