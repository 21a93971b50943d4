#!/usr/bin/env python
"""Images/s of the whole training loop, `train()` itself, at whatever commit PYTHONPATH points to, so two commits
compare side by side (issue 10's "run it from a git worktree beside yours"):

    git worktree add ../base 16837c9
    PYTHONPATH=../base python benchmarks/bench_loop.py --preset stacked16 --threads 2
    PYTHONPATH=.       python benchmarks/bench_loop.py --preset stacked16 --threads 2

Each measurement trains Config E twice from scratch, for --short and --long steps, and divides the extra images by
the extra seconds, so start-up (data, networks) cancels. One untimed warm-up run comes first; --repeats
measurements follow, printed as one JSON line. Only what every commit's TrainConfig has is used, which is why
this script does not import the benchmark helpers of the current tree.
"""

from __future__ import annotations

import argparse
import json
import time

try:
    from r3gan_core.training import TrainConfig, train
except ImportError:  # commits before the training/ package
    from r3gan_core.train import TrainConfig, train


def seconds(steps: int, batch: int, **settings) -> float:
    t0 = time.perf_counter()
    train(TrainConfig(total_images=batch * steps, batch=batch, log_every=10**9, progress=False, **settings))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="stacked16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--penalty", default="r1+r2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--short", type=int, default=4, help="steps of the short run (default: 4)")
    parser.add_argument("--long", type=int, default=30, help="steps of the long run (default: 30)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.long <= args.short:
        parser.error(f"--long ({args.long}) must be more steps than --short ({args.short})")
    settings = dict(config="E", preset=args.preset, penalty=args.penalty, threads=args.threads, max_items=5000)
    seconds(2, args.batch, **settings)  # warm-up
    rates = []
    for _ in range(args.repeats):
        short, long = seconds(args.short, args.batch, **settings), seconds(args.long, args.batch, **settings)
        rates.append(args.batch * (args.long - args.short) / (long - short))
    print(json.dumps({"preset": args.preset, "threads": args.threads, "penalty": args.penalty, "batch": args.batch,
                      "images_per_s": rates}))


if __name__ == "__main__":
    main()
