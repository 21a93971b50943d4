"""Fair recipes at our scale: a learning-rate x gamma sweep around each roadmap config's prescribed recipe, the
roadmap re-run at each config's best cell, and the decisive pairs trained for longer.

The config chapters train every config with the recipe the paper or the official code prescribes for FFHQ-256 and
5 M images. At stacked8 and 64k images that recipe may simply not fit, so each config is also trained on a grid
(profiles.RECIPE_SWEEP): learning rates and gammas scaled by factors around the prescribed ones (both ends of a
cosine schedule scaled alike), for Config A absolute gammas that include StyleGAN2-ADA's `cifar` (0.01) and
`paper256` (1) values. One seed per cell; the prescribed cell is the config chapter's own run of that seed.

Rules (each printed with its result):

* a cell's **score** is the mean, over the metrics that separate (the config chapter's separation table,
  baselines rule 1), of the fraction of the gap from the untrained generator to real data that its final samples
  close (baselines.gap_closed: 0 = untrained, 1 = real data);
* a cell **degrades** when, from its middle evaluation to its last, a majority of those metrics worsen by more than
  the config's seed spread (sd over the config chapter's seeds of the final values): baselines rule 3 for one seed;
* the **best** cell is the highest-scoring one that trained (not diverged, not "did not train", not degrading).

Stored like every image result, in their own folder per config (results/recipes/<config chapter>/<profile>/:
metrics.json, each run's final EMA generator, seal.json), so the config chapters' own stored results stay as they
were published; `ci/run_recipes.py` trains and publishes them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import baselines as bl
from .chapter import RESULTS, published_results
from .experiments import base_config, evaluation_options, run_variants

ROOT = RESULTS / "recipes"  # results/recipes/<config chapter>/<profile>/
TUNED_TAG, LONG_TAG = "tuned", "tuned, long"  # labels "Config A tuned", "Config A tuned, long"
SCORE_RULE = ("score: the mean over the separating metrics of the fraction of the gap from the untrained generator "
              "to real data closed (0 = untrained, 1 = real data), over the metrics where that gap is defined")
DEGRADES_RULE = ("degrades: from the middle evaluation to the last, a majority of the separating metrics worsen by "
                 "more than the config's seed spread (sd of its prescribed runs' final values)")
BEST_RULE = "best: the highest score among the cells that trained (not diverged, did not train or degrading)"


@dataclass(frozen=True)
class Cell:
    """One recipe of a sweep: the factors applied to the prescribed recipe (or Config A's absolute gamma)."""

    config: str
    lr_factor: float
    gamma_factor: float | None  # None when `gamma` is an absolute value of the grid (Config A)
    lr: float | tuple[float, float]
    gamma: float | tuple[float, float]
    prescribed: bool

    @property
    def label(self) -> str:
        gamma = f"gamma x{self.gamma_factor:g}" if self.gamma_factor is not None else f"gamma {_start(self.gamma):g}"
        return f"{self.config} lr x{self.lr_factor:g} {gamma}"

    @property
    def overrides(self) -> dict[str, Any]:
        return {"lr": self.lr, "gamma": self.gamma}


def _start(value: float | tuple[float, float]) -> float:
    return value[0] if isinstance(value, (tuple, list)) else value


def _scaled(base: float, final: float, factor: float) -> float | tuple[float, float]:
    """A recipe's (base, final) schedule scaled by `factor`: a constant stays a constant."""
    def times(x: float) -> float:
        return float(f"{x * factor:.12g}")  # 0.1 x 0.1 is 0.01, not 0.010000000000000002

    return times(base) if base == final else (times(base), times(final))


def prescribed_recipe(config: str, settings: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The (base, final) learning rate and gamma of `config`'s own recipe under a chapter's settings."""
    from ..training import recipe_for

    recipe = recipe_for(base_config(config, settings))
    return {"lr": (recipe.lr.base, recipe.lr.final), "gamma": (recipe.gamma.base, recipe.gamma.final)}


def sweep_cells(config: str, settings: dict[str, Any], sweep: dict[str, Any]) -> list[Cell]:
    """The grid of `sweep` (profiles.RECIPE_SWEEP[profile]) for `config`, learning rates outer, gammas inner."""
    own = sweep.get(config, {})
    lr_factors, gammas = own.get("lr_factors", sweep["lr_factors"]), own.get("gammas")
    pres = prescribed_recipe(config, settings)
    cells = []
    for f in lr_factors:
        if gammas is not None:
            for g in gammas:
                cells.append(Cell(config, f, None, _scaled(*pres["lr"], f), g,
                                  prescribed=f == 1 and math.isclose(g, pres["gamma"][0]) and pres["gamma"][0] == pres["gamma"][1]))
        else:
            for g in sweep["gamma_factors"]:
                cells.append(Cell(config, f, g, _scaled(*pres["lr"], f), _scaled(*pres["gamma"], g),
                                  prescribed=f == 1 and g == 1))
    if sum(c.prescribed for c in cells) != 1:
        raise ValueError(f"the sweep grid of Config {config} must hold its prescribed recipe exactly once "
                         f"(lr {pres['lr']}, gamma {pres['gamma']}); check profiles.RECIPE_SWEEP")
    return cells


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------
def _as_cell(record: dict[str, Any], cell: Cell, **extra: Any) -> dict[str, Any]:
    return {**record, "label": cell.label, "cell": cell_key(cell), **extra}


def cell_key(cell: Cell) -> dict[str, Any]:
    """What a stored record says about its cell (the heatmap's axes)."""
    return {"lr_factor": cell.lr_factor, "gamma_factor": cell.gamma_factor, "lr": list(_pair(cell.lr)),
            "gamma": list(_pair(cell.gamma)), "prescribed": cell.prescribed}


def _pair(value: float | tuple[float, float]) -> tuple[float, float]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def train_sweep(config: str, settings: dict[str, Any], sweep: dict[str, Any], chapter_runs: list[dict[str, Any]],
                runs_dir: str | Path | None, done: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The sweep's run records: the prescribed cell is the config chapter's run of the sweep's seed (copied, with
    `source` naming where it was stored); cells already in `done` (a stored sweep) are kept; the rest are trained
    (experiments.run_variants, resumable in runs_dir) with `sweep["evaluations"]` evaluations each."""
    seed = sweep["seed"]
    cells = sweep_cells(config, settings, sweep)
    have = {r["label"]: r for r in done}
    own = next((r for r in chapter_runs if r["seed"] == seed), None)
    if own is None:
        raise ValueError(f"Config {config}'s chapter has no run of seed {seed}, the sweep's prescribed cell")
    todo = {c.label: c for c in cells if not c.prescribed and c.label not in have}
    trained: dict[str, dict[str, Any]] = {}
    if todo:
        base = base_config(config, settings)
        records, _ = run_variants(base, {label: c.overrides for label, c in todo.items()}, seeds=[seed],
                                  evaluations=sweep["evaluations"], num_samples=settings["num_samples"],
                                  eval_options=evaluation_options(settings), runs_dir=runs_dir,
                                  workers=settings.get("workers", 1))
        trained = {r["label"]: r for r in records}
    out = []
    for c in cells:
        if c.prescribed:
            out.append(_as_cell(own, c, source=f"config_{config.lower()} chapter, run {own['run']}"))
        else:
            out.append(_as_cell(have.get(c.label) or trained[c.label], c))
    return out


def train_tuned(config: str, settings: dict[str, Any], sweep: dict[str, Any], sweep_runs: list[dict[str, Any]],
                best: str | None, runs_dir: str | Path | None, done: list[dict[str, Any]] = (),
                total_images: int | None = None, seeds: list[int] | None = None, tag: str = "tuned",
                evaluations: int | None = None, chapter_runs: list[dict[str, Any]] | None = None
                ) -> list[dict[str, Any]]:
    """Config `config` at its best sweep cell for every seed of `seeds` (default the chapter's), labelled
    "Config X <tag>": runs in `done` kept; the config chapter's own runs (chapter_runs) when the best cell is the
    prescribed recipe at the chapter's length; the sweep's run where it is that seed and length; the rest trained."""
    if best is None:
        return []
    cell = next(r for r in sweep_runs if r["label"] == best)
    seeds = list(seeds if seeds is not None else settings["seeds"])
    length = total_images or settings["total_images"]
    label = f"Config {config} {tag}"
    have = {r["seed"]: r for r in done if r["label"] == label and r.get("from_cell") == best}
    # The prescribed recipe at the chapter's length: the config chapter's own runs are these runs.
    own = {r["seed"]: r for r in chapter_runs or () if cell["cell"]["prescribed"] and r["images_seen"] == length}
    out = []
    for seed in seeds:
        if seed in have:
            out.append(have[seed])
        elif seed in own:
            out.append({**own[seed], "label": label, "from_cell": best, "cell": cell["cell"],
                        "source": f"config_{config.lower()} chapter, run {own[seed]['run']}"})
        elif seed == cell["seed"] and length == cell["images_seen"] and cell.get("status") == "ok":
            out.append({**cell, "label": label, "from_cell": best})
    todo = [s for s in seeds if s not in {r["seed"] for r in out}]
    if todo:
        overrides = {"lr": _tuple(cell["cell"]["lr"]), "gamma": _tuple(cell["cell"]["gamma"])}
        base = base_config(config, {**settings, "total_images": length})
        records, _ = run_variants(base, {label: overrides}, seeds=todo,
                                  evaluations=evaluations or sweep["evaluations"],
                                  num_samples=settings["num_samples"], eval_options=evaluation_options(settings),
                                  runs_dir=runs_dir, workers=settings.get("workers", 1))
        out += [{**r, "from_cell": best, "cell": cell["cell"]} for r in records]
    return sorted(out, key=lambda r: r["seed"])


def _tuple(pair: list[float]) -> float | tuple[float, float]:
    return pair[0] if pair[0] == pair[1] else (pair[0], pair[1])


# ---------------------------------------------------------------------------------------------------------
# Judging a sweep
# ---------------------------------------------------------------------------------------------------------
def seed_spreads(chapter_runs: list[dict[str, Any]], metrics: list[str]) -> dict[str, float]:
    """Per metric, the sd over the config chapter's finished seeds of the final values (the prescribed recipe)."""
    ok = [r for r in chapter_runs if r.get("status") == "ok"]
    return {m: statistics.stdev(bl.number(r[m]) for r in ok) if len(ok) >= 2 else float("nan") for m in metrics}


def run_degrades(run: dict[str, Any], metrics: list[str], spreads: dict[str, float]) -> bool:
    """DEGRADES_RULE for one run."""
    evals = run.get("evaluations") or []
    if len(evals) < 2 or not metrics:
        return False
    half = evals[-1]["images_seen"] / 2
    middle = min(evals[:-1], key=lambda e: abs(e["images_seen"] - half))
    worse = 0
    for m in metrics:
        change = (bl.number(evals[-1][m]) - bl.number(middle[m])) * (1 if bl.HIGHER_IS_BETTER[m] else -1)
        worse += spreads[m] > 0 and change < -spreads[m]
    return worse > len(metrics) / 2


def cell_score(run: dict[str, Any], baselines: dict[str, Any], metrics: list[str]) -> float | None:
    """SCORE_RULE for one run (None when it diverged, or when no metric separates)."""
    if run.get("status") != "ok" or not metrics:
        return None
    untrained = bl.untrained_for(baselines, run["settings"], run["seed"])
    if not untrained:
        raise ValueError(f"no untrained baseline of seed {run['seed']} for {run['label']}")
    real = {m: statistics.fmean(bl.number(b[m]) for b in baselines["real"]) for m in metrics}
    closed = [bl.gap_closed(bl.number(run[m]), bl.number(untrained[0][m]), real[m]) for m in metrics]
    closed = [c for c in closed if math.isfinite(c)]  # e.g. confident KL of an untrained G with no confident sample
    return statistics.fmean(closed) if closed else None


def judge_sweep(runs: list[dict[str, Any]], baselines: dict[str, Any], chapter_judgement: dict[str, Any],
                chapter_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores, states and the best cell of a sweep, by the rules above on the config chapter's separating
    metrics (chapter_judgement: its baselines.judge) and seed spread."""
    metrics = list(chapter_judgement.get("separating") or [])
    spreads = seed_spreads(chapter_runs, metrics)
    states = bl.run_states(runs, baselines, metrics)  # one seed per label: rule 3 is applied per run below
    for r in runs:
        if states[r["run"]] == "trained" and run_degrades(r, metrics, spreads):
            states[r["run"]] = "degrading"
    scores = {r["label"]: cell_score(r, baselines, metrics) for r in runs}
    eligible = [r["label"] for r in runs if states[r["run"]] == "trained" and scores[r["label"]] is not None]
    best = max(eligible, key=lambda label: scores[label]) if eligible else None
    prescribed = next(r["label"] for r in runs if r["cell"]["prescribed"])
    return {"metrics": metrics, "spreads": spreads, "states": {r["label"]: states[r["run"]] for r in runs},
            "scores": scores, "best": best, "prescribed": prescribed,
            "rules": [SCORE_RULE, DEGRADES_RULE, BEST_RULE]}


def stored_sweep(chapter: str, profile: str, root: str | Path | None = None) -> dict[str, Any] | None:
    """The published sweep record of a config chapter (results/recipes/<chapter>/<profile>/metrics.json)."""
    return published_results(chapter, profile, ROOT if root is None else root)
