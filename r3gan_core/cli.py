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

# `r3gan train`'s options in the groups the code has (TrainConfig's sections), each with its help: what it does,
# its unit, its valid values and what its default means. A test checks that every TrainConfig field is here.
_TRAIN_GROUPS: dict[str, dict[str, str]] = {
    "network": {
        "config": "roadmap configuration A-E (paper Table 2): A StyleGAN2, B stripped bare, C + RpGAN loss, D ResNet, "
                  "E ResNeXt, the R3GAN baseline (default: E)",
        "preset": "network widths and schedule preset: the small CPU presets digits8, digits16, stacked8, stacked16 "
                  "(built-in data) or the paper's stackedmnist, cifar10, ffhq64, ffhq256, imagenet32, imagenet64 "
                  "(need --dataset) (default: digits8)",
        "network": "override one networks.build setting, KEY=VALUE, repeatable; VALUE a number, true/false, a comma "
                   "list of numbers or a word, e.g. widths=32,32 or z_dim=64 (default: none, the preset's networks)",
        "conditional": "class-conditional G and D, trained on the dataset's labels (default: off)",
    },
    "data": {
        "dataset": "the training data: digits:R, stacked-digits:R (built in, R px), mnist:/path, stackedmnist:/path, "
                   "cifar10:/path, folder:/path or zip:/path; a path spec ending in @R resizes to R px, e.g. "
                   "folder:/path@64 (default: the preset's built-in data; the paper's presets have none)",
        "max_items": "use at most this many images (stacked data: stacks) of the dataset, a whole number >= 1 "
                     "(default: the loader's, all of a file dataset)",
        "batch": "global batch in images, split over GPUs with torchrun (default: the recipe's: 64 on the CPU "
                 "presets, 512 on cifar10, ...)",
        "total_images": "train until D has seen this many real images: 64000, 64k or 10M (default: the preset's "
                        "suggested length, e.g. 256k on the CPU presets)",
        "seed": "seed of the weights, the batches and every random draw, a whole number >= 0 (default: 0)",
    },
    "recipe": {
        "loss": "adversarial loss: gan (non-saturating) or rpgan (relativistic pairing, Eq. 2) (default: the "
                "config's: gan for A and B, rpgan for C-E)",
        "penalty": "gradient penalty: none, r1 (on real data), r2 (on fake data) or r1+r2 (default: the config's: "
                   "r1 for A and B, r1+r2 for C-E)",
        "gamma": "penalty weight gamma (each of R1, R2 weighs gamma / 2), >= 0: a number, or 'base,final' for a "
                 "cosine over --schedule-images images (default: the preset's, e.g. 1,0.1 on the CPU presets)",
        "lr": "Adam learning rate, > 0 at the start: a number or 'base,final' on the cosine (default: the recipe's, "
              "2e-4,5e-5 for C-E)",
        "beta2": "Adam beta2 in [0, 1): a number or 'base,final' on the cosine (default: the recipe's, 0.9,0.99)",
        "ema_half_life": "half-life of G's weight average (G_ema) in images, >= 0: a number or 'base,final' "
                         "(default: the preset's, 0,10000 on the CPU presets)",
        "aug_p": "ADA augmentation probability in [0, 1] on everything D sees: a number or 'base,final' (default: "
                 "the preset's: 0 -> 0.55 on cifar10, 0 on the CPU presets); p > 0 needs kornia (the 'augment' extra)",
        "schedule_images": "T, in images, of every cosine schedule: lr, beta2, gamma, EMA and augmentation reach "
                           "their final values after T images (default: the preset's, 256k on the CPU presets)",
        "penalty_interval": "apply R1/R2 on every k-th D step only, weighted x k (lazy regularisation; 16 = "
                            "StyleGAN2's); a whole number >= 1 (default: the recipe's: 16 for A, 1 = every step for "
                            "B-E)",
        "pl_interval": "path-length regularisation every k G steps, 0 = off; needs a mapping network (config A) "
                       "(default: the recipe's: 4 for A, off for B-E)",
        "style_mixing": "probability in [0, 1] of mixing two latents in a batch; needs a mapping network (config A) "
                        "(default: the recipe's: 0.9 for A, 0 for B-E)",
        "ema": "keep an exponential moving average of G as G_ema; --no-ema makes G_ema a plain copy of G "
               "(default: on)",
        "ortho_beta": "BigGAN's orthogonal regularisation of G's weights with this weight, >= 0, e.g. 1e-4 "
                      "(default: off)",
        "blowup": "stop the run as diverged when a logged loss, D's mean input-gradient norm or the logit gap "
                  "exceeds this, > 0 (default: off: only non-finite values stop a run)",
    },
    "run folder": {
        "out_dir": "the run folder: checkpoint.pt, log.jsonl, samples/, config.json; a fresh run refuses one that "
                   "holds a run (default: none, nothing is written and the run cannot be resumed)",
        "resume": "continue the run of checkpoint PATH; the flag alone continues the one in --out-dir; its settings "
                  "come from the checkpoint and only the flags given change them (default: a fresh run)",
        "overwrite": "start over in an --out-dir that holds a run, replacing its checkpoint and logs (default: off, "
                     "such a folder is refused)",
        "adopt_code_recipe": "when resuming, train on with this version's recipe where its defaults differ from the "
                             "checkpoint's (default: off, the checkpoint's recipe wins and the differences are named)",
        "checkpoint_every": "also checkpoint every this many images, 0 = never (default: never; the start, the end "
                            "and an interrupt are always checkpointed)",
    },
    "device": {
        "device": "where to train: auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps (default: auto)",
        "amp": "mixed precision: auto (bf16 autocast on CUDA only), bf16 or off (default: auto)",
        "channels_last": "channels-last memory format (default: on CUDA only)",
        "threads": "torch CPU threads during the run, a whole number >= 1; 1 is fastest for the small presets and "
                   "on a shared CPU (default: leave torch's setting)",
        "guard_every": "read the step's statistics on the host every k steps to stop on non-finite values; a whole "
                       "number >= 1 (default: 1 on a CPU, 16 on CUDA)",
    },
    "logging": {
        "log_every": "a log record (means of losses, penalties, logits, gradient norms) every this many images "
                     "(default: 10000)",
        "sample_every": "a fixed-noise sample grid in OUT_DIR/samples/ every this many images, 0 = never "
                        "(default: never)",
        "sample_count": "images in each sample grid, a whole number >= 1 (default: 64)",
        "spectral_every": "the top singular value of every G and D weight (BigGAN's spectra) every this many "
                          "images, 0 = never (default: never)",
        "spectral_iters": "power iterations per spectral measurement, a whole number >= 1 (default: 20)",
        "progress": "a progress bar (default: on)",
    },
}


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, in its group; every default is 'not given' so --resume can tell what changed."""
    from .losses import LOSSES, PENALTIES
    from .training.recipes import CONFIGS, PRESETS
    from .training import AMP_CHOICES, TrainConfig

    choices = {"config": CONFIGS, "preset": tuple(PRESETS), "loss": LOSSES, "penalty": PENALTIES, "amp": AMP_CHOICES}
    hints = typing.get_type_hints(TrainConfig)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for group_name, helps in _TRAIN_GROUPS.items():
        group = p.add_argument_group(group_name)
        for name, help_text in helps.items():
            if name not in fields:
                raise RuntimeError(f"cli._TRAIN_GROUPS names {name!r}, which TrainConfig does not have")
            _add_train_flag(group, name, hints[name], help_text, choices)


def _add_train_flag(group, name: str, hint, help_text: str, choices: dict[str, tuple]) -> None:
    flag = "--" + name.replace("_", "-")
    kw: dict[str, Any] = dict(default=argparse.SUPPRESS, help=help_text)
    if name == "resume":
        group.add_argument(flag, nargs="?", const="auto", metavar="PATH", **kw)
    elif name == "network":
        group.add_argument(flag, type=_network_override, action="append", metavar="KEY=VALUE", **kw)
    elif name in _SCHEDULE_FIELDS:
        group.add_argument(flag, type=_schedule_value, metavar="V[,FINAL]", **kw)
    elif name in _IMAGE_FIELDS:
        group.add_argument(flag, type=_images, metavar="IMAGES", **kw)
    elif bool in typing.get_args(hint) or hint is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
    elif name in choices:
        group.add_argument(flag, choices=choices[name], **kw)
    elif int in typing.get_args(hint) or hint is int:
        group.add_argument(flag, type=int, metavar="N", **kw)
    elif float in typing.get_args(hint) or hint is float:
        group.add_argument(flag, type=float, metavar="X", **kw)
    else:
        group.add_argument(flag, type=str, metavar=_METAVARS.get(name), **kw)


_METAVARS = {"dataset": "SPEC", "out_dir": "DIR", "device": "DEVICE"}


_EXIT_CODES = "exit status: 0 ok, 2 bad input (the message names the flag), 3 the run diverged, 130 interrupted"


def version_line() -> str:
    """'r3gan 0.1.0 (commit abc123def456)': the package version and the commit of the code that runs."""
    from . import __version__
    from .report import git_commit

    return f"r3gan {__version__} (commit {git_commit()})"


class _VersionAction(argparse.Action):
    """--version, computed only when asked (it runs git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="r3gan", description=__doc__.split("\n\n")[0], formatter_class=raw,
                                     epilog="r3gan COMMAND --help explains each command's options.")
    parser.add_argument("--version", action=_VersionAction, help="print the version and commit, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,evaluate}")

    p_train = sub.add_parser(
        "train", help="train a configuration (flags mirror TrainConfig)", formatter_class=raw,
        description="Train roadmap config A-E on a preset. Images count progress (64k = 64,000 real images shown "
                    "to D); every default not given comes from the recipe of the config and preset "
                    "(r3gan_core/training/recipes.py).",
        epilog="examples:\n"
               "  r3gan train --config E --preset stacked8 --total-images 64k --out-dir runs/e --threads 1\n"
               "  r3gan train --resume --out-dir runs/e --total-images 128k     # continue, longer\n"
               "  r3gan train --preset cifar10 --dataset cifar10:/data/cifar-10-batches-py --out-dir runs/c\n\n"
               "Ctrl-C or SIGTERM checkpoints at the end of the current step; --resume continues.\n" + _EXIT_CODES)
    _add_train_flags(p_train)

    p_sample = sub.add_parser("sample", help="draw samples from a checkpoint's generator", formatter_class=raw,
                              description="Draw samples from a checkpoint's generator into image grids or arrays.",
                              epilog="example:\n  r3gan sample --checkpoint runs/e/checkpoint.pt --n 64 --out grid.png"
                                     "\n\n" + _EXIT_CODES)
    p_sample.add_argument("--checkpoint", required=True, metavar="PATH",
                          help="a checkpoint.pt written by r3gan train (required)")
    p_sample.add_argument("--n", type=int, default=64, metavar="N",
                          help="number of samples, >= 1 (default: 64)")
    p_sample.add_argument("--out", required=True, action="append", metavar="FILE",
                          help="where to write them: a .png grid, a .pt (images, labels, z) or a .npz; repeatable "
                               "(required; never the checkpoint being read, never a read-only file)")
    p_sample.add_argument("--truncation", type=float, default=None, metavar="T",
                          help="BigGAN's truncation trick: resample latent entries with |z| > T, T > 0 "
                               "(default: none, plain N(0, I) latents)")
    p_sample.add_argument("--seed", type=int, default=0, metavar="N",
                          help="seed of the latents: the same seed gives the same samples (default: 0)")
    p_sample.add_argument("--class", dest="class_index", type=int, default=None, metavar="K",
                          help="conditional models: class K for every sample (default: the classes in turn)")
    p_sample.add_argument("--which", choices=("G_ema", "G"), default="G_ema",
                          help="G_ema, the weight average the paper evaluates, or the raw G (default: G_ema)")
    p_sample.add_argument("--device", default="cpu", metavar="DEVICE",
                          help="where G runs: cpu, cuda, cuda:N, mps or auto (default: cpu)")

    p_eval = sub.add_parser(
        "evaluate", formatter_class=raw,
        help="digit metrics (FD, KID, precision/recall, modes, KL) of a checkpoint; Inception FID / KID / "
             "precision/recall with --inception-weights",
        description="Score a checkpoint's generator against real data. Digit data: FD-digits, KID-digits, "
                    "precision / recall, modes and reverse KL in the digit classifier's space (not comparable "
                    "with published FIDs). Other data: Inception metrics only (--inception-weights).",
        epilog="example:\n  r3gan evaluate --checkpoint runs/e/checkpoint.pt --num-samples 10000 --out scores.json"
               "\n\n" + _EXIT_CODES)
    p_eval.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a checkpoint.pt written by r3gan train (required)")
    p_eval.add_argument("--dataset", default=None, metavar="SPEC",
                        help="the real data to compare with, a data spec as for train --dataset (default: the "
                             "run's own)")
    p_eval.add_argument("--num-samples", type=int, default=26_000, metavar="N",
                        help="generated samples, and real ones, scored; >= 2 (default: 26000, the VEEGAN / PacGAN "
                             "mode protocol)")
    p_eval.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the latents and of the real rows drawn (default: 0)")
    p_eval.add_argument("--which", choices=("G_ema", "G"), default="G_ema",
                        help="G_ema, the weight average the paper evaluates, or the raw G (default: G_ema)")
    p_eval.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="where G (and Inception-v3) run: cpu, cuda, cuda:N, mps or auto (default: cpu)")
    p_eval.add_argument("--out", default=None, metavar="FILE",
                        help="also write the JSON here, atomically (default: print only; never the checkpoint, "
                             "never a read-only file)")
    p_eval.add_argument("--inception-weights", nargs="?", const="auto", default=None, metavar="PATH",
                        help="also FID, KID and precision/recall in Inception-v3 space (the paper's numbers) through "
                             "torch-fidelity, from its weights file weights-inception-2015-12-05-6726825d.pth at "
                             "PATH (never downloaded). The flag alone searches $R3GAN_INCEPTION_WEIGHTS, then torch "
                             "hub's checkpoints folder. Digit data: without the file, the digit metrics alone, with "
                             "a note. Other data: only Inception metrics, so the file is required (searched for "
                             "when the flag is left out) (default: digit metrics only)")
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
    dataset_flag(cfg.dataset, cfg.preset)
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


def dataset_flag(spec: str | None, preset: str) -> str:
    """--dataset (or the preset's built-in data) checked before anything loads: a known scheme, a path that exists."""
    from .data import PATH_SCHEMES, describe_schemes, parse_spec
    from .training.recipes import PRESETS

    spec = spec or PRESETS[preset].dataset
    if spec is None:
        raise ValueError(f"--dataset: preset {preset!r} has no built-in data; pass --dataset SCHEME:/PATH, one of:\n"
                         + describe_schemes())
    try:
        scheme, argument = parse_spec(spec)
    except ValueError as err:
        raise ValueError(f"--dataset: {err}") from None
    if scheme in PATH_SCHEMES:
        path = Path(argument.rsplit("@", 1)[0] if "@" in argument else argument).expanduser()
        if not path.exists():
            raise ValueError(f"--dataset {spec}: {path} does not exist")
    return spec


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
