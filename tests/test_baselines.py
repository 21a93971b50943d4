"""The baselines and the rules that read results against them (r3gan_core.book.baselines, readings), and the
comparisons that use them: known answers on synthetic records, and the untrained baseline against the trainer."""

from __future__ import annotations

import math

import pytest
import torch

from r3gan_core.book import baselines as bl
from r3gan_core.book import comparisons, readings


def _settings(config: str = "E") -> dict:
    return {"config": config, "preset": "stacked8", "network": {}, "conditional": False,
            "dataset": "stacked-digits:8", "max_items": 600, "num_samples": 300, "real_samples": None,
            "eval": {"pr_samples": 200, "kid_subsets": 5, "kid_subset_size": 100}}


def _run(label: str, seed: int, values: dict, middle: dict | None = None, config: str = "E",
         status: str = "ok") -> dict:
    evals = [{"images_seen": 100, **(middle or values)}, {"images_seen": 200, **values}]
    return {"label": label, "seed": seed, "status": status, "run": f"{label}_s{seed}", "settings": _settings(config),
            "evaluations": evals, "images_seen": 200, "records": [], **values}


def _baselines(untrained: dict, real: dict, seeds=(0, 1, 2), config: str = "E") -> dict:
    return {"untrained": [{"label": f"untrained Config {config}", "config": config, "preset": "stacked8",
                           "network": {}, "conditional": False, "seed": s, **untrained} for s in seeds],
            "real": [{"label": "real data", "seed": s, **real} for s in seeds]}


def test_the_untrained_baseline_is_the_generator_the_trainer_starts_from(monkeypatch, tmp_path):
    """The weights training starts from (captured inside train) equal baselines.untrained_generator's, per seed."""
    from r3gan_core.training import TrainConfig, loop, train

    captured = {}
    real_build = loop.build_networks

    def capturing(cfg):
        G, D = real_build(cfg)
        captured[cfg.seed] = {k: v.clone() for k, v in G.state_dict().items()}
        return G, D

    monkeypatch.setattr(loop, "build_networks", capturing)
    for seed in (0, 3):
        train(TrainConfig(config="E", preset="stacked8", batch=8, total_images=8, max_items=64, seed=seed,
                          progress=False, out_dir=str(tmp_path / f"s{seed}")))
    monkeypatch.setattr(loop, "build_networks", real_build)
    before = torch.get_rng_state()
    for seed in (0, 3):
        G = bl.untrained_generator(_settings(), seed)
        assert all(torch.equal(v, captured[seed][k]) for k, v in G.state_dict().items())
    assert torch.equal(before, torch.get_rng_state())  # the caller's random state is left as it was
    assert not all(torch.equal(a, b) for a, b in zip(captured[0].values(), captured[3].values()))


def test_real_data_beats_the_untrained_generator_by_the_same_protocol():
    """A fresh draw of real data lands far closer to the real reference than an untrained G on FD-digits and
    precision (a known property), and each entry says what it is."""
    found = bl.evaluate_baselines([_run("E", 0, {})])
    real, untrained = found["real"][0], found["untrained"][0]
    assert real["label"] == "real data" and untrained["label"] == "untrained Config E"
    assert real["fd_digits"] * 20 < untrained["fd_digits"]
    assert real["precision_digits"] > 0.5 > untrained["precision_digits"]
    assert real["num_fake"] == untrained["num_fake"] == 300  # the same sample count
    assert found["protocol"]["num_samples"] == 300


def test_evaluate_baselines_refuses_runs_under_two_protocols():
    a, b = _run("E", 0, {}), _run("E", 1, {})
    b["settings"] = {**b["settings"], "num_samples": 500}
    with pytest.raises(ValueError, match="protocols"):
        bl.evaluate_baselines([a, b])


def test_separation_needs_a_gap_ten_times_the_seed_spread():
    base = _baselines({"fd_digits": 800.0, "modes": 880.0}, {"fd_digits": 0.3, "modes": 1000.0})
    runs = [_run("E", s, {"fd_digits": 100.0 + s, "modes": 850.0 + 40 * s}) for s in range(3)]
    table = {row["metric"]: row for row in bl.separation_table(runs, base, ("fd_digits", "modes"))}
    assert table["fd_digits"]["separates"] and math.isclose(table["fd_digits"]["trained sd"], 1.0)
    assert math.isclose(table["fd_digits"]["gap"], 799.7)
    assert not table["modes"]["separates"]  # gap 120 against a spread of 40: 3x
    assert math.isclose(table["modes"]["gap / sd"], 3.0)
    one_seed = bl.separation_table(runs[:1], base, ("fd_digits",))[0]
    assert not one_seed["separates"] and "spread unknown" in one_seed["why"]


def test_the_gap_is_the_smallest_over_the_networks():
    base = _baselines({"fd_digits": 800.0}, {"fd_digits": 0.0}, config="E")
    base["untrained"] += _baselines({"fd_digits": 5.0}, {"fd_digits": 0.0}, config="A")["untrained"]
    runs = [_run("E", s, {"fd_digits": 100.0 + s}) for s in range(3)]
    assert bl.separation_table(runs, base, ("fd_digits",))[0]["gap"] == 5.0


def test_run_states_did_not_train_degrading_trained_diverged():
    base = _baselines({"fd_digits": 800.0, "precision_digits": 0.0}, {"fd_digits": 0.0, "precision_digits": 1.0})
    metrics = ["fd_digits", "precision_digits"]
    stalled = [_run("S", s, {"fd_digits": 790.0 - s, "precision_digits": 0.01}) for s in range(3)]
    worsening = [_run("W", s, {"fd_digits": 400.0 + s, "precision_digits": 0.2 + s / 100},
                      middle={"fd_digits": 200.0, "precision_digits": 0.4}) for s in range(3)]
    good = [_run("G", s, {"fd_digits": 100.0 + s, "precision_digits": 0.5 + s / 100},
                 middle={"fd_digits": 150.0, "precision_digits": 0.4}) for s in range(3)]
    dead = [_run("D", 0, {"fd_digits": float("nan"), "precision_digits": float("nan")}, status="diverged")]
    states = bl.run_states(stalled + worsening + good + dead, base, metrics)
    assert {states[r["run"]] for r in stalled} == {"did not train"}
    assert {states[r["run"]] for r in worsening} == {"degrading"}
    assert {states[r["run"]] for r in good} == {"trained"}
    assert states[dead[0]["run"]] == "diverged"
    # One metric worse, one better: not a majority, so not degrading.
    mixed = [_run("M", s, {"fd_digits": 400.0 + s, "precision_digits": 0.6 + s / 100},
                  middle={"fd_digits": 200.0, "precision_digits": 0.4}) for s in range(3)]
    assert set(bl.run_states(mixed, base, metrics).values()) == {"trained"}


def _judged(runs: list[dict], base: dict) -> dict:
    return bl.judge(runs, base)


def test_decided_comparison_words_follow_the_rule():
    base = _baselines({"fd_digits": 800.0, "precision_digits": 0.0}, {"fd_digits": 0.0, "precision_digits": 1.0})
    better = [_run("B", s, {"fd_digits": 100.0 + s, "precision_digits": 0.5 + s / 100}) for s in range(3)]
    worse = [_run("W", s, {"fd_digits": 200.0 + s, "precision_digits": 0.3 + s / 100}) for s in range(3)]
    runs = better + worse
    j = _judged(runs, base)
    assert comparisons.decided_comparison(runs, "B", "W", j, "B beats W", "x").startswith("REPRODUCED: B beats W")
    assert comparisons.decided_comparison(runs, "W", "B", j, "W beats B", "x").startswith("THE OPPOSITE")
    # The same numbers, but W degrades over its second half: never REPRODUCED.
    degrading = [_run("W", s, {"fd_digits": 200.0 + s, "precision_digits": 0.3 + s / 100},
                      middle={"fd_digits": 150.0, "precision_digits": 0.45}) for s in range(3)]
    runs = better + degrading
    j = _judged(runs, base)
    text = comparisons.decided_comparison(runs, "B", "W", j, "B beats W", "x")
    assert text.startswith("NOT DECIDED") and "W is degrading in 3/3 seeds" in text


def test_table1_verdict_uses_only_separating_metrics():
    """Plain modes order RpGAN above GAN, but they do not separate: the verdict rests on FD-digits alone."""
    base = _baselines({"fd_digits": 800.0, "modes": 880.0}, {"fd_digits": 0.0, "modes": 1000.0})
    runs = [_run("RpGAN + R1 + R2", s, {"fd_digits": 200.0 + s, "modes": 900.0 + 30 * s}) for s in range(3)]
    runs += [_run("GAN + R1 + R2", s, {"fd_digits": 100.0 + s, "modes": 800.0 + 30 * s}) for s in range(3)]
    j = _judged(runs, base)
    assert j["separating"] == ["fd_digits"]
    line = comparisons.table1_verdicts(runs, j)[-1]
    assert line.startswith("THE OPPOSITE at this scale"), line
    assert "does not separate here" in line and "by the paper's protocol, the plain mode count" in line


def test_trend_rule():
    runs = [_run("E", s, {"fd_digits": 100.0 + s}, middle={"fd_digits": 150.0}) for s in range(3)]
    runs += [_run("F", s, {"fd_digits": 149.0 + s}, middle={"fd_digits": 150.5}) for s in range(3)]
    assert readings.trend(runs, "E", "fd_digits") == ("falls", 150.0, 101.0)
    assert readings.trend(runs, "F", "fd_digits")[0] == "stays"
    sentence = readings.trend_sentence(runs, "fd_digits")
    assert "falls for E (150 → 101)" in sentence and "stays within its seeds’ spread for F" in sentence


def test_gap_closed():
    assert bl.gap_closed(800.0, 800.0, 0.0) == 0.0
    assert bl.gap_closed(0.0, 800.0, 0.0) == 1.0
    assert bl.gap_closed(200.0, 800.0, 0.0) == 0.75
    assert bl.gap_closed(900.0, 800.0, 0.0) < 0


def test_norm_kept_truncation_keeps_each_latents_norm():
    from r3gan_core.book import biggan_study
    from r3gan_core.sampling import sample_latents

    z = sample_latents(16, 50, seed=4)
    plain = sample_latents(16, 50, seed=4, truncation=0.5)
    kept = biggan_study.norm_kept_latents(16, 50, 4, 0.5)
    assert torch.allclose(kept.norm(dim=1), z.norm(dim=1), rtol=1e-5)
    assert (plain.norm(dim=1) < z.norm(dim=1)).float().mean() > 0.9
    assert torch.allclose(kept / kept.norm(dim=1, keepdim=True), plain / plain.norm(dim=1, keepdim=True), atol=1e-6)


def test_homogeneity_error_is_zero_for_a_bias_free_linear_generator():
    from r3gan_core.book import biggan_study

    class Linear(torch.nn.Module):
        z_dim = 4

        def __init__(self):
            super().__init__()
            self.map = torch.nn.Linear(4, 3 * 8 * 8, bias=False)

        def forward(self, z, c=None):
            return self.map(z).view(-1, 3, 8, 8)

    errors = biggan_study.homogeneity_errors(Linear(), (0.5, 2.0), 20, seed=0)
    assert all(e < 1e-6 for e in errors.values())
    rows = biggan_study.contrast_by_scale(Linear(), (0.5, 1.0), 20, seed=0)
    assert math.isclose(rows[0]["contrast"] * 2, rows[1]["contrast"], rel_tol=1e-5)
