"""Experiment drivers shared by the image chapters (mode coverage, configs A-E, roadmap, BigGAN's lessons).

One function trains a run and evaluates its G_ema as it goes, so every chapter reports the same numbers the
same way::

    from r3gan_core.experiments import train_and_evaluate
    run = train_and_evaluate(TrainConfig(config="E", preset="stacked8", total_images=32_000, out_dir="runs/e"),
                             label="E", evaluations=4, num_samples=5_000)
    run.evaluations[-1]["fd_digits"], run.status, run.images_per_second

A run with k evaluations trains in k segments through the trainer's exact resume (the cosine schedules are
pinned to the whole run's length, so k segments give the same weights as one uninterrupted run), and after each
segment samples `num_samples` images from G_ema and scores them with `metrics.evaluate_images`.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .biggan import truncated_normal
from .choices import require_positive
from .data import load_dataset
from .metrics import evaluate_images
from .report import write_metrics  # re-exported for chapters
from .train import TrainConfig, copy_config, dataset_spec, recipe_for, sample_images, train


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
    samples: Tensor | None  # the last fixed-noise G_ema grid (CPU, [-1, 1])
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
        if self.records:
            last = self.records[-1]
            out["grad_norm_real"] = last.get("grad_norm_real")
            out["grad_norm_fake"] = last.get("grad_norm_fake")
        return out


def sample_latents(z_dim: int, n: int, seed: int, truncation: float | None = None) -> Tensor:
    """n latents from N(0, I), entries above `truncation` resampled (BigGAN's trick; None = no truncation)."""
    return truncated_normal((n, z_dim), truncation, generator=torch.Generator().manual_seed(seed))


def generate_images(G: torch.nn.Module, n: int, seed: int = 0, truncation: float | None = None,
                    labels: Tensor | None = None, device: str | torch.device = "cpu") -> Tensor:
    """n images from G on the CPU in [-1, 1]; conditional G draws uniform labels unless `labels` are given."""
    z = sample_latents(G.z_dim, n, seed, truncation)
    if labels is None and getattr(G, "num_classes", 0):
        labels = torch.randint(G.num_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))
    return sample_images(G, z, labels, device)


def evaluation_points(total_images: int, batch: int, evaluations: int) -> list[int]:
    """`evaluations` image counts, evenly spaced, each a whole number of batches, the last = total_images."""
    require_positive("evaluations", evaluations)
    steps = max(1, math.ceil(total_images / batch))
    points = sorted({max(1, round(steps * (i + 1) / evaluations)) * batch for i in range(evaluations)})
    return points


def train_and_evaluate(cfg: TrainConfig, label: str, evaluations: int = 1, num_samples: int = 5_000,
                       real_samples: int | None = None, seed: int = 0,
                       eval_options: dict[str, Any] | None = None) -> ExperimentResult:
    """Train `cfg` in `evaluations` segments; after each, score G_ema's samples against the real data.

    cfg.out_dir None = a temporary folder (checkpoints are needed to resume between segments). The cosine
    schedules run over the whole length (cfg.schedule_images defaults to cfg.total_images here).
    eval_options go to metrics.evaluate_images (e.g. fewer KID subsets for a smoke run).
    """
    recipe = recipe_for(cfg)
    total = int(recipe.total_images)
    points = evaluation_points(total, recipe.batch, evaluations)
    tmp = tempfile.TemporaryDirectory(prefix="r3gan-run-") if cfg.out_dir is None else None
    out_dir = cfg.out_dir or tmp.name
    base = copy_config(cfg, out_dir=out_dir, resume="auto",
                       schedule_images=cfg.schedule_images or total)
    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=cfg.seed).images
    stacked = real.shape[1] == 3
    evals: list[dict[str, Any]] = []
    wall, eval_time, result = 0.0, 0.0, None
    try:
        for point in points:
            result = train(copy_config(base, total_images=point))
            wall += result.wall_time
            if result.status != "ok":
                break
            t0 = time.perf_counter()
            fake = generate_images(result.G_ema, num_samples, seed=seed, device=next(result.G_ema.parameters()).device)
            scores = evaluate_images(real, fake, stacked=stacked, num_samples=real_samples or num_samples, seed=seed,
                                     **(eval_options or {}))
            eval_time += time.perf_counter() - t0
            evals.append({"images_seen": result.images_seen, **scores})
    finally:
        if tmp is not None:
            tmp.cleanup()
    assert result is not None
    return ExperimentResult(
        label=label, status=result.status, message=result.message, images_seen=result.images_seen,
        steps=result.steps, wall_time=wall, eval_time=eval_time,
        images_per_second=result.images_seen / wall if wall > 0 else float("nan"), evaluations=evals,
        records=result.records, spectral=result.spectral,
        samples=result.samples[-1][1] if result.samples else None,
        checkpoint_path=None if tmp is not None else result.checkpoint_path,
        settings={"config": cfg.config, "preset": cfg.preset, "dataset": dataset_spec(cfg), "batch": recipe.batch,
                  "total_images": total, "loss": recipe.loss, "penalty": recipe.penalty,
                  "gamma": [recipe.gamma.base, recipe.gamma.final], "lr": [recipe.lr.base, recipe.lr.final],
                  "evaluations": evaluations, "num_samples": num_samples},
    )


# ---------------------------------------------------------------------------------------------------------
# Records: what a chapter stores (metrics.json, results/) and plots. Plain JSON, so published results and
# fresh runs go through the same figures.
# ---------------------------------------------------------------------------------------------------------
RECORD_FIELDS = ("images_seen", "d_loss", "g_loss", "r1", "r2", "grad_norm_real", "grad_norm_fake",
                 "real_logits", "fake_logits", "lr", "gamma", "images_per_second")


def run_record(run: ExperimentResult, **extra: Any) -> dict[str, Any]:
    """A JSON-able record of a run: summary, evaluations, the log's key fields and spectra (no tensors)."""
    records = [{k: r.get(k) for k in RECORD_FIELDS if k in r} for r in run.records]
    return {**run.summary(), **extra, "message": run.message, "settings": run.settings,
            "eval_time_s": round(run.eval_time, 2), "evaluations": run.evaluations, "records": records,
            "spectral": run.spectral}


def published_results(chapter: str, root: str | Path | None = None) -> dict[str, Any] | None:
    """The stored full-profile results of `chapter` (results/<chapter>/metrics.json) or None if absent."""
    from .report import read_json

    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent / "results"
    path = root / chapter / "metrics.json"
    return read_json(path) if path.is_file() else None


def describe_published(chapter: str, profile: str) -> dict[str, Any] | None:
    """Print where this chapter's discussed numbers come from; return the published record if any."""
    record = published_results(chapter)
    if record is None:
        print(f"No full-profile results are stored for '{chapter}' (results/{chapter}/ is empty): they need a GPU "
              "run (`python ci/run_chapters.py --profile full --only " + chapter + " --out runs/book --publish`).")
        if profile == "smoke":
            print("The numbers below come from the smoke profile: they show that the code runs, nothing more.")
        return None
    p = record["provenance"]
    print(f"Published full-profile results: device {p['device']}, commit {p['commit']}, {p['date']}, "
          f"wall {p['wall_time_s']} s, images seen {p.get('images_seen')}.")
    return record


def sibling_results(artifacts_dir: str | Path | None, chapter: str) -> dict[str, Any] | None:
    """metrics.json of another chapter executed into the same runner output folder, or None."""
    from .report import read_json

    if artifacts_dir is None:
        return None
    path = Path(artifacts_dir).parent / chapter / "metrics.json"
    return read_json(path) if path.is_file() else None


def run_variants(base: TrainConfig, variants: dict[str, dict[str, Any]], seeds: list[int] | tuple[int, ...] = (0,),
                 evaluations: int = 1, num_samples: int = 5_000, eval_options: dict[str, Any] | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, Tensor | None]]:
    """Train and evaluate `base` changed by each variant's overrides, for every seed.

    Returns the run records (one per variant and seed, with `label` and `seed`) and, per label, the sample grid
    of its first seed (None where that run diverged before producing samples).
    """
    from tqdm.auto import tqdm

    records: list[dict[str, Any]] = []
    grids: dict[str, Tensor | None] = {}
    jobs = [(label, overrides, seed) for label, overrides in variants.items() for seed in seeds]
    for label, overrides, seed in tqdm(jobs, desc="runs", leave=False):
        cfg = copy_config(base, seed=seed, **overrides)
        run = train_and_evaluate(cfg, label=label, evaluations=evaluations, num_samples=num_samples, seed=seed,
                                 eval_options=eval_options)
        records.append(run_record(run, seed=seed))
        if label not in grids:
            grids[label] = run.samples if run.status == "ok" else None
    return records, grids


def summary_table(records: list[dict[str, Any]], columns: tuple[str, ...]):
    """Mean and spread over seeds per label, as a DataFrame; a label with any diverged seed reads 'fail'."""
    import pandas as pd

    df = pd.DataFrame([{k: r.get(k) for k in ("label", "seed", "status", *columns)} for r in records])
    rows = []
    for label, group in df.groupby("label", sort=False):
        row: dict[str, Any] = {"label": label, "seeds": len(group),
                               "failed": int((group["status"] != "ok").sum())}
        ok = group[group["status"] == "ok"]
        for c in columns:
            vals = pd.to_numeric(ok[c], errors="coerce").dropna()
            row[c] = "fail" if vals.empty else (f"{vals.mean():.4g}" if len(vals) == 1
                                               else f"{vals.mean():.4g} ± {vals.std(ddof=1):.2g}")
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


def save_grids(grids: dict[str, Tensor | None], artifacts_dir: str | Path | None, prefix: str) -> list[Path]:
    """Save each run's sample grid as artifacts_dir/<prefix>_<label>.png (small; published with results)."""
    from .train import save_grid_png

    if artifacts_dir is None:
        return []
    paths = []
    for label, images in grids.items():
        if images is not None:
            slug = "".join(ch if ch.isalnum() else "_" for ch in label).strip("_").lower()
            paths.append(save_grid_png(images[:64], Path(artifacts_dir) / f"{prefix}_{slug}.png"))
    return paths


def _by_label(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [r for r in records if r["label"] == label]


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and v == v]
    return sum(values) / len(values) if values else float("nan")


def table1_verdicts(records: list[dict[str, Any]]) -> list[str]:
    """Compare the runs with the paper's Table 1 claims; each sentence states what the data showed."""
    out = []
    r1_only = _by_label(records, "GAN + R1") + _by_label(records, "RpGAN + R1")
    both = _by_label(records, "GAN + R1 + R2") + _by_label(records, "RpGAN + R1 + R2")
    failed = sum(r["status"] != "ok" for r in r1_only)
    images = max((r["images_seen"] for r in records), default=0)
    if failed == len(r1_only) and r1_only:
        out.append(f"REPRODUCED: every R1-only run diverged ({failed}/{len(r1_only)}), as in the paper.")
    elif failed:
        out.append(f"PARTLY: {failed} of {len(r1_only)} R1-only runs diverged (the paper: all of them).")
    else:
        out.append(f"NOT REPRODUCED at this scale: none of the {len(r1_only)} R1-only runs diverged within "
                   f"{images:,} images (the paper's runs failed over 10 M images).")
    ratio_r1 = _mean([(r.get("grad_norm_fake") or 0) / max(r.get("grad_norm_real") or 1e-12, 1e-12)
                      for r in r1_only if r["status"] == "ok"])
    ratio_both = _mean([(r.get("grad_norm_fake") or 0) / max(r.get("grad_norm_real") or 1e-12, 1e-12)
                        for r in both if r["status"] == "ok"])
    if ratio_r1 == ratio_r1 and ratio_both == ratio_both:
        word = "SUPPORTED" if ratio_r1 > 2 * ratio_both else "NOT SEEN"
        out.append(f"{word}: at the end of training, D's gradient norm on fakes / on reals is {ratio_r1:.3g} with "
                   f"R1 only and {ratio_both:.3g} with R1 + R2 (the paper: it explodes with R1 only).")
    rp, gan = _by_label(records, "RpGAN + R1 + R2"), _by_label(records, "GAN + R1 + R2")
    if rp and gan and all(r["status"] == "ok" for r in rp + gan):
        m_rp, m_gan = _mean([r["modes"] for r in rp]), _mean([r["modes"] for r in gan])
        k_rp, k_gan = _mean([r["reverse_kl"] for r in rp]), _mean([r["reverse_kl"] for r in gan])
        better = m_rp > m_gan and k_rp < k_gan
        out.append(f"{'REPRODUCED' if better else 'NOT REPRODUCED'}: RpGAN + R1 + R2 {m_rp:.0f} modes, KL {k_rp:.3f} "
                   f"vs GAN + R1 + R2 {m_gan:.0f} modes, KL {k_gan:.3f} (the paper: 1000 / 0.0781 vs 693 / 0.9270).")
    else:
        out.append("R1 + R2 comparison not possible: a run with both penalties diverged.")
    return out


# ---------------------------------------------------------------------------------------------------------
# Chapter helpers: the boilerplate every image chapter shares, written once.
# ---------------------------------------------------------------------------------------------------------
def chapter_start(chapter: str, profile: str):
    """Settings, provenance (printed: the chapter's first output) and published results of a chapter."""
    from . import plotting
    from .profiles import chapter_settings
    from .report import Provenance, pick_device

    settings = chapter_settings(chapter, profile)
    prov = Provenance.start(chapter, profile, pick_device())
    print(prov)
    print("settings:", settings)
    published = describe_published(chapter, profile)
    plotting.set_style()
    return settings, prov, published


def source(*objects: Any):
    """The source of r3gan_core functions or classes, as a highlighted code block (never retyped)."""
    import inspect

    from IPython.display import Code

    return Code("\n\n".join(inspect.getsource(o) for o in objects), language="python")


def base_config(config: str, settings: dict[str, Any], **changes: Any) -> TrainConfig:
    """The TrainConfig a chapter's profile settings describe (preset, batch, length, data size)."""
    total = settings["total_images"]
    cfg = TrainConfig(config=config, preset=settings["preset"], batch=settings["batch"], total_images=total,
                      max_items=settings.get("max_items"), progress=False,
                      log_every=max(settings["batch"], total // 20), threads=settings.get("threads"))
    return copy_config(cfg, **changes)


def roadmap_step(config: str, settings: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Tensor | None]]:
    """Train roadmap config `config` with its own recipe under a chapter's settings, every seed, evaluated."""
    return run_variants(base_config(config, settings), {f"Config {config}": {}}, seeds=settings["seeds"],
                        evaluations=settings["evaluations"], num_samples=settings["num_samples"],
                        eval_options=settings.get("eval"))


ROADMAP_COLUMNS = ("fd_digits", "modes", "reverse_kl", "modes_confident", "precision_digits", "recall_digits",
                   "images_per_second")


def show_runs(records: list[dict[str, Any]], grids: dict[str, Tensor | None], provenance) -> None:
    """The standard report of a chapter's runs: table, sample grids, metric curves, D's gradient norms."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import plotting

    display(summary_table(records, ROADMAP_COLUMNS))
    if grids:
        plotting.plot_sample_grids(grids, provenance)
        plt.show()
    plotting.plot_metric_curves(records, ("fd_digits", "modes", "recall_digits"), provenance, log_y=("fd_digits",))
    plt.show()
    plotting.plot_gradient_norms(records, provenance)
    plt.show()


def finish_chapter(prov, metrics_path, artifacts_dir, records: list[dict[str, Any]],
                   grids: dict[str, Tensor | None], **metrics: Any) -> dict[str, Any]:
    """Stamp the provenance (images seen, steps, wall time), save sample grids, write metrics.json."""
    prov.finish(images_seen=sum(r["images_seen"] for r in records), steps=sum(r["steps"] for r in records))
    save_grids(grids, artifacts_dir, "samples")
    record = write_metrics(metrics_path, {"runs": records, **metrics}, prov)
    print(prov)
    return record


def recipe_table(configs: str, preset: str):
    """The training recipes of `configs` (e.g. "BC") at `preset`, one row each, as a DataFrame."""
    import pandas as pd

    from .recipes import describe_recipes

    return pd.DataFrame([r for r in describe_recipes(preset) if r["config"] in configs]).set_index("config")


def show_published_runs(published: dict[str, Any] | None) -> None:
    """Show a chapter's stored full-profile runs (table and curves) with their device in every footer."""
    if published is None:
        return
    p = published["provenance"]
    show_runs(published["metrics"]["runs"], {}, f"published full profile · device={p['device']} · "
                                                f"commit={p['commit']} · wall={p['wall_time_s']}s")


# ---------------------------------------------------------------------------------------------------------
# The roadmap in one table: gather the five config chapters' runs and put them beside Table 2.
# ---------------------------------------------------------------------------------------------------------
def gather_roadmap(artifacts_dir: str | Path | None, profile: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run records of config_a .. config_e: from this runner output folder when the chapters ran in `profile`,
    else from their published full results. Returns the records and, per config, where they came from."""
    records: list[dict[str, Any]] = []
    sources: dict[str, str] = {}
    for config in "ABCDE":
        chapter = f"config_{config.lower()}"
        found = sibling_results(artifacts_dir, chapter)
        if found is not None and found["provenance"]["profile"] == profile:
            sources[config] = f"this build ({profile} profile, {found['provenance']['device']})"
        else:
            found = published_results(chapter)
            if found is None:
                sources[config] = "missing: run its chapter first"
                continue
            sources[config] = f"published full results ({found['provenance']['device']}, {found['provenance']['date']})"
        records.extend(found["metrics"]["runs"])
    return records, sources


def roadmap_table(records: list[dict[str, Any]]):
    """Table 2 (paper) beside our metrics per config (mean over seeds; 'fail' where every seed diverged)."""
    from .paper import TABLE2_ROADMAP

    ours = summary_table(records, ("fd_digits", "modes", "reverse_kl", "recall_digits", "images_per_second")) \
        if records else None
    rows = []
    for config, ref in TABLE2_ROADMAP.items():
        row = {"config": config, "change": ref["what"], "paper FID (FFHQ-256)": ref["fid"],
               "paper G / D params (M)": f"{ref['g_params_m']} / {ref['d_params_m']}"}
        label = f"Config {config}"
        if ours is not None and label in ours.index:
            row.update({f"ours {k}": v for k, v in ours.loc[label].items() if k not in ("seeds",)})
        rows.append(row)
    import pandas as pd

    return pd.DataFrame(rows).set_index("config")


def roadmap_verdicts(records: list[dict[str, Any]]) -> list[str]:
    """What the runs say about Table 2's trend, computed from the data (rank agreement with the paper's FIDs)."""
    from scipy.stats import spearmanr

    from .paper import TABLE2_ROADMAP

    means = {c: _mean([r.get("fd_digits") for r in _by_label(records, f"Config {c}") if r["status"] == "ok"])
             for c in TABLE2_ROADMAP}
    have = [c for c, v in means.items() if v == v]
    out = []
    failed = sorted({r["label"] for r in records if r["status"] != "ok"})
    if failed:
        out.append(f"Diverged runs: {', '.join(failed)}.")
    if len(have) < 3:
        return out + [f"Only {len(have)} config(s) have results; the trend needs at least three."]
    rho, p = spearmanr([TABLE2_ROADMAP[c]["fid"] for c in have], [means[c] for c in have])
    out.append(f"Rank agreement between the paper's FIDs and our FD-digits over {', '.join(have)}: "
               f"Spearman rho = {rho:.2f} (p = {p:.2f}; 1 = the same ordering).")
    if "A" in have and "E" in have:
        word = "REPRODUCED" if means["E"] < means["A"] else "NOT REPRODUCED"
        out.append(f"{word}: Config E {'beats' if means['E'] < means['A'] else 'does not beat'} Config A "
                   f"(FD-digits {means['E']:.4g} vs {means['A']:.4g}; the paper: 7.045 vs 7.516 FID).")
    if "B" in have and "A" in have:
        word = "REPRODUCED" if means["B"] > means["A"] else "NOT REPRODUCED"
        out.append(f"{word}: stripping StyleGAN2 (B) {'hurts' if means['B'] > means['A'] else 'does not hurt'} "
                   f"(FD-digits {means['B']:.4g} vs A {means['A']:.4g}; the paper: 12.46 vs 7.516).")
    return out


# =========================================================================================================
# BigGAN chapter helpers (notebooks/11_biggan.py): truncation sweeps, spectra of every weight, gamma sweeps.
# BigGAN = Brock, Donahue, Simonyan 2019 (PAPER_FACTS Sec. 6). Every function takes and returns plain JSON-able
# records (or tensors for sample grids), so published full results and fresh smoke runs draw the same way.
# =========================================================================================================
import contextlib  # noqa: E402  (this section's only extra import)

TRUNCATION_COLUMNS = ("fd_digits", "kid_digits", "precision_digits", "recall_digits", "modes", "reverse_kl",
                      "modes_confident")
TRUNCATION_PLOTTED = ("precision_digits", "recall_digits", "modes", "fd_digits")
EXPLOSION_FACTOR = 2.0  # "blew up": sigma_0 at least doubled over the second half of the measurements
BIGGAN_R1_IS_COST = 0.45  # BigGAN Sec. 4.1: R1 with gamma = 10 stabilises D but costs about 45% of the IS


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """torch's CPU thread count set to n inside a `with` block (None = leave it), restored afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        require_positive("threads", n)
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threshold_name(threshold: float | None) -> str:
    """'none' for no truncation, else the threshold as written ('0.5', '2')."""
    return "none" if threshold is None else f"{threshold:g}"


def train_keep_generator(cfg: TrainConfig, label: str, evaluations: int = 1, num_samples: int = 5_000,
                         eval_options: dict[str, Any] | None = None, seed: int = 0
                         ) -> tuple[dict[str, Any], torch.nn.Module | None, Tensor | None]:
    """train_and_evaluate, keeping the trained G_ema for sampling afterwards (a truncation sweep).

    Returns (run record, G_ema in eval mode on cfg's device or None if the run diverged, last sample grid).
    The networks come back through the run's final checkpoint (a temporary folder unless cfg.out_dir is set).
    """
    from .report import pick_device
    from .train import load_generator

    with tempfile.TemporaryDirectory(prefix="r3gan-keep-") as tmp:
        run = train_and_evaluate(copy_config(cfg, out_dir=cfg.out_dir or tmp, seed=seed), label=label,
                                 evaluations=evaluations, num_samples=num_samples, seed=seed, eval_options=eval_options)
        G = None
        if run.status == "ok" and run.checkpoint_path is not None:
            G, _ = load_generator(run.checkpoint_path, device=str(pick_device(cfg.device)))
    return run_record(run, seed=seed), G, run.samples


def truncation_sweep(G: torch.nn.Module, cfg: TrainConfig, thresholds: list[float] | tuple[float, ...],
                     num_samples: int, seed: int = 0, eval_options: dict[str, Any] | None = None,
                     grid_count: int = 16, threads: int | None = None
                     ) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Score G's samples with no truncation, then at each threshold (BigGAN Sec. 3.1's truncation trick).

    Every threshold uses the same latent seed, so each latent only has its out-of-range entries redrawn: the
    grids show the same images pulled towards the mode. Returns one row per threshold (first `threshold` None =
    no truncation) with the metrics of TRUNCATION_COLUMNS, and {threshold_name: first grid_count images}.
    """
    if G is None:
        raise ValueError("truncation_sweep needs a trained generator (None: the run diverged, nothing to sample)")
    real = load_dataset(dataset_spec(cfg), max_items=cfg.max_items, seed=cfg.seed).images
    device = next(G.parameters()).device
    rows: list[dict[str, Any]] = []
    grids: dict[str, Tensor] = {}
    with _torch_threads(threads):
        for t in (None, *sorted(thresholds)):
            fake = generate_images(G, num_samples, seed=seed, truncation=t, device=device)
            scores = evaluate_images(real, fake, stacked=real.shape[1] == 3, num_samples=num_samples, seed=seed,
                                     **(eval_options or {}))
            rows.append({"threshold": t, **{k: scores[k] for k in TRUNCATION_COLUMNS}})
            grids[threshold_name(t)] = fake[:grid_count]
    return rows, grids


def truncation_verdicts(sweeps: dict[str, list[dict[str, Any]]], plain: str, ortho: str | None = None
                        ) -> list[str]:
    """What the truncation sweeps showed, computed from their rows (each sweep: the no-truncation row first).

    Trade-off: at the smallest threshold, precision (fidelity) should rise and recall (diversity) fall.
    Orthogonal regularisation (BigGAN's claim): a G trained with it degrades more gracefully, measured as the
    mean over thresholds of FD-digits(threshold) / FD-digits(no truncation), lower = more graceful.
    """
    out = []
    degradation: dict[str, float] = {}
    for label, rows in sweeps.items():
        base, strongest = rows[0], min(rows[1:], key=lambda r: r["threshold"])
        best = min(rows, key=lambda r: r["fd_digits"])
        dp = strongest["precision_digits"] - base["precision_digits"]
        dr = strongest["recall_digits"] - base["recall_digits"]
        word = "SEEN" if dp > 0 and dr < 0 else "PARTLY" if dp > 0 or dr < 0 else "NOT SEEN"
        out.append(f"{word} ({label}): truncating at {strongest['threshold']:g} moves precision "
                   f"{base['precision_digits']:.3f} -> {strongest['precision_digits']:.3f}, recall "
                   f"{base['recall_digits']:.3f} -> {strongest['recall_digits']:.3f}, modes {base['modes']} -> "
                   f"{strongest['modes']}; FD-digits is lowest at threshold {threshold_name(best['threshold'])} "
                   f"({best['fd_digits']:.4g}; untruncated {base['fd_digits']:.4g}). BigGAN: fidelity up, "
                   "diversity down, FID first better then worse.")
        degradation[label] = _mean([r["fd_digits"] / base["fd_digits"] for r in rows[1:]])
    if ortho is not None and plain in degradation and ortho in degradation:
        a, b = degradation[plain], degradation[ortho]
        close = abs(a - b) < 0.1 * max(a, b)  # one seed: a smaller gap is not evidence either way
        word = "UNDECIDED (within 10%)" if close else "SUPPORTED" if b < a else "NOT SUPPORTED"
        out.append(f"{word}: with orthogonal regularisation FD-digits under truncation averages {b:.3g}x its "
                   f"untruncated value, without it {a:.3g}x (BigGAN: the regulariser makes G amenable to "
                   "truncation, i.e. a smaller ratio).")
    return out


def plot_truncation_curves(sweeps: dict[str, list[dict[str, Any]]], provenance) -> Any:
    """precision, recall, modes and FD-digits against the truncation threshold, one line per model."""
    import matplotlib.pyplot as plt

    from .plotting import add_footer

    fig, axes = plt.subplots(1, len(TRUNCATION_PLOTTED), figsize=(3.6 * len(TRUNCATION_PLOTTED), 3.3))
    for label, rows in sweeps.items():
        # thresholds ascending, then "none" (no truncation = the loosest threshold of all) at the right
        ordered = sorted(rows[1:], key=lambda r: r["threshold"]) + rows[:1]
        names = [threshold_name(r["threshold"]) for r in ordered]
        for ax, metric in zip(axes, TRUNCATION_PLOTTED):
            ax.plot(names, [r[metric] for r in ordered], marker="o", label=label)
    for ax, metric in zip(axes, TRUNCATION_PLOTTED):
        ax.set_title(metric + (" (lower = better)" if metric == "fd_digits" else ""), fontsize=10)
        ax.set_xlabel("truncation threshold")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


def truncation_table(sweeps: dict[str, list[dict[str, Any]]]):
    """The sweeps as one DataFrame indexed by (model, threshold name)."""
    import pandas as pd

    rows = [{"model": label, **row, "threshold": threshold_name(row["threshold"])}
            for label, sweep in sweeps.items() for row in sweep]
    return pd.DataFrame(rows).set_index(["model", "threshold"])


def plot_truncation_grids(grids: dict[str, dict[str, Tensor]], provenance) -> Any:
    """Rows = models, columns = thresholds (then 'none'): the same latents at every threshold."""
    import matplotlib.pyplot as plt

    from .plotting import add_footer, show_grid

    labels = list(grids)
    columns = list(next(iter(grids.values())))
    columns = [c for c in columns if c != "none"] + ["none"]
    fig, axes = plt.subplots(len(labels), len(columns), figsize=(1.9 * len(columns), 2.1 * len(labels)),
                             squeeze=False)
    for row, label in zip(axes, labels):
        for ax, name in zip(row, columns):
            images = grids[label][name]
            show_grid(ax, images, title=f"threshold {name}", nrow=int(math.ceil(math.sqrt(len(images)))))
        row[0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return add_footer(fig, provenance)


def _spectral_series(record: dict[str, Any], net: str) -> dict[str, list[tuple[int, float]]]:
    """{layer: [(images_seen, sigma_0), ...]} of one run record for net 'G' or 'D', in measurement order.

    Non-finite values are dropped: power iteration on an all-zero weight (a zero-initialised residual conv at
    step 0) returns NaN, and stored records carry NaN as the string 'nan'.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    for measurement in record.get("spectral") or []:
        for layer, sigma in measurement[net].items():
            value = float(sigma)
            if math.isfinite(value):
                series.setdefault(layer, []).append((int(measurement["images_seen"]), value))
    return series


def spectral_growth(record: dict[str, Any], net: str, late_from: float = 0.5) -> dict[str, float]:
    """Per layer: sigma_0 at the last measurement / sigma_0 at the first measurement from `late_from` x the
    last measured image count on. A layer 'blows up' late in a run when this exceeds EXPLOSION_FACTOR.

    The second half, not the start, is the reference because zero-initialised layers grow from 0 by design.
    """
    out = {}
    for layer, points in _spectral_series(record, net).items():
        last_images, last = points[-1]
        mid = next((s for i, s in points if i >= late_from * last_images and s > 0), None)
        if mid is not None and len(points) > 1:
            out[layer] = last / mid
    return out


def spectral_summary(record: dict[str, Any]) -> dict[str, Any]:
    """For G and D of one run: the first layer's late sigma_0 growth (BigGAN watched G's first layer), the layer
    that grew most, and the largest sigma_0 at the last measurement."""
    out: dict[str, Any] = {"label": record["label"], "status": record["status"],
                           "images_seen": record["images_seen"], "measurements": len(record.get("spectral") or [])}
    for net in ("G", "D"):
        series, growth = _spectral_series(record, net), spectral_growth(record, net)
        first = next(iter(series), None)
        top = max(growth, key=growth.get) if growth else None
        out[net] = {"first_layer": first, "first_layer_growth": growth.get(first) if first else None,
                    "top_layer": top, "top_growth": growth.get(top) if top else None,
                    "max_sigma": max((p[-1][1] for p in series.values()), default=None)}
    return out


def spectral_verdicts(stable: dict[str, Any], unstable: dict[str, Any],
                      factor: float = EXPLOSION_FACTOR) -> list[str]:
    """Does sigma_0 of some layer blow up before the run diverges (BigGAN Sec. 4.1)? Computed from two run
    records with spectra: a stable run (RpGAN + R1 + R2) and one expected to fail (R1 only)."""
    s, u = spectral_summary(stable), spectral_summary(unstable)

    def grew(summary: dict[str, Any], net: str) -> str:
        d = summary[net]
        if d["top_layer"] is None:
            return f"{net}: too few measurements"
        first = "n/a" if d["first_layer_growth"] is None else f"x{d['first_layer_growth']:.3g}"
        return f"{net} {d['top_layer']} x{d['top_growth']:.3g} (first layer {d['first_layer']} {first})"

    facts = (f"late sigma_0 growth (last / mid-run), {u['label']}: {grew(u, 'G')}; {grew(u, 'D')} | "
             f"{s['label']}: {grew(s, 'G')}; {grew(s, 'D')}")
    out = []
    for run in (s, u):
        if run["status"] != "ok":
            blown = [net for net in ("G", "D") if (run[net]["top_growth"] or 0) >= factor]
            other = s if run is u else u
            calm = all((other[net]["top_growth"] or 0) < factor for net in blown)
            word = "SEEN" if blown and calm else "NOT SEEN"
            what = (f"sigma_0 of {', '.join(run[n]['top_layer'] + ' in ' + n for n in blown)} grew >= {factor:g}x "
                    "in the second half" if blown else f"no layer's sigma_0 grew {factor:g}x in the second half")
            out.append(f"{word}: {run['label']} diverged at {run['images_seen']:,} images; before it, {what}"
                       f"{'' if calm else ' (but so did the other run)'}. BigGAN: G's first-layer sigma_0 "
                       "explodes at collapse.")
    if not out:
        images = max(s["images_seen"], u["images_seen"])
        out.append(f"NOT TESTABLE at this scale: neither run diverged within {images:,} images, so there is no "
                   "collapse for sigma_0 to announce (the paper's R1-only runs failed over 10 M images).")
    out.append(facts)
    return out


def plot_spectra(records: list[dict[str, Any]], provenance) -> Any:
    """sigma_0 of every weight against images seen: rows = runs, columns = G, D; log scale.

    Layers are coloured by depth (dark = input side); G's and D's first layers are drawn thick and black; a red
    dashed line marks where a run diverged.
    """
    import matplotlib.pyplot as plt

    from .plotting import add_footer

    fig, axes = plt.subplots(len(records), 2, figsize=(10, 2.9 * len(records)), squeeze=False, sharex=True)
    for row, record in zip(axes, records):
        for ax, net in zip(row, ("G", "D")):
            series = _spectral_series(record, net)
            colours = plt.cm.viridis([i / max(1, len(series) - 1) for i in range(len(series))])
            for i, (layer, points) in enumerate(series.items()):
                xs, ys = zip(*points)
                first = i == 0
                ax.plot(xs, ys, color="black" if first else colours[i], lw=2.2 if first else 1.0,
                        label=f"first layer ({layer})" if first else None, zorder=3 if first else 2)
            if record["status"] != "ok":
                ax.axvline(record["images_seen"], color="red", ls="--", label="diverged")
            ax.set_yscale("log")
            ax.set_title(f"{record['label']}: sigma_0 of {net}'s weights", fontsize=10)
            ax.legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("real images seen by D")
    fig.tight_layout()
    return add_footer(fig, provenance)


def gamma_sweep_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per gamma run (gamma held constant): stability beside quality, and `fd_cost_pct`, FD-digits above
    the best stable gamma's in percent (BigGAN's 'price' of a strong penalty).

    Stability: status; `late_max_grad_norm_fake`, the largest ||grad_x D|| on fakes over the second half of the
    log (the first records are all alike: every run starts from the same networks and batch); the largest late
    sigma_0 growth in G and in D (spectral_growth). Quality: FD-digits, precision, recall, modes.
    """
    rows = []
    for r in records:
        log = r.get("records") or []
        fake_norms = [float(x["grad_norm_fake"]) for x in log[len(log) // 2:] if x.get("grad_norm_fake") is not None]
        fake_norms = [v for v in fake_norms if math.isfinite(v)]
        growth = {net: max(spectral_growth(r, net).values(), default=None) for net in ("G", "D")}
        rows.append({"gamma": float(r["settings"]["gamma"][0]), "label": r["label"], "seed": r.get("seed", 0),
                     "status": r["status"], "images_seen": r["images_seen"],
                     "late_max_grad_norm_fake": max(fake_norms, default=None),
                     "max_sigma_growth_G": growth["G"], "max_sigma_growth_D": growth["D"],
                     **{k: r.get(k) if r["status"] == "ok" else None
                        for k in ("fd_digits", "precision_digits", "recall_digits", "modes")}})
    ok = [row["fd_digits"] for row in rows if row["fd_digits"] is not None]
    best = min(ok, default=None)
    for row in rows:
        row["fd_cost_pct"] = (None if row["fd_digits"] is None or not best
                              else 100 * (row["fd_digits"] - best) / best)
    return sorted(rows, key=lambda row: row["gamma"])


def gamma_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Stability against quality along the gamma sweep, computed from gamma_sweep_rows."""
    failed = [row["gamma"] for row in rows if row["status"] != "ok"]
    ok = [row for row in rows if row["status"] == "ok"]
    out = [f"stability: {len(failed)} of {len(rows)} runs diverged"
           + (f" (gamma = {', '.join(f'{g:g}' for g in failed)})." if failed else ".")]
    if failed and ok and max(row["gamma"] for row in ok) > max(failed):
        out.append(f"STABILISED BY GAMMA: every run at gamma <= {max(failed):g} diverged, at least one stronger "
                   "one did not.")
    if ok:
        best = min(ok, key=lambda row: row["fd_digits"])
        strongest = max(ok, key=lambda row: row["gamma"])
        cost = strongest["fd_cost_pct"]
        word = "PRICE SEEN" if cost >= 10 else "SMALL PRICE (< 10%)" if cost > 0 else "NO PRICE SEEN"
        out.append(f"{word}: the best FD-digits is at gamma {best['gamma']:g} ({best['fd_digits']:.4g}); the "
                   f"strongest stable gamma ({strongest['gamma']:g}) is {cost:.0f}% worse (precision "
                   f"{strongest['precision_digits']:.3f}, recall {strongest['recall_digits']:.3f} vs "
                   f"{best['precision_digits']:.3f}, {best['recall_digits']:.3f}). BigGAN: R1 at gamma 10 "
                   f"stabilised D but cost about {BIGGAN_R1_IS_COST:.0%} of the Inception Score.")
    return out


def plot_gamma_sweep(rows: list[dict[str, Any]], provenance) -> Any:
    """Quality (FD-digits; precision and recall) and stability (late_max_grad_norm_fake) against gamma;
    a diverged run is a red cross on the stability panel."""
    import matplotlib.pyplot as plt

    from .plotting import add_footer

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] != "ok"]
    axes[0].plot([r["gamma"] for r in ok], [r["fd_digits"] for r in ok], marker="o")
    axes[0].set_title("quality: FD-digits (lower = better)", fontsize=10)
    for metric in ("precision_digits", "recall_digits"):
        axes[1].plot([r["gamma"] for r in ok], [r[metric] for r in ok], marker="o", label=metric)
    axes[1].set_title("quality: precision and recall", fontsize=10)
    axes[1].legend(fontsize=8)
    with_norm = [r for r in rows if r["late_max_grad_norm_fake"] is not None]
    axes[2].plot([r["gamma"] for r in with_norm], [r["late_max_grad_norm_fake"] for r in with_norm], marker="o")
    if bad:
        top = max((r["late_max_grad_norm_fake"] for r in with_norm), default=1.0)
        axes[2].scatter([r["gamma"] for r in bad], [top] * len(bad), marker="x", s=80, color="red",
                        label="diverged", zorder=4)
        axes[2].legend(fontsize=8)
    axes[2].set_title("stability: max ||grad_x D|| on fakes, 2nd half", fontsize=10)
    axes[2].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("gamma (R1 + R2, held constant)")
    fig.tight_layout()
    return add_footer(fig, provenance)


def keep_figure(fig: Any, artifacts_dir: str | Path | None, name: str) -> Any:
    """Save `fig` as artifacts_dir/<name>.png (published with a full run's results); returns fig."""
    if artifacts_dir is not None:
        Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(artifacts_dir) / f"{name}.png", bbox_inches="tight")
    return fig
# ============================================ end of BigGAN chapter helpers ===============================
