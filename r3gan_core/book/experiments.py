"""Experiment drivers shared by the image chapters (mode coverage, configs A-E, roadmap, BigGAN's lessons).

One function trains a run and evaluates its G_ema as it goes, so every chapter reports the same numbers the
same way::

    from r3gan_core.book.experiments import train_and_evaluate
    from r3gan_core.training import TrainConfig
    run = train_and_evaluate(TrainConfig(config="E", preset="stacked8", total_images=32_000, out_dir="runs/e"),
                             label="E", evaluations=4, num_samples=5_000)
    run.evaluations[-1]["fd_digits"], run.status, run.images_per_second

A run with k evaluations trains in k segments through the trainer's exact resume (the cosine schedules are
pinned to the whole run's length, so k segments give the same weights as one uninterrupted run), and after each
segment samples `num_samples` images from G_ema and scores them with `metrics.evaluate_images`.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..choices import require_positive
from ..data import load_dataset
from ..metrics import evaluate_images
from ..metrics.evaluate import INCEPTION_KEYS, PR_SAMPLES, real_reference
from ..report import read_json, write_json_atomic
from ..sampling import generate_images, save_grid_png
from ..training import LOG_NAME, TrainConfig, copy_config, dataset_spec, read_log, recipe_for, train


@dataclass
class ExperimentResult:
    """A trained and evaluated run. `evaluations` holds one metrics dict per segment (with images_seen)."""

    label: str
    status: str  # "ok" | "diverged"
    message: str
    images_seen: int
    steps: int
    wall_time: float  # seconds of training (evaluation excluded)
    eval_time: float  # seconds spent sampling and scoring
    images_per_second: float  # real images shown to D per second of training
    evaluations: list[dict[str, Any]]
    records: list[dict[str, Any]]  # the trainer's log records
    spectral: list[dict[str, Any]]
    samples: Tensor | None  # 64 of the last evaluation's G_ema samples (CPU, [-1, 1]); None if none was made
    checkpoint_path: Path | None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        """The last evaluation (an empty dict when the run diverged before its first one)."""
        return self.evaluations[-1] if self.evaluations else {}

    def summary(self) -> dict[str, Any]:
        """Headline numbers for a chapter's metrics.json and tables."""
        keys = ("fd_digits", "kid_digits", "precision_digits", "recall_digits", "modes", "reverse_kl",
                "modes_confident", "reverse_kl_confident")
        out: dict[str, Any] = {"label": self.label, "status": self.status, "images_seen": self.images_seen,
                               "steps": self.steps, "wall_time_s": round(self.wall_time, 2),
                               "images_per_second": round(self.images_per_second, 1)}
        out.update({k: self.final.get(k) for k in keys})
        out.update({k: self.final[k] for k in INCEPTION_KEYS if k in self.final})  # when the profile asked for them
        if self.records:
            last = self.records[-1]
            out["grad_norm_real"] = last.get("grad_norm_real")
            out["grad_norm_fake"] = last.get("grad_norm_fake")
        return out


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's CPU thread count set to n inside a `with` block (None = leave it), restored afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        require_positive("threads", n)
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluation_points(total_images: int, batch: int, evaluations: int) -> list[int]:
    """`evaluations` image counts, evenly spaced, each a whole number of batches, the last = total_images."""
    require_positive("evaluations", evaluations)
    steps = max(1, math.ceil(total_images / batch))
    points = sorted({max(1, round(steps * (i + 1) / evaluations)) * batch for i in range(evaluations)})
    return points


def evaluation_options(settings: dict[str, Any]) -> dict[str, Any]:
    """A chapter profile's options for metrics.evaluate_images: its `eval` dict, plus `inception_weights` when the
    profile sets one (gpu / paper; profiles.INCEPTION_WEIGHTS), so each evaluation adds the Inception numbers
    (fid, kid, precision, recall) beside the digit ones. Profiles without it give their `eval` dict unchanged."""
    options = dict(settings.get("eval") or {})
    if settings.get("inception_weights") is not None:
        options["inception_weights"] = str(settings["inception_weights"])
    return options


def protocol_reference(real: Tensor, num_samples: int, real_samples: int | None, seed: int,
                       eval_options: dict[str, Any] | None):
    """The real half of a run's evaluations (metrics.evaluate.real_reference) under the book's protocol: at most
    `real_samples or num_samples` real rows, seeded with the run's seed, P / R on the options' pr_samples."""
    return real_reference(real, real.shape[1] == 3, real_samples or num_samples, seed=seed,
                          pr_samples=(eval_options or {}).get("pr_samples", PR_SAMPLES))


def score_samples(reference, fake: Tensor, num_samples: int, real_samples: int | None, seed: int,
                  eval_options: dict[str, Any] | None) -> dict[str, Any]:
    """One evaluation under the book's protocol: `fake` (num_samples images drawn with the run's seed) scored by
    metrics.evaluate_images against a protocol_reference. Every trained run and every baseline goes through here."""
    return evaluate_images(reference, fake, stacked=reference.stacked, num_samples=real_samples or num_samples,
                           seed=seed, **(eval_options or {}))


# What makes two runs of one folder the same run: the network, the seed and every recipe input.
SAME_RUN_KEYS = ("config", "preset", "seed", "network", "conditional", "dataset", "max_items", "loss", "penalty",
                 "gamma", "lr", "beta2", "ema_half_life", "aug_p", "batch", "penalty_interval", "style_mixing",
                 "pl_interval", "schedule_images")


def require_same_run(cfg: TrainConfig, out_dir: Path) -> None:
    """ValueError when out_dir holds a run trained with other settings than cfg (its config.json): continuing it, or
    reading its evaluations, would report that run under cfg's name. Nothing in the folder is touched."""
    from ..report import jsonable

    path = out_dir / "config.json"
    if not path.is_file():
        return
    saved = read_json(path).get("train_config", {})
    now = jsonable(cfg.as_dict())
    differ = [f"{k}: folder {saved.get(k)!r}, asked {now.get(k)!r}" for k in SAME_RUN_KEYS
              if k in saved and jsonable(saved.get(k)) != now.get(k)]
    if differ:
        raise ValueError(f"{out_dir} holds a run with other settings ({'; '.join(differ)}); give this run another "
                         "folder (runs_dir) or move that one away")


PROGRESS_NAME = "evaluations.json"  # in a run's out_dir: the evaluations made so far, and a diverged run's status


def train_and_evaluate(cfg: TrainConfig, label: str, evaluations: int = 1, num_samples: int = 5_000,
                       real_samples: int | None = None, seed: int = 0,
                       eval_options: dict[str, Any] | None = None) -> ExperimentResult:
    """Train `cfg` in `evaluations` segments; after each, score G_ema's samples against the real data.

    cfg.out_dir None = a temporary folder (checkpoints are needed to resume between segments). With an out_dir the
    run resumes where a killed process stopped: evaluations already made are kept in out_dir/evaluations.json and
    not repeated, and a run that diverged is not trained again. The cosine schedules run over the whole length
    (cfg.schedule_images defaults to cfg.total_images here). eval_options go to metrics.evaluate_images (e.g.
    fewer KID subsets for a smoke run; `inception_weights` adds the Inception metrics: evaluation_options).
    """
    recipe = recipe_for(cfg)
    total = int(recipe.total_images)
    points = evaluation_points(total, recipe.batch, evaluations)
    tmp = tempfile.TemporaryDirectory(prefix="r3gan-run-") if cfg.out_dir is None else None
    out_dir = Path(cfg.out_dir or tmp.name)
    base = copy_config(cfg, out_dir=str(out_dir), resume="auto",
                       schedule_images=cfg.schedule_images or total)
    require_same_run(base, out_dir)
    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=cfg.seed).images
    reference = None  # the real half of every evaluation of this run, computed at the first one
    progress = read_json(out_dir / PROGRESS_NAME) if (out_dir / PROGRESS_NAME).is_file() else {}
    evals: list[dict[str, Any]] = [e for e in progress.get("evaluations", []) if e["images_seen"] in points]
    wall, eval_time = float(progress.get("wall_time", 0.0)), float(progress.get("eval_time", 0.0))
    result, grid = None, None
    try:
        for point in points:
            if progress.get("status") == "diverged" or any(e["images_seen"] == point for e in evals[:-1]):
                continue  # made before this process started (the last one is remade: it gives the grid)
            result = train(copy_config(base, total_images=point))
            if result.status == "interrupted":  # checkpointed: running the chapter again continues here
                raise KeyboardInterrupt(result.message)
            wall += result.wall_time
            if result.status != "ok":
                progress.update(status=result.status, message=result.message, images_seen=result.images_seen,
                                steps=result.steps)
                break
            t0 = time.perf_counter()
            with torch_threads(cfg.threads):
                fake = generate_images(result.G_ema, num_samples, seed=seed,
                                       device=next(result.G_ema.parameters()).device)
                if reference is None:
                    reference = protocol_reference(real, num_samples, real_samples, seed, eval_options)
                scores = score_samples(reference, fake, num_samples, real_samples, seed, eval_options)
            eval_time += time.perf_counter() - t0
            evals = [e for e in evals if e["images_seen"] != result.images_seen]
            evals.append({"images_seen": result.images_seen, **scores})
            grid = fake[:64]  # the same seeded latents at every evaluation: a fixed-noise grid
            progress.update(evaluations=evals, wall_time=wall, eval_time=eval_time)
            if tmp is None:
                write_json_atomic(out_dir / PROGRESS_NAME, progress)
        if result is None:  # a run that diverged in an earlier process: what it logged, not trained again
            result = SimpleNamespace(status=progress["status"], message=progress["message"],
                                     images_seen=progress["images_seen"], steps=progress["steps"],
                                     records=read_log(out_dir / LOG_NAME), spectral=[], checkpoint_path=None)
        if tmp is None:
            write_json_atomic(out_dir / PROGRESS_NAME, {**progress, "wall_time": wall, "eval_time": eval_time})
    finally:
        if tmp is not None:
            tmp.cleanup()
    return ExperimentResult(
        label=label, status=result.status, message=result.message, images_seen=result.images_seen,
        steps=result.steps, wall_time=wall, eval_time=eval_time,
        images_per_second=result.images_seen / wall if wall > 0 else float("nan"), evaluations=evals,
        records=result.records, spectral=result.spectral,
        samples=grid,
        checkpoint_path=None if tmp is not None else result.checkpoint_path,
        settings={"config": cfg.config, "preset": cfg.preset, "dataset": dataset_spec(cfg), "batch": recipe.batch,
                  "total_images": total, "loss": recipe.loss, "penalty": recipe.penalty,
                  "gamma": [recipe.gamma.base, recipe.gamma.final], "lr": [recipe.lr.base, recipe.lr.final],
                  "evaluations": evaluations, "num_samples": num_samples, "max_items": cfg.max_items,
                  "network": cfg.network, "conditional": cfg.conditional, "blowup": cfg.blowup,
                  "eval": eval_options or {}, "real_samples": real_samples},
    )


# ---------------------------------------------------------------------------------------------------------
# Records: what a chapter stores (metrics.json, results/) and plots. Plain JSON, so published results and
# fresh runs go through the same figures.
# ---------------------------------------------------------------------------------------------------------
RECORD_FIELDS = ("images_seen", "d_loss", "g_loss", "r1", "r2", "grad_norm_real", "grad_norm_fake",
                 "real_logits", "fake_logits", "lr", "gamma", "images_per_second")


def run_record(result: ExperimentResult, **extra: Any) -> dict[str, Any]:
    """A JSON-able record of a run: summary, evaluations, the log's key fields and spectra (no tensors)."""
    records = [{k: r.get(k) for k in RECORD_FIELDS if k in r} for r in result.records]
    return {**result.summary(), **extra, "message": result.message, "settings": result.settings,
            "eval_time_s": round(result.eval_time, 2), "evaluations": result.evaluations, "records": records,
            "spectral": result.spectral}


def run_name(label: str, seed: int) -> str:
    """The folder and file stem of one run: the label as a slug, then the seed ("rpgan_r1_r2_s0")."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in label).lower()
    return "_".join(part for part in slug.split("_") if part) + f"_s{seed}"


def _run_job(job: tuple[TrainConfig, str, int, int, int, dict[str, Any] | None]) -> ExperimentResult:
    """One (config, label, seed) of run_variants; module level so that worker processes can import it."""
    cfg, label, seed, evaluations, num_samples, eval_options = job
    return train_and_evaluate(cfg, label=label, evaluations=evaluations, num_samples=num_samples, seed=seed,
                              eval_options=eval_options)


def run_variants(base: TrainConfig, variants: dict[str, dict[str, Any]], seeds: list[int] | tuple[int, ...] = (0,),
                 evaluations: int = 1, num_samples: int = 5_000, eval_options: dict[str, Any] | None = None,
                 runs_dir: str | Path | None = None, workers: int = 1,
                 ) -> tuple[list[dict[str, Any]], dict[str, Tensor | None]]:
    """Train and evaluate `base` changed by each variant's overrides, for every seed.

    runs_dir: each run trains in runs_dir/<run_name(label, seed)>/ and resumes there when the chapter is run again
    after a kill (None = temporary folders). workers > 1 trains that many runs side by side in worker processes
    (give each one thread: `base.threads = 1`; measured here, two one-thread runs beat one two-thread run).
    Returns the run records (one per variant and seed, with `label`, `seed` and `run`) and, per label, the sample
    grid of its first seed (None where that run diverged before producing samples).
    """
    from tqdm.auto import tqdm

    require_positive("workers", workers)
    jobs = []
    for label, overrides in variants.items():
        for seed in seeds:
            out_dir = str(Path(runs_dir) / run_name(label, seed)) if runs_dir is not None else None
            cfg = copy_config(base, seed=seed, out_dir=out_dir, **overrides)
            jobs.append((cfg, label, seed, evaluations, num_samples, eval_options))
    if workers == 1:
        results = [_run_job(job) for job in tqdm(jobs, desc="runs", leave=False)]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(tqdm(pool.map(_run_job, jobs), total=len(jobs), desc="runs", leave=False))
    records: list[dict[str, Any]] = []
    grids: dict[str, Tensor | None] = {}
    for (_, label, seed, *_), run in zip(jobs, results):
        records.append(run_record(run, seed=seed, run=run_name(label, seed)))
        if label not in grids:
            grids[label] = run.samples if run.status == "ok" else None
    return records, grids


def spread_text(mean: float, sd: float | None) -> str:
    """'mean ± sd', rounded to what the spread supports: sd to two significant digits and the mean to the same
    decimal place (0.0001333 ± 0.00023 reads 0.00013 ± 0.00023, 115.43 ± 9.52 reads 115.4 ± 9.5); a single value
    (sd None) or no spread at all keeps four significant digits."""
    if sd is None or not math.isfinite(sd) or sd == 0 or not math.isfinite(mean):
        return f"{mean:.4g}" if sd is None else f"{mean:.4g} ± {sd:.2g}"
    quantum = 10.0 ** (math.floor(math.log10(abs(sd))) - 1)
    decimals = max(0, -int(math.floor(math.log10(quantum) + 1e-9)))
    mean_r, sd_r = round(mean / quantum) * quantum, round(sd / quantum) * quantum
    return f"{mean_r:,.{decimals}f} ± {sd_r:,.{decimals}f}"


def summary_table(records: list[dict[str, Any]], columns: tuple[str, ...]):
    """Mean ± sd over the seeds that did not fail, per label, as a DataFrame. `failed` reads "k/n" (seeds that
    diverged by the trainer's rule), `mean over` how many seeds the other columns average; 'fail' where all did."""
    import pandas as pd

    df = pd.DataFrame([{k: r.get(k) for k in ("label", "seed", "status", *columns)} for r in records])
    rows = []
    for label, group in df.groupby("label", sort=False):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {"label": label, "failed": f"{len(group) - len(ok)}/{len(group)}",
                               "mean over": f"{len(ok)} seed{'s' if len(ok) != 1 else ''}"}
        for c in columns:
            vals = pd.to_numeric(ok[c], errors="coerce").dropna()
            row[c] = "fail" if vals.empty else spread_text(float(vals.mean()),
                                                           float(vals.std(ddof=1)) if len(vals) > 1 else None)
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


def save_grids(grids: dict[str, Tensor | None], artifacts_dir: str | Path | None, prefix: str) -> list[Path]:
    """Save each run's sample grid as artifacts_dir/<prefix>_<label>.png (small; published with results)."""
    if artifacts_dir is None:
        return []
    paths = []
    for label, images in grids.items():
        if images is not None:
            slug = "".join(ch if ch.isalnum() else "_" for ch in label).strip("_").lower()
            paths.append(save_grid_png(images[:64], Path(artifacts_dir) / f"{prefix}_{slug}.png"))
    return paths


def runs_labelled(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The run records carrying `label` (every seed)."""
    return [r for r in records if r["label"] == label]


def finite_mean(values: list[float]) -> float:
    """Mean of the values that are numbers (None and NaN skipped); NaN when none is."""
    values = [v for v in values if v is not None and v == v]
    return sum(values) / len(values) if values else float("nan")


def base_config(config: str, settings: dict[str, Any], **changes: Any) -> TrainConfig:
    """The TrainConfig a chapter's profile settings describe (preset, batch, length, data size)."""
    total = settings["total_images"]
    cfg = TrainConfig(config=config, preset=settings["preset"], batch=settings["batch"], total_images=total,
                      max_items=settings.get("max_items"), progress=False,
                      log_every=max(settings["batch"], total // 20), threads=settings.get("threads"),
                      blowup=settings.get("blowup"))
    return copy_config(cfg, **changes)


def roadmap_step(config: str, settings: dict[str, Any], runs_dir: str | Path | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, Tensor | None]]:
    """Train roadmap config `config` with its own recipe under a chapter's settings, every seed, evaluated."""
    return run_variants(base_config(config, settings), {f"Config {config}": {}}, seeds=settings["seeds"],
                        evaluations=settings["evaluations"], num_samples=settings["num_samples"],
                        eval_options=evaluation_options(settings), runs_dir=runs_dir,
                        workers=settings.get("workers", 1))
