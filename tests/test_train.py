"""The trainer: every config runs with the right penalties, resume is exact, two ranks equal one, divergence
returns normally, checkpoints are atomic. Tiny networks (widths 16) on 8x8 digits keep this CPU-cheap."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from r3gan_core.training import checkpoint as ckpt_io
from r3gan_core import sampling
from r3gan_core import training as train_mod
from r3gan_core.training import steps as steps_mod
from r3gan_core.training import TrainConfig, read_log, train

REPO = Path(__file__).resolve().parent.parent
TINY = {
    "A": {"widths": [16, 16], "w_dim": 16, "mapping_layers": 2, "z_dim": 16},
    "B": {"widths": [16, 16]}, "C": {"widths": [16, 16]}, "D": {"widths": [16, 16]}, "E": {"widths": [16, 16]},
}
BATCH = 8




def tiny(config: str = "E", steps: int = 3, **kw) -> TrainConfig:
    """A run of `steps` iterations logging every step."""
    base = dict(config=config, preset="digits8", batch=BATCH, total_images=BATCH * steps, log_every=BATCH,
                progress=False, device="cpu", network=dict(TINY[config]))
    base.update(kw)
    return TrainConfig(**base)


def finite_record(rec: dict) -> bool:
    return all(math.isfinite(v) for v in rec.values() if isinstance(v, float))


def state_dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------------------
# Every configuration trains, with the penalties of its recipe
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config,preset", [("B", "digits8"), ("C", "stacked8"), ("D", "digits8"), ("E", "stacked8")])
def test_configs_train_with_their_penalties(config, preset):
    result = train(tiny(config, steps=3, preset=preset, max_items=2000))
    assert result.status == "ok" and result.steps == 3 and result.images_seen == 3 * BATCH
    assert len(result.records) == 3 and all(finite_record(r) for r in result.records)
    for rec in result.records:
        assert rec["r1_weight"] == pytest.approx(rec["gamma"] / 2, rel=1e-6)  # every step, gamma / 2
        if config == "B":
            assert rec["r2_weight"] == 0.0  # GAN + R1 only
        else:
            assert rec["r2_weight"] == pytest.approx(rec["gamma"] / 2, rel=1e-6)
        assert rec["pl_steps"] == 0 and rec["pl_penalty"] is None
        assert rec["grad_norm_fake"] > 0 and rec["grad_norm_real"] > 0
    assert result.recipe.loss == ("gan" if config == "B" else "rpgan")
    x = result.G_ema(torch.randn(4, result.G_ema.z_dim))
    assert x.shape == (4, 3 if preset == "stacked8" else 1, 8, 8) and torch.isfinite(x).all()


def test_config_a_lazy_r1_every_16_and_path_length_every_4():
    result = train(tiny("A", steps=17))
    assert result.status == "ok" and all(finite_record(r) for r in result.records)
    steps_r1 = [r["step"] - 1 for r in result.records if r["r1_weight"] > 0]
    steps_pl = [r["step"] - 1 for r in result.records if r["pl_steps"] > 0]
    assert steps_r1 == [0, 16]
    assert steps_pl == [0, 4, 8, 12, 16]
    for rec in result.records:
        assert rec["r2_weight"] == 0.0
        if rec["r1_weight"] > 0:  # the lazy weight is gamma / 2 times the interval
            assert rec["r1_weight"] == pytest.approx(16 * rec["gamma"] / 2)
    assert result.recipe.style_mixing == 0.9
    assert all(r["pl_penalty"] is not None and r["pl_mean"] > 0 for r in result.records if r["pl_steps"])


def test_conditional_ortho_spectra_and_samples(tmp_path):
    result = train(tiny("E", steps=2, conditional=True, ortho_beta=1e-4, spectral_every=BATCH, spectral_iters=3,
                        sample_every=BATCH, sample_count=10, out_dir=str(tmp_path)))
    assert result.status == "ok"
    assert all("ortho_penalty" in r and r["ortho_penalty"] > 0 for r in result.records)
    assert [s["images_seen"] for s in result.spectral] == [0, 8, 16]
    assert result.spectral[-1]["G"] and all(v > 0 for v in result.spectral[-1]["D"].values())
    assert [n for n, _ in result.samples] == [0, 8, 16]
    assert result.samples[-1][1].shape == (10, 1, 8, 8)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [f"{n:010d}.png" for n in (0, 8, 16)]
    assert len(read_log(tmp_path / "log.jsonl")) == 2
    # fixed per-sample seeds: the first images do not depend on how many are drawn
    z4, z10 = sampling.fixed_latents(8, 4, seed=0), sampling.fixed_latents(8, 10, seed=0)
    assert torch.equal(z4, z10[:4])


def test_bf16_autocast_and_channels_last_path_runs_on_cpu():
    """The CUDA defaults (bf16 autocast, channels_last), forced on a CPU so the code path is exercised here."""
    result = train(tiny("E", steps=2, amp="bf16", channels_last=True))
    assert result.status == "ok" and all(finite_record(r) for r in result.records)
    assert result.records[-1]["precision"] == "bf16 autocast"


def test_bad_input_is_reported_clearly():
    with pytest.raises(ValueError, match="valid choices: 'A', 'B'"):
        train(TrainConfig(config="Z", device="cpu", progress=False))
    with pytest.raises(ValueError, match="amp"):
        train(tiny("E", amp="fp8"))
    with pytest.raises(ValueError, match="batch must be divisible by 2 with path-length"):
        train(tiny("A", batch=7))
    with pytest.raises(ValueError, match="generates"):  # stacked data for a 1-channel preset
        train(tiny("E", dataset="stacked-digits:8"))


# ---------------------------------------------------------------------------------------------------------
# Resume: N + M steps in one run == N steps, then resumed for M (bit for bit on a CPU)
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", ["E", "A"])
def test_resume_is_exact(tmp_path, config):
    n, m = 3, 3
    one = train(tiny(config, steps=n + m, out_dir=str(tmp_path / "one")))
    first = train(tiny(config, steps=n, out_dir=str(tmp_path / "two")))
    assert first.steps == n
    second = train(tiny(config, steps=n + m, out_dir=str(tmp_path / "two"), resume="auto"))
    assert second.steps == n + m and second.images_seen == (n + m) * BATCH
    a = ckpt_io.load(tmp_path / "one" / "checkpoint.pt")
    b = ckpt_io.load(tmp_path / "two" / "checkpoint.pt")
    for key in ("G", "D", "G_ema"):
        assert state_dicts_equal(a[key], b[key]), key
    for key in ("opt_G", "opt_D"):
        sa, sb = a[key]["state"], b[key]["state"]
        assert all(state_dicts_equal(sa[i], sb[i]) for i in sa)
    assert torch.equal(a["batch_stream"], b["batch_stream"]) and torch.equal(a["pl_mean"], b["pl_mean"])
    # the resumed log holds every step once
    assert [r["step"] for r in read_log(tmp_path / "two" / "log.jsonl")] == list(range(1, n + m + 1))


def test_resume_refuses_a_different_run(tmp_path):
    train(tiny("E", steps=1, out_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="cannot resume a different run .*--config: checkpoint"):
        train(tiny("D", steps=2, out_dir=str(tmp_path), resume=str(tmp_path / "checkpoint.pt")))


# ---------------------------------------------------------------------------------------------------------
# Divergence guard and atomic checkpoints
# ---------------------------------------------------------------------------------------------------------
def test_divergence_returns_status_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real_objective = steps_mod.discriminator_objective

    def poisoned(*args, **kwargs):  # NaN in D's objective from the 4th step on
        calls["n"] += 1
        total, stats = real_objective(*args, **kwargs)
        if calls["n"] >= 4:
            stats = dict(stats, r1=float("nan"))
            total = total * float("nan")
        return total, stats

    monkeypatch.setattr(steps_mod, "discriminator_objective", poisoned)
    result = train(tiny("E", steps=6, out_dir=str(tmp_path), checkpoint_every=2 * BATCH))
    assert result.status == "diverged" and result.steps == 3
    assert "diverged in the D step at step 3" in result.message and "r1=nan" in result.message
    assert "diverged" in capsys.readouterr().out
    state = ckpt_io.load(result.checkpoint_path)
    assert state["step"] == 2  # the last periodic checkpoint before the NaN, untouched
    assert all(torch.isfinite(v).all() for v in state["G"].values())
    record = json.loads((tmp_path / "train_metrics.json").read_text())
    assert record["status"] == "diverged" and record["steps"] == 3


def test_absurd_learning_rate_diverges_without_raising(tmp_path):
    result = train(tiny("E", steps=5, lr=1e8, out_dir=str(tmp_path)))
    assert result.status == "diverged"
    assert ckpt_io.load(tmp_path / "checkpoint.pt")["step"] == 0  # the start checkpoint survives


def test_atomic_checkpoint_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "ck.pt"
    ckpt_io.save_atomic({"format": ckpt_io.CHECKPOINT_FORMAT, "x": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        ckpt_io.save_atomic({"format": ckpt_io.CHECKPOINT_FORMAT, "x": torch.zeros(3), "bad": Unpicklable()}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left behind
    assert torch.equal(ckpt_io.load(path)["x"], torch.ones(3))  # the previous checkpoint is intact
    with pytest.raises(ValueError, match="not an r3gan checkpoint"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        ckpt_io.load(tmp_path / "other.pt")


def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "r3gan_core.cli", "train", "--config", "E", "--preset", "digits8", "--batch", "8",
           "--total-images", "1M", "--checkpoint-every", "8", "--log-every", "8", "--no-progress", "--device", "cpu",
           "--network", "widths=16,16", "--out-dir", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(read_log(out / "log.jsonl")) >= 3:  # a checkpoint every step: the kill lands near a write
                break
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no cleanup handlers run
        proc.wait()
    assert len(read_log(out / "log.jsonl")) >= 3, proc.stderr.read().decode()[-2000:]
    state = ckpt_io.load(out / "checkpoint.pt")
    assert state["step"] >= 2
    resumed = train(tiny("E", steps=state["step"] + 1, out_dir=str(out), resume="auto"))
    assert resumed.status == "ok" and resumed.steps == state["step"] + 1
    assert not list(out.glob(".checkpoint.pt.*.tmp"))  # a temporary file of the killed write is cleaned up


# ---------------------------------------------------------------------------------------------------------
# Two ranks (torchrun, gloo, half batches) == one process with the full batch
# ---------------------------------------------------------------------------------------------------------
def test_two_ranks_equal_one_process(tmp_path):
    steps = 3
    single = train(tiny("E", steps=steps, out_dir=str(tmp_path / "one")))
    assert single.status == "ok"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "r3gan_core.cli", "train", "--config", "E", "--preset", "digits8", "--batch", str(BATCH),
           "--total-images", str(BATCH * steps), "--log-every", str(BATCH), "--no-progress", "--device", "cpu",
           "--network", "widths=16,16", "--out-dir", str(tmp_path / "two")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a = ckpt_io.load(tmp_path / "one" / "checkpoint.pt")
    b = ckpt_io.load(tmp_path / "two" / "checkpoint.pt")
    assert b["world_size"] == 2 and len(b["rng"]) == 2
    ckpt_io.seed_everything(0)
    g0, d0 = train_mod.build_networks(tiny("E"))  # the initialisation both runs started from
    start = {"G": g0.state_dict(), "G_ema": g0.state_dict(), "D": d0.state_dict()}
    for key in ("G", "D", "G_ema"):
        diff = max(float((a[key][k] - b[key][k]).abs().max()) for k in a[key])
        moved = max(float((a[key][k] - start[key][k]).abs().max()) for k in a[key])
        print(f"{key}: max |one - two| = {diff:.3g}, max |one - init| = {moved:.3g}")
        # Equal up to float summation order (a batch of 8 vs two of 4, then an all-reduce).
        assert diff <= 1e-5 and diff <= 1e-3 * moved, (key, diff, moved)
    # Logged means agree too (averaged over ranks).
    ra, rb = read_log(tmp_path / "one" / "log.jsonl"), read_log(tmp_path / "two" / "log.jsonl")
    for x, y in zip(ra, rb):
        for k in ("d_loss", "g_loss", "r1", "r2"):
            assert x[k] == pytest.approx(y[k], rel=1e-4, abs=1e-6)


def test_deferred_guard_trains_the_same_weights_and_still_catches_divergence(tmp_path, monkeypatch):
    """guard_every > 1 (the GPU default: no per-step host sync) changes when statistics are read, not training:
    the same weights as checking every step; a NaN on an unchecked step is still caught at the next check, and
    the last good checkpoint is finite."""
    every = train(tiny("E", steps=6, guard_every=1))
    deferred = train(tiny("E", steps=6, guard_every=4))
    for a, b in zip(every.G.parameters(), deferred.G.parameters()):
        assert torch.equal(a, b)
    assert [r["d_loss"] for r in every.records] == pytest.approx([r["d_loss"] for r in deferred.records])
    real_objective = steps_mod.discriminator_objective
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # a NaN statistic on the 2nd step only, an unchecked step
        calls["n"] += 1
        total, stats = real_objective(*args, **kwargs)
        return (total, dict(stats, d_loss=float("nan"))) if calls["n"] == 2 else (total, stats)

    monkeypatch.setattr(steps_mod, "discriminator_objective", poisoned)
    result = train(tiny("E", steps=8, guard_every=4, out_dir=str(tmp_path), log_every=100 * BATCH))
    assert result.status == "diverged" and "within the 4 steps before step 3" in result.message
    assert "d_loss" in result.message
    state = ckpt_io.load(result.checkpoint_path)
    assert state["step"] == 0 and all(torch.isfinite(t).all() for t in state["G"].values())
