#!/usr/bin/env python
"""Time one training iteration per roadmap config and preset: a D step, then a G step.

    python benchmarks/bench_iteration.py --configs A B C D E --presets stacked16 --batch 32 --iters 10
    python benchmarks/bench_iteration.py --presets cifar10 --batch 64 --no-penalty     # without R1 + R2
    python benchmarks/bench_iteration.py --configs E --presets stacked16 --trainer      # the trainer's own steps

--trainer also times the code `r3gan_core.training.train` runs each iteration (training.steps: apply_schedule,
discriminator_step, generator_step, ema_step, on the context and state training.loop.prepare builds), not a copy
of it, and prints the trainer / bare ratio: schedules, EMA, gradient-norm and finiteness statistics are the
difference. D's input-gradient norms are measured only on log steps, so the timed steps measure none. With
--penalty-overhead the trainer is also timed without penalties and its own R1 + R2 overhead printed.

The D step is `losses.discriminator_objective` (adversarial loss + (gamma/2)(R1 + R2), a double backward
through D; with --no-penalty, no input gradient at all, not even the trainer's logged gradient norms), the
G step `losses.generator_objective`; both use Adam with betas (0.0, 0.99). Data are random
tensors, so only compute is measured (no loader). On CUDA the forward passes run under bf16 autocast with
channels_last tensors; on a CPU in float32. Images/second counts real images, i.e. the batch size per
iteration. The paper's reference point: CIFAR-10 config E ran at about 90 images/s per L40 GPU with the
penalties (PAPER_FACTS Sec. 5), and users report R1 + R2 make a step 6-7x slower than without.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from r3gan_core.losses import LOSSES, discriminator_objective, generator_objective  # noqa: E402
from r3gan_core.networks import available_configs, available_presets, build, conv, count_parameters  # noqa: E402
from r3gan_core.report import device_description, pick_device  # noqa: E402
from r3gan_core.training import TrainConfig  # noqa: E402
from r3gan_core.training import distributed as dist_utils  # noqa: E402
from r3gan_core.training.loop import prepare  # noqa: E402
from r3gan_core.training.steps import apply_schedule, discriminator_step, ema_step, generator_step  # noqa: E402


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iteration(config: str, preset: str, batch: int, iters: int, warmup: int, penalty: str, loss: str,
                   gamma: float, conditional: bool, device: torch.device, amp: bool, seed: int = 0) -> dict:
    """Seconds per iteration (median over `iters`, after `warmup` untimed ones) and images / second."""
    torch.manual_seed(seed)
    G, D = build(config, preset, conditional=conditional)
    n_g, n_d = count_parameters(G), count_parameters(D)
    fmt = torch.channels_last if (amp and device.type == "cuda") else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.99), eps=1e-8)
    real = torch.randn(batch, D.channels, D.resolution, D.resolution, device=device).to(memory_format=fmt)

    def labels() -> torch.Tensor | None:
        return torch.randint(0, G.num_classes, (batch,), device=device) if G.num_classes else None

    def iteration() -> None:
        # D step: fakes without G's graph, then loss + penalties (double backward through D).
        c = labels()
        with torch.no_grad(), _autocast(device, amp):
            fake = G(torch.randn(batch, G.z_dim, device=device), c)
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            d_obj, _ = discriminator_objective(D, real, fake.float(), loss, penalty, gamma, labels=c,
                                               measure_gradients=False)
        d_obj.mean().backward()
        opt_d.step()
        # G step: D frozen, gradients flow through D into G.
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        c = labels()
        with _autocast(device, amp):
            fake = G(torch.randn(batch, G.z_dim, device=device), c)
            g_obj, _ = generator_objective(D, fake, real, loss, labels=c)
        g_obj.mean().backward()
        opt_g.step()

    median = _seconds_per_step(iteration, iters, warmup, device)
    return {"config": config, "preset": preset, "batch": batch, "penalty": penalty, "loss": loss,
            "conditional": conditional, "s_per_iter": median, "images_per_s": batch / median,
            "G_params": n_g, "D_params": n_d}


def _seconds_per_step(step, iters: int, warmup: int, device: torch.device, mean: bool = False) -> float:
    """After `warmup` untimed steps: the median of `iters` timed steps, or with `mean` the mean over `iters`
    consecutive steps (for steps that differ, such as lazy penalties)."""
    for _ in range(warmup):
        step()
    _sync(device)
    if mean:
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        _sync(device)
        return (time.perf_counter() - t0) / iters
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def time_trainer_iteration(config: str, preset: str, batch: int, iters: int, warmup: int, penalty: str, loss: str,
                           gamma: float, conditional: bool, device: torch.device, amp: bool,
                           channels_last: bool | None = None, penalty_interval: int | None = None) -> dict:
    """Seconds per iteration of the trainer's own step functions on random data of the preset's shape.

    penalty_interval: R1/R2 every k steps with weight x k (lazy, as config A's recipe); then the steps differ and
    the time is the mean over `iters` steps (a multiple of k), not the median."""
    from types import SimpleNamespace

    cfg = TrainConfig(config=config, preset=preset, batch=batch, total_images=batch * (iters + warmup + 1) * 4,
                      loss=loss, penalty=penalty, gamma=gamma, conditional=conditional, device=str(device),
                      amp="bf16" if amp else "off", channels_last=channels_last, progress=False,
                      penalty_interval=penalty_interval,
                      aug_p=0.0)  # like the bare iteration: no augmentation (and no kornia needed)
    G, _ = build(config, preset, conditional=conditional)
    n = max(4 * batch, 256)
    data = SimpleNamespace(images=torch.randn(n, G.channels, G.resolution, G.resolution).clamp(-1, 1),
                           labels=torch.randint(0, max(G.num_classes, 1), (n,)) if conditional else None)
    env = dist_utils.setup(str(device))
    ctx, state = prepare(cfg, env, data=data)

    def step() -> None:
        _, _, g, aug_p = apply_schedule(ctx.recipe, state)
        discriminator_step(ctx, state, g, measure_gradients=False, aug_p=aug_p)
        generator_step(ctx, state, aug_p=aug_p)
        ema_step(ctx, state, use_ema=True)
        state.images_seen, state.step = state.images_seen + ctx.recipe.batch, state.step + 1

    k = ctx.recipe.penalty_interval
    seconds = _seconds_per_step(step, -(-iters // k) * k, warmup, device, mean=True) if k > 1 else \
        _seconds_per_step(step, iters, warmup, device)
    return {"config": config, "preset": preset, "batch": batch, "penalty": penalty, "loss": loss,
            "conditional": conditional, "s_per_iter": seconds, "images_per_s": batch / seconds,
            "channels_last": ctx.memory_format == torch.channels_last,
            "penalty_interval": ctx.recipe.penalty_interval}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(available_configs()), choices=available_configs())
    parser.add_argument("--presets", nargs="+", default=["stacked16"], choices=available_presets())
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=10, help="timed iterations (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--no-penalty", action="store_true", help="drop R1 + R2 (compare the cost of the penalties)")
    parser.add_argument("--loss", default="rpgan", choices=LOSSES)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--no-amp", action="store_true", help="CUDA: float32 instead of bf16 autocast + channels_last")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (torch.set_num_threads); default: torch's choice")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--penalty-overhead", action="store_true",
                        help="also time the same iteration without penalties and print with / without")
    parser.add_argument("--trainer", action="store_true",
                        help="also time the trainer's own step functions and print trainer / bare")
    parser.add_argument("--penalty-interval", type=int, default=None, metavar="K",
                        help="--trainer: R1/R2 every K steps with weight x K (lazy regularisation; default: the "
                             "config's recipe, 16 for A and 1 otherwise); timed as a mean over whole periods")
    parser.add_argument("--intervals", type=int, nargs="+", default=None, metavar="K",
                        help="the trainer's R1 + R2 overhead at each penalty interval K (lazy regularisation, weight "
                             "x K), measured in one run against the trainer without penalties, e.g. 1 2 4 8 16")
    parser.add_argument("--conv-backward", choices=conv.MODES, default="auto",
                        help="networks.conv's backward: auto (first-order on CUDA, PyTorch's own on a CPU), "
                             "first-order, or reference (PyTorch's own double backward)")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="--trainer: memory format (auto = the trainer's default for the device)")
    args = parser.parse_args(argv)
    if args.intervals and min(args.intervals) < 1:
        parser.error(f"--intervals: every K must be a whole number >= 1, got {args.intervals}")

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = device.type == "cuda" and not args.no_amp
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    penalty = "none" if args.no_penalty else "r1+r2"
    print(f"device: {device_description(device)}; {'bf16 autocast + channels_last' if amp else 'float32'}; "
          f"batch {args.batch}; penalty {penalty}; loss {args.loss}; median of {args.iters} iterations; "
          f"convolution backward {args.conv_backward}", flush=True)
    with conv.using(args.conv_backward):
        rows = _time_rows(args, device, amp, penalty)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": device_description(device), "amp": amp,
                                         "conv_backward": args.conv_backward, "rows": rows}, indent=2))
    return 0


def _time_rows(args: argparse.Namespace, device: torch.device, amp: bool, penalty: str) -> list[dict]:
    """Time every (preset, config) the arguments name; print each row as it is measured."""
    print(f"{'config':<6} {'preset':<12} {'G params':>11} {'D params':>11} {'s/iter':>9} {'images/s':>9}", flush=True)
    rows = []
    for preset in args.presets:
        for config in args.configs:
            r = time_iteration(config, preset, args.batch, args.iters, args.warmup, penalty, args.loss, args.gamma,
                               args.conditional, device, amp)
            rows.append(r)
            print(f"{config:<6} {preset:<12} {r['G_params']:>11,} {r['D_params']:>11,} {r['s_per_iter']:>9.4f} "
                  f"{r['images_per_s']:>9.1f}", flush=True)
            if args.penalty_overhead and penalty != "none":
                bare = time_iteration(config, preset, args.batch, args.iters, args.warmup, "none", args.loss,
                                      args.gamma, args.conditional, device, amp)
                r["without_penalty"] = bare
                print(f"{'':<6} {'no penalty':<12} {'':>23} {bare['s_per_iter']:>9.4f} {bare['images_per_s']:>9.1f}"
                      f"   R1 + R2 overhead = {bare['images_per_s'] / r['images_per_s']:.2f}x", flush=True)
            if args.trainer:
                cl = {"auto": None, "on": True, "off": False}[args.channels_last]
                t = time_trainer_iteration(config, preset, args.batch, args.iters, args.warmup, penalty, args.loss,
                                           args.gamma, args.conditional, device, amp, cl, args.penalty_interval)
                r["trainer"] = t
                label = "trainer" if t["penalty_interval"] == 1 else f"trainer k={t['penalty_interval']}"
                ratio = (f"trainer / bare = {t['images_per_s'] / r['images_per_s']:.2f}" if t["penalty_interval"] == 1
                         else "trainer / bare: not comparable (the bare iteration penalises every step)")
                print(f"{'':<6} {label:<12} {'channels_last' if t['channels_last'] else 'contiguous':>23} "
                      f"{t['s_per_iter']:>9.4f} {t['images_per_s']:>9.1f}   {ratio}", flush=True)
                if args.penalty_overhead and penalty != "none":
                    tb = time_trainer_iteration(config, preset, args.batch, args.iters, args.warmup, "none",
                                                args.loss, args.gamma, args.conditional, device, amp, cl,
                                                args.penalty_interval)
                    t["without_penalty"] = tb
                    print(f"{'':<6} {'trainer, no penalty':<23} {'':>12} {tb['s_per_iter']:>9.4f} "
                          f"{tb['images_per_s']:>9.1f}   trainer R1 + R2 overhead = "
                          f"{tb['images_per_s'] / t['images_per_s']:.2f}x", flush=True)
            if args.intervals:
                r["intervals"] = interval_overheads(args, config, preset, device, amp, penalty)
    return rows


def interval_overheads(args: argparse.Namespace, config: str, preset: str, device: torch.device, amp: bool,
                       penalty: str) -> list[dict]:
    """The trainer with R1 + R2 every K steps (weight x K) against the trainer without penalties, for each K of
    --intervals, all in this process; one row per K with its overhead (no-penalty images/s over penalised)."""
    cl = {"auto": None, "on": True, "off": False}[args.channels_last]
    common = (config, preset, args.batch, args.iters, args.warmup)
    rest = (args.loss, args.gamma, args.conditional, device, amp, cl)
    free = time_trainer_iteration(*common, "none", *rest, 1)
    print(f"{'':<6} {'trainer, no penalty':<23} {'':>12} {free['s_per_iter']:>9.4f} {free['images_per_s']:>9.1f}",
          flush=True)
    out = []
    for k in args.intervals:
        t = time_trainer_iteration(*common, penalty, *rest, k)
        t["overhead"] = free["images_per_s"] / t["images_per_s"]
        t["without_penalty_images_per_s"] = free["images_per_s"]
        out.append(t)
        print(f"{'':<6} {f'trainer k={k}':<23} {'':>12} {t['s_per_iter']:>9.4f} {t['images_per_s']:>9.1f}   "
              f"R1 + R2 overhead = {t['overhead']:.2f}x", flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
