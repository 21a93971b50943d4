"""What every chapter does around its experiment: start (settings, provenance, published results), show library
source, report runs in the standard figures, and finish (provenance stamped, grids saved, metrics.json written).

Chapters call these so that none of them repeats the boilerplate; `ci/run_chapters.py` reads what `finish_chapter`
writes, and `results/<chapter>/` holds what a full-profile run published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from .experiments import save_grids, summary_table
from .report import read_json, write_metrics

__all__ = ["ROADMAP_COLUMNS", "chapter_start", "count_runs", "describe_published", "finish_chapter", "published_results",
           "recipe_table", "show_published_runs", "show_runs", "sibling_results", "source", "write_metrics"]

ROADMAP_COLUMNS = ("fd_digits", "modes", "reverse_kl", "modes_confident", "precision_digits", "recall_digits",
                   "images_per_second")


def published_results(chapter: str, root: str | Path | None = None) -> dict[str, Any] | None:
    """The stored full-profile results of `chapter` (results/<chapter>/metrics.json) or None if absent."""
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
    if artifacts_dir is None:
        return None
    path = Path(artifacts_dir).parent / chapter / "metrics.json"
    return read_json(path) if path.is_file() else None


def chapter_start(chapter: str, profile: str, device: str | None = None):
    """Settings, provenance (printed: the chapter's first output) and published results of a chapter.

    device None = the device the chapter's training will pick (CUDA, MPS, CPU); a CPU-only chapter passes "cpu".
    """
    import torch

    from . import plotting
    from .profiles import chapter_settings
    from .report import Provenance, pick_device

    settings = chapter_settings(chapter, profile)
    if settings.get("threads"):  # the chapter's CPU thread count, set before the provenance records it
        torch.set_num_threads(settings["threads"])
    prov = Provenance.start(chapter, profile, pick_device() if device is None else device)
    print(prov)
    print("settings:", settings)
    # Chapters the book executes in full on a CPU have nothing to publish; the GPU chapters say where their
    # discussed numbers come from.
    from .profiles import CHAPTERS

    published = describe_published(chapter, profile) if CHAPTERS[chapter]["book"] == "gpu" else None
    plotting.set_style()
    return settings, prov, published


def source(*objects: Any):
    """The source of r3gan_core functions or classes, as a highlighted code block (never retyped)."""
    import inspect

    from IPython.display import Code

    return Code("\n\n".join(inspect.getsource(o) for o in objects), language="python")


def count_runs(provenance, *record_lists: list[dict[str, Any]]) -> None:
    """Stamp the images and steps of every run so far on the provenance (figure footers state them)."""
    from .report import Provenance

    if isinstance(provenance, Provenance):
        records = [r for records in record_lists for r in records]
        provenance.count(images_seen=sum(r["images_seen"] for r in records), steps=sum(r["steps"] for r in records))


def show_runs(records: list[dict[str, Any]], grids: dict[str, Tensor | None], provenance) -> None:
    """The standard report of a chapter's runs: table, sample grids, metric curves, D's gradient norms."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import plotting

    count_runs(provenance, records)
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
    count_runs(prov, records)
    prov.finish()
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
        print("No full-profile results are stored for this chapter yet (they need a GPU run); everything above "
              "is the smoke profile and shows only that the code runs.")
        return
    p = published["provenance"]
    show_runs(published["metrics"]["runs"], {}, f"published full profile · device={p['device']} · "
                                                f"commit={p['commit']} · wall={p['wall_time_s']}s")

