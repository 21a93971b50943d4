"""The `r3gan` command: train, sample, evaluate.

    r3gan train --config E --preset stacked8 --total-images 64000 --out-dir runs/e [--resume [PATH]]
    r3gan sample --checkpoint runs/e/checkpoint.pt --n 64 --out grid.png [--out samples.pt] [--truncation 1.5]
    r3gan evaluate --checkpoint runs/e/checkpoint.pt [--dataset stacked-digits:8] [--num-samples 26000]
                   [--inception-weights weights-inception-2015-12-05-6726825d.pth]
    torchrun --nproc_per_node=4 -m r3gan_core.cli train ...     # several GPUs

`train`'s flags mirror TrainConfig's fields (config -> --config, total_images -> --total-images, ...).
With --resume, the run's settings come from the checkpoint and only the flags you pass change them (a longer
--total-images, say). A fresh run refuses an --out-dir that already holds a run: --resume continues it,
--overwrite replaces it. One process per run folder (a second one refuses while the first runs). Ctrl-C or
SIGTERM checkpoints at the end of the current step. Exit status: 0 ok, 2 bad input, 3 the run diverged (the last
good checkpoint is kept), 130 interrupted (checkpointed; continue with --resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
import typing
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


# ---------------------------------------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------------------------------------
def _schedule_value(text: str) -> float | tuple[float, float]:
    """'2e-4' (constant) or '2e-4,5e-5' (cosine from base to final)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'base,final', got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return (values[0], values[1])
    raise argparse.ArgumentTypeError(f"expected a number or 'base,final', got {text!r}")


def _images(text: str) -> int:
    """An image count: 64000, 64_000, 64k or 10M."""
    t = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an image count like 64000, 64k or 10M, got {text!r}") from None
    if value != int(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole, non-negative image count, got {text!r}")
    return int(value)


def _network_override(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE an int, float, bool, comma list of numbers, or a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)

    def scalar(s: str) -> Any:
        try:
            return json.loads(s)
        except json.JSONDecodeError:
            return s

    value = [scalar(s) for s in raw.split(",")] if "," in raw else scalar(raw)
    return key.strip(), value


# Flags that need more than the field's type.
_IMAGE_FIELDS = ("total_images", "log_every", "sample_every", "checkpoint_every", "spectral_every",
                 "schedule_images")
_SCHEDULE_FIELDS = ("gamma", "lr", "beta2", "ema_half_life", "aug_p")
_HELP = {
    "config": "roadmap configuration", "preset": "network and schedule preset",
    "dataset": "data spec, e.g. digits:8, stacked-digits:16, mnist:/path, folder:/path; a path spec ending in "
               "@R resizes to R px, e.g. folder:/path@64 (default: the preset's)",
    "network": "networks.build override KEY=VALUE (repeatable), e.g. widths=32,32",
    "gamma": "R1/R2 weight: a number or 'base,final'",
    "beta2": "Adam beta2: a number or 'base,final'", "ema_half_life": "EMA half-life in images: number or 'base,final'",
    "resume": "continue from PATH (default with no PATH: OUT_DIR/checkpoint.pt when present)",
    "pl_interval": "path length every k G steps (0 = off)", "ortho_beta": "BigGAN orthogonal penalty on G (e.g. 1e-4)",
    "amp": "'auto' = bf16 autocast on CUDA only", "device": "auto, cpu, cuda, cuda:1 or mps",
    "out_dir": "the run folder (checkpoint.pt, log.jsonl, ...); a fresh run refuses one that holds a run",
    "overwrite": "start over in an --out-dir that holds a run, replacing its checkpoint and logs",
    "lr": "learning rate (> 0): a number or 'base,final'",
    "aug_p": "ADA augmentation probability in [0, 1] on all D sees: a number or 'base,final'; None = the preset's "
             "(0 -> 0.55 on cifar10, 0 on the small presets); p > 0 needs kornia (the 'augment' extra)",
}


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; every default is 'not given' so --resume can tell what changed."""
    from .losses import LOSSES, PENALTIES
    from .training.recipes import CONFIGS, PRESETS
    from .training import AMP_CHOICES, TrainConfig

    choices = {"config": CONFIGS, "preset": tuple(PRESETS), "loss": LOSSES, "penalty": PENALTIES, "amp": AMP_CHOICES}
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = _HELP.get(f.name, "")
        default = getattr(defaults, f.name)
        if f.name not in ("resume", "network"):
            help_text = f"{help_text} (default: {default})".strip()
        kw: dict[str, Any] = dict(default=argparse.SUPPRESS, help=help_text)
        hint = hints[f.name]
        if f.name == "resume":
            p.add_argument(flag, nargs="?", const="auto", metavar="PATH", **kw)
        elif f.name == "network":
            p.add_argument(flag, type=_network_override, action="append", metavar="KEY=VALUE", **kw)
        elif f.name in _SCHEDULE_FIELDS:
            p.add_argument(flag, type=_schedule_value, metavar="V[,FINAL]", **kw)
        elif f.name in _IMAGE_FIELDS:
            p.add_argument(flag, type=_images, metavar="IMAGES", **kw)
        elif bool in typing.get_args(hint) or hint is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif f.name in choices:
            p.add_argument(flag, choices=choices[f.name], **kw)
        elif int in typing.get_args(hint) or hint is int:
            p.add_argument(flag, type=int, **kw)
        elif float in typing.get_args(hint) or hint is float:
            p.add_argument(flag, type=float, **kw)
        else:
            p.add_argument(flag, type=str, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r3gan", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,evaluate}")

    p_train = sub.add_parser("train", help="train a configuration (flags mirror TrainConfig)")
    _add_train_flags(p_train)

    p_sample = sub.add_parser("sample", help="draw samples from a checkpoint's generator")
    p_sample.add_argument("--checkpoint", required=True, metavar="PATH")
    p_sample.add_argument("--n", type=int, default=64, help="number of samples (default: 64)")
    p_sample.add_argument("--out", required=True, action="append", metavar="FILE",
                          help="a .png grid, .pt (images, labels, z) or .npz; repeatable")
    p_sample.add_argument("--truncation", type=float, default=None, metavar="T",
                          help="resample latent entries with |z| > T (BigGAN's truncation trick; default: none)")
    p_sample.add_argument("--seed", type=int, default=0)
    p_sample.add_argument("--class", dest="class_index", type=int, default=None, metavar="K",
                          help="conditional models: one class for every sample (default: classes cycle)")
    p_sample.add_argument("--which", choices=("G_ema", "G"), default="G_ema")
    p_sample.add_argument("--device", default="cpu")

    p_eval = sub.add_parser("evaluate", help="digit metrics (FD, KID, precision/recall, modes, KL) of a checkpoint; "
                                             "Inception FID / KID / precision/recall with --inception-weights")
    p_eval.add_argument("--checkpoint", required=True, metavar="PATH")
    p_eval.add_argument("--dataset", default=None, metavar="SPEC", help="real data (default: the run's)")
    p_eval.add_argument("--num-samples", type=int, default=26_000, help="generated samples (default: 26000)")
    p_eval.add_argument("--seed", type=int, default=0)
    p_eval.add_argument("--which", choices=("G_ema", "G"), default="G_ema")
    p_eval.add_argument("--device", default="cpu")
    p_eval.add_argument("--out", default=None, metavar="FILE", help="also write the JSON here (atomically)")
    p_eval.add_argument("--inception-weights", nargs="?", const="auto", default=None, metavar="PATH",
                        help="also FID, KID and precision/recall in Inception-v3 space (the paper's numbers) through "
                             "torch-fidelity, from its weights file weights-inception-2015-12-05-6726825d.pth at "
                             "PATH (never downloaded). The flag alone searches $R3GAN_INCEPTION_WEIGHTS, then torch "
                             "hub's checkpoints folder. Digit data: without the file, the digit metrics alone, with "
                             "a note. Other data: only Inception metrics, so the file is required (searched for "
                             "when the flag is left out)")
    return parser


# ---------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------
def train_config_from_args(args: argparse.Namespace):
    """TrainConfig from the flags given; with --resume, start from the checkpoint's own TrainConfig."""
    from .training import checkpoint as ckpt_io
    from .training import CHECKPOINT_NAME, TrainConfig

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if "network" in given:
        given["network"] = dict(given["network"])
    base = TrainConfig()
    resume = given.get("resume")
    if resume == "auto" and not given.get("out_dir"):
        raise ValueError("--resume without PATH continues the run in --out-dir: pass --out-dir DIR "
                         "(or --resume PATH/checkpoint.pt)")
    if resume is not None:
        if resume == "auto":
            out_dir = given.get("out_dir")
            path = Path(out_dir) / CHECKPOINT_NAME if out_dir else None
        else:
            path = Path(resume)
        if path is not None and path.is_file():
            saved = TrainConfig.from_dict(ckpt_io.load(path)["train_config"])
            base = dataclasses.replace(saved, resume=None)
        elif resume != "auto":
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    return dataclasses.replace(base, **given)


def check_train_flags(cfg) -> None:
    """What can be checked before data loads: the device, the --network overrides, the schedule's values."""
    from .networks import network_config
    from .training.validate import validate_train_config

    validate_train_config(cfg)
    device_flag(cfg.device)
    try:
        network_config(cfg.config, cfg.preset, cfg.conditional, **cfg.network)
    except ValueError as err:
        raise ValueError(f"--network: {err}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    cfg = train_config_from_args(args)
    check_train_flags(cfg)
    result = train(cfg)
    summary = {"status": result.status, "images_seen": result.images_seen, "steps": result.steps,
               "wall_time_s": round(result.wall_time, 2), "checkpoint": result.checkpoint_path,
               "log": result.log_path, "message": result.message}
    print(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in summary.items()}, indent=2))
    if result.status == "interrupted":
        print(f"r3gan train: interrupted at {result.images_seen:,} images; the checkpoint {result.checkpoint_path} "
              "holds the run: continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if result.status == "ok" else EXIT_DIVERGED


def _latents_and_labels(G, n: int, truncation: float | None, seed: int, class_index: int | None, conditional: bool):
    import torch

    from .sampling import sample_latents

    z = sample_latents(G.z_dim, n, seed, truncation)  # the same latents the chapters' truncation sweeps draw
    c = None
    if conditional:
        if class_index is not None:
            if not 0 <= class_index < G.num_classes:
                raise ValueError(f"--class must lie in [0, {G.num_classes}), got {class_index}")
            c = torch.full((n,), class_index, dtype=torch.long)
        else:
            c = torch.arange(n) % G.num_classes
    elif class_index is not None:
        raise ValueError("--class given but the checkpoint's model is unconditional")
    return z, c


def device_flag(name: str) -> str:
    """--device checked against what this machine has (report.pick_device), named in the error."""
    from .report import pick_device

    try:
        return str(pick_device(name))
    except ValueError as err:
        raise ValueError(f"--device: {err}") from None


def check_output_file(out: str | Path, checkpoint: str | Path, flag: str = "--out") -> Path:
    """An output path that is safe to write: not the checkpoint being read, not a folder, not read-only."""
    import os

    from .report import is_read_only

    path, ckpt = Path(out), Path(checkpoint)
    if path.exists() and ckpt.exists() and os.path.samefile(path, ckpt) or path.resolve() == ckpt.resolve():
        raise ValueError(f"{flag} {out} is the checkpoint being read ({checkpoint}): choose another file")
    if path.is_dir():
        raise ValueError(f"{flag} {out} is a folder: give a file name")
    if path.is_file() and is_read_only(path):
        raise ValueError(f"{flag} {out} exists and is read-only: choose another file or make it writable")
    return path


def _require_truncation(truncation: float | None) -> None:
    """ValueError naming --truncation unless it is None (no truncation) or a finite number > 0."""
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise ValueError(f"--truncation must be a positive number, got {truncation}")


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .sampling import sample_images, save_grid_png
    from .training import load_generator

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    _require_truncation(args.truncation)
    suffixes = (".png", ".pt", ".npz")
    for out in args.out:
        if Path(out).suffix.lower() not in suffixes:
            raise ValueError(f"--out {out!r}: unknown file type; valid suffixes: {', '.join(suffixes)}")
        check_output_file(out, args.checkpoint)
    G, cfg = load_generator(args.checkpoint, args.which, device_flag(args.device))
    z, c = _latents_and_labels(G, args.n, args.truncation, args.seed, args.class_index, cfg.conditional)
    images = sample_images(G, z, c, args.device)
    for out in args.out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower()
        if suffix == ".png":
            save_grid_png(images, path)
        elif suffix == ".pt":
            torch.save({"images": images, "labels": c, "z": z, "truncation": args.truncation, "seed": args.seed}, path)
        else:
            np.savez(path, images=images.numpy(), z=z.numpy(), **({"labels": c.numpy()} if c is not None else {}))
        print(f"wrote {path}")
    return 0


_DIGIT_SCHEMES = ("digits", "stacked-digits", "mnist", "stackedmnist")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Digit data: the digit metrics, plus Inception ones with --inception-weights (a missing file or torch-fidelity
    gives a note on stderr and the digit metrics alone). Other data: Inception metrics only; without the weights
    file or torch-fidelity, exit 2 with a message naming the file and where to put it."""
    import torch

    from .data import load_dataset, parse_spec
    from .metrics import InceptionUnavailable, evaluate_images, inception_metrics, inception_ready
    from .metrics.evaluate import random_rows
    from .report import write_json_atomic
    from .sampling import sample_images
    from .training import dataset_spec, load_generator

    if args.num_samples < 2:
        raise ValueError(f"--num-samples must be >= 2, got {args.num_samples}")
    if args.out:
        check_output_file(args.out, args.checkpoint)
    device = device_flag(args.device)
    G, cfg = load_generator(args.checkpoint, args.which, device)
    spec = args.dataset or dataset_spec(cfg)
    scheme, _ = parse_spec(spec)
    digits = scheme in _DIGIT_SCHEMES
    weights = None
    if not digits or args.inception_weights is not None:  # checked before any data loads or samples are drawn
        try:
            weights = inception_ready(args.inception_weights)
        except InceptionUnavailable as err:
            if not digits:
                raise ValueError(f"dataset {spec!r} is not digits (digit metrics cover {', '.join(_DIGIT_SCHEMES)}), "
                                 f"so evaluate measures it with Inception metrics only, which cannot run here: {err}"
                                 ) from None
            print("r3gan evaluate: note: Inception metrics skipped; falling back to the digit-feature metrics "
                  f"alone (FD-digits, KID-digits, precision / recall on digit features). {err}", file=sys.stderr)
    real = load_dataset(spec, G.resolution, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.num_samples, G.z_dim, generator=gen)
    c = None
    if cfg.conditional:  # classes in the proportions of the real data
        c = real.labels[torch.randint(len(real.labels), (args.num_samples,), generator=gen)]
    fake = sample_images(G, z, c, device)
    if digits:
        metrics = evaluate_images(real.images, fake, stacked=real.channels == 3, num_samples=args.num_samples,
                                  seed=args.seed, inception_weights=weights, inception_device=device)
    else:
        metrics = inception_metrics(random_rows(real.images, args.num_samples, args.seed), fake, weights_path=weights,
                                    seed=args.seed, device=device)
    state_info = {"checkpoint": str(args.checkpoint), "which": args.which, "dataset": spec,
                  "config": cfg.config, "preset": cfg.preset}
    record = {**state_info, **metrics}
    print(json.dumps(record, indent=2, default=float))
    if args.out:
        write_json_atomic(args.out, record)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .training.validate import SettingError

    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:  # a second Ctrl-C during training, or one during sample / evaluate
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a third one while this is printed changes nothing
        where = (f" the run folder keeps its last checkpoint ({Path(args.out_dir) / 'checkpoint.pt'}): continue with "
                 "--resume" if getattr(args, "out_dir", None) else " files already written are left as they were")
        print(f"r3gan {args.command}: interrupted before the step could finish;{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SettingError as err:
        print(f"r3gan {args.command}: error: {err.as_flag()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, FileNotFoundError) as err:
        print(f"r3gan {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # a full disk, a folder that went away: atomic writes kept the last good files
        where = f" ({err.filename})" if err.filename else ""
        print(f"r3gan {args.command}: error: could not read or write a file{where}: {err.strerror or err}; "
              "files already written are left as they were", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
