"""The experiment driver: evaluation points, segmented training, verdicts and tables on constructed records."""

from __future__ import annotations


import pytest
import torch

from r3gan_core import sampling
from r3gan_core.book import comparisons, experiments
from r3gan_core.training.checkpoint import load as load_checkpoint
from r3gan_core.training import TrainConfig


def test_evaluation_points_are_whole_batches_ending_at_total():
    assert experiments.evaluation_points(1000, 64, 4) == [256, 512, 768, 1024]
    assert experiments.evaluation_points(256, 64, 1) == [256]
    points = experiments.evaluation_points(640, 64, 3)
    assert all(p % 64 == 0 for p in points) and points[-1] == 640 and points == sorted(set(points))
    with pytest.raises(ValueError):
        experiments.evaluation_points(640, 64, 0)


def _tiny(out_dir, **changes) -> TrainConfig:
    return experiments.copy_config(TrainConfig(config="E", preset="digits8", batch=16, total_images=96, max_items=None,
                                               progress=False, log_every=32, threads=1, out_dir=str(out_dir)),
                                   **changes)


def test_segmented_training_equals_one_run(tmp_path):
    """Evaluating in k segments (exact resume between them) must not change what is trained."""
    one = experiments.train_and_evaluate(_tiny(tmp_path / "one"), "one", evaluations=1, num_samples=200,
                                         eval_options={"pr_samples": 100, "kid_subsets": 2, "kid_subset_size": 50})
    three = experiments.train_and_evaluate(_tiny(tmp_path / "three"), "three", evaluations=3, num_samples=200,
                                           eval_options={"pr_samples": 100, "kid_subsets": 2, "kid_subset_size": 50})
    assert one.status == three.status == "ok"
    assert [e["images_seen"] for e in three.evaluations] == [32, 64, 96]
    assert one.images_seen == three.images_seen == 96 and one.steps == three.steps == 6
    a, b = load_checkpoint(one.checkpoint_path), load_checkpoint(three.checkpoint_path)
    for key in ("G", "D", "G_ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs between 1 and 3 segments"
    assert one.final["fd_digits"] == pytest.approx(three.final["fd_digits"], rel=1e-6)


def test_generate_images_is_seeded_and_truncation_bounds_latents():
    from r3gan_core.networks import build

    G, _ = build("E", "digits8")
    a = sampling.generate_images(G, 10, seed=3)
    b = sampling.generate_images(G, 10, seed=3)
    assert a.shape == (10, 1, 8, 8) and torch.equal(a, b)
    z = sampling.sample_latents(64, 500, seed=0, truncation=0.5)
    assert z.abs().max() <= 0.5


def _record(label, status="ok", modes=None, kl=None, fd=None, real=1.0, fake=1.0, seed=0):
    return {"label": label, "status": status, "seed": seed, "modes": modes, "reverse_kl": kl, "fd_digits": fd,
            "grad_norm_real": real, "grad_norm_fake": fake, "images_seen": 1000, "steps": 10,
            "records": [{"grad_norm_real": real, "grad_norm_fake": fake / 2}, {"grad_norm_real": real,
                                                                              "grad_norm_fake": fake}]}


def _judgement(records, separating):
    """A judgement (baselines.judge's shape) in which `separating` decide and every run trained."""
    return {"separating": list(separating), "label_states": {r["label"]: {"trained": 1} for r in records},
            "separation": [{"metric": m, "gap / sd": 100.0 if m in separating else 2.0}
                           for m in ("modes", "reverse_kl", "fd_digits")]}


def test_table1_verdicts_follow_the_data():
    paper_like = [_record("GAN + R1", "diverged", fake=80.0), _record("RpGAN + R1", "diverged", fake=90.0),
                  _record("GAN + R1 + R2", modes=693, kl=0.93), _record("RpGAN + R1 + R2", modes=1000, kl=0.08),
                  _record("GAN + R1 + R2", modes=700, kl=0.9, seed=1), _record("RpGAN + R1 + R2", modes=995, kl=0.1, seed=1)]
    lines = comparisons.table1_verdicts(paper_like, _judgement(paper_like, ("modes", "reverse_kl")))
    assert len(lines) == 3  # the gradient verdict uses the diverged runs' records up to the divergence
    assert lines[0].startswith("REPRODUCED: every R1-only run diverged (2/2)")
    assert lines[1].startswith("SUPPORTED") and "85 ± 7.1 with R1 only" in lines[1]
    assert lines[2].startswith("REPRODUCED: RpGAN + R1 + R2 beats GAN + R1 + R2: the plain mode count 997.5 ± 3.5 vs")
    assert "every seed ordered (2 vs 2)" in lines[2]
    assert len(comparisons.table1_verdicts(paper_like)) == 2  # no judgement: no comparison of the two
    # Plain modes and KL order them, but only FD-digits separates, and it says nothing either way: not separated.
    fd_only = comparisons.table1_verdicts([{**r, "fd_digits": 5.0} for r in paper_like],
                                          _judgement(paper_like, ("fd_digits",)))
    assert fd_only[2].startswith("NOT SEPARATED at this scale") and "decides nothing" in fd_only[2]
    one_seed_each = comparisons.table1_verdicts(paper_like[:4], _judgement(paper_like, ("modes", "reverse_kl")))
    assert one_seed_each[2].startswith("NOT SEPARATED") and "one seed each: cannot separate" in one_seed_each[2]
    opposite = [_record("GAN + R1", fake=1.0), _record("RpGAN + R1", fake=1.0),
                _record("GAN + R1 + R2", modes=900, kl=0.2), _record("RpGAN + R1 + R2", modes=800, kl=0.5)]
    lines = comparisons.table1_verdicts(opposite, _judgement(opposite, ("modes", "reverse_kl")))
    assert lines[0].startswith("NOT REPRODUCED") and lines[1].startswith("NOT SEPARATED")
    assert lines[2].startswith("NOT SEPARATED")
    exploding = [_record("GAN + R1", fake=50.0), _record("RpGAN + R1", fake=50.0),
                 _record("GAN + R1 + R2", modes=1, kl=1), _record("RpGAN + R1 + R2", modes=2, kl=0.5)]
    assert comparisons.table1_verdicts(exploding)[1].startswith("SUPPORTED")


def test_separation_rule_needs_every_seed_or_welch():
    assert comparisons.separated([5, 6, 7], [1, 2, 3], higher_is_better=True)[0]
    assert comparisons.separated([1, 2, 3], [5, 6, 7], higher_is_better=False)[0]
    overlap, how = comparisons.separated([1, 5, 9], [2, 4, 8], higher_is_better=True)
    assert not overlap and how.startswith("Welch p =")
    assert not comparisons.separated([5], [4, 6], higher_is_better=True)[0]
    assert comparisons.separated([9], [1], higher_is_better=True) == (False, "one seed each: cannot separate")


@pytest.mark.parametrize("mean, sd, text", [(0.0001333, 0.00023, "0.00013 ± 0.00023"), (115.43, 9.52, "115.4 ± 9.5"),
                                             (800.3, 22.4, "800 ± 22"), (12345.0, 440.0, "12,340 ± 440"),
                                             (0.092, 0.0035, "0.0920 ± 0.0035"), (5.0, None, "5")])
def test_a_mean_is_rounded_to_what_its_spread_supports(mean, sd, text):
    assert experiments.spread_text(mean, sd) == text


def test_summary_table_marks_fail_and_averages_seeds():
    records = [_record("x", modes=10, seed=0), _record("x", modes=20, seed=1), _record("y", "diverged")]
    table = experiments.summary_table(records, ("modes",))
    assert table.loc["x", "modes"] == "15.0 ± 7.1" and table.loc["x", "mean over"] == "2 seeds"
    assert table.loc["y", "modes"] == "fail" and table.loc["y", "failed"] == "1/1"


def test_roadmap_verdicts_rank_agreement():
    paper_order = {"A": 7.516, "B": 12.46, "C": 11.65, "D": 9.95, "E": 7.045}
    records = [_record(f"Config {c}", fd=fid * 10) for c, fid in paper_order.items()]
    fd = ("fd_digits",)
    text = comparisons.roadmap_verdicts(records, _judgement(records, fd))
    assert any("Spearman rho = 1.00" in line for line in text)
    assert not any(line.startswith("REPRODUCED") for line in text)  # one seed per config: nothing separates
    two_seeds = records + [_record(f"Config {c}", fd=fid * 10 + 1, seed=1) for c, fid in paper_order.items()]
    assert any(line.startswith("REPRODUCED: Config E beats Config A") for line in comparisons.roadmap_verdicts(two_seeds, _judgement(two_seeds, fd)))
    reversed_records = [_record(f"Config {c}", fd=1 / fid) for c, fid in paper_order.items()]
    assert any("Spearman rho = -1.00" in line for line in comparisons.roadmap_verdicts(reversed_records, _judgement(reversed_records, fd)))
    assert comparisons.roadmap_verdicts(records[:2], _judgement(records, fd))[-1].startswith("Only 2 config(s)")


def test_classifier_fit_verdict_passes_real_stacked_digits_and_fails_one_repeated_image():
    from r3gan_core.data import load_dataset

    real = load_dataset("stacked-digits:8", max_items=20_000, seed=0).images
    fit, sentence = comparisons.classifier_fit_verdict(real, num_samples=20_000)
    assert fit and sentence.startswith("FIT")
    fit, sentence = comparisons.classifier_fit_verdict(real[:1].repeat(500, 1, 1, 1))
    assert not fit and sentence.startswith("NOT FIT: the real data itself scores 1 / 1000 modes")


def test_roadmap_verdicts_say_when_the_data_go_the_other_way():
    runs = [_record(f"Config {c}", fd=fd, seed=s) for c, fds in
            {"A": (400, 380, 390), "B": (150, 160, 170), "C": (100, 110, 105), "D": (120, 121, 119),
             "E": (115, 112, 118)}.items() for s, fd in enumerate(fds)]
    lines = comparisons.roadmap_verdicts(runs, _judgement(runs, ("fd_digits",)))
    assert any(v.startswith("REPRODUCED: Config E beats Config A") for v in lines)
    assert any(v.startswith("THE OPPOSITE at this scale: stripping StyleGAN2") and "every seed ordered" in v
               for v in lines)
