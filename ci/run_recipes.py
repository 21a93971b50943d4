#!/usr/bin/env python
"""Train and publish the recipe sweeps of the roadmap configs (r3gan_core.book.recipes), one config at a time.

    python ci/run_recipes.py --config A --phase sweep --publish      # the lr x gamma grid, one seed
    python ci/run_recipes.py --config A --phase tuned --publish      # the best cell, every seed of the chapter
    python ci/run_recipes.py --config A --phase long --publish       # the best cell at RECIPE_SWEEP's long_images

Each phase adds to one record, results/recipes/config_<x>/<profile>/ (metrics.json, the final EMA generator of every
run it trained, seal.json): runs already stored there are kept, not trained again. Every run trains in
--runs/<config chapter>/<run>/ and resumes there when a killed process is started again. The config chapter's own
stored results (results/config_<x>/<profile>/) must exist: the sweep's prescribed cell, its baselines and its
separation table come from them. Prints the projected cost first (from the chapter's own measured throughput).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ci"))

PHASES = ("sweep", "tuned", "long")


def projected_seconds(chapter_runs: list[dict], runs: int, total_images: int, evaluations: int) -> float:
    """Seconds for `runs` more runs, two side by side, at the chapter's own measured one-thread speed (its runs'
    images / (training + evaluation) seconds, the evaluation scaled to `evaluations` per run)."""
    ok = [r for r in chapter_runs if r.get("status") == "ok"]
    train = sum(r["wall_time_s"] for r in ok) / sum(r["images_seen"] for r in ok)
    per_eval = sum(r["eval_time_s"] / len(r["evaluations"]) for r in ok) / len(ok)
    return runs * (total_images * train + evaluations * per_eval) / 2


def main(argv: list[str] | None = None) -> int:
    from r3gan_core.book import recipes
    from r3gan_core.book.chapter import export_generators, published_results
    from r3gan_core.book.profiles import RECIPE_SWEEP, chapter_settings
    from r3gan_core.choices import require_choice
    from r3gan_core.report import Provenance, write_metrics

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="A, B, C, D or E")
    parser.add_argument("--phase", required=True, choices=PHASES)
    parser.add_argument("--profile", default="cpu", choices=sorted(RECIPE_SWEEP))
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "recipes", help="resumable run folders")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "recipes-out", help="staging of the record")
    parser.add_argument("--publish", action="store_true", help="store the record under results/recipes/")
    args = parser.parse_args(argv)
    try:
        config = args.config.upper()
        require_choice("config", config, "ABCDE")
    except ValueError as err:
        parser.error(str(err))
    chapter = f"config_{config.lower()}"
    own = published_results(chapter, args.profile)
    if own is None or not own["metrics"].get("judgement"):
        parser.error(f"results/{chapter}/{args.profile}/ holds no runs with a judgement: publish the {chapter} "
                     f"chapter first (python ci/run_chapters.py --profile {args.profile} --only {chapter} --publish)")
    settings, sweep = chapter_settings(chapter, args.profile), RECIPE_SWEEP[args.profile]
    chapter_runs, baselines, judgement = own["metrics"]["runs"], own["metrics"]["baselines"], own["metrics"]["judgement"]
    stored = recipes.stored_sweep(chapter, args.profile)
    record = dict(stored["metrics"]) if stored else {"sweep": [], "tuned": [], "long": [], "phases": {}}
    prov = Provenance.start(chapter, args.profile, "cpu")
    runs_dir = args.runs / chapter
    cells = recipes.sweep_cells(config, settings, sweep)

    if args.phase == "sweep":
        todo = sum(not c.prescribed and c.label not in {r["label"] for r in record["sweep"]} for c in cells)
        length, evals = settings["total_images"], sweep["evaluations"]
    else:
        if not record["sweep"]:
            parser.error(f"Config {config} has no stored sweep: run --phase sweep --publish first")
        long = args.phase == "long"
        if long and config not in sweep["long_configs"]:
            parser.error(f"--phase long trains only {', '.join(sweep['long_configs'])} (RECIPE_SWEEP)")
        length = sweep["long_images"] if long else settings["total_images"]
        seeds = sweep["long_seeds"] if long else settings["seeds"]
        evals = sweep["long_evaluations"] if long else sweep["evaluations"]
        todo = len(seeds) - sum(r["seed"] in seeds for r in record[args.phase])
    print(f"Config {config}, phase {args.phase}: {todo} runs of {length:,} images to train; projected "
          f"{projected_seconds(chapter_runs, todo, length, evals) / 60:.0f} min with two side by side "
          f"(the chapter's own measured speed)", flush=True)

    t0 = time.perf_counter()
    if args.phase == "sweep":
        record["sweep"] = recipes.train_sweep(config, settings, sweep, chapter_runs, runs_dir, done=record["sweep"])
        record["judgement"] = recipes.judge_sweep(record["sweep"], baselines, judgement, chapter_runs)
        for phase in ("tuned", "long"):  # runs of another cell than the best one are no longer the tuned runs
            record[phase] = [r for r in record[phase] if r.get("from_cell") == record["judgement"]["best"]]
    else:
        best = record["judgement"]["best"]
        tag = recipes.LONG_TAG if args.phase == "long" else recipes.TUNED_TAG
        record[args.phase] = recipes.train_tuned(config, {**settings, "seeds": seeds}, sweep, record["sweep"], best,
                                                 runs_dir, done=record[args.phase], total_images=length,
                                                 evaluations=evals, tag=tag, chapter_runs=chapter_runs)
    trained_here = [r for r in record[args.phase] if "source" not in r]  # the prescribed cell's weights stay put
    record["runs"] = list({r["run"]: r for phase in PHASES for r in record[phase] if "source" not in r}.values())
    record["baselines"] = baselines
    record["settings"] = {"sweep": sweep, "chapter": settings}
    prov.finish(threads=settings.get("threads"),
                run_seconds=round(sum(r["wall_time_s"] + r["eval_time_s"] for r in trained_here), 1))
    prov.count(images_seen=sum(r["images_seen"] for r in record[args.phase]),
               steps=sum(r["steps"] for r in record[args.phase]))
    command = "python ci/run_recipes.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    if todo == 0 and args.phase in record["phases"]:  # nothing trained: the training's provenance stays
        from r3gan_core.report import git_commit

        record["phases"][args.phase]["rejudged"] = {"command": command, "commit": git_commit(),
                                                    "date": time.strftime("%Y-%m-%d")}
    else:
        record["phases"][args.phase] = {**prov.as_dict(), "command": command,
                                        "measured_s": round(time.perf_counter() - t0, 1)}
    out = args.out / chapter
    export_generators([r for r in trained_here if (runs_dir / r["run"] / "checkpoint.pt").is_file()], runs_dir, out)
    write_metrics(out / "metrics.json", record, prov)
    print(f"wrote {out / 'metrics.json'} ({time.perf_counter() - t0:.0f} s)")
    if args.publish:
        from run_chapters import publish

        target = publish(chapter, args.out, command=command, root=recipes.ROOT)
        print(f"published {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
