"""What the config chapters and the roadmap show of the recipe sweeps (r3gan_core.book.recipes): the heatmap of a
config's sweep with its prescribed and best cells marked, the table of its cells, and the reading, every sentence
produced from the stored records by the rules printed beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import recipes
from .readings import METRIC_NAMES, number

CELL_COLUMNS = ("label", "lr", "gamma", "state", "score", "fd_digits", "modes_confident", "precision_digits",
                "recall_digits")
SHORT_STATE = {"trained": "", "degrading": "degrading", "did not train": "did not train", "diverged": "diverged",
               "undecided": "undecided"}


def sweep_for_chapter(config: str, profile: str, runs: list[dict[str, Any]], baselines: dict[str, Any] | None,
                      judgement: dict[str, Any] | None, stored: dict[str, Any] | None,
                      runs_dir: str | Path | None) -> dict[str, Any] | None:
    """A config chapter's sweep: the stored one (results/recipes/) when the chapter renders stored results; trained
    here in smoke (the code path, in CI); otherwise None with a message saying how to run it."""
    from .profiles import RECIPE_SWEEP, chapter_settings

    chapter = f"config_{config.lower()}"
    if stored is not None:
        found = recipes.stored_sweep(chapter, profile)
        if found is None:
            print(f"No recipe sweep of Config {config} is stored for the {profile} profile yet: "
                  f"`python ci/run_recipes.py --config {config} --phase sweep --publish` trains and stores it.")
        return None if found is None else found["metrics"]
    if profile not in RECIPE_SWEEP or not baselines or not judgement:
        print(f"The recipe sweep is trained by `python ci/run_recipes.py --config {config} --phase sweep` from the "
              f"chapter's published {profile} results; it is not trained inside the chapter.")
        return None
    settings, sweep = chapter_settings(chapter, profile), RECIPE_SWEEP[profile]
    cells = recipes.train_sweep(config, settings, sweep, runs, runs_dir)
    return {"sweep": cells, "judgement": recipes.judge_sweep(cells, baselines, judgement, runs),
            "settings": {"sweep": sweep, "chapter": settings}}


def _axis(values: list[float]) -> list[float]:
    return sorted(set(values))


def _grid_axes(cells: list[dict[str, Any]]) -> tuple[list[float], list[float], str]:
    """Row values (lr factors), column values (gamma factors, or absolute gammas) and the column title."""
    lrs = _axis([c["cell"]["lr_factor"] for c in cells])
    if all(c["cell"]["gamma_factor"] is not None for c in cells):
        return lrs, _axis([c["cell"]["gamma_factor"] for c in cells]), "gamma factor"
    return lrs, _axis([c["cell"]["gamma"][0] for c in cells]), "gamma"


def _column_value(cell: dict[str, Any]) -> float:
    return cell["cell"]["gamma_factor"] if cell["cell"]["gamma_factor"] is not None else cell["cell"]["gamma"][0]


def plot_sweep(record: dict[str, Any], provenance, config: str):
    """Heatmap of the cells' scores (recipes.SCORE_RULE), FD-digits and state written in each cell; the prescribed
    cell outlined in black, the best one in orange with a star."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    from . import plotting

    cells, judged = record["sweep"], record["judgement"]
    rows, cols, col_title = _grid_axes(cells)
    score = np.full((len(rows), len(cols)), np.nan)
    fig, ax = plt.subplots(figsize=(min(plotting.COLUMN_IN, 2.2 + 1.7 * len(cols)), 1.4 + 1.1 * len(rows)))
    for c in cells:
        i, j = rows.index(c["cell"]["lr_factor"]), cols.index(_column_value(c))
        s = judged["scores"][c["label"]]
        score[i, j] = np.nan if s is None else s
    finite = score[np.isfinite(score)]
    vmax = max(1.0, float(finite.max())) if finite.size else 1.0
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.85")  # no score: diverged, or nothing separates
    im = ax.imshow(score, cmap=cmap, vmin=min(0.0, float(finite.min())) if finite.size else 0.0, vmax=vmax,
                   aspect="auto")
    for c in cells:
        i, j = rows.index(c["cell"]["lr_factor"]), cols.index(_column_value(c))
        s, state = judged["scores"][c["label"]], judged["states"][c["label"]]
        text = ("–" if s is None else f"{s:.2f}") + f"\nFD {number(c['fd_digits'])}" * (c.get("fd_digits") is not None)
        text += f"\n{SHORT_STATE[state]}" * bool(SHORT_STATE[state])
        bright = s is None or im.norm(s) > 0.55  # viridis is light from about here: dark text
        ax.text(j, i, text, ha="center", va="center", fontsize=8.5, color="black" if bright else "white")
        if c["label"] in (judged["prescribed"], judged["best"]):
            best = c["label"] == judged["best"]
            if not best:  # a white line under the dashes keeps them visible on dark cells
                ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=3.5, ec="white"))
            ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=3 if best else 2,
                                   ec="tab:orange" if best else "black", ls="-" if best else "--"))
    ax.set_xticks(range(len(cols)), [f"x{v:g}" if col_title == "gamma factor" else f"{v:g}" for v in cols])
    start = {c["cell"]["lr_factor"]: c["cell"]["lr"][0] for c in cells}
    ax.set_yticks(range(len(rows)), [f"x{v:g}\n({start[v]:g})" for v in rows])
    ax.set_xlabel(col_title)
    ax.set_ylabel("learning-rate factor (start lr)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="score (gap closed)", shrink=0.9)
    ax.set_title(f"Config {config}: recipe sweep, seed {cells[0]['seed']}, {cells[0]['images_seen']:,} images per "
                 "cell\ndashed black: prescribed recipe; orange: best cell", fontsize=9.5)
    plotting.add_footer(fig, provenance)
    return fig


def cell_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The table under the heatmap: one row per cell, its recipe, state, score and the headline metrics."""
    judged, rows = record["judgement"], []
    for c in record["sweep"]:
        lr, gamma = c["cell"]["lr"], c["cell"]["gamma"]
        mark = " (prescribed)" * (c["label"] == judged["prescribed"]) + " (best)" * (c["label"] == judged["best"])
        rows.append({"label": c["label"] + mark, "lr": _schedule(lr), "gamma": _schedule(gamma),
                     "state": judged["states"][c["label"]], "score": judged["scores"][c["label"]],
                     **{k: c.get(k) for k in CELL_COLUMNS[5:]}})
    return rows


def _schedule(pair: list[float]) -> str:
    return f"{pair[0]:g}" if pair[0] == pair[1] else f"{pair[0]:g} → {pair[1]:g}"


def sweep_reading(record: dict[str, Any]) -> list[str]:
    """The reading under a sweep, each sentence by a rule on the stored cells."""
    judged, cells = record["judgement"], {c["label"]: c for c in record["sweep"]}
    states, scores = judged["states"], judged["scores"]
    if not judged["metrics"]:
        return ["No metric separates trained from untrained generators in these runs (the config's separation "
                "table), so no cell can be scored and no best recipe chosen: the sweep decides nothing."]
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s] = counts.get(s, 0) + 1
    out = [f"Of the {len(cells)} cells, " + ", ".join(f"{k} {s}" for s, k in counts.items()) + " (scored on "
           + ", ".join(METRIC_NAMES[m] for m in judged["metrics"]) + ")."]
    pres, best = cells[judged["prescribed"]], judged["best"]
    out.append(f"The prescribed recipe ({pres['label']}) is {states[pres['label']]}, score "
               f"{_score(scores[pres['label']])}, FD-digits {number(pres['fd_digits'])}.")
    if best is None:
        out.append("No cell trained without degrading, so there is no best recipe at this scale.")
    elif best == pres["label"]:
        out.append("The prescribed recipe is also the best cell: the sweep finds no better recipe at this scale.")
    else:
        b = cells[best]
        out.append(f"The best cell is {best} (lr {_schedule(b['cell']['lr'])}, gamma {_schedule(b['cell']['gamma'])}):"
                   f" score {_score(scores[best])}, FD-digits {number(b['fd_digits'])} against the prescribed "
                   f"{number(pres['fd_digits'])}, confident modes {number(b['modes_confident'])} against "
                   f"{number(pres['modes_confident'])}. One seed per cell: the tuned roadmap's three seeds decide "
                   "whether the difference is beyond the seed spread.")
        edges = _edges(record["sweep"], b)
        if edges:
            out.append(f"The best cell lies on the edge of the grid ({' and '.join(edges)}): a wider grid may find a "
                       "better recipe still.")
    return out


def _edges(cells: list[dict[str, Any]], cell: dict[str, Any]) -> list[str]:
    """Which ends of the grid's axes `cell` sits on ("the largest learning rate", "the smallest gamma")."""
    rows, cols, _ = _grid_axes(cells)
    out = []
    for name, axis, value in (("learning rate", rows, cell["cell"]["lr_factor"]), ("gamma", cols, _column_value(cell))):
        if len(axis) > 1 and value in (axis[0], axis[-1]):
            out.append(f"the {'largest' if value == axis[-1] else 'smallest'} {name}")
    return out


def _score(value: float | None) -> str:
    return "n/a (diverged)" if value is None else f"{value:.2f}"


def show_sweep(record: dict[str, Any] | None, provenance, config: str) -> list[str]:
    """Heatmap, table and reading of a config's sweep (nothing when there is none); returns the reading."""
    import matplotlib.pyplot as plt

    from . import tables
    from .chapter import print_reading

    if record is None:
        return []
    plot_sweep(record, provenance, config)
    plt.show()
    from IPython.display import display

    display(tables.show(cell_rows(record), digits=3, caption="; ".join(record["judgement"]["rules"])))
    reading = sweep_reading(record)
    print_reading(reading)
    return reading


# ---------------------------------------------------------------------------------------------------------
# The tuned roadmap (the roadmap chapter)
# ---------------------------------------------------------------------------------------------------------
def tuned_roadmap(prescribed: list[dict[str, Any]], baselines: dict[str, Any] | None, profile: str
                  ) -> dict[str, Any] | None:
    """Every config at its best sweep cell (the stored sweeps' tuned runs, relabelled "Config X"), judged and
    compared with Table 2 by the same rules as the prescribed runs. None when no config has tuned runs stored."""
    from . import baselines as bl
    from .comparisons import roadmap_verdicts

    runs, recipes_used, missing = [], {}, []
    for config in "ABCDE":
        found = recipes.stored_sweep(f"config_{config.lower()}", profile)
        tuned = (found or {}).get("metrics", {}).get("tuned") or []
        seeds = sorted({r["seed"] for r in prescribed if r["label"] == f"Config {config}"})
        if not tuned or sorted(r["seed"] for r in tuned) != seeds:
            missing.append(config)
            continue
        recipes_used[config] = found["metrics"]["judgement"]["best"]
        runs += [{**r, "label": f"Config {config}"} for r in tuned]
    if not runs or baselines is None:
        return None
    judgement = bl.judge(runs, baselines)
    return {"runs": runs, "recipes": recipes_used, "missing": missing, "judgement": judgement,
            "verdicts": roadmap_verdicts(runs, judgement)}


def tuned_rows(prescribed: list[dict[str, Any]], prescribed_states: dict[str, str], tuned: dict[str, Any]):
    """Two rows per config (prescribed, tuned) with their states, then the baselines: chapter.results_table."""
    from .chapter import results_table

    rows, states = [], {}
    for kind, runs, st in (("prescribed", prescribed, prescribed_states),
                           ("tuned", tuned["runs"], tuned["judgement"]["states"])):
        for r in runs:
            key = f"{r['run']}@{kind}"
            rows.append({**r, "label": f"{r['label']}, {kind}", "run": key})
            states[key] = st[r["run"]]
    order = sorted(rows, key=lambda r: (r["label"].split(",")[0], r["label"]))
    return results_table(order, None, states)


def _word(line: str) -> str:
    return line.split(":", 1)[0]


def tuned_reading(prescribed_verdicts: list[str], tuned: dict[str, Any],
                  prescribed_states: dict[str, str]) -> list[str]:
    """The reading of the tuned roadmap, by rule from the two sets of verdicts: the rank agreement of each, each
    paper step's verdict word under both recipes, and whether Config A's degrading was its recipe."""
    out = []
    rho = [line for line in prescribed_verdicts if line.startswith("Our order")]
    rho_t = [line for line in tuned["verdicts"] if line.startswith("Our order")]
    if rho and rho_t:
        out.append(f"Prescribed recipes: {rho[0]} Tuned recipes: {rho_t[0]}")
    from .comparisons import ROADMAP_STEPS

    for claim in (step[2] for step in ROADMAP_STEPS):
        a = next((line for line in prescribed_verdicts if f": {claim}:" in line), None)
        b = next((line for line in tuned["verdicts"] if f": {claim}:" in line), None)
        if a and b:
            out.append(f"'{claim[0].upper() + claim[1:]}' reads {_word(a)} under the prescribed recipes and "
                       f"{_word(b)} under the tuned ones.")
    a_pres = [s for run, s in prescribed_states.items() if run.startswith("config_a_")]
    a_tuned = [tuned["judgement"]["states"][r["run"]] for r in tuned["runs"] if r["label"] == "Config A"]
    if a_pres and a_tuned and "degrading" in a_pres:
        fixed = "degrading" not in a_tuned and "did not train" not in a_tuned
        out.append(f"Config A degrades in {a_pres.count('degrading')}/{len(a_pres)} seeds at its prescribed recipe "
                   f"and at its best cell ({tuned['recipes'].get('A')}) is " +
                   ", ".join(f"{s} {a_tuned.count(s)}/{len(a_tuned)}" for s in dict.fromkeys(a_tuned)) +
                   (": its collapse was the recipe." if fixed else
                    ": no cell of its grid removes the collapse, so it is not the recipe alone."))
    if tuned["missing"]:
        out.append(f"No tuned runs are stored yet for Config {', '.join(tuned['missing'])}: the tuned order and "
                   "verdicts above cover the others only.")
    return out


def show_tuned_roadmap(prescribed: list[dict[str, Any]], judgement: dict[str, Any] | None,
                       prescribed_verdicts: list[str], baselines: dict[str, Any] | None, profile: str
                       ) -> dict[str, Any] | None:
    """The roadmap chapter's tuned section: the two-row table, the tuned verdicts and the reading (printed)."""
    from IPython.display import display

    from . import tables
    from .chapter import print_reading

    tuned = tuned_roadmap(prescribed, baselines, profile)
    if tuned is None or judgement is None:
        print(f"No config has tuned runs stored for the {profile} profile yet (`python ci/run_recipes.py --config X "
              "--phase tuned --publish` after its sweep).")
        return None
    print("Best cells: " + "; ".join(f"Config {c}: {label}" for c, label in tuned["recipes"].items()))
    display(tables.show(tuned_rows(prescribed, judgement["states"], tuned),
                        columns=("label", "state", "fd_digits", "modes_confident", "precision_digits",
                                 "recall_digits")))
    for line in tuned["verdicts"]:
        print("-", line)
    tuned["reading"] = tuned_reading(prescribed_verdicts, tuned, judgement["states"])
    print_reading(tuned["reading"])
    return tuned
