"""The decisive pairs trained longer (r3gan_core.book.long_runs): the change rule per metric, the pair's word, and
the reading built from stored records."""

from __future__ import annotations

import pytest

from r3gan_core.book import long_runs, recipes
from test_recipes import BASELINES, _config_runs


@pytest.mark.parametrize("short, long, expected", [
    ("E", "E", "holds"), ("E", "A", "flips"), (None, "E", "separates"), ("E", None, "closes"),
    (None, None, "not separated")])
def test_change_of_winner(short, long, expected):
    assert long_runs.change(short, long) == expected


@pytest.mark.parametrize("changes, word", [
    ({"a": "holds", "b": "flips"}, "FLIPS"),
    ({"a": "closes", "b": "separates"}, "PARTLY CLOSES"),
    ({"a": "closes", "b": "holds"}, "PARTLY CLOSES"),
    ({"a": "closes", "b": "not separated"}, "CLOSES"),
    ({"a": "separates", "b": "holds"}, "SEPARATES FURTHER"),
    ({"a": "holds", "b": "not separated"}, "HOLDS"),
    ({"a": "not separated"}, "NOT SEPARATED at either length"),
    ({}, "NOT SEPARATED at either length")])
def test_pair_word_follows_the_rule(changes, word):
    assert long_runs.pair_word(changes) == word


def test_winner_needs_the_separation_rule():
    e, a = _config_runs("E", [60, 61, 62]), _config_runs("A", [90, 92, 94])
    assert long_runs.winner(e, a, "fd_digits", "E", "A") == "E"  # every seed ordered, lower FD better
    assert long_runs.winner(a, e, "fd_digits", "A", "E") == "E"
    overlap = _config_runs("A", [55, 61, 70])
    assert long_runs.winner(e, overlap, "fd_digits", "E", "A") is None


def _baselines():
    untrained = [{**BASELINES["untrained"][0], "label": f"untrained Config {c}", "config": c, "seed": s}
                 for c in "ACE" for s in range(3)]
    return {"untrained": untrained, "real": [{"seed": s, "fd_digits": 0.0, "modes_confident": 1000.0}
                                             for s in range(3)]}


def test_longer_training_compares_final_against_final_and_reads_by_rule(monkeypatch):
    from r3gan_core.book import baselines as bl

    # tuned (short): E beats A on both metrics; C and E tie. Long: A overtakes E on both; E pulls ahead of C.
    tuned_runs = _config_runs("A", [90, 92, 94]) + _config_runs("C", [70, 75, 80]) + _config_runs("E", [72, 74, 79])
    baselines = _baselines()
    tuned = {"runs": tuned_runs, "judgement": bl.judge(tuned_runs, baselines)}
    long = {"A": _config_runs("A", [30, 31, 32], label="Config A tuned, long", run_prefix="a_long"),
            "C": _config_runs("C", [60, 61, 62], label="Config C tuned, long", run_prefix="c_long"),
            "E": _config_runs("E", [40, 41, 42], label="Config E tuned, long", run_prefix="e_long")}
    for runs in long.values():
        for r in runs:
            r["images_seen"] = 256
    stored = {f"config_{c.lower()}": {"metrics": {"long": runs}} for c, runs in long.items()}
    monkeypatch.setattr(recipes, "stored_sweep", lambda chapter, profile: stored.get(chapter))
    result = long_runs.longer_training(tuned, baselines, "cpu")
    assert result["metrics"] == ["fd_digits", "modes_confident"] and result["missing"] == []
    words = {p["pair"]: p["word"] for p in result["pairs"]}
    assert words == {"A vs E": "FLIPS", "C vs E": "SEPARATES FURTHER"}
    assert result["verdicts"][0].startswith("THE OPPOSITE at this scale: Config E beats Config A")
    assert result["verdicts"][1].startswith("REPRODUCED: the modern network (C -> E) helps")
    text = " ".join(long_runs.longer_reading(result, tuned))
    assert "Config A at 256 images: trained 3/3; against its tuned runs of 64 images, FD-digits 31 ± 1 vs 92 ± 2; " \
           "the confident mode count 969 ± 1 vs 908 ± 2. By the separation rule the longer runs are better on " \
           "FD-digits, the confident mode count." in text
    assert "Config C at 256 images: trained 3/3; against its tuned runs of 64 images, FD-digits 61 ± 1 vs 75 ± 5; " \
           "the confident mode count 939 ± 1 vs 925 ± 5. By the separation rule the longer runs are better on" in text
    assert "A vs E: the 64 ordering FLIPS with 4x the images (winner per metric, short -> long): FD-digits flips " \
           "(E -> A)" in text
    assert "C vs E: the 64 ordering SEPARATES FURTHER" in text and "FD-digits separates (tie -> E)" in text


def test_nothing_stored_reads_as_nothing(monkeypatch):
    monkeypatch.setattr(recipes, "stored_sweep", lambda chapter, profile: None)
    assert long_runs.longer_training({"runs": [], "judgement": {}}, _baselines(), "cpu") is None
