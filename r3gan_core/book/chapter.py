"""What every chapter does around its experiment: start (settings, provenance, published results), show library
source, report runs in the standard figures, and finish (provenance stamped, grids saved, metrics.json written).

Chapters call these so that none of them repeats the boilerplate; `ci/run_chapters.py` reads what `finish_chapter`
writes, and `results/<chapter>/<profile>/` holds what a cpu- or gpu-profile run published (metrics.json, sample
grids, each run's final EMA generator), which the book renders without retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from .experiments import save_grids, summary_table
from ..report import describe_settings, jsonable, read_json, write_metrics

__all__ = ["ROADMAP_COLUMNS", "chapter_start", "count_runs", "describe_published", "export_generators",
           "finish_chapter", "print_reading", "published_results", "recipe_table", "results_table", "run_baselines", "run_generators",
           "separation_view", "results_dir", "show_runs", "sibling_results",
           "source", "stale_settings", "stored_generator", "train_or_load", "write_metrics"]

ROADMAP_COLUMNS = ("fd_digits", "modes", "reverse_kl", "modes_confident", "precision_digits", "recall_digits",
                   "images_per_second")


RESULTS = Path(__file__).resolve().parents[2] / "results"  # r3gan_core/book/chapter.py -> the repository
TRAINED_PROFILES = ("cpu", "gpu")  # profiles whose runs are published under results/<chapter>/<profile>/
# Settings that do not change what a run computes (how it is scheduled on the machine, or what the page's explorable
# computes from the stored results at build time): ignored by the stale check.
SCHEDULING_KEYS = ("threads", "workers", "explorable")


def results_dir(chapter: str, profile: str, root: str | Path | None = None) -> Path:
    """Where a chapter's stored results of `profile` live: results/<chapter>/<profile>/."""
    return Path(root if root is not None else RESULTS) / chapter / profile


def published_results(chapter: str, profile: str = "cpu", root: str | Path | None = None) -> dict[str, Any] | None:
    """The stored results of `chapter` in `profile` (results/<chapter>/<profile>/metrics.json) or None if absent."""
    path = results_dir(chapter, profile, root) / "metrics.json"
    return read_json(path) if path.is_file() else None


def stale_settings(record: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The settings of the profiles table that a stored result was not produced with ([] = up to date)."""
    stored = record["metrics"].get("settings", {})
    keys = sorted((set(stored) | set(settings)) - set(SCHEDULING_KEYS))
    return [f"{k}: stored {stored.get(k)!r}, profiles table {settings.get(k)!r}" for k in keys
            if jsonable(stored.get(k)) != jsonable(settings.get(k))]


def describe_published(chapter: str, profile: str, retrain: bool = False) -> dict[str, Any] | None:
    """Print where this chapter's numbers come from; return the stored record the chapter renders, or None when
    it trains (smoke, retrain=True, or nothing stored for this profile). Stale stored results raise."""
    from .profiles import chapter_settings

    if profile not in TRAINED_PROFILES:
        return None
    record = published_results(chapter, profile)
    command = f"python ci/run_chapters.py --profile {profile} --only {chapter} --out runs/book --publish"
    if record is None or retrain:
        why = "retrain=True" if record is not None else f"nothing is stored under results/{chapter}/{profile}/"
        print(f"Training the {profile} profile now ({why}); `{command}` stores the results for the book.")
        return None
    stale = stale_settings(record, chapter_settings(chapter, profile))
    if stale:
        raise ValueError(f"the stored {profile} results of {chapter!r} were made with other settings than the "
                         f"profiles table ({'; '.join(stale)}): run `{command}` again, or pass retrain=True")
    p = record["provenance"]
    print(f"Showing stored {profile}-profile results (trained once, not retrained here): device {p['device']}, "
          f"commit {p['commit']}, {p['date']}, wall {p['wall_time_s']} s, {p.get('images_seen'):,} images in all. "
          f"Reproduce: `{command}` (or retrain=True in this notebook).")
    return record


def sibling_results(artifacts_dir: str | Path | None, chapter: str) -> dict[str, Any] | None:
    """metrics.json of another chapter executed into the same runner output folder, or None."""
    if artifacts_dir is None:
        return None
    path = Path(artifacts_dir).parent / chapter / "metrics.json"
    return read_json(path) if path.is_file() else None


def chapter_start(chapter: str, profile: str, device: str | None = None, retrain: bool = False,
                  trains: bool | None = None):
    """Settings, provenance (printed: the chapter's first output) and stored results of a chapter.

    For the cpu and gpu profiles the stored results (results/<chapter>/<profile>/) are returned when present and
    up to date, and the provenance is theirs (device, commit, wall time of the training); retrain=True trains
    anyway. device None = the device the chapter's training will pick (CUDA, MPS, CPU); a CPU-only chapter
    passes "cpu". trains: whether the chapter's cpu/gpu runs are stored and rendered (None = the image-training
    chapters, those with a gpu profile; False for the roadmap, which only gathers the config chapters' results).
    """
    import torch

    from . import plotting
    from .profiles import chapter_settings
    from ..report import Provenance, pick_device

    settings = chapter_settings(chapter, profile)
    if trains is None:
        from .profiles import chapter_profiles

        trains = "gpu" in chapter_profiles(chapter)
    stored = describe_published(chapter, profile, retrain) if trains else None
    if stored is not None:
        fields = {k: v for k, v in stored["provenance"].items() if k in Provenance.__dataclass_fields__}
        prov = Provenance(**fields)
    else:
        if settings.get("threads"):  # the chapter's CPU thread count, set before the provenance records it
            torch.set_num_threads(settings["threads"])
        prov = Provenance.start(chapter, profile, pick_device() if device is None else device)
    print(prov)
    print("settings: " + describe_settings(settings))
    plotting.set_style()
    return settings, prov, stored


def stored_generator(chapter: str, profile: str, record: dict[str, Any], root: str | Path | None = None):
    """The stored final EMA generator of one run record (results/<chapter>/<profile>/generators/<run>.pt)."""
    import torch

    from ..networks import build

    s = record["settings"]
    G, _ = build(s["config"], s["preset"], conditional=s.get("conditional", False), **(s.get("network") or {}))
    state = torch.load(results_dir(chapter, profile, root) / "generators" / f"{record['run']}.pt",
                       map_location="cpu", weights_only=True)
    G.load_state_dict(state)
    return G.eval().requires_grad_(False)


def run_generators(runs: list[dict[str, Any]], labels: list[str] | tuple[str, ...], stored: dict[str, Any] | None = None,
                   runs_dir: str | Path | None = None) -> dict[tuple[str, int], torch.nn.Module]:
    """{(label, seed): final G_ema} of the finished runs carrying `labels`: the stored generators when the chapter
    renders stored results (`stored`, results/<chapter>/<profile>/generators/), else the runs' own checkpoints in
    runs_dir (on the device the training picked). Diverged runs have no generator to sample."""
    from ..report import pick_device
    from ..training import load_generator
    from ..training.config import CHECKPOINT_NAME

    out = {}
    for r in runs:
        if r["label"] not in labels or r["status"] != "ok":
            continue
        if stored is not None:
            G = stored_generator(stored["provenance"]["chapter"], stored["provenance"]["profile"], r)
        elif runs_dir is not None:
            G, _ = load_generator(Path(runs_dir) / r["run"] / CHECKPOINT_NAME, device=str(pick_device()))
        else:
            raise ValueError("run_generators needs the runs' folders (runs_dir) or stored results (stored)")
        out[(r["label"], r["seed"])] = G
    return out


def train_or_load(stored: dict[str, Any] | None, train_runs, chapter: str | None = None):
    """(run records, sample grids): the stored ones when `stored` is a record (grids regenerated from the stored
    generators, exactly as the live run drew them), else `train_runs()` (e.g. a call of run_variants)."""
    if stored is None:
        return train_runs()
    from ..sampling import generate_images

    records = stored["metrics"]["runs"]
    chapter = chapter or stored["provenance"]["chapter"]
    profile = stored["provenance"]["profile"]
    grids: dict[str, Tensor | None] = {}
    for r in records:
        if r["label"] in grids:
            continue
        if r["status"] != "ok":
            grids[r["label"]] = None
            continue
        G = stored_generator(chapter, profile, r)
        grids[r["label"]] = generate_images(G, r["settings"]["num_samples"], seed=r["seed"])[:64]
    return records, grids


def source(*objects: Any):
    """The source of r3gan_core functions or classes, as a highlighted code block (never retyped)."""
    import inspect

    from IPython.display import Code

    return Code("\n\n".join(inspect.getsource(o) for o in objects), language="python")


def count_runs(provenance, *record_lists: list[dict[str, Any]]) -> None:
    """Stamp the images and steps of every run so far on the provenance (figure footers state them)."""
    from ..report import Provenance

    if isinstance(provenance, Provenance):
        records = [r for records in record_lists for r in records]
        provenance.count(images_seen=sum(r["images_seen"] for r in records), steps=sum(r["steps"] for r in records))
        if any("seed" in r for r in records):
            provenance.extra["seeds"] = sorted({r["seed"] for r in records if "seed" in r})


def run_baselines(stored: dict[str, Any] | None, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The untrained and real-data baselines of a chapter's runs: stored with its results when they are, else
    evaluated now by the runs' protocol (r3gan_core.book.baselines.baselines_for)."""
    from .baselines import baselines_for

    return baselines_for(stored, records)


def results_table(records: list[dict[str, Any]], baselines: dict[str, Any] | None, states: dict[str, str] | None,
                  columns: tuple[str, ...] = ROADMAP_COLUMNS):
    """experiments.summary_table of the runs with a `state` column (baselines.run_states), then the untrained and
    real-data baselines as rows of their own, by the same protocol."""
    import pandas as pd

    from . import baselines as bl

    table = summary_table(records, columns)
    if states is not None:
        table.insert(0, "state", [bl.state_column(records, states).get(label, "") for label in table.index])
    if baselines:
        extra = summary_table(bl.baseline_records(baselines), tuple(c for c in columns if c != "images_per_second"))
        extra.insert(0, "state", "baseline")
        extra["failed"] = "–"
        table = pd.concat([table, extra])
    return table


def separation_view(judgement: dict[str, Any]):
    """The separation table (baselines rule 1) as the book shows it."""
    from . import tables

    from .readings import METRIC_NAMES

    rows = [{"metric": METRIC_NAMES[r["metric"]], "real data": r["real data"], "untrained": r["untrained"], "gap": r["gap"],
             "trained sd": r["trained sd"], "gap / sd": r["gap / sd"], "decides verdicts": r["separates"]}
            for r in judgement["separation"]]
    return tables.show(rows, digits=3, caption=judgement["rules"][0])


def dataset_spec(records: list[dict[str, Any]]) -> str | None:
    """The dataset spec the runs trained on (the first record naming one), or None."""
    return next((r.get("settings", {}).get("dataset") for r in records if r.get("settings", {}).get("dataset")), None)


def real_samples(records: list[dict[str, Any]], n: int = 16) -> Tensor | None:
    """n real images of the runs' dataset, to show beside their samples; None when the records do not name one."""
    from ..data import load_dataset

    spec = dataset_spec(records)
    return None if spec is None else load_dataset(spec, max_items=n).images[:n]


def show_sample_grids(records: list[dict[str, Any]], grids: dict[str, Tensor | None], provenance):
    """The final samples of each variant beside real data (plotting.plot_sample_grids), stacked digits split into
    their three digits."""
    from . import plotting
    from ..data import is_stacked

    spec = dataset_spec(records)
    return plotting.plot_sample_grids(grids, provenance, real=real_samples(records),
                                      split_stacked=spec is not None and is_stacked(spec))


def show_runs_explorable(records: list[dict[str, Any]], grids: dict[str, Tensor | None], provenance,
                         baselines: dict[str, Any] | None = None) -> None:
    """The runs explorable (explorables.runs_explorable) of these records, for the rendered page: a run toggle and
    an images-seen slider over the curves above, the final samples beside real data."""
    from . import explorables

    chapter, profile = getattr(provenance, "chapter", ""), getattr(provenance, "profile", "")
    layout, settings = explorables.runs_explorable(chapter, profile, records, grids, baselines,
                                                   real=real_samples(records))
    explorables.show(layout, "runs", settings)


def show_runs(records: list[dict[str, Any]], grids: dict[str, Tensor | None], provenance,
              baselines: dict[str, Any] | None = None, trend_metrics: tuple[str, ...] = ("fd_digits", "modes_confident"),
              ) -> dict[str, Any]:
    """The standard report of a chapter's runs: table with both baselines, the separation table, sample grids,
    metric curves with the baselines, D's gradient norms, and the reading (printed). Returns the judgement
    (baselines.judge) with the reading under "reading", for finish_chapter to store."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import baselines as bl, plotting, readings, tables

    count_runs(provenance, records)
    judgement = bl.judge(records, baselines) if baselines else None
    shown = ("label", "state", "fd_digits", "modes_confident", "precision_digits", "recall_digits", "modes",
             "reverse_kl")  # the state counts the seeds that diverged
    display(tables.show(results_table(records, baselines, judgement and judgement["states"]), columns=shown))
    if judgement:
        display(separation_view(judgement))
    if grids:
        show_sample_grids(records, grids, provenance)
        plt.show()
    plotting.plot_metric_curves(records, ("fd_digits", "modes_confident", "recall_digits"), provenance,
                                log_y=("fd_digits",), baselines=baselines)
    plt.show()
    show_runs_explorable(records, grids, provenance, baselines)
    plotting.plot_gradient_norms(records, provenance)
    plt.show()
    if judgement:
        judgement["reading"] = readings.results_reading(records, baselines, judgement["separation"],
                                                        judgement["states"], trend_metrics)
        print_reading(judgement["reading"])
    return judgement or {}


def print_reading(sentences: list[str]) -> None:
    """The reading under a results section, as a paragraph of Markdown (each sentence made by a rule)."""
    from IPython.display import Markdown, display

    display(Markdown("**Reading.** " + " ".join(sentences)))


def finish_chapter(prov, metrics_path, artifacts_dir, records: list[dict[str, Any]],
                   grids: dict[str, Tensor | None], runs_dir: str | Path | None = None, stored=None,
                   **metrics: Any) -> dict[str, Any]:
    """Stamp the provenance (images seen, steps, wall time), save sample grids, write metrics.json.

    runs_dir: the run folders of a cpu/gpu run; each finished run's final EMA generator (fp32 state dict) is
    exported to artifacts_dir/generators/<run>.pt, which `--publish` stores beside the metrics. stored: the stored
    record the chapter rendered instead of training; its provenance is kept as it is.
    """
    if stored is None:
        count_runs(prov, records)
        # run_seconds: training + evaluation summed over the runs (they run side by side, and a run that was
        # killed and resumed adds up its processes), beside this execution's own wall time.
        prov.finish(threads=metrics.get("settings", {}).get("threads"),
                    seeds=sorted({r["seed"] for r in records if "seed" in r}),
                    images_per_run=sorted({r["settings"]["total_images"] for r in records if "settings" in r}),
                    run_seconds=round(sum(r.get("wall_time_s", 0) + r.get("eval_time_s", 0) for r in records), 1))
        export_generators(records, runs_dir, artifacts_dir)
    save_grids(grids, artifacts_dir, "samples")
    record = write_metrics(metrics_path, {"runs": records, **metrics}, prov)
    print(prov)
    return record


def export_generators(records: list[dict[str, Any]], runs_dir: str | Path | None,
                      artifacts_dir: str | Path | None) -> list[Path]:
    """Copy the final G_ema of every finished run (runs_dir/<run>/checkpoint.pt) to artifacts_dir/generators/."""
    import torch

    from ..training.checkpoint import load
    from ..report import atomic_open

    if runs_dir is None or artifacts_dir is None:
        return []
    paths = []
    for r in records:
        if r.get("status") != "ok" or "run" not in r:
            continue
        state = load(Path(runs_dir) / r["run"] / "checkpoint.pt", map_location="cpu")
        if int(state["images_seen"]) != r["images_seen"]:
            raise RuntimeError(f"run {r['run']}: checkpoint at {state['images_seen']} images, record at "
                               f"{r['images_seen']}")
        path = Path(artifacts_dir) / "generators" / f"{r['run']}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            torch.save({k: v.float().contiguous() for k, v in state["G_ema"].items()}, f)
        paths.append(path)
    return paths


def recipe_table(configs: str, preset: str):
    """The training recipes of `configs` (e.g. "BC") at `preset`, one row each, as a DataFrame (chapters show it
    with `tables.show(..., transpose=True)`: one column per config)."""
    import pandas as pd

    from ..training.recipes import describe_recipes

    return pd.DataFrame([r for r in describe_recipes(preset) if r["config"] in configs]).set_index("config")
