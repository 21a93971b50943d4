"""The `r3gan` command: a tiny train -> resume -> sample -> evaluate round trip, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from r3gan_core.training import checkpoint as ckpt_io
from r3gan_core.cli import EXIT_BAD_INPUT, build_parser, main, train_config_from_args
from r3gan_core.training import read_log

REPO = Path(__file__).resolve().parent.parent
TINY_TRAIN = ["train", "--config", "E", "--preset", "stacked8", "--batch", "8", "--log-every", "8", "--no-progress",
              "--device", "cpu", "--network", "widths=16,16", "--max-items", "2000"]




@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_run")
    assert main(TINY_TRAIN + ["--total-images", "16", "--out-dir", str(out)]) == 0
    return out


def test_train_then_resume_longer(run_dir, capsys):
    assert ckpt_io.load(run_dir / "checkpoint.pt")["images_seen"] == 16
    # --resume takes the run's settings from the checkpoint; only --total-images changes
    assert main(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.rindex("{\n"):])
    assert summary["status"] == "ok" and summary["images_seen"] == 24 and summary["steps"] == 3
    state = ckpt_io.load(run_dir / "checkpoint.pt")
    assert state["images_seen"] == 24 and state["train_config"]["preset"] == "stacked8"
    assert [r["step"] for r in read_log(run_dir / "log.jsonl")] == [1, 2, 3]


def test_sample_writes_png_pt_npz(run_dir, tmp_path):
    outs = [tmp_path / "grid.png", tmp_path / "s.pt", tmp_path / "s.npz"]
    argv = ["sample", "--checkpoint", str(run_dir / "checkpoint.pt"), "--n", "12", "--truncation", "1.0",
            "--seed", "3"]
    for o in outs:
        argv += ["--out", str(o)]
    assert main(argv) == 0
    assert outs[0].stat().st_size > 0
    saved = torch.load(outs[1])
    assert saved["images"].shape == (12, 3, 8, 8) and saved["z"].abs().max() <= 1.0
    assert np.load(outs[2])["images"].shape == (12, 3, 8, 8)
    # the same seed gives the same samples
    assert main(argv[:-2] + ["--out", str(tmp_path / "again.pt")]) == 0
    assert torch.equal(torch.load(tmp_path / "again.pt")["images"], saved["images"])


def test_evaluate_prints_metrics(run_dir, capsys, tmp_path):
    code = main(["evaluate", "--checkpoint", str(run_dir / "checkpoint.pt"), "--num-samples", "200",
                 "--out", str(tmp_path / "eval.json")])
    assert code == 0
    out = capsys.readouterr().out
    record = json.loads(out[out.index("{"):])
    assert record["num_modes"] == 1000 and record["num_fake"] == 200 and record["fd_digits"] > 0
    assert json.loads((tmp_path / "eval.json").read_text())["modes"] == record["modes"]


def test_errors_are_clear(run_dir, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", "Z"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "invalid choice: 'Z' (choose from 'A', 'B', 'C', 'D', 'E')" in err
    with pytest.raises(SystemExit):
        main(["train", "--gamma", "1,2,3"])
    assert "base,final" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", "x.png"]) == EXIT_BAD_INPUT
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(tmp_path / "x.gif")]) == 2
    assert "valid suffixes: .png, .pt, .npz" in capsys.readouterr().err
    assert main(["train", "--preset", "cifar10", "--device", "cpu", "--no-progress"]) == EXIT_BAD_INPUT
    assert "has no built-in data" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "nan", "inf", "-inf"])
def test_sample_truncation_must_be_a_positive_number(tmp_path, capsys, value):
    """Checked before the checkpoint is opened (it does not exist here) and reported under the flag's name."""
    out = tmp_path / "grid.png"
    code = main(["sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out), f"--truncation={value}"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT == 2
    assert err.startswith("r3gan sample: error: --truncation must be a positive number, got ")
    assert value.lstrip("-") in err and "threshold" not in err and "checkpoint" not in err
    assert "Traceback" not in err and not out.exists()


def test_flags_mirror_train_config():
    args = build_parser().parse_args(["train", "--gamma", "2,0.2", "--lr", "1e-3", "--total-images", "64k",
                                      "--no-ema", "--network", "widths=32,32", "--network", "expansion=2"])
    cfg = train_config_from_args(args)
    assert cfg.gamma == (2.0, 0.2) and cfg.lr == 1e-3 and cfg.total_images == 64_000 and cfg.ema is False
    assert cfg.network == {"widths": [32, 32], "expansion": 2} and cfg.config == "E"


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "r3gan_core.cli", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "train" in proc.stdout and "evaluate" in proc.stdout


# ----- a command line that explains itself -----

def _options(parser):
    """(group title, action) for every option of a parser (its help flag left out)."""
    return [(group.title, action) for group in parser._action_groups for action in group._group_actions
            if action.option_strings and action.dest != "help"]


def _subparser(name: str):
    return next(a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                ).choices[name]


def test_every_train_setting_is_a_grouped_flag_with_a_help_line():
    import dataclasses

    from r3gan_core.training import TrainConfig

    options = _options(_subparser("train"))
    groups = {title for title, _ in options}
    assert groups == {"network", "data", "recipe", "run folder", "device", "logging"}
    flags = {opt for _, action in options for opt in action.option_strings if not opt.startswith("--no-")}
    assert flags == {"--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("command", ["train", "sample", "evaluate"])
def test_every_option_says_what_it_does_and_what_its_default_means(command):
    for _, action in _options(_subparser(command)):
        text = action.help or ""
        assert len(text) > 25, (action.option_strings, text)
        assert "(default: None)" not in text and text.count("(default:") <= 1, (action.option_strings, text)
        assert action.required or "default:" in text, (action.option_strings, text)


def test_help_reads_as_a_manual_from_the_shell():
    proc = subprocess.run([sys.executable, "-m", "r3gan_core.cli", "train", "--help"], capture_output=True, text=True,
                          cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0
    for needle in ("network:", "data:", "recipe:", "run folder:", "device:", "logging:", "examples:",
                   "--total-images IMAGES", "64k", "exit status: 0 ok, 2 bad input"):
        assert needle in proc.stdout, needle


def test_version_prints_the_version_and_commit():
    from r3gan_core import __version__
    from r3gan_core.report import git_commit

    proc = subprocess.run([sys.executable, "-m", "r3gan_core.cli", "--version"], capture_output=True, text=True,
                          cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stdout.strip() == f"r3gan {__version__} (commit {git_commit()})"
