#!/usr/bin/env python
"""What a chapter profile costs on this machine, measured: the training throughput of each distinct run of every
image chapter and the time of one evaluation, then the profile's total projected from them.

    python benchmarks/profile_cost.py --profile gpu --device cuda --json runs/cost.json
    python benchmarks/profile_cost.py --profile smoke --device cpu --probe-steps 4      # a quick check
    python benchmarks/profile_cost.py --profile cpu --device cpu --recipes              # the recipe sweeps' phases

Each probe trains the chapter's own TrainConfig (the one its notebook builds: experiments.base_config or
biggan_study.study_config, with each variant's overrides) through `r3gan_core.training.train` for
--probe-steps steps and reads the throughput of the second half of the probe from the run's own log (the first
half absorbs start-up and cuDNN autotuning). Variants that differ only in a constant gamma train at the same speed
and share one probe. One evaluation (generate the profile's num_samples from G_ema, then
metrics.evaluate_images with the profile's options) is timed once per preset, sample count and options.

Projection, per chapter: sum over runs of total_images / images_per_second + runs x evaluations x evaluation
time, runs one after another on one device (the gpu profile's `workers` is 1). Spectra and sample grids are
inside the probe when their intervals fall in it; start-up per run is not counted.

--recipes projects ci/run_recipes.py instead (profiles.RECIPE_SWEEP): per roadmap config, its sweep (the grid's cells
but the prescribed one, which is the chapter's own run), its tuned seeds and, for long_configs, its long runs, from one
probe of the config at the chapter's settings and thread count; runs two side by side (the runner's workers = 2), so
half the summed run time. An upper bound where the runner reuses runs (a tuned seed that is the sweep's cell).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from r3gan_core.book import biggan_study, experiments, paper  # noqa: E402
from r3gan_core.book.profiles import PROFILES, chapter_profiles, chapter_settings  # noqa: E402
from r3gan_core.data import load_dataset  # noqa: E402
from r3gan_core.metrics import evaluate_images  # noqa: E402
from r3gan_core.report import device_description, pick_device  # noqa: E402
from r3gan_core.sampling import generate_images  # noqa: E402
from r3gan_core.training import TrainConfig, TrainResult, copy_config, dataset_spec, train  # noqa: E402

ROADMAP_CHAPTERS = {f"config_{c.lower()}": c for c in "ABCDE"}
IMAGE_CHAPTERS = ("mode_coverage", *ROADMAP_CHAPTERS, "biggan")


def chapter_runs(chapter: str, settings: dict[str, Any]) -> tuple[TrainConfig, dict[str, dict[str, Any]]]:
    """(base TrainConfig, {label: overrides}) of an image chapter, built as its notebook builds them."""
    if chapter == "mode_coverage":
        base = experiments.base_config("E", settings, blowup=settings.get("blowup"))
        return base, {label: {"loss": loss, "penalty": penalty}
                      for label, (loss, penalty) in paper.TABLE1_VARIANTS.items()}
    if chapter in ROADMAP_CHAPTERS:
        config = ROADMAP_CHAPTERS[chapter]
        return experiments.base_config(config, settings), {f"Config {config}": {}}
    if chapter == "biggan":
        return biggan_study.study_config(settings), biggan_study.study_variants(settings)
    raise ValueError(f"unknown image chapter {chapter!r}; valid choices: {', '.join(IMAGE_CHAPTERS)}")


def speed_key(overrides: dict[str, Any]) -> tuple:
    """Variants with the same key train at the same speed (a constant gamma changes no computation)."""
    return tuple(sorted((k, str(v)) for k, v in overrides.items() if k != "gamma"))


def probe(cfg: TrainConfig, steps: int, device: str) -> tuple[float, TrainResult]:
    """Images/s over the second half of `steps` steps of cfg, from the run's own log records."""
    batch = cfg.batch
    half = max(1, steps // 2)
    run = copy_config(cfg, total_images=batch * 2 * half, schedule_images=cfg.total_images, out_dir=None,
                      log_every=batch * half, device=device, progress=False)
    result = train(run)
    if result.status != "ok":
        raise RuntimeError(f"probe of {cfg.config} did not finish: {result.message}")
    return float(result.records[-1]["images_per_second"]), result


def time_evaluation(G_ema: torch.nn.Module, cfg: TrainConfig, settings: dict[str, Any]) -> float:
    """Seconds of one evaluation as train_and_evaluate makes it (samples on G's device, metrics as configured)."""
    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=cfg.seed).images
    t0 = time.perf_counter()
    fake = generate_images(G_ema, settings["num_samples"], device=next(G_ema.parameters()).device)
    evaluate_images(real, fake, stacked=real.shape[1] == 3, num_samples=settings["num_samples"],
                    **experiments.evaluation_options(settings))
    return time.perf_counter() - t0


def chapter_cost(chapter: str, profile: str, steps: int, device: str,
                 evaluation_times: dict[str, float]) -> dict[str, Any]:
    """Probe every distinct run of `chapter` under `profile`; evaluation_times caches one evaluation's seconds per
    (preset, samples, options), shared by chapters that evaluate alike."""
    settings = chapter_settings(chapter, profile)
    base, variants = chapter_runs(chapter, settings)
    seeds, evaluations = len(settings["seeds"]), settings["evaluations"]
    rates: dict[tuple, float] = {}
    rows, last = [], None
    for label, overrides in variants.items():
        key = speed_key(overrides)
        if key not in rates:
            rates[key], last = probe(copy_config(base, **overrides), steps, device)
            print(f"  {chapter:<14} {label:<34} {rates[key]:>9.1f} img/s", flush=True)
        rows.append({"label": label, "images_per_s": rates[key]})
    eval_key = json.dumps([base.preset, base.max_items, settings["num_samples"],
                           experiments.evaluation_options(settings)], sort_keys=True)
    if eval_key not in evaluation_times:
        evaluation_times[eval_key] = time_evaluation(last.G_ema, base, settings)
    eval_s = evaluation_times[eval_key]
    total_images = base.total_images
    train_s = sum(seeds * total_images / r["images_per_s"] for r in rows)
    runs = seeds * len(rows)
    projected = train_s + runs * evaluations * eval_s
    print(f"  {chapter:<14} one evaluation ({settings['num_samples']:,} samples) {eval_s:.1f} s; {runs} runs x "
          f"{total_images:,} images: projected {projected / 60:.1f} min", flush=True)
    return {"chapter": chapter, "profile": profile, "preset": base.preset, "batch": base.batch,
            "total_images": total_images, "seeds": seeds, "evaluations": evaluations, "runs": runs,
            "variants": rows, "evaluation_s": eval_s, "train_s": train_s, "projected_s": projected}


def recipe_cost(config: str, profile: str, steps: int, device: str,
                evaluation_times: dict[str, float]) -> dict[str, Any]:
    """Projected seconds of each ci/run_recipes.py phase of `config` (module docstring, --recipes)."""
    from r3gan_core.book.profiles import RECIPE_SWEEP
    from r3gan_core.book.recipes import sweep_cells

    chapter = f"config_{config.lower()}"
    settings, sweep = chapter_settings(chapter, profile), RECIPE_SWEEP[profile]
    torch.set_num_threads(settings.get("threads") or torch.get_num_threads())
    base = experiments.base_config(config, settings)
    rate, result = probe(base, steps, device)
    eval_key = json.dumps([base.preset, base.max_items, settings["num_samples"],
                           experiments.evaluation_options(settings)], sort_keys=True)
    if eval_key not in evaluation_times:
        evaluation_times[eval_key] = time_evaluation(result.G_ema, base, settings)
    eval_s = evaluation_times[eval_key]
    cells = sum(not c.prescribed for c in sweep_cells(config, settings, sweep))
    phases = {"sweep": (cells, settings["total_images"], sweep["evaluations"]),
              "tuned": (len(settings["seeds"]), settings["total_images"], sweep["evaluations"])}
    if config in sweep["long_configs"]:
        phases["long"] = (len(sweep["long_seeds"]), sweep["long_images"], sweep["long_evaluations"])
    projected = {phase: runs * (images / rate + evals * eval_s) / 2 for phase, (runs, images, evals) in phases.items()}
    print(f"  Config {config}: {rate:.1f} img/s, one evaluation {eval_s:.1f} s; projected " +
          ", ".join(f"{phase} {s / 60:.1f} min" for phase, s in projected.items()), flush=True)
    return {"chapter": chapter, "profile": profile, "images_per_s": rate, "evaluation_s": eval_s,
            "phases": {phase: {"runs": r, "images": i, "evaluations": e, "projected_s": projected[phase]}
                       for phase, (r, i, e) in phases.items()}, "projected_s": sum(projected.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu", choices=[p for p in PROFILES if p != "paper"])
    parser.add_argument("--chapters", nargs="+", default=list(IMAGE_CHAPTERS), choices=IMAGE_CHAPTERS)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--probe-steps", type=int, default=100, help="training steps per probe (default: 100)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--recipes", action="store_true", help="project ci/run_recipes.py's phases of configs A-E")
    args = parser.parse_args(argv)
    if args.probe_steps < 2:
        parser.error(f"--probe-steps must be at least 2, got {args.probe_steps}")
    missing = [c for c in args.chapters if args.profile not in chapter_profiles(c)]
    if missing:
        parser.error(f"chapters {missing} have no {args.profile!r} profile")
    device = pick_device(args.device)
    print(f"profile {args.profile} on {device_description(device)}; {args.probe_steps} steps per probe", flush=True)
    t0 = time.perf_counter()
    evaluation_times: dict[str, float] = {}
    if args.recipes:
        from r3gan_core.book.profiles import RECIPE_SWEEP

        if args.profile not in RECIPE_SWEEP:
            parser.error(f"--recipes: RECIPE_SWEEP has no {args.profile!r} profile; valid: {', '.join(RECIPE_SWEEP)}")
        rows = [recipe_cost(c, args.profile, args.probe_steps, str(device), evaluation_times) for c in "ABCDE"]
        what = "recipe sweeps, tuned and long runs"
    else:
        rows = [chapter_cost(c, args.profile, args.probe_steps, str(device), evaluation_times) for c in args.chapters]
        what = f"{len(rows)} image chapters"
    total = sum(r["projected_s"] for r in rows)
    print(f"the {args.profile} profile of the {what}, projected: {total / 3600:.2f} h on this "
          f"device (measured in {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": device_description(device), "profile": args.profile,
                                         "probe_steps": args.probe_steps, "chapters": rows,
                                         "projected_s": total}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
