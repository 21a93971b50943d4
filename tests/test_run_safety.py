"""A user's runs are never destroyed, and bad input ends in a clear message, not a traceback (issue 12).

Each case runs the `r3gan` command (in process, or as a real process where signals or a second process matter)
and asserts the exit code, a message naming the problem and what to do, and that every file that was on disk
before is byte-identical afterwards.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from r3gan_core.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, main
from r3gan_core.training import checkpoint as ckpt_io
from r3gan_core.training import read_log

REPO = Path(__file__).resolve().parent.parent
TINY = ["train", "--config", "E", "--preset", "stacked8", "--batch", "8", "--log-every", "8", "--no-progress",
        "--device", "cpu", "--network", "widths=16,16", "--max-items", "2000", "--threads", "1"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (bytes), to compare before and after a refused command."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    out = tmp_path / "run"
    assert main(TINY + ["--total-images", "16", "--out-dir", str(out), "--spectral-every", "8",
                        "--spectral-iters", "2"]) == 0
    return out


def _refused(argv: list[str], capsys, *needles: str) -> str:
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ----- data loss -----

def test_fresh_run_refuses_a_folder_that_holds_a_run(run_dir, capsys):
    before = snapshot(run_dir)
    _refused(TINY + ["--total-images", "16", "--out-dir", str(run_dir)], capsys,
             "already holds a run", "--resume", "--overwrite")
    assert snapshot(run_dir) == before
    # --overwrite starts over, as it says
    assert main(TINY + ["--total-images", "8", "--out-dir", str(run_dir), "--overwrite"]) == 0
    assert ckpt_io.load(run_dir / "checkpoint.pt")["images_seen"] == 8
    assert [r["images_seen"] for r in read_log(run_dir / "log.jsonl")] == [8]


def test_help_names_overwrite_and_resume(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--overwrite" in out and "refuses" in out


HOLD_LOCK = """
import sys, time
from pathlib import Path
from r3gan_core.training.guards import RunLock
lock = RunLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_process_refuses_a_folder_in_use(run_dir, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(run_dir)
        _refused(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"], capsys,
                 "in use by a running training process", f"pid {holder.pid}")
        assert snapshot(run_dir) == before
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead: its lock went with it, so the folder is taken over
    (run_dir / ".lock").write_text("99999999")  # a stale pid left behind changes nothing
    assert main(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"]) == 0


def test_sample_and_evaluate_never_write_over_their_checkpoint(run_dir, capsys, tmp_path):
    ckpt = run_dir / "checkpoint.pt"
    before = snapshot(run_dir)
    _refused(["sample", "--checkpoint", str(ckpt), "--out", str(ckpt.with_suffix(".pt"))], capsys,
             "is the checkpoint being read")
    _refused(["evaluate", "--checkpoint", str(ckpt), "--out", str(ckpt), "--num-samples", "10"], capsys,
             "is the checkpoint being read")
    # the same file through another name
    link = tmp_path / "link.pt"
    link.symlink_to(ckpt)
    _refused(["sample", "--checkpoint", str(ckpt), "--out", str(link)], capsys, "is the checkpoint being read")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_a_read_only_output_is_not_replaced(run_dir, capsys, tmp_path, command):
    """Judged by the mode bits, so it holds for root too (os.access answers yes to root for any file)."""
    out = tmp_path / ("kept.png" if command == "sample" else "kept.json")
    out.write_bytes(b"mine")
    out.chmod(0o444)
    extra = ["--num-samples", "10"] if command == "evaluate" else []
    _refused([command, "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(out), *extra], capsys,
             "read-only", str(out))
    assert out.read_bytes() == b"mine" and (out.stat().st_mode & 0o777) == 0o444


def test_a_read_only_checkpoint_keeps_its_mode(run_dir, capsys):
    ckpt = run_dir / "checkpoint.pt"
    ckpt.chmod(0o444)
    before = snapshot(run_dir)
    _refused(["evaluate", "--checkpoint", str(ckpt), "--out", str(ckpt)], capsys, "checkpoint being read")
    assert snapshot(run_dir) == before and (ckpt.stat().st_mode & 0o777) == 0o444


@pytest.mark.parametrize("how", [["--resume"], ["--overwrite"]])
def test_resume_or_overwrite_refuses_a_read_only_checkpoint(run_dir, capsys, how):
    ckpt = run_dir / "checkpoint.pt"
    ckpt.chmod(0o444)
    before = snapshot(run_dir)
    argv = (["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"] if how == ["--resume"]
            else TINY + ["--total-images", "16", "--out-dir", str(run_dir), "--overwrite"])
    _refused(argv, capsys, "read-only run files (checkpoint.pt)", "chmod u+w")
    assert snapshot(run_dir) == before and (ckpt.stat().st_mode & 0o777) == 0o444


LONG_RUN = TINY + ["--total-images", "100000", "--log-every", "64"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_checkpoints_and_resumes(tmp_path, signum):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "r3gan_core.cli", *LONG_RUN, "--out-dir", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while not (out / "log.jsonl").is_file() and time.time() < deadline:  # the first log record: training runs
        time.sleep(0.2)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted at" in stderr and "--resume" in stderr and "Traceback" not in stderr
    summary = json.loads(stdout[stdout.rindex("{\n"):])
    assert summary["status"] == "interrupted"
    seen = ckpt_io.load(out / "checkpoint.pt")["images_seen"]
    assert seen == summary["images_seen"] > 0  # the checkpoint is at the step the signal ended, not the start
    assert main(["train", "--resume", "--out-dir", str(out), "--total-images", str(seen + 16), "--no-progress"]) == 0
    assert ckpt_io.load(out / "checkpoint.pt")["images_seen"] == seen + 16


def test_two_quick_interrupts_exit_130_without_a_traceback(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "r3gan_core.cli", *LONG_RUN, "--out-dir", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while not (out / "log.jsonl").is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr and "--resume" in stderr
    seen = ckpt_io.load(out / "checkpoint.pt")["images_seen"]  # the last good checkpoint is whole
    assert main(["train", "--resume", "--out-dir", str(out), "--total-images", str(seen + 16), "--no-progress"]) == 0


# ----- messages instead of tracebacks -----

@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_a_damaged_checkpoint_is_named(run_dir, capsys, tmp_path, damage):
    ckpt = run_dir / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "text": b"not a checkpoint\n"}[damage])
    before = snapshot(run_dir)
    _refused(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"], capsys,
             str(ckpt), "damaged", "no other checkpoint", "--overwrite")
    _refused(["sample", "--checkpoint", str(ckpt), "--out", str(tmp_path / "g.png")], capsys, str(ckpt), "damaged")
    _refused(["evaluate", "--checkpoint", str(ckpt), "--num-samples", "10"], capsys, str(ckpt), "damaged")
    assert snapshot(run_dir) == before and not (tmp_path / "g.png").exists()


def test_a_torn_last_log_line_is_dropped_on_resume(run_dir, capsys):
    log = run_dir / "log.jsonl"
    records = read_log(log)
    log.write_text(log.read_text() + '{"images_seen": 24, "d_lo')  # power loss mid-append
    assert main(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert str(log) in err and "torn last record" in err
    again = read_log(log)
    assert again[: len(records)] == records and [r["images_seen"] for r in again] == [8, 16, 24]


def test_a_damaged_middle_log_line_is_named(run_dir, capsys):
    log = run_dir / "log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(["{broken", *lines]) + "\n")
    before = snapshot(run_dir)
    _refused(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"], capsys,
             f"{log} line 1 is damaged")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("flags, needles", [
    (["--network", "widths=64"], ["--network", "widths=64", "comma list"]),
    (["--network", "widths=abc"], ["--network", "widths='abc'"]),
    (["--network", "z_dim=0"], ["--network", "z_dim=0", "positive whole number"]),
    (["--network", "z_dim=-5"], ["--network", "z_dim=-5", "positive whole number"]),
    (["--network", "fir_taps=abc"], ["--network", "fir_taps='abc'", "comma list of numbers"]),
    (["--device", "foo"], ["--device", "'foo'", "auto, cpu, cuda"]),
    (["--lr", "0"], ["--lr must start > 0"]),
    (["--pl-interval", "-1"], ["--pl-interval must be a whole number >= 0 (0 = off), got -1"]),
    (["--gamma", "inf"], ["--gamma must be finite, got inf"]),
    (["--gamma", "1,inf"], ["--gamma must be finite", "(1.0, inf)"]),
    (["--ema-half-life", "inf"], ["--ema-half-life must be finite"]),
    (["--spectral-iters", "0"], ["--spectral-iters must be a whole number >= 1, got 0"]),
    (["--ortho-beta", "-1"], ["--ortho-beta must be a finite number >= 0, got -1.0"]),
    (["--blowup", "-1"], ["--blowup must be a finite number > 0, got -1.0"]),
    (["--aug-p", "0,2"], ["--aug-p must lie in [0, 1]"]),
    (["--beta2", "1"], ["--beta2 must lie in [0, 1)"]),
    (["--max-items", "0"], ["--max-items must be a whole number >= 1, got 0"]),
    (["--dataset", "bogus:8"], ["--dataset: unknown dataset scheme 'bogus'", "'stacked-digits'"]),
    (["--dataset", "folder:/no/such/folder@8"], ["--dataset folder:/no/such/folder@8: /no/such/folder does not exist"]),
    (["--preset", "cifar10"], ["--dataset: preset 'cifar10' has no built-in data", "folder:/folder"]),
    (["--style-mixing", "0.5"], ["--style-mixing needs a mapping network", "config E"]),
    (["--pl-interval", "4"], ["--pl-interval needs a mapping network"]),
    (["--config", "A", "--batch", "7"], ["--batch must be divisible by 2 with path-length regularisation"]),
])
def test_bad_flags_name_themselves(tmp_path, capsys, flags, needles):
    out = tmp_path / "run"
    err = _refused(TINY + ["--total-images", "16", "--out-dir", str(out)] + flags, capsys, *needles)
    assert not out.exists()  # refused before anything was written
    # so the corrected command is not refused with "already holds a run"
    assert "already holds" not in err


def test_a_bad_setting_on_resume_leaves_the_run_as_it_was(run_dir, capsys):
    before = snapshot(run_dir)
    _refused(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--gamma", "1,inf"], capsys,
             "--gamma must be finite")
    assert snapshot(run_dir) == before


def test_python_callers_see_the_setting_name():
    from r3gan_core.training import TrainConfig, train
    from r3gan_core.training.validate import SettingError

    with pytest.raises(SettingError, match=r"^ema_half_life must be finite") as info:
        train(TrainConfig(total_images=16, ema_half_life=float("inf")))
    assert info.value.setting == "ema_half_life" and info.value.as_flag().startswith("--ema-half-life ")


# ----- checkpoints that do not fit -----

def _edited_checkpoint(run_dir: Path, target: Path, edit) -> Path:
    ckpt = ckpt_io.load(run_dir / "checkpoint.pt")
    edit(ckpt)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, target)
    return target


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "r3gan_core.cli", *argv], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def _no_keys(ckpt):
    del ckpt["G_ema"], ckpt["rng"]


def _other_shapes(ckpt):
    for name in ("G", "G_ema"):
        ckpt[name] = {k: torch.zeros(*(n + 1 for n in v.shape)) if v.ndim else v for k, v in ckpt[name].items()}


@pytest.mark.parametrize("edit, needles", [
    (_no_keys, ["has no G_ema", "not written by r3gan train"]),
    (_other_shapes, ["its G_ema does not fit the networks this code builds for config E at preset stacked8",
                     "size mismatch for", "--network"]),
])
def test_sample_names_a_checkpoint_that_does_not_fit(run_dir, tmp_path, edit, needles):
    path = _edited_checkpoint(run_dir, tmp_path / "edited.pt", edit)
    proc = _cli("sample", "--checkpoint", str(path), "--out", str(tmp_path / "grid.png"))
    assert proc.returncode == EXIT_BAD_INPUT and "Traceback" not in proc.stderr
    assert all(n in proc.stderr for n in needles), proc.stderr
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("edit, needles", [
    (_no_keys, ["cannot be used to resume a run: it has no G_ema, rng"]),
    (_other_shapes, ["its G does not fit the networks this code builds", "size mismatch for"]),
])
def test_resume_names_a_checkpoint_that_does_not_fit(run_dir, edit, needles):
    _edited_checkpoint(run_dir, run_dir / "checkpoint.pt", edit)
    before = snapshot(run_dir)
    proc = _cli("train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress")
    assert proc.returncode == EXIT_BAD_INPUT and "Traceback" not in proc.stderr
    assert all(n in proc.stderr for n in needles), proc.stderr
    assert snapshot(run_dir) == before


def _older_recipe(ckpt):
    """As if an older version, with other defaults for this preset, had written the checkpoint."""
    ckpt["recipe"]["lr"] = {"base": 1e-3, "final": 1e-3, "total_images": 0.0}
    ckpt["recipe"]["gamma"] = {"base": 5.0, "final": 0.5, "total_images": 256000.0}


@pytest.mark.parametrize("extra, lr, gamma", [
    ([], 1e-3, "checkpoint"),  # the checkpoint's recipe wins
    (["--gamma", "0.3"], 1e-3, 0.3),  # a setting given on this command wins over both
    (["--adopt-code-recipe"], "code", "code"),  # asked for: this code's recipe
])
def test_resume_keeps_the_checkpoints_recipe_and_names_the_difference(run_dir, extra, lr, gamma):
    from r3gan_core.training import TrainConfig, recipe_for

    _edited_checkpoint(run_dir, run_dir / "checkpoint.pt", _older_recipe)
    proc = _cli("train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "lr: checkpoint 0.001 vs this code 0.0002 -> 5e-05 over 256,000 images" in proc.stderr
    assert "gamma: checkpoint 5 -> 0.5 over 256,000 images vs this code 1 -> 0.1" in proc.stderr
    last = read_log(run_dir / "log.jsonl")[-1]
    code = recipe_for(TrainConfig.from_dict(ckpt_io.load(run_dir / "checkpoint.pt")["train_config"]))
    expected_lr = code.lr(16) if lr == "code" else lr
    expected_gamma = {"code": code.gamma(16), "checkpoint": 5.0 + (0.5 - 5.0) * (1 - math.cos(math.pi * 16 / 256000)) / 2}
    assert last["images_seen"] == 24 and math.isclose(last["lr"], expected_lr, rel_tol=1e-9)
    assert math.isclose(last["gamma"], expected_gamma.get(gamma, gamma), rel_tol=1e-9)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_a_missing_gpu_is_named(tmp_path, capsys, device):
    _refused(TINY + ["--total-images", "16", "--out-dir", str(tmp_path / "r"), "--device", device], capsys,
             f"--device: device {device!r}: this machine has no CUDA GPU", "valid choices here: auto, cpu")


def test_labels_beyond_the_class_count_are_refused_before_writing(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(8):
        Image.fromarray(np.full((8, 8), 30 * i, dtype=np.uint8)).save(images / f"{i}.png")
    (images / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", 50 + i] for i in range(8)]}))
    out = tmp_path / "run"
    _refused(["train", "--preset", "digits8", "--conditional", "--dataset", f"folder:{images}", "--total-images",
              "16", "--batch", "8", "--no-progress", "--out-dir", str(out)], capsys,
             "class labels up to 57", "--network num_classes=58")
    assert not out.exists()


def test_resume_without_out_dir_is_refused(capsys):
    _refused(["train", "--resume", "--total-images", "16"], capsys, "--resume without PATH", "--out-dir")


def test_out_dir_that_is_a_file_or_under_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    _refused(TINY + ["--total-images", "16", "--out-dir", str(afile)], capsys, "is a file, not a folder")
    _refused(TINY + ["--total-images", "16", "--out-dir", str(afile / "run")], capsys, "is a file, not a folder")
    assert afile.read_text() == "mine"


def test_an_unwritable_out_dir_is_refused_before_data_loads(tmp_path, capsys, monkeypatch):
    # root may write anywhere, so the permission is simulated where the check reads it (os.access)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode))
    _refused(TINY + ["--total-images", "16", "--out-dir", str(tmp_path / "run")], capsys, "is not writable",
             str(tmp_path))
    assert not (tmp_path / "run").exists()


def test_a_full_disk_is_a_message_and_keeps_the_last_checkpoint(run_dir, capsys, monkeypatch):
    before = snapshot(run_dir)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_io.torch, "save", full)
    _refused(["train", "--resume", "--out-dir", str(run_dir), "--total-images", "24", "--no-progress"], capsys,
             "No space left on device")
    assert (run_dir / "checkpoint.pt").read_bytes() == before["checkpoint.pt"]
    assert ckpt_io.load(run_dir / "checkpoint.pt")["images_seen"] == 16
    assert not list(run_dir.glob(".checkpoint.pt.*.tmp"))


def test_dirac_refuses_an_infinite_gamma():
    from r3gan_core.convergence import dirac

    with pytest.raises(ValueError, match="gamma must be a finite number"):
        dirac.equilibrium_eigenvalues("gan", "r1", float("inf"))


# ----- smaller -----

def test_resuming_at_zero_images_measures_spectra_once(tmp_path, monkeypatch):
    from r3gan_core.training import TrainConfig, steps, train

    cfg = TrainConfig(config="E", preset="stacked8", batch=8, total_images=16, log_every=8, progress=False,
                      device="cpu", network={"widths": [16, 16]}, max_items=2000, threads=1, spectral_every=8,
                      spectral_iters=2, out_dir=str(tmp_path / "run"))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the first step")

    with monkeypatch.context() as m:
        m.setattr("r3gan_core.training.loop.discriminator_step", killed)
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    assert ckpt_io.load(tmp_path / "run" / "checkpoint.pt")["images_seen"] == 0
    result = train(TrainConfig(**{**cfg.as_dict(), "resume": "auto"}))
    assert result.status == "ok"
    lines = (tmp_path / "run" / "spectral.jsonl").read_text().splitlines()
    assert [json.loads(line)["images_seen"] for line in lines] == [0, 8, 16]
