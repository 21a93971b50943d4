"""Explorables: interactive views that work in the rendered book, offline, with no kernel.

Each explorable is a Bokeh layout whose every number is computed here, by the library, when the chapter runs:
the page holds a table of precomputed states and a few lines of JavaScript that only *look up* the state the
controls name (no maths in the page). BokehJS ships inside the bokeh package and `sphinx_bokeh` serves one copy
of it from the build, on the pages that need it.

    from r3gan_core.book import explorables
    explorables.show(explorables.dirac_explorable(settings), "dirac", settings)

`ci/check_book.py` moves each explorable's controls in Chromium, reads the drawn data back from the page and
compares it with what the library computes for that setting (`expected`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

MARKER = "r3gan-explorable"  # the class of the <div> around every explorable; sphinx_bokeh loads BokehJS for it
LIM = 3.0  # the phase portrait's window, [-LIM, LIM]^2
CLIP = 1e3  # paths are clipped to +-CLIP (a diverging path would otherwise store inf / nan)

# Bokeh's figure defaults (13 px axis labels, 11 px ticks) read well; the layout fits a 760-pixel text column.
PLOT_SIZE = 370


def _bokeh():
    try:
        import bokeh  # noqa: F401
    except ImportError as err:  # the book extra installs it; a plain library install does not need it
        raise ImportError("explorables need bokeh (pip install -e '.[book]')") from err
    import bokeh.layouts as layouts
    import bokeh.models as models
    import bokeh.plotting as plotting

    return layouts, models, plotting


def label(value: float) -> str:
    """The text a slider shows for a grid value (also the key the page looks it up by)."""
    return f"{value:g}"


def state_key(*parts: Any) -> str:
    return "|".join(label(p) if isinstance(p, float) else str(p) for p in parts)


# ----------------------------------------------------------------------------------------------------------
# Dirac-GAN: penalty, gamma, h and the update scheme over the trajectory, the eigenvalues and the step map

def dirac_table(settings: dict[str, Any]) -> dict[str, Any]:
    """Every state of the Dirac-GAN explorable, computed by the library.

    settings: gammas, hs (the controls' grids), steps, start, loss, arrows (per axis), radius_hs (the x axis of
    the spectral-radius curve). Keys are state_key(penalty, gamma, h, scheme) for paths, (penalty, gamma) for
    eigenvalues and arrows, (penalty, gamma, scheme) for the spectral-radius curve.
    """
    from ..convergence import dirac, lazy

    loss, steps, start = settings["loss"], int(settings["steps"]), tuple(settings["start"])
    gammas, hs = [float(g) for g in settings["gammas"]], [float(h) for h in settings["hs"]]
    radius_hs = np.geomspace(min(hs) / 2, max(hs) * 1.5, int(settings.get("radius_points", 80)))
    paths, readouts, rhos, eigs, arrows, curves = {}, {}, {}, {}, {}, {}
    for penalty in dirac.PENALTIES:
        for gamma in gammas:
            lam = dirac.equilibrium_eigenvalues(loss, penalty, gamma)
            eigs[state_key(penalty, gamma)] = lam
            theta, psi, u, v = dirac.field_on_grid(loss, penalty, gamma, lim=LIM, n=int(settings["arrows"]))
            arrows[state_key(penalty, gamma)] = arrow_segments(theta, psi, u, v, 2 * LIM / (settings["arrows"] - 1))
            for scheme in dirac.SCHEMES:
                batch = dirac.simulate_step_sizes(loss, penalty, gamma, hs, steps, start, scheme)
                curves[state_key(penalty, gamma, scheme)] = np.array(
                    [lazy.spectral_radius(lazy.step_jacobian(penalty, gamma, float(h), scheme)) for h in radius_hs])
                for h, path in zip(hs, batch):
                    key = state_key(penalty, gamma, h, scheme)
                    paths[key] = np.clip(np.nan_to_num(path, nan=CLIP, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)
                    rho = rhos[key] = lazy.spectral_radius(lazy.step_jacobian(penalty, gamma, h, scheme))
                    readouts[key] = dirac_readout(penalty, gamma, h, scheme, rho, path, steps)
    return {"paths": paths, "readouts": readouts, "rhos": rhos, "eigs": eigs, "arrows": arrows, "curves": curves,
            "radius_hs": radius_hs, "settings": {**settings, "gammas": gammas, "hs": hs}}


def arrow_segments(theta, psi, u, v, spacing: float) -> np.ndarray:
    """Unit-direction arrows of v at 0.35 spacing either side of each grid point: [n*n, 4] (x0, y0, x1, y1)."""
    speed = np.hypot(u, v) + 1e-12
    du, dv = 0.35 * spacing * u / speed, 0.35 * spacing * v / speed
    return np.stack([(theta - du).ravel(), (psi - dv).ravel(), (theta + du).ravel(), (psi + dv).ravel()], axis=1)


def dirac_readout(penalty: str, gamma: float, h: float, scheme: str, rho: float, path: np.ndarray,
                  steps: int) -> str:
    """The sentence under the Dirac explorable for one state, from its numbers: the step map's spectral radius
    decides local convergence (< 1 converges, 1 cycles, > 1 spirals out), the path's end says what happened."""
    end = float(np.hypot(*path[-1])) if np.all(np.isfinite(path[-1])) else float("inf")
    local = ("converges locally" if rho < 1 - 1e-9 else "neither converges nor diverges locally (it cycles)"
             if abs(rho - 1) <= 1e-9 else "diverges locally")
    start = float(np.hypot(*path[0]))
    ending = ("overflowed" if not np.isfinite(end) else f"is {end:.3g} from the equilibrium (it started {start:.3g})")
    gamma_text = "" if penalty == "none" else f", gamma = {gamma:g}"
    return (f"{penalty}{gamma_text}, h = {h:g}, {scheme}: the step map's spectral radius at (0, 0) is {rho:.4f}, "
            f"so it {local}; after {steps} steps the path {ending}.")


def dirac_explorable(settings: dict[str, Any]):
    """The Dirac-GAN explorable: controls for penalty, gamma, h and the update scheme; views of the trajectory
    over the vector field, the eigenvalues with the stability disc |1 + h lambda| < 1, and the step map's
    spectral radius against h."""
    layouts, models, plotting = _bokeh()
    from ..convergence import dirac

    table = dirac_table(settings)
    gammas, hs = table["settings"]["gammas"], table["settings"]["hs"]
    p0, g0, h0, s0 = settings.get("initial", ("r1", 1.0, 0.2, "simultaneous"))
    g0, h0 = nearest(gammas, float(g0)), nearest(hs, float(h0))
    key0, pg0 = state_key(p0, g0, h0, s0), state_key(p0, g0)
    # The states, in column stores (sent to the page as binary arrays): paths, arrows, spectral-radius curves.
    paths, path_alias = columns_store({f"{k}|{axis}": p[:, i] for k, p in table["paths"].items()
                                       for i, axis in enumerate("xy")}, "dirac:path_table")
    arrows, arrow_alias = columns_store({f"{k}|{c}": a[:, i] for k, a in table["arrows"].items()
                                         for i, c in enumerate(("x0", "y0", "x1", "y1"))}, "dirac:arrow_table")
    curves, curve_alias = columns_store(table["curves"], "dirac:curve_table")
    traj = models.ColumnDataSource({axis: paths.data[path_alias[f"{key0}|{axis}"]] for axis in "xy"},
                                   name="dirac:trajectory")
    seg = models.ColumnDataSource({c: arrows.data[arrow_alias[f"{pg0}|{c}"]] for c in ("x0", "y0", "x1", "y1")},
                                  name="dirac:arrows")
    eig = models.ColumnDataSource({"x": table["eigs"][pg0].real, "y": table["eigs"][pg0].imag},
                                  name="dirac:eigenvalues")
    disc = models.ColumnDataSource({"x": [-1 / h0], "y": [0.0], "r": [1 / h0]}, name="dirac:disc")
    curve = models.ColumnDataSource({"x": table["radius_hs"], "y": curves.data[curve_alias[state_key(p0, g0, s0)]]},
                                    name="dirac:radius_curve")
    now = models.ColumnDataSource({"x": [h0], "y": [table["rhos"][key0]]}, name="dirac:radius_now")

    phase = plotting.figure(width=PLOT_SIZE, height=PLOT_SIZE, x_range=(-LIM, LIM), y_range=(-LIM, LIM),
                            match_aspect=True, title="trajectory over the vector field", tools="pan,wheel_zoom,reset",
                            x_axis_label="theta (generator)", y_axis_label="psi (discriminator)")
    phase.segment("x0", "y0", "x1", "y1", source=seg, color="#999999", line_width=1)
    phase.scatter("x1", "y1", source=seg, size=3, color="#777777")  # the head: which way the field points
    phase.line("x", "y", source=traj, color="#c0392b", line_width=2)
    phase.scatter([settings["start"][0]], [settings["start"][1]], marker="star", size=12, color="black")
    phase.scatter([0], [0], marker="cross", size=12, color="black")

    # Wide enough for every eigenvalue on the gamma grid (R1 + R2 at gamma 3 puts one near -6), equal axes.
    reach = max(1.0, max(float(np.abs(e.real).max()) for e in table["eigs"].values()) * 1.1)
    plane = plotting.figure(width=PLOT_SIZE, height=PLOT_SIZE, x_range=(-reach, 0.6), y_range=(-reach / 2, reach / 2),
                            match_aspect=True, title="eigenvalues and the disc |1 + h lambda| < 1",
                            tools="pan,wheel_zoom,reset", x_axis_label="Re lambda", y_axis_label="Im lambda")
    plane.circle("x", "y", radius="r", source=disc, fill_color="#27ae60", fill_alpha=0.2, line_color="#27ae60")
    plane.scatter("x", "y", source=eig, size=10, color="#c0392b")
    for dimension in ("height", "width"):
        plane.add_layout(models.Span(location=0, dimension=dimension, line_color="#555555", line_width=1))

    radius = plotting.figure(width=PLOT_SIZE, height=PLOT_SIZE, x_axis_type="log", y_range=(0, 2),
                             title="step map's spectral radius (below 1: converges)", tools="pan,wheel_zoom,reset",
                             x_axis_label="step size h", y_axis_label="spectral radius at (0, 0)")
    radius.xaxis.ticker = models.FixedTicker(ticks=hs)  # the step sizes the slider offers
    radius.line("x", "y", source=curve, color="#2c3e50", line_width=2)
    radius.scatter("x", "y", source=now, size=10, color="#c0392b")
    radius.add_layout(models.Span(location=1, dimension="width", line_color="#27ae60", line_dash="dashed"))

    penalty = models.Select(title="penalty", value=p0, options=list(dirac.PENALTIES), name="dirac:penalty",
                            width=170)
    gamma = models.CategoricalSlider(title="gamma", categories=[label(g) for g in gammas], value=label(g0),
                                     name="dirac:gamma", width=190)
    step = models.CategoricalSlider(title="step size h", categories=[label(h) for h in hs], value=label(h0),
                                    name="dirac:h", width=190)
    scheme = models.RadioButtonGroup(labels=list(dirac.SCHEMES), active=list(dirac.SCHEMES).index(s0),
                                     name="dirac:scheme", width=190)
    readout = models.Div(text=html.escape(table["readouts"][key0]), name="dirac:readout", width=2 * PLOT_SIZE)
    lookups = {"eigs": {k: [v.real.tolist(), v.imag.tolist()] for k, v in table["eigs"].items()},
               "paths": path_alias, "arrows": arrow_alias, "curves": curve_alias,
               "rhos": table["rhos"], "readouts": {k: html.escape(v) for k, v in table["readouts"].items()}}
    callback = models.CustomJS(args=dict(paths=paths, arrows=arrows, curves=curves, traj=traj, seg=seg, eig=eig,
                                         disc=disc, curve=curve, now=now, penalty=penalty, gamma=gamma, step=step,
                                         scheme=scheme, readout=readout, lookups=lookups), code=DIRAC_JS)
    for control, prop in ((penalty, "value"), (gamma, "value"), (step, "value"), (scheme, "active")):
        control.js_on_change(prop, callback)
    controls = layouts.column(penalty, gamma, step, scheme, width=2 * PLOT_SIZE - PLOT_SIZE)
    return layouts.column(layouts.row(controls, phase), layouts.row(plane, radius), readout)


def columns_store(columns: dict[str, np.ndarray], name: str, images: bool = False):
    """A ColumnDataSource holding `columns` as float32, each distinct column once; with `images`, each column holds
    one 2D array (an image glyph's), else every column is a 1D array of one length.

    Returns the source and the alias map key -> stored column (states that coincide, e.g. R1 and R2 on the Dirac
    game, or no penalty at every gamma, share one column); the page looks a key up through the map."""
    _, models, _ = _bokeh()
    stored: dict[bytes, str] = {}
    data, alias = {}, {}
    for key, values in columns.items():
        values = np.asarray(values, dtype=np.float32)
        column = stored.setdefault(values.tobytes(), f"c{len(stored)}")
        data.setdefault(column, [values] if images else values)
        alias[key] = column
    return models.ColumnDataSource(data, name=name), alias


# Look-up only: the page shows the precomputed state the controls name.
DIRAC_JS = """
const scheme_name = scheme.labels[scheme.active];
const key = [penalty.value, gamma.value, step.value, scheme_name].join('|');
const pg = [penalty.value, gamma.value].join('|');
const column = (store, alias, k) => store.data[alias[k]];
traj.data = {x: column(paths, lookups.paths, key + '|x'), y: column(paths, lookups.paths, key + '|y')};
const a = c => column(arrows, lookups.arrows, pg + '|' + c);
seg.data = {x0: a('x0'), y0: a('y0'), x1: a('x1'), y1: a('y1')};
const e = lookups.eigs[pg];
eig.data = {x: e[0], y: e[1]};
const h = parseFloat(step.value);
disc.data = {x: [-1 / h], y: [0], r: [1 / h]};
curve.data = {x: curve.data.x, y: column(curves, lookups.curves, [penalty.value, gamma.value, scheme_name].join('|'))};
now.data = {x: [h], y: [lookups.rhos[key]]};
readout.text = lookups.readouts[key];
"""


def dirac_expected(settings: dict[str, Any], penalty: str, gamma: float, h: float, scheme: str) -> dict[str, Any]:
    """What the library computes for one setting of the Dirac explorable, independently of its table: the path by
    `dirac.simulate`, the eigenvalues by autograd, the step map's spectral radius from `lazy.step_jacobian`."""
    from ..convergence import dirac, lazy

    path = dirac.simulate(settings["loss"], penalty, gamma, h, int(settings["steps"]), tuple(settings["start"]), scheme)
    path = np.clip(np.nan_to_num(path, nan=CLIP, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)
    return {"trajectory": path, "eigenvalues": dirac.equilibrium_eigenvalues(settings["loss"], penalty, gamma),
            "disc": (-1 / h, 1 / h),
            "spectral_radius": lazy.spectral_radius(lazy.step_jacobian(penalty, gamma, h, scheme))}


# ----------------------------------------------------------------------------------------------------------
# 2D toys: a slider over training steps for each dataset x loss x penalty (G's points over the data, D's logits)

def toy_state(run, step: int):
    """The snapshot a toy run shows at `step`: the last one taken at or before it (a diverged run stops early)."""
    kept = [s for s in run.snapshots if s.step <= step]
    return kept[-1] if kept else run.snapshots[0]


def standardised(logits: np.ndarray) -> np.ndarray:
    """D's logits minus their mean over the window, over their sd: only differences matter to RpGAN's D, and the
    colour scale stays readable from step 0 to the end."""
    logits = np.nan_to_num(np.asarray(logits, dtype=float), nan=0.0, posinf=CLIP, neginf=-CLIP)
    return np.clip((logits - logits.mean()) / (logits.std() + 1e-12), -3, 3)


def toy_readout(run, step: int) -> str:
    """The sentence under the toy explorable: where the run is and what its fixed-z points cover (toy.mode_metrics)."""
    from ..convergence import toy

    import torch

    snap = toy_state(run, step)
    m = toy.mode_metrics(torch.as_tensor(snap.points), run.config.dataset)
    cfg = run.config
    head = f"{cfg.dataset}, {cfg.loss} + {cfg.penalty}, seed {cfg.seed}, step {snap.step} of {cfg.steps}"
    if run.status == "fail" and step >= (run.fail_step or 0):
        head += f" (the run diverged at step {run.fail_step}: its last snapshot)"
    return (f"{head}: its {len(snap.points)} fixed-z points cover {m.modes} of {m.num_modes} modes, "
            f"{100 * m.high_quality:.0f}% of them within 3 std of a mode.")


def toy_explorable(results: dict, settings: dict[str, Any]):
    """The toys explorable: dataset, loss and penalty selects and a slider over training steps; one view of G's
    fixed-z points (blue) over the true means (red) and D's standardised logits (colour), seed `settings['seed']`."""
    layouts, models, plotting = _bokeh()
    from ..convergence import toy

    seed, steps = int(settings["seed"]), [int(s) for s in settings["steps"]]
    keys = [k for k in results if k[3] == seed]
    datasets, losses, penalties = (list(dict.fromkeys(k[i] for k in keys)) for i in range(3))
    point_cols, image_cols, readouts = {}, {}, {}
    for dataset, loss, penalty, _ in keys:
        run = results[(dataset, loss, penalty, seed)]
        for step in steps:
            key, snap = state_key(dataset, loss, penalty, step), toy_state(run, step)
            point_cols[f"{key}|x"], point_cols[f"{key}|y"] = snap.points[:, 0], snap.points[:, 1]
            image_cols[key] = standardised(snap.logits)
            readouts[key] = html.escape(toy_readout(run, step))
    points, point_alias = columns_store(point_cols, "toy:point_table")
    images, image_alias = columns_store(image_cols, "toy:image_table", images=True)
    means = {d: toy.mixture(d)[0].numpy() for d in datasets}
    lims = {d: toy.plot_limit(d) for d in datasets}
    d0, l0, p0, s0 = datasets[0], losses[-1], penalties[-1], steps[-1]
    key0 = state_key(d0, l0, p0, s0)
    pts = models.ColumnDataSource({a: points.data[point_alias[f"{key0}|{a}"]] for a in "xy"}, name="toy:points")
    img = models.ColumnDataSource({"image": images.data[image_alias[key0]], "x": [-lims[d0]], "y": [-lims[d0]],
                                   "dw": [2 * lims[d0]], "dh": [2 * lims[d0]]}, name="toy:logits")
    mus = models.ColumnDataSource({"x": means[d0][:, 0], "y": means[d0][:, 1]}, name="toy:means")
    view = plotting.figure(width=2 * PLOT_SIZE - 140, height=2 * PLOT_SIZE - 140, match_aspect=True,
                           x_range=models.Range1d(-lims[d0], lims[d0], name="toy:x_range"),
                           y_range=models.Range1d(-lims[d0], lims[d0], name="toy:y_range"),
                           title="G's points (blue) over the true means (red); colour: D's standardised logit",
                           tools="pan,wheel_zoom,reset")
    from bokeh.palettes import RdBu11

    mapper = models.LinearColorMapper(palette=RdBu11, low=-3, high=3)  # bokeh's RdBu11 starts blue: low blue, high red
    view.image(image="image", x="x", y="y", dw="dw", dh="dh", source=img, color_mapper=mapper, alpha=0.55)
    view.scatter("x", "y", source=pts, size=5, color="#1f4e99", alpha=0.8)
    view.scatter("x", "y", source=mus, marker="x", size=12, color="#c0392b", line_width=2)
    view.add_layout(models.ColorBar(color_mapper=mapper, width=10, title="D (sd)"), "right")
    controls = [models.Select(title="dataset", value=d0, options=datasets, name="toy:dataset", width=130),
                models.Select(title="loss", value=l0, options=losses, name="toy:loss", width=130),
                models.Select(title="penalty", value=p0, options=penalties, name="toy:penalty", width=130),
                models.CategoricalSlider(title="training step", categories=[str(s) for s in steps], value=str(s0),
                                         name="toy:step", width=130)]
    readout = models.Div(text=readouts[key0], name="toy:readout", width=2 * PLOT_SIZE)
    lookups = {"points": point_alias, "images": image_alias, "readouts": readouts,
               "means": {d: [m[:, 0].tolist(), m[:, 1].tolist()] for d, m in means.items()}, "lims": lims}
    callback = models.CustomJS(args=dict(points=points, images=images, pts=pts, img=img, mus=mus, readout=readout,
                                         x_range=view.x_range, y_range=view.y_range, controls=controls,
                                         lookups=lookups), code=TOY_JS)
    for control in controls:
        control.js_on_change("value", callback)
    return layouts.column(layouts.row(layouts.column(*controls), view), readout)


TOY_JS = """
const [dataset, loss, penalty, step] = controls.map(c => c.value);
const key = [dataset, loss, penalty, step].join('|');
pts.data = {x: points.data[lookups.points[key + '|x']], y: points.data[lookups.points[key + '|y']]};
const lim = lookups.lims[dataset];
img.data = {image: images.data[lookups.images[key]], x: [-lim], y: [-lim], dw: [2 * lim], dh: [2 * lim]};
mus.data = {x: lookups.means[dataset][0], y: lookups.means[dataset][1]};
x_range.setv({start: -lim, end: lim});
y_range.setv({start: -lim, end: lim});
readout.text = lookups.readouts[key];
"""


def toy_settings(base, seed: int) -> dict[str, Any]:
    """What the toy explorable and its browser check need: the run's config (to train it again) and the steps."""
    from dataclasses import asdict

    cfg = asdict(base)
    steps = sorted({0, *range(base.snapshot_every, base.steps + 1, base.snapshot_every), base.steps})
    return {"config": cfg, "seed": seed, "steps": steps}


def toy_expected(settings: dict[str, Any], dataset: str, loss: str, penalty: str, step: int) -> dict[str, Any]:
    """The run trained again by `toy.train_toy` (one thread, as the chapter trains): its snapshot at `step`."""
    import torch

    from ..convergence import toy

    cfg = toy.ToyConfig(**{**settings["config"], "betas": tuple(settings["config"]["betas"]), "dataset": dataset,
                           "loss": loss, "penalty": penalty, "seed": int(settings["seed"])})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = toy.train_toy(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    snap = toy_state(run, step)
    return {"points": snap.points, "logits": standardised(snap.logits), "means": toy.mixture(dataset)[0].numpy()}


# ----------------------------------------------------------------------------------------------------------
# Lazy regularisation on the Dirac-GAN: the interval k and the step size h over the stability map

def lazy_settings(study: dict[str, Any], hs: Sequence[float], ks: Sequence[int], periods: int) -> dict[str, Any]:
    """The lazy explorable's grid: the study's penalty and gamma, the controls' h and k, the periods simulated."""
    return {"penalty": study["penalty"], "gamma": float(study["gamma"]), "hs": [float(h) for h in hs],
            "ks": [int(k) for k in ks], "periods": int(periods), "start": [1e-3, 1e-3], "loss": "gan"}


def lazy_expected(settings: dict[str, Any], h: float, k: int, scheme: str) -> dict[str, Any]:
    """The library's answer for one setting: |x| after each period (`lazy.simulate_lazy`) and the per-step rate."""
    from ..convergence import lazy

    path = lazy.simulate_lazy(settings["loss"], settings["penalty"], settings["gamma"], h, settings["periods"], k,
                              start=tuple(settings["start"]), scheme=scheme)
    distance = np.clip(np.nan_to_num(np.hypot(path[:, 0], path[:, 1]), nan=CLIP, posinf=CLIP), 1e-30, CLIP)
    return {"steps": k * np.arange(len(distance)), "distance": distance,
            "rate": lazy.per_step_rate(settings["penalty"], settings["gamma"], h, k, scheme),
            "largest": lazy.largest_stable_interval(settings["penalty"], settings["gamma"], h, scheme)}


def cell_centres_and_widths(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid values and the widths of cells that meet halfway between neighbours (the end cells mirror their
    neighbour's half width)."""
    centres = np.asarray(centres, dtype=float)
    if len(centres) == 1:
        return centres, np.ones(1)
    edges = np.concatenate([[centres[0] - (centres[1] - centres[0]) / 2], (centres[1:] + centres[:-1]) / 2,
                            [centres[-1] + (centres[-1] - centres[-2]) / 2]])
    return centres, np.diff(edges)


def lazy_readout(settings: dict[str, Any], h: float, k: int, scheme: str, want: dict[str, Any]) -> str:
    from ..convergence import lazy

    verdict = "converges locally" if want["rate"] < 1 else "does not converge locally"
    bound = lazy.interval_bound(settings["penalty"], settings["gamma"], h)
    return (f"{settings['penalty'].upper()} at gamma = {settings['gamma']:g} every k = {k} steps, h = {h:g}, "
            f"{scheme}: the per-step rate rho(period)^(1/k) is {want['rate']:.4f}, so it {verdict}. At this h the "
            f"largest stable interval is {want['largest']} (closed-form bound 1/(hc) = {bound:.3g}).")


def lazy_explorable(study: dict[str, Any], settings: dict[str, Any]):
    """Controls for k, h and the scheme; views of the study's per-step-rate map with the chosen point, and the
    distance to the equilibrium after each period of a simulated run from near it."""
    layouts, models, plotting = _bokeh()
    from ..convergence import dirac

    hs, ks = settings["hs"], settings["ks"]
    dist_cols, step_cols, texts = {}, {}, {}
    for scheme in dirac.SCHEMES:
        for h in hs:
            for k in ks:
                key, want = state_key(scheme, h, k), lazy_expected(settings, h, k, scheme)
                dist_cols[key], step_cols[key] = want["distance"], want["steps"]
                texts[key] = html.escape(lazy_readout(settings, h, k, scheme, want))
    dists, dist_alias = columns_store(dist_cols, "lazy:distance_table")
    steps, step_alias = columns_store(step_cols, "lazy:step_table")
    s0, h0, k0 = "simultaneous", nearest(hs, 0.1), nearest(ks, 8)
    key0 = state_key(s0, h0, k0)
    run = models.ColumnDataSource({"x": steps.data[step_alias[key0]], "y": dists.data[dist_alias[key0]]},
                                  name="lazy:run")
    point = models.ColumnDataSource({"x": [np.log10(h0)], "y": [k0]}, name="lazy:point")
    # The study's map as one rectangle per (h, k) cell (its grid need not be evenly spaced), one renderer per scheme.
    x, w = cell_centres_and_widths(np.log10(study["hs"]))
    y, hgt = cell_centres_and_widths(np.asarray(study["ks"], dtype=float))
    cx, cy = np.meshgrid(x, y)
    cw, ch = np.meshgrid(w, hgt)
    heat_view = plotting.figure(width=PLOT_SIZE, height=PLOT_SIZE, title="per-step rate (blue < 1: converges)",
                                x_range=(float((x - w / 2).min()), float((x + w / 2).max())),
                                y_range=(float((y - hgt / 2).min()), float((y + hgt / 2).max())),
                                x_axis_label="log10 of the step size h", y_axis_label="penalty interval k",
                                tools="pan,wheel_zoom,reset")
    from bokeh.palettes import RdBu11

    mapper = models.LinearColorMapper(palette=RdBu11, low=0.9, high=1.1)  # red above 1 (diverges), blue below
    cells = {}
    for sc in dirac.SCHEMES:
        rate = np.clip(np.asarray(study["grids"][sc], dtype=float), 0.9, 1.1)  # [k][h], as the study stores it
        source = models.ColumnDataSource({"x": cx.ravel(), "y": cy.ravel(), "w": cw.ravel(), "h": ch.ravel(),
                                          "rate": rate.ravel()}, name=f"lazy:map_{sc}")
        cells[sc] = heat_view.rect("x", "y", "w", "h", source=source, line_color=None,
                                   fill_color={"field": "rate", "transform": mapper}, visible=sc == s0)
    heat_view.scatter("x", "y", source=point, marker="circle_x", size=14, fill_color="white", line_color="black")
    heat_view.add_layout(models.ColorBar(color_mapper=mapper, width=10), "right")
    run_view = plotting.figure(width=PLOT_SIZE, height=PLOT_SIZE, y_axis_type="log", tools="pan,wheel_zoom,reset",
                               title="distance to (0, 0) after each period", x_axis_label="step",
                               y_axis_label="distance to the equilibrium")
    run_view.line("x", "y", source=run, line_width=2, color="#2c3e50")
    run_view.scatter("x", "y", source=run, size=4, color="#2c3e50")
    scheme = models.RadioButtonGroup(labels=list(dirac.SCHEMES), active=0, name="lazy:scheme", width=220)
    step = models.CategoricalSlider(title="step size h", categories=[label(h) for h in hs], value=label(h0),
                                    name="lazy:h", width=220)
    interval = models.CategoricalSlider(title="penalty interval k", categories=[str(k) for k in ks], value=str(k0),
                                        name="lazy:k", width=220)
    readout = models.Div(text=texts[key0], name="lazy:readout", width=2 * PLOT_SIZE)
    callback = models.CustomJS(args=dict(dists=dists, steps=steps, run=run, point=point, cells=cells,
                                         scheme=scheme, step=step, interval=interval, readout=readout,
                                         lookups={"dists": dist_alias, "steps": step_alias, "texts": texts}),
                               code=LAZY_JS)
    for control, prop in ((scheme, "active"), (step, "value"), (interval, "value")):
        control.js_on_change(prop, callback)
    return layouts.column(layouts.row(scheme, step, interval), layouts.row(heat_view, run_view), readout)


LAZY_JS = """
const name = scheme.labels[scheme.active];
const key = [name, step.value, interval.value].join('|');
run.data = {x: steps.data[lookups.steps[key]], y: dists.data[lookups.dists[key]]};
point.data = {x: [Math.log10(parseFloat(step.value))], y: [parseInt(interval.value)]};
for (const [which, renderer] of Object.entries(cells)) renderer.visible = which === name;
readout.text = lookups.texts[key];
"""


# ----------------------------------------------------------------------------------------------------------
# Image chapters: a run (or config) toggle and a slider over images seen, on the stored curves and final grids

RUN_METRICS = ("fd_digits", "modes_confident", "recall_digits")


def runs_digest(records: list[dict[str, Any]], metrics: Sequence[str] = RUN_METRICS) -> list[dict[str, Any]]:
    """What the runs explorable shows of each run: label, seed, status and every evaluation's images seen and
    metrics (the stored records' own numbers)."""
    return [{"label": r["label"], "seed": r["seed"], "status": r["status"],
             "evaluations": [{"images_seen": int(e["images_seen"]), **{m: e.get(m) for m in metrics}}
                             for e in r.get("evaluations", [])]} for r in records]


def label_curves(digest: list[dict[str, Any]], metrics: Sequence[str] = RUN_METRICS) -> dict[str, dict[int, dict]]:
    """label -> images seen -> {metric: (mean, sd, n)} over the runs of that label that reached that point (a
    diverged run counts until it stopped); sd is the sample sd (0 for one run)."""
    out: dict[str, dict[int, dict]] = {}
    for run in digest:
        for e in run["evaluations"]:
            cell = out.setdefault(run["label"], {}).setdefault(e["images_seen"], {m: [] for m in metrics})
            for m in metrics:
                value = e.get(m)
                if value is not None and np.isfinite(float(value)):
                    cell[m].append(float(value))
    return {label: {point: {m: (float(np.mean(v)) if v else float("nan"),
                                float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for m, v in cell.items()}
                    for point, cell in sorted(points.items())} for label, points in out.items()}


def images_label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else (f"{n / 1e3:g}k" if n >= 1e3 else str(n))


def runs_readout(label: str, point: int, stats: dict[str, tuple[float, float, int]], baselines: dict | None) -> str:
    from .readings import METRIC_NAMES, number

    parts = [f"{METRIC_NAMES.get(m, m)} {number(mean)} ± {number(sd)}" for m, (mean, sd, _) in stats.items()]
    n = max(count for _, _, count in stats.values())
    text = f"{label} at {images_label(point)} images seen ({n} seed{'s' if n != 1 else ''}): " + ", ".join(parts)
    if baselines:
        ref = ", ".join(f"{METRIC_NAMES.get(m, m)} untrained {number(baselines['untrained'][m])}, real "
                        f"{number(baselines['real'][m])}" for m in stats if m in baselines.get("real", {}))
        text += f". Baselines: {ref}"
    return text + "."


def baseline_levels(baselines: dict[str, Any] | None, metrics: Sequence[str]) -> dict[str, dict[str, float]] | None:
    """Mean untrained and real-data values per metric (baselines.evaluate_baselines' entries), for the lines."""
    if not baselines:
        return None
    from .baselines import number

    def mean(entries, m):
        values = [number(e[m]) for e in entries if m in e]
        return float(np.nanmean(values)) if values else float("nan")

    real = baselines["real"] if isinstance(baselines["real"], list) else [baselines["real"]]
    return {"untrained": {m: mean(baselines["untrained"], m) for m in metrics}, "real": {m: mean(real, m)
                                                                                       for m in metrics}}


def rgba(image: np.ndarray) -> np.ndarray:
    """An H x W (x 3) array in [0, 1] as Bokeh's image_rgba wants it: uint32, flipped so row 0 is the top."""
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
    out = np.empty(rgb.shape[:2], dtype=np.uint32)
    view = out.view(dtype=np.uint8).reshape(*rgb.shape[:2], 4)
    view[..., :3] = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    view[..., 3] = 255
    return out[::-1]


def runs_explorable(chapter: str, profile: str, records: list[dict[str, Any]], grids: dict[str, Any],
                    baselines: dict | None, real=None, metrics: Sequence[str] = RUN_METRICS):
    """A label toggle and an images-seen slider over the runs' curves (mean over seeds; the chosen label bold, its
    point marked), with the label's final sample grid beside real data. Returns (layout, settings)."""
    layouts, models, plotting = _bokeh()
    from ..sampling import image_grid
    from .readings import METRIC_NAMES

    digest = runs_digest(records, metrics)
    curves = label_curves(digest, metrics)
    labels = list(curves)
    points = sorted({p for c in curves.values() for p in c})
    levels = baseline_levels(baselines, metrics)
    l0, p0 = labels[-1], points[-1]
    marks, texts, figures = {}, {}, []
    for label in labels:
        for point in points:
            stats = curves[label].get(point)
            key = state_key(label, point)
            if stats is None:  # this label's runs stopped before `point`: show its last evaluation
                stats = curves[label][max(p for p in curves[label] if p <= point) if any(
                    p <= point for p in curves[label]) else min(curves[label])]
            marks[key] = {m: stats[m][0] for m in metrics}
            texts[key] = html.escape(runs_readout(label, point, stats, levels))
    marker_sources = {}
    for m in metrics:
        fig = plotting.figure(width=250, height=230, title=METRIC_NAMES.get(m, m), tools="pan,wheel_zoom,reset",
                              x_axis_label="real images seen by D", y_axis_type="log" if m == "fd_digits" else "linear")
        fig.xaxis.formatter = models.CustomJSTickFormatter(code="return tick >= 1e6 ? (tick / 1e6) + 'M' : "
                                                                "tick >= 1e3 ? (tick / 1e3) + 'k' : tick;")
        for label in labels:
            xs = list(curves[label])
            fig.line(xs, [curves[label][x][m][0] for x in xs], line_width=3 if label == l0 else 1,
                     color="#c0392b" if label == l0 else "#95a5a6", name=f"runs:line:{m}:{label}")
        if levels:
            for which, dash in (("untrained", "dashed"), ("real", "dotted")):
                if np.isfinite(levels[which][m]):
                    fig.add_layout(models.Span(location=levels[which][m], dimension="width", line_dash=dash,
                                               line_color="#2c3e50"))
                    fig.scatter([points[0]], [levels[which][m]], alpha=0)  # keeps the level inside the range
        marker_sources[m] = models.ColumnDataSource({"x": [p0], "y": [marks[state_key(l0, p0)][m]]},
                                                    name=f"runs:mark_{m}")
        fig.scatter("x", "y", source=marker_sources[m], size=11, color="#c0392b")
        figures.append(fig)
    grid_images = {label: rgba(image_grid(grids[label][:16], nrow=4)) for label in labels
                   if grids.get(label) is not None}
    panel = plotting.figure(width=250, height=250, title="final samples (16)", tools="", x_range=(0, 1),
                            y_range=(0, 1), toolbar_location=None)
    panel.axis.visible, panel.grid.visible = False, False
    blank = np.full((2, 2), 0xFFFFFFFF, dtype=np.uint32)
    shown = models.ColumnDataSource({"image": [grid_images.get(l0, blank)]}, name="runs:grid")
    panel.image_rgba(image="image", x=0, y=0, dw=1, dh=1, source=shown)
    store, alias = columns_store({k: v for k, v in grid_images.items()}, "runs:grid_table", images=True) \
        if grid_images else (models.ColumnDataSource({}), {})
    extra = []
    if real is not None:
        real_panel = plotting.figure(width=250, height=250, title="real data (16)", tools="", x_range=(0, 1),
                                     y_range=(0, 1), toolbar_location=None)
        real_panel.axis.visible, real_panel.grid.visible = False, False
        real_panel.image_rgba(image=[rgba(image_grid(real[:16], nrow=4))], x=0, y=0, dw=1, dh=1)
        extra.append(real_panel)
    choose = models.Select(title="run", value=l0, options=labels, name="runs:label", width=250)
    slider = models.CategoricalSlider(title="real images seen by D", categories=[str(p) for p in points],
                                      value=str(p0), name="runs:images", width=250)
    readout = models.Div(text=texts[state_key(l0, p0)], name="runs:readout", width=760)
    lines = {r.name: r for f in figures for r in f.renderers if r.name and r.name.startswith("runs:line:")}
    callback = models.CustomJS(args=dict(choose=choose, slider=slider, readout=readout, marks=marker_sources,
                                         lines=lines, shown=shown, store=store, lookups={
                                             "marks": marks, "texts": texts, "grids": alias}), code=RUNS_JS)
    choose.js_on_change("value", callback)
    slider.js_on_change("value", callback)
    controls = [choose] if len(labels) > 1 else []
    pictures = ([panel] if grid_images else []) + extra
    key = models.Div(text="Curves: the mean over seeds, the chosen run in red" + (
        "; dashed line: untrained generator, dotted line: real data." if levels else "."), width=760)
    layout = layouts.column(layouts.row(*controls, slider), key, layouts.row(*figures), *(
        [layouts.row(*pictures)] if pictures else []), readout)
    return layout, {"chapter": chapter, "profile": profile, "metrics": list(metrics), "runs": digest}


RUNS_JS = """
const key = [choose.value, slider.value].join('|');
for (const [m, source] of Object.entries(marks))
  source.data = {x: [parseInt(slider.value)], y: [lookups.marks[key][m]]};
for (const [name, line] of Object.entries(lines)) {
  const mine = name.endsWith(':' + choose.value);
  line.glyph.line_width = mine ? 3 : 1;
  line.glyph.line_color = mine ? '#c0392b' : '#95a5a6';
}
const column = lookups.grids[choose.value];
if (column !== undefined) shown.data = {image: store.data[column]};
readout.text = lookups.texts[key];
"""


def runs_moves(settings: dict[str, Any]) -> list[dict[str, str]]:
    """The first label at its first evaluation, then the last label at its last."""
    labels = list(dict.fromkeys(r["label"] for r in settings["runs"]))
    points = sorted({e["images_seen"] for r in settings["runs"] for e in r["evaluations"]})
    first = {"images": str(points[0])} | ({"label": labels[0]} if len(labels) > 1 else {})
    last = {"images": str(points[-1])} | ({"label": labels[-1]} if len(labels) > 1 else {})
    return [first, last] if first != last else [first]


def runs_check(settings: dict[str, Any], controls: dict[str, str], drawn: dict[str, dict[str, list]]) -> list[str]:
    """The marked points are label_curves of the runs at that setting (and, for stored results, the digest the
    page embeds is the stored records' own numbers)."""
    problems = []
    digest = settings["runs"]
    stored = stored_digest(settings)
    if stored is not None and stored != digest:
        problems.append("the page's runs are not the stored results' runs")
    curves = label_curves(digest, settings["metrics"])
    label = controls.get("label") or next(iter(curves))  # a page with one label has no label control
    want = curves[label].get(int(controls["images"]))
    if want is None:
        return problems
    for m in settings["metrics"]:
        got = drawn.get(f"mark_{m}", {}).get("y", [None])[0]
        if got is None or not np.isclose(got, want[m][0], rtol=1e-9, equal_nan=True):
            problems.append(f"{m} at {controls}: page {got}, library {want[m][0]}")
    return problems


def stored_digest(settings: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The digest of the stored results of settings['chapter'] / settings['profile'], when the page shows them."""
    from .chapter import published_results

    if settings.get("profile") not in ("cpu", "gpu") or not settings.get("chapter"):
        return None
    record = published_results(settings["chapter"], settings["profile"])
    if record is None:
        return None
    from ..report import jsonable

    return jsonable(runs_digest(record["metrics"]["runs"], settings["metrics"]))


# ----------------------------------------------------------------------------------------------------------
# BigGAN's truncation: a model toggle and a threshold slider over the stored sweeps and the first seed's grids

TRUNCATION_SHOWN = ("precision_digits", "recall_digits", "fd_digits")


def truncation_stats(sweeps: dict[str, list[dict[str, Any]]], metrics: Sequence[str] = TRUNCATION_SHOWN
                     ) -> dict[str, dict[str, dict[str, tuple[float, float, int]]]]:
    """model -> threshold name -> {metric: (mean, sd, n)} over the seeds of the sweep rows."""
    from .biggan_study import threshold_name

    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for model, rows in sweeps.items():
        for row in rows:
            cell = out.setdefault(model, {}).setdefault(threshold_name(row["threshold"]), {m: [] for m in metrics})
            for m in metrics:
                value = row.get(m)
                if value is not None and np.isfinite(float(value)):
                    cell[m].append(float(value))
    return {model: {t: {m: (float(np.mean(v)) if v else float("nan"), float(np.std(v, ddof=1)) if len(v) > 1
                            else 0.0, len(v)) for m, v in cell.items()} for t, cell in cells.items()}
            for model, cells in out.items()}


def truncation_explorable(chapter: str, profile: str, sweeps: dict[str, list[dict[str, Any]]],
                          grids: dict[str, dict[str, Any]], baselines: dict | None):
    """The BigGAN truncation explorable; returns (layout, settings)."""
    layouts, models, plotting = _bokeh()
    from ..report import jsonable
    from ..sampling import image_grid
    from .biggan_study import rows_thresholds, threshold_name
    from .readings import METRIC_NAMES

    stats = truncation_stats(sweeps)
    names = list(stats)
    order = [threshold_name(t) for t in rows_thresholds(next(iter(sweeps.values())))]  # tightest first, none last
    levels = baseline_levels(baselines, TRUNCATION_SHOWN)
    m0, t0 = names[0], order[-1]
    texts, marks = {}, {}
    for model in names:
        for t in order:
            cell = stats[model].get(t)
            if cell is None:
                continue
            key = state_key(model, t)
            marks[key] = cell["fd_digits"][0]
            n = max(c[2] for c in cell.values())
            parts = ", ".join(f"{METRIC_NAMES.get(m, m)} {spread_text_short(*cell[m][:2])}" for m in TRUNCATION_SHOWN)
            where = "no truncation" if t == "none" else f"truncation at {t}"
            texts[key] = html.escape(f"{model}, {where} ({n} seed{'s' if n != 1 else ''}): {parts}." + (
                f" Untrained FD-digits {levels['untrained']['fd_digits']:.3g}, real data "
                f"{levels['real']['fd_digits']:.3g}." if levels else ""))
    images = {state_key(model, t): rgba(image_grid(g[:16], nrow=4)) for model, by_t in grids.items()
              for t, g in by_t.items() if t in order}
    store, alias = columns_store(images, "trunc:grid_table", images=True)
    key0 = state_key(m0, t0)
    shown = models.ColumnDataSource({"image": store.data[alias[key0]]}, name="trunc:grid")
    panel = plotting.figure(width=300, height=300, title="samples of the first seed (16)", tools="",
                            x_range=(0, 1), y_range=(0, 1), toolbar_location=None)
    panel.axis.visible, panel.grid.visible = False, False
    panel.image_rgba(image="image", x=0, y=0, dw=1, dh=1, source=shown)
    xs = list(range(len(order)))
    curve = plotting.figure(width=440, height=300, y_axis_type="log", title="FD-digits against the threshold",
                            x_axis_label="threshold (none = untruncated)", tools="pan,wheel_zoom,reset")
    curve.xaxis.ticker = models.FixedTicker(ticks=xs)
    curve.xaxis.major_label_overrides = {i: t for i, t in enumerate(order)}
    lines = {}
    for model in names:
        ys = [stats[model].get(t, {"fd_digits": (float("nan"),)})["fd_digits"][0] for t in order]
        lines[model] = curve.line(xs, ys, line_width=3 if model == m0 else 1,
                                  color="#c0392b" if model == m0 else "#95a5a6")
    if levels:
        for which, dash in (("untrained", "dashed"), ("real", "dotted")):
            curve.add_layout(models.Span(location=levels[which]["fd_digits"], dimension="width", line_dash=dash,
                                         line_color="#2c3e50"))
            curve.scatter([0], [levels[which]["fd_digits"]], alpha=0)
    point = models.ColumnDataSource({"x": [order.index(t0)], "y": [marks[key0]]}, name="trunc:mark_fd_digits")
    curve.scatter("x", "y", source=point, size=11, color="#c0392b")
    choose = models.Select(title="model", value=m0, options=names, name="trunc:model", width=300)
    slider = models.CategoricalSlider(title="truncation threshold", categories=order, value=t0,
                                      name="trunc:threshold", width=300)
    readout = models.Div(text=texts[key0], name="trunc:readout", width=760)
    callback = models.CustomJS(args=dict(choose=choose, slider=slider, shown=shown, store=store, point=point,
                                         lines=lines, readout=readout, order=order,
                                         lookups={"grids": alias, "marks": marks, "texts": texts}), code=TRUNC_JS)
    choose.js_on_change("value", callback)
    slider.js_on_change("value", callback)
    layout = layouts.column(layouts.row(choose, slider), layouts.row(panel, curve), readout)
    settings = {"chapter": chapter, "profile": profile, "sweeps": jsonable(sweeps), "order": order}
    return layout, settings


def spread_text_short(mean: float, sd: float) -> str:
    from .experiments import spread_text

    return spread_text(mean, sd if sd else None)


TRUNC_JS = """
const key = [choose.value, slider.value].join('|');
if (lookups.grids[key] !== undefined) shown.data = {image: store.data[lookups.grids[key]]};
point.data = {x: [order.indexOf(slider.value)], y: [lookups.marks[key]]};
for (const [model, line] of Object.entries(lines)) {
  line.glyph.line_width = model === choose.value ? 3 : 1;
  line.glyph.line_color = model === choose.value ? '#c0392b' : '#95a5a6';
}
readout.text = lookups.texts[key];
"""


def truncation_moves(settings: dict[str, Any]) -> list[dict[str, str]]:
    models_ = list(settings["sweeps"])
    return [{"model": models_[0], "threshold": settings["order"][0]},
            {"model": models_[-1], "threshold": settings["order"][-2 if len(settings["order"]) > 1 else 0]}]


def truncation_check(settings: dict[str, Any], controls: dict[str, str], drawn: dict[str, dict[str, list]]
                     ) -> list[str]:
    """The marked FD-digits is the mean over seeds of the sweep rows at that setting; for stored results the sweeps
    on the page are the stored ones."""
    from ..report import jsonable
    from .chapter import published_results

    problems = []
    if settings.get("profile") in ("cpu", "gpu"):
        record = published_results(settings["chapter"], settings["profile"])
        if record is not None and jsonable(record["metrics"]["truncation"]) != settings["sweeps"]:
            problems.append("the page's truncation sweeps are not the stored ones")
    want = truncation_stats(settings["sweeps"])[controls["model"]][controls["threshold"]]["fd_digits"][0]
    got = drawn.get("mark_fd_digits", {}).get("y", [None])[0]
    if got is None or not np.isclose(got, want, rtol=1e-9):
        problems.append(f"FD-digits at {controls}: page {got}, library {want}")
    if drawn.get("mark_fd_digits", {}).get("x", [None])[0] != settings["order"].index(controls["threshold"]):
        problems.append(f"the marker for {controls} is not at its threshold")
    return problems


# ----------------------------------------------------------------------------------------------------------
# Anatomy: the variance through depth of each config, network and initialisation

def variance_explorable(rows: list[dict[str, Any]], settings: dict[str, Any]):
    """Config, network and initialisation controls over `anatomy.init_variance_profile` rows (settings: preset,
    blocks_per_stage, batch, seed, configs): the chosen curve in red over the others of that config and network."""
    layouts, models, plotting = _bokeh()

    configs = list(dict.fromkeys(r["config"] for r in rows))
    networks = list(dict.fromkeys(r["network"] for r in rows))
    inits = list(dict.fromkeys(r["init"] for r in rows))
    curves = {state_key(c, n, i): [r["variance"] for r in rows if (r["config"], r["network"], r["init"]) == (c, n, i)]
              for c in configs for n in networks for i in inits}
    depths = {state_key(c, n, i): [r["depth"] for r in rows if (r["config"], r["network"], r["init"]) == (c, n, i)]
              for c in configs for n in networks for i in inits}
    c0, n0, i0 = configs[-1], networks[-1], inits[-1]
    key0 = state_key(c0, n0, i0)
    chosen = models.ColumnDataSource({"x": depths[key0], "y": curves[key0]}, name="var:curve")
    others = {i: models.ColumnDataSource({"x": depths[state_key(c0, n0, i)], "y": curves[state_key(c0, n0, i)]})
              for i in inits}
    view = plotting.figure(width=520, height=340, y_axis_type="log", tools="pan,wheel_zoom,reset",
                           title="residual-block output variance at initialisation (grey: the other inits)",
                           x_axis_label="residual block, forward order", y_axis_label="output variance")
    for i in inits:
        view.line("x", "y", source=others[i], color="#bdc3c7", line_width=1)
    view.line("x", "y", source=chosen, color="#c0392b", line_width=3)
    view.scatter("x", "y", source=chosen, color="#c0392b", size=6)
    controls = [models.Select(title="config", value=c0, options=configs, name="var:config", width=220),
                models.Select(title="network", value=n0, options=networks, name="var:network", width=220),
                models.Select(title="initialisation", value=i0, options=inits, name="var:init", width=220)]
    texts = {}
    for key, ys in curves.items():
        c, n, i = key.split("|")
        if ys:
            texts[key] = html.escape(f"Config {c}, {n}, {i}: the variance goes from {ys[0]:.3g} at the first block "
                                     f"to {ys[-1]:.3g} at the last ({len(ys)} blocks), the largest {max(ys):.3g}.")
    readout = models.Div(text=texts.get(key0, ""), name="var:readout", width=760)
    callback = models.CustomJS(args=dict(controls=controls, chosen=chosen, others=others, readout=readout,
                                         lookups={"curves": curves, "depths": depths, "texts": texts}), code=VAR_JS)
    for control in controls:
        control.js_on_change("value", callback)
    return layouts.column(layouts.row(layouts.column(*controls), view), readout)


VAR_JS = """
const [config, network, init] = controls.map(c => c.value);
const key = [config, network, init].join('|');
chosen.data = {x: lookups.depths[key], y: lookups.curves[key]};
for (const [other, source] of Object.entries(others)) {
  const k = [config, network, other].join('|');
  source.data = {x: lookups.depths[k], y: lookups.curves[k]};
}
readout.text = lookups.texts[key] || '';
"""


def variance_moves(settings: dict[str, Any]) -> list[dict[str, str]]:
    from ..networks.anatomy import INIT_SCHEMES

    return [{"config": settings["configs"][0], "network": "G", "init": INIT_SCHEMES[0]},
            {"config": settings["configs"][-1], "network": "D", "init": INIT_SCHEMES[-1]}]


def variance_check(settings: dict[str, Any], controls: dict[str, str], drawn: dict[str, dict[str, list]]
                   ) -> list[str]:
    """The drawn curve is `anatomy.init_variance_profile` computed again for that config (it is seeded)."""
    from ..networks import anatomy

    rows = [r for r in anatomy.init_variance_profile(controls["config"], settings["preset"],
                                                      blocks_per_stage=settings["blocks_per_stage"],
                                                      batch=settings["batch"], seed=settings.get("seed", 0))
            if (r["network"], r["init"]) == (controls["network"], controls["init"])]
    want = np.array([r["variance"] for r in rows])
    got = np.array(drawn.get("curve", {}).get("y", []))
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9):
        return [f"variance for {controls}: page {got[:4]}..., library {want[:4]}..."]
    return []


# ----------------------------------------------------------------------------------------------------------
# Embedding

def to_html(layout, name: str, settings: dict[str, Any]) -> str:
    """The explorable as the HTML of one output: a marked <div> (name and settings for the browser check) around
    Bokeh's own div and script. BokehJS itself is not inlined: sphinx_bokeh serves one copy per build."""
    from bokeh.embed import components

    from ..report import jsonable

    script, div = components(layout)
    meta = html.escape(json.dumps(jsonable(settings)), quote=True)
    return f'<div class="{MARKER}" data-name="{name}" data-settings="{meta}">{div}{script}</div>'


def show(layout, name: str, settings: dict[str, Any], note: str = "") -> None:
    """Display the explorable in the executed notebook, for the rendered book (text/html). At a live kernel the
    chapter's ipywidgets view is the interactive one; the plain-text form says where this one works."""
    from IPython.display import display

    display({"text/html": to_html(layout, name, settings),
             "text/plain": f"[{name} explorable: it runs in the rendered book's pages{note}]"}, raw=True)


# ----------------------------------------------------------------------------------------------------------
# What the browser check does with each explorable (ci/check_book.py): the control values it sets, the sources
# it reads back, and the comparison with the library's own computation for the controls' state.

def dirac_moves(settings: dict[str, Any]) -> list[dict[str, str]]:
    """Two settings that change every view: no penalty at the largest h (simultaneous), then R1 + R2 at the
    largest gamma and the smallest h, alternating."""
    gammas, hs = [float(g) for g in settings["gammas"]], [float(h) for h in settings["hs"]]
    return [{"penalty": "none", "h": label(max(hs)), "scheme": "simultaneous"},
            {"penalty": "r1+r2", "gamma": label(max(gammas)), "h": label(min(hs)), "scheme": "alternating"}]


def dirac_check(settings: dict[str, Any], controls: dict[str, str], drawn: dict[str, dict[str, list]]) -> list[str]:
    """Mismatches between what the page draws for `controls` and `dirac_expected` (empty when they agree)."""
    want = dirac_expected(settings, controls["penalty"], float(controls["gamma"]), float(controls["h"]),
                          controls["scheme"])
    got_path = np.stack([drawn["trajectory"]["x"], drawn["trajectory"]["y"]], axis=1)
    problems = []
    if got_path.shape != want["trajectory"].shape or not np.allclose(got_path, want["trajectory"], rtol=1e-5,
                                                                      atol=1e-4):
        problems.append(f"trajectory for {controls} differs from dirac.simulate")
    got_eigs = np.sort_complex(np.array(drawn["eigenvalues"]["x"]) + 1j * np.array(drawn["eigenvalues"]["y"]))
    if not np.allclose(got_eigs, np.sort_complex(want["eigenvalues"]), atol=1e-6):
        problems.append(f"eigenvalues for {controls}: page {got_eigs}, autograd {want['eigenvalues']}")
    if not np.allclose([drawn["disc"]["x"][0], drawn["disc"]["r"][0]], want["disc"], rtol=1e-9):
        problems.append(f"stability disc for {controls}: page {drawn['disc']}, expected centre, radius {want['disc']}")
    if not np.isclose(drawn["radius_now"]["y"][0], want["spectral_radius"], rtol=1e-6):
        problems.append(f"spectral radius for {controls}: page {drawn['radius_now']['y'][0]}, "
                        f"library {want['spectral_radius']}")
    return problems


def toy_moves(settings: dict[str, Any]) -> list[dict[str, str]]:
    """An early step of GAN without a penalty on the ring, then the last step of RpGAN + R1 on the grid."""
    steps = [str(s) for s in settings["steps"]]
    return [{"dataset": "ring", "loss": "gan", "penalty": "none", "step": steps[1]},
            {"dataset": "grid", "loss": "rpgan", "penalty": "r1", "step": steps[-1]}]


def toy_check(settings: dict[str, Any], controls: dict[str, str], drawn: dict[str, dict[str, list]]) -> list[str]:
    want = toy_expected(settings, controls["dataset"], controls["loss"], controls["penalty"], int(controls["step"]))
    problems = []
    got = np.stack([drawn["points"]["x"], drawn["points"]["y"]], axis=1)
    if got.shape != want["points"].shape or not np.allclose(got, want["points"], rtol=1e-5, atol=1e-5):
        problems.append(f"points for {controls} differ from toy.train_toy's snapshot")
    logits = np.asarray(drawn["logits"]["image"], dtype=float).reshape(want["logits"].shape)
    if not np.allclose(logits, want["logits"], atol=1e-4):
        problems.append(f"D's logits for {controls} differ from toy.train_toy's snapshot")
    means = np.stack([drawn["means"]["x"], drawn["means"]["y"]], axis=1)
    if not np.allclose(means, want["means"]):
        problems.append(f"true means for {controls} differ from toy.mixture")
    return problems


def lazy_moves(settings: dict[str, Any]) -> list[dict[str, str]]:
    """The smallest interval at the largest h, then the largest interval at the smallest h, alternating."""
    hs, ks = settings["hs"], settings["ks"]
    return [{"h": label(max(hs)), "k": str(min(ks)), "scheme": "simultaneous"},
            {"h": label(min(hs)), "k": str(max(ks)), "scheme": "alternating"}]


def lazy_check(settings: dict[str, Any], controls: dict[str, str], drawn: dict[str, dict[str, list]]) -> list[str]:
    want = lazy_expected(settings, float(controls["h"]), int(controls["k"]), controls["scheme"])
    problems = []
    if not (np.allclose(drawn["run"]["x"], want["steps"]) and np.allclose(drawn["run"]["y"], want["distance"],
                                                                          rtol=1e-5, atol=1e-30)):
        problems.append(f"distances for {controls} differ from lazy.simulate_lazy")
    if not (np.isclose(drawn["point"]["x"][0], np.log10(float(controls["h"])))
            and drawn["point"]["y"][0] == int(controls["k"])):
        problems.append(f"the map's marker for {controls} is at {drawn['point']}")
    return problems


INTERACTIONS: dict[str, dict[str, Any]] = {
    "dirac": {"controls": ("penalty", "gamma", "h", "scheme"), "sources": ("trajectory", "eigenvalues", "disc",
                                                                          "radius_now"),
              "moves": dirac_moves, "check": dirac_check},
    "toy": {"controls": ("dataset", "loss", "penalty", "step"), "sources": ("points", "logits", "means"),
            "moves": toy_moves, "check": toy_check},
    "lazy": {"controls": ("scheme", "h", "k"), "sources": ("run", "point"), "moves": lazy_moves,
             "check": lazy_check},
    "var": {"controls": ("config", "network", "init"), "sources": ("curve",), "moves": variance_moves,
            "check": variance_check},
    "trunc": {"controls": ("model", "threshold"), "sources": ("mark_fd_digits",), "moves": truncation_moves,
              "check": truncation_check},
    "runs": {"controls": ("label", "images"), "sources": tuple(f"mark_{m}" for m in RUN_METRICS),
             "moves": runs_moves, "check": runs_check},
}


def nearest(values: Sequence[float], target: float) -> float:
    return min(values, key=lambda v: abs(v - target))
