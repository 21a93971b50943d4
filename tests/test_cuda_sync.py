"""On CUDA the trainer never waits for the device between its checks (issue 10: "a GPU path that never waits on
the host"). Needs a GPU: skipped on a CPU (CI has none); ci/gpu_session.sh runs it on a lent GPU.

A host synchronisation is what torch.cuda.set_sync_debug_mode reports: `.item()`, a device-to-host copy, and a
blocking host-to-device copy (which synchronises the stream).
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch

from r3gan_core.training import TrainConfig, train
from r3gan_core.training import distributed as dist_utils
from r3gan_core.training.loop import prepare
from r3gan_core.training.steps import apply_schedule, discriminator_step, ema_step, generator_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

BATCH = 16


def _random_data(conditional: bool) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(images=torch.rand(64, 3, 8, 8, generator=g) * 2 - 1,
                           labels=torch.randint(0, 10, (64,), generator=g) if conditional else None)


def _step(ctx, state, check: bool) -> None:
    _, _, gamma, aug_p = apply_schedule(ctx.recipe, state)
    discriminator_step(ctx, state, gamma, measure_gradients=False, check=check, aug_p=aug_p)
    generator_step(ctx, state, check=check, aug_p=aug_p)
    ema_step(ctx, state, use_ema=True)
    state.images_seen, state.step = state.images_seen + ctx.recipe.batch, state.step + 1


@pytest.mark.parametrize("config, conditional", [("E", True), ("E", False), ("C", False), ("A", False)])
def test_unchecked_steps_never_synchronise(config, conditional):
    """Schedule, D step (R1 + R2; for A the lazy penalty step), G step (for A path length and style mixing), EMA:
    no call may wait for the device when the step is not a checked one."""
    cfg = TrainConfig(config=config, preset="stacked8", batch=BATCH, total_images=BATCH * 64, device="cuda",
                      conditional=conditional, network={"num_classes": 10} if conditional else {}, progress=False)
    ctx, state = prepare(cfg, dist_utils.setup("cuda"), data=_random_data(conditional))
    assert ctx.stats_on_device
    for _ in range(2):  # warm-up: lazy initialisation, cuDNN autotuning
        _step(ctx, state, check=True)
    state.step = 15  # steps 15..18 include config A's lazy penalty (every 16) and path-length (every 4) steps
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(4):
            _step(ctx, state, check=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def _syncs_in_run(steps: int) -> int:
    cfg = TrainConfig(config="E", preset="stacked8", batch=BATCH, total_images=BATCH * steps, device="cuda",
                      max_items=256, log_every=10**9, progress=False, guard_every=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = train(cfg)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert result.status == "ok", result.message
    return sum("synchronizing" in str(w.message) for w in caught)


def test_the_loop_synchronises_only_at_its_checks():
    """The whole loop (train()): 64 more steps add at most a few synchronisations per check (every 16 steps);
    one per step (a blocking copy, an .item()) would add at least 64. A check reads the D step's, the G step's
    and the deferred statistics: three."""
    short, long = _syncs_in_run(32), _syncs_in_run(96)
    checks = (96 - 32) // 16
    assert long - short <= 4 * checks, (short, long)
