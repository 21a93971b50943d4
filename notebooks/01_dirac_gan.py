# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Dirac-GAN: why GANs cycle and how R1/R2 damp them
#
# The smallest GAN there is has two numbers: the generator's $\theta$ and the discriminator's $\psi$.
# The data is a single point at $0$ ($p_D = \delta_0$), the generator produces a single point at
# $\theta$ ($p_\theta = \delta_\theta$), and the discriminator is the line $D_\psi(x) = \psi x$
# (Mescheder, Geiger and Nowozin, 2018). The R3GAN paper (Sec. 2.2-2.3, App. B-C) uses this game to argue
# two things:
#
# 1. without a penalty, a GAN does not converge even here, and RpGAN (their relativistic loss) is no
#    exception: the two losses produce *the same* dynamics;
# 2. a zero-centred gradient penalty (R1 on real data, R2 on fake data) damps the rotation, and the
#    equilibrium becomes locally convergent.
#
# This chapter computes every claim with autograd on the actual objectives
# (`r3gan_core/dirac.py`), checks it against the closed forms, and shows it.
# Everything runs on a CPU in seconds, so the book shows the `cpu` profile.

# %% tags=["parameters"]
profile = "smoke"      # smoke (CI, seconds) | cpu (what the book shows; a CPU is enough for this chapter)
metrics_path = None    # set by ci/run_chapters.py: where this chapter's headline numbers go
artifacts_dir = None   # set by ci/run_chapters.py: a folder for small stored results (json, png)

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from r3gan_core.convergence import dirac
from r3gan_core.book import explorables
from r3gan_core.book.chapter import chapter_start, write_metrics
from r3gan_core.book.plotting import add_footer

settings, prov, _ = chapter_start("dirac_gan", profile)
H, STEPS, GAMMA, START = settings["h"], settings["steps"], settings["gamma"], tuple(settings["start"])
prov.count(steps=STEPS)  # every trajectory below takes this many steps
out_dir = Path(artifacts_dir) if artifacts_dir else None

# %% [markdown]
# ## The game and its two losses
#
# In the paper's convention the generator minimises and the discriminator maximises
# $L(\theta, \psi) = \mathbb{E}[f(D(G(z)) - D(x))]$ with the concave $f(t) = -\log(1 + e^{-t})$, so
# $f'(0) = \tfrac12$. On the Dirac game:
#
# | loss | $L(\theta, \psi)$ | here |
# |---|---|---|
# | classic GAN | $f(D_\psi(\theta)) + f(-D_\psi(0))$ | $f(\psi\theta) + f(0)$ |
# | RpGAN | $f(D_\psi(\theta) - D_\psi(0))$ | $f(\psi\theta)$ |
#
# The two differ by the constant $f(0) = -\log 2$, so their gradients, and hence their dynamics, agree.
# Gradient descent for $G$ and ascent for $D$ follow the vector field
#
# $$v(\theta, \psi) = \big(-\psi f'(\psi\theta),\; \theta f'(\psi\theta)\big).$$
#
# `dirac.vector_field` does not type this formula in: it builds each objective from $D_\psi$ and lets autograd
# differentiate it, and the penalties are `losses.zero_centered_penalty`, the same function the image
# models train with. Here $\nabla_x D_\psi = \psi$ everywhere, so $R_1 = R_2 = \psi^2$. A single penalty adds
# $-\tfrac{\gamma}{2}\psi^2$ to $D$'s objective; R1 + R2 at $\gamma/2$ each (the code convention of
# `losses.penalty_weights`) adds $-\gamma\psi^2$.

# %%
theta, psi = torch.randn(1000, dtype=torch.float64), torch.randn(1000, dtype=torch.float64)
gap = dirac.dirac_objective("gan", theta, psi) - dirac.dirac_objective("rpgan", theta, psi)
states = 3 * torch.randn(1000, 2, dtype=torch.float64)
field_gap = max((dirac.vector_field("gan", p, GAMMA)(states) - dirac.vector_field("rpgan", p, GAMMA)(states))
                .abs().max().item() for p in dirac.PENALTIES)
print(f"L_GAN - L_RpGAN: min {gap.min():.6f}, max {gap.max():.6f} (f(0) = -log 2 = {-np.log(2):.6f})")
print(f"largest |v_GAN - v_RpGAN| over 1000 random states and every penalty: {field_gap:.1e}")

# %% [markdown]
# ## Vector fields and trajectories
#
# Each panel shows the direction of $v$ (arrows; darker = faster) and two runs of $500$ gradient steps of
# size $h = 0.2$ from $(\theta, \psi) = (1, 1)$ (the star): **simultaneous** updates
# $x \leftarrow x + h\,v(x)$ (red, solid), and **alternating** updates (blue, dashed: a $D$ step, then a $G$ step
# against the new $D$, as the training loop does). The panels are RpGAN with each penalty at $\gamma = 1$; the
# classic GAN's panels are the same pictures (the largest field difference above is printed as 0), so they are
# computed but not drawn twice.

# %%
columns = ["none", "r1", "r2", "r1+r2"]
fig, axes = plt.subplots(2, 2, figsize=(7.8, 7.8), sharex=True, sharey=True)
runs = {}
for loss in dirac.LOSSES:
    for ax, penalty in zip(axes.flat, columns):
        gamma = 0.0 if penalty == "none" else GAMMA
        if loss == "gan":  # the same dynamics as RpGAN: simulated for the numbers below, not drawn
            runs.update({(loss, penalty, scheme): dirac.simulate(loss, penalty, gamma, H, STEPS, START, scheme)
                         for scheme in dirac.SCHEMES})
            continue
        paths = dirac.plot_phase_portrait(ax, loss, penalty, gamma, H, STEPS, n=settings["grid"], start=START)
        runs.update({(loss, penalty, scheme): path for scheme, path in paths.items()})
        ax.set_title(f"RpGAN + {penalty}" + ("" if penalty == "none" else f" ($\\gamma$ = {gamma:g})"))
        ax.label_outer()
axes[0, 0].legend(loc="lower left")
same = max(np.abs(runs[("gan", p, s)] - runs[("rpgan", p, s)]).max() for p in columns for s in dirac.SCHEMES)
print(f"largest difference between the GAN's and RpGAN's paths over every panel: {same:.1e}")
fig.tight_layout()
add_footer(fig, prov)
if out_dir:
    fig.savefig(out_dir / "phase_portraits.png", bbox_inches="tight")
plt.show()

# %% [markdown]
# Read the panels column by column:
#
# * **No penalty.** The field is a pure rotation: $x \cdot v = -\theta\psi f' + \psi\theta f' = 0$, so the
#   continuous flow conserves $\theta^2 + \psi^2$ and circles the equilibrium forever. Simultaneous steps
#   go off on the tangent each time and spiral *out*; alternating steps stay on a closed orbit.
# * **R1 or R2.** In this game the two are the same penalty ($\psi^2$), and both runs fall into $(0, 0)$.
# * **R1 + R2.** Twice the damping at the same $\gamma$: the runs head straight for the $\theta$ axis and then
#   creep along it.
# * **GAN vs RpGAN.** The paths are identical (printed above). The Dirac game cannot tell the losses apart (the paper's
#   Sec. 2.2 says as much); the difference between them shows up with many modes (see the 2D-toys and
#   stacked-digits chapters). Likewise R1 and R2 only come apart when the data has more than one point.

# %%
final = {key: float(np.hypot(*path[-1])) for key, path in runs.items()}
fig, ax = plt.subplots(figsize=(7.8, 4))
for penalty, scheme, style in [("none", "simultaneous", "-"), ("none", "alternating", "-"),
                               ("r1", "simultaneous", "--"), ("r1+r2", "simultaneous", ":")]:
    radius = np.hypot(*runs[("rpgan", penalty, scheme)].T)
    ax.semilogy(radius, style, color=dirac.SCHEME_COLOURS[scheme], label=f"{penalty}, {scheme}")
ax.set(xlabel="step", ylabel=r"distance to equilibrium $\sqrt{\theta^2 + \psi^2}$",
       title=f"RpGAN, h = {H}, start (1, 1), penalties at $\\gamma$ = {GAMMA:g}")
ax.legend(fontsize=8)
add_footer(fig, prov)
plt.show()
for key in [("rpgan", "none", "simultaneous"), ("rpgan", "none", "alternating"),
            ("rpgan", "r1", "simultaneous"), ("rpgan", "r1+r2", "simultaneous")]:
    print(f"{' + '.join(key[:2]):>14} {key[2]:>12}: radius after {STEPS} steps = {final[key]:.4g}")

# %% [markdown]
# The unregularised simultaneous run grows from $\sqrt2 \approx 1.41$ to about $3.1$ in 500 steps;
# alternating steps keep it near $1.41$. Each simultaneous step adds an orthogonal
# increment, so the radius is multiplied by $\sqrt{1 + h^2 f'(\psi\theta)^2} > 1$: a smaller $h$ slows the
# spiral but never stops it. Note also that R1 + R2 at $\gamma = 1$ converges *slower* than R1 alone:
# the next section explains why.
#
# ## Eigenvalues at the equilibrium
#
# Near $(0, 0)$ the dynamics are governed by the Jacobian of $v$,
# $J = \begin{pmatrix} 0 & -f'(0) \\ f'(0) & -2c \end{pmatrix}$, with damping $c = 0$ (none), $\gamma/2$
# (R1 or R2) or $\gamma$ (R1 + R2). Its eigenvalues solve $\lambda^2 + 2c\lambda + f'(0)^2 = 0$:
#
# $$\lambda = -c \pm \sqrt{c^2 - f'(0)^2}.$$
#
# `dirac.equilibrium_eigenvalues` gets them from `torch.autograd.functional.jacobian` of the field;
# `dirac.closed_form_eigenvalues` from the formula. They agree:

# %%
for penalty in dirac.PENALTIES:
    for gamma in (0.0, 0.5, 1.0, 2.0):
        auto = dirac.equilibrium_eigenvalues("rpgan", penalty, gamma)
        exact = dirac.closed_form_eigenvalues("rpgan", penalty, gamma)
        print(f"{penalty:>6} gamma={gamma:3.1f}: autograd {np.round(auto, 4)}  closed form {np.round(exact, 4)}"
              f"  |diff| = {np.abs(auto - exact).max():.1e}")

# %%
gammas = np.linspace(0.0, 3.0, settings["gamma_points"])
locus = {p: dirac.eigenvalue_locus("rpgan", p, gammas) for p in ("r1", "r1+r2")}
exact = {p: np.stack([dirac.closed_form_eigenvalues("rpgan", p, g) for g in gammas]) for p in locus}
locus_error = max(np.abs(locus[p] - exact[p]).max() for p in locus)
critical = {p: dirac.critical_gamma("rpgan", p) for p in ("r1", "r2", "r1+r2")}
print(f"largest |autograd - closed form| over the sweep: {locus_error:.1e}")
print("critical gamma (bisection on the autograd Jacobian): "
      + ", ".join(f"{p} {g:.8g}" for p, g in critical.items()))

# %%
fig = plt.figure(figsize=(7.8, 7.4), layout="constrained")
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
planes = top.subplots(1, 2, sharey=True)
for ax, p in zip(planes, locus):
    art = dirac.plot_eigenvalue_locus(ax, gammas, locus[p])
    ax.plot(exact[p].real, exact[p].imag, color="0.5", lw=0.6, zorder=0)
    ax.plot([0, 0], [-0.5, 0.5], "kx", ms=8, label=r"$\gamma = 0$: $\pm 0.5i$")
    # Equal axes, so that the circle of radius f'(0) is a circle; the fast branch leaves the window to the left.
    ax.set(title=f"{p}: $\\lambda$ as $\\gamma$ goes 0 to 3", xlim=(-1.6, 0.3), ylim=(-0.8, 0.8), aspect="equal")
    ax.annotate("fast branch\ncontinues left", xy=(-1.55, 0.04), xytext=(-1.5, 0.45), fontsize=9,
                arrowprops={"arrowstyle": "->", "color": "0.3"})
planes[0].legend(loc="lower left", fontsize=9)
top.colorbar(art, ax=planes, label=r"$\gamma$", shrink=0.8)
rates = bottom.subplots()
for p, colour in [("r1", "C0"), ("r1+r2", "C1")]:
    rates.plot(gammas, locus[p].real.max(axis=1), color=colour, label=f"{p}: slowest mode")
    rates.plot(gammas, locus[p].real.min(axis=1), color=colour, ls=":", label=f"{p}: fastest mode")
    rates.axvline(critical[p], color=colour, lw=0.8, ls="--")
rates.set(xlabel=r"$\gamma$", ylabel=r"Re $\lambda$", title="decay rates (dashed: critical damping)")
rates.legend()
add_footer(fig, prov)
if out_dir:
    fig.savefig(out_dir / "eigenvalues.png", bbox_inches="tight")
plt.show()

# %% [markdown]
# At $\gamma = 0$ the eigenvalues are $\pm f'(0)\,i = \pm 0.5i$ (the crosses): purely imaginary, no
# damping, no convergence (the paper's Proposition I). As $\gamma$ grows they move left along a circle of
# radius $f'(0)$ until they meet on the real axis at **critical damping**, then split: one races left,
# the other crawls back toward $0$. The slowest mode is fastest at critical damping,
# $\operatorname{Re}\lambda = -f'(0) = -0.5$; past it, more $\gamma$ means *slower* convergence
# (overdamping). That is why R1 + R2 at $\gamma = 1$ (critical at $0.5$) crept along the $\theta$ axis above.
#
# :::{admonition} A typo in the paper's Eq. 12
# :class: note
# For one penalty the discriminant is $\gamma^2/4 - f'(0)^2$, so critical damping is at
# $\gamma = 2|f'(0)| = 1$. The paper's Eq. 12 prints $f'(0)$ without the square; read literally, it would
# put critical damping at $\gamma = 2\sqrt{f'(0)} \approx 1.41$. The bisection above finds $1.0$ (and $0.5$
# for R1 + R2) from the autograd Jacobian alone.
# :::
#
# ## Discrete time: the stability disc
#
# Training takes steps, not a flow. Near the equilibrium, simultaneous gradient steps multiply the error by
# $I + hJ$, so they converge exactly when every eigenvalue satisfies $|1 + h\lambda| < 1$: $h\lambda$ must
# lie in the disc of radius $1$ around $-1$, i.e. $\lambda$ in the disc of radius $1/h$ around $-1/h$
# (green). Filled dots are inside, hollow dots outside.

# %%
games = [("none", 0.0), ("r1", GAMMA), ("r1+r2", GAMMA)]
fig, axes = plt.subplots(2, 3, figsize=(7.8, 5.4))
for row, h in enumerate((H, 1.0)):
    for ax, (penalty, gamma) in zip(axes[row], games):
        eigs = dirac.equilibrium_eigenvalues("rpgan", penalty, gamma)
        dirac.plot_stability_disc(ax, h, eigs, lim=2.5)
        radius = dirac.update_spectral_radius(eigs, [h]).item()
        ax.set_title(f"{penalty}, $\\gamma$={gamma:g}, h={h:g}\nmax|1+h$\\lambda$| = {radius:.3f}", fontsize=9)
fig.tight_layout()
add_footer(fig, prov)
plt.show()

# %% [markdown]
# The unregularised $\pm 0.5i$ sit on the imaginary axis, and the disc only touches that axis at $0$: no step
# size converges ($|1 \pm 0.1i| = 1.005$ at $h = 0.2$, the growth factor of the spiral). With a penalty the
# eigenvalues move into the open left half-plane and every small enough $h$ works; the largest one is
# $\min_\lambda -2\operatorname{Re}\lambda / |\lambda|^2$ (`dirac.max_stable_step`). The map below shows the
# per-step contraction $\max|1 + h\lambda|$ over $(\gamma, h)$; white contours mark $1$, the edge of stability.

# %%
hs = np.linspace(0.02, 4.5, settings["h_points"])
fig, axes = plt.subplots(1, 2, figsize=(7.8, 3.6), sharey=True, layout="constrained")
for ax, p in zip(axes, locus):
    rho = dirac.update_spectral_radius(locus[p], hs)
    mesh = ax.pcolormesh(gammas, hs, np.minimum(rho, 1.5).T, cmap="magma", shading="auto", vmin=0, vmax=1.5)
    ax.contour(gammas, hs, rho.T, levels=[1.0], colors="white", linewidths=1.2)
    ax.plot(GAMMA, H, "w*", ms=10)
    ax.set(xlabel=r"$\gamma$", title=f"{p}: max |1 + h$\\lambda$|")
axes[0].set_ylabel("step size h")
fig.colorbar(mesh, ax=axes, label=r"per-step contraction near $(0, 0)$ (clipped at 1.5)")
add_footer(fig, prov)
if out_dir:
    fig.savefig(out_dir / "stability_map.png", bbox_inches="tight")
plt.show()
max_h = {p: dirac.max_stable_step(dirac.equilibrium_eigenvalues("rpgan", p, GAMMA)) for p in ("r1", "r1+r2")}
print(f"largest stable step at gamma = {GAMMA:g}: " + ", ".join(f"{p} h = {v:.4g}" for p, v in max_h.items()))

# %% [markdown]
# The star is this chapter's setting ($\gamma = 1$, $h = 0.2$). With R1 alone a step up to $h = 4$ still
# converges at $\gamma = 1$; with R1 + R2 at $\gamma/2$ each the stronger damping pushes the fast eigenvalue
# out to $-1.87$ and the limit drops to $h \approx 1.07$. These are *local* statements: the exercises show
# a step size that passes this test and still diverges from $(1, 1)$.
#
# ## Explore it yourself
#
# Pick a penalty, $\gamma$, the step size $h$ and the update scheme. The left view is the path from the star over
# the vector field; the lower left the equilibrium's eigenvalues $\lambda$ with the disc $|1 + h\lambda| < 1$
# (green: the simultaneous step converges when every eigenvalue is inside); the lower right the spectral radius
# of one step's linearisation against $h$ (below the dashed line at 1 the scheme converges locally), with the
# chosen $h$ marked. The sentence under it is made from the same numbers. The page needs no kernel: when this
# chapter ran, the library computed every state the controls can name (`explorables.dirac_table`: paths by
# `dirac.simulate_step_sizes`, eigenvalues by autograd, spectral radii of `lazy.step_jacobian`), and the page only
# looks them up. Try R1 + R2 at $\gamma = 1$: $h = 1$ converges from $(1, 1)$? ({numref}`dirac-gan-ex-4`.)

# %% tags=["remove-input"]
explorables.show(explorables.dirac_explorable(settings["explorable"]), "dirac", settings["explorable"])

# %% [markdown]
# With a live kernel (open `notebooks/01_dirac_gan.py` as a notebook in Jupyter), the notebook has one more cell,
# hidden on this page: ipywidgets sliders for every knob, any value between the grid's, drawn by matplotlib.

# %% tags=["remove-cell"]
try:
    import ipywidgets as widgets
except ImportError:  # the widget is an extra; the figures above teach the same without it
    widgets = None


def explore(loss="rpgan", penalty="r1", gamma=1.0, h=0.2, steps=500, scheme="simultaneous"):
    add_footer(dirac.explorer_figure(loss, penalty, gamma, h, steps, scheme), prov)
    plt.show()


if widgets is not None:
    widgets.interact(explore, loss=list(dirac.LOSSES), penalty=list(dirac.PENALTIES),
                     gamma=widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.05),
                     h=widgets.FloatLogSlider(value=0.2, base=10, min=-2, max=0.7, step=0.05),
                     steps=widgets.IntSlider(value=500, min=10, max=2000, step=10), scheme=list(dirac.SCHEMES))

# %%
eigs0 = dirac.equilibrium_eigenvalues("rpgan", "none", 0.0)
eigs1 = {p: dirac.equilibrium_eigenvalues("rpgan", p, 1.0) for p in ("r1", "r1+r2")}
metrics = {
    "eig_gamma0_real": eigs0.real, "eig_gamma0_imag": eigs0.imag,
    "eig_gamma1_r1_real": eigs1["r1"].real, "eig_gamma1_r1_imag": eigs1["r1"].imag,
    "eig_gamma1_r1r2_real": eigs1["r1+r2"].real, "eig_gamma1_r1r2_imag": eigs1["r1+r2"].imag,
    "eig_max_abs_error_vs_closed_form": locus_error,
    "gan_rpgan_field_max_diff": field_gap,
    "radius_start": float(np.hypot(*START)),
    "radius_simultaneous": final[("rpgan", "none", "simultaneous")],
    "radius_alternating": final[("rpgan", "none", "alternating")],
    "radius_r1_gamma1": final[("rpgan", "r1", "simultaneous")],
    "radius_r1r2_gamma1": final[("rpgan", "r1+r2", "simultaneous")],
    "critical_gamma_r1": critical["r1"], "critical_gamma_r2": critical["r2"],
    "critical_gamma_r1r2": critical["r1+r2"],
    "max_stable_h_r1_gamma1": max_h["r1"], "max_stable_h_r1r2_gamma1": max_h["r1+r2"],
    "h": H, "steps": STEPS, "gamma": GAMMA,
}
write_metrics(metrics_path, metrics, prov.finish(steps=STEPS))
print(prov)

# %% [markdown]
# ## What to take away
#
# * The Dirac-GAN's equilibrium has eigenvalues $\pm 0.5i$ for the classic GAN and for RpGAN alike: without a
#   penalty, gradient play rotates, simultaneous steps spiral out, alternating steps cycle.
# * A zero-centred penalty on $D$ adds damping; one penalty at $\gamma$ gives
#   $\lambda = -\gamma/2 \pm \sqrt{\gamma^2/4 - f'(0)^2}$, critically damped at $\gamma = 1$ (not
#   $2\sqrt{f'(0)}$ as a typo in Eq. 12 suggests); R1 + R2 at $\gamma/2$ each doubles the damping.
# * Convergence in discrete time needs $|1 + h\lambda| < 1$, and that is a local guarantee only.
# * The toy cannot separate GAN from RpGAN, or R1 from R2: that is the job of the next chapters.
#
# ## Exercises
#
# :::{exercise}
# :label: dirac-gan-ex-1
# Show that the alternating update (a $D$ step, then a $G$ step) of the unregularised game, linearised
# at $(0, 0)$, has determinant $1$, and check it numerically.
# :::
#
# :::{exercise}
# :label: dirac-gan-ex-2
# Derive the critical $\gamma$ for R1 + R2 at $\gamma/2$ each, and compare with `dirac.critical_gamma`.
# :::
#
# :::{exercise}
# :label: dirac-gan-ex-3
# For R1 at $\gamma = 1$, which step sizes converge locally? Confirm the bound with `dirac.simulate`
# just below and just above it, starting near the equilibrium.
# :::
#
# :::{exercise}
# :label: dirac-gan-ex-4
# R1 + R2 at $\gamma = 1$ passes the disc test at $h = 1$ ($\max|1 + h\lambda| = 0.87$). Run it from
# $(1, 1)$ and from $(0.5, 0.5)$. What happens, and why does it not contradict the eigenvalue analysis?
# :::
#
# :::{exercise}
# :label: dirac-gan-ex-5
# Replace the minimax generator by the non-saturating one ($G$ minimises $-f(-\psi\theta)$ instead of
# $f(\psi\theta)$). Does the Jacobian at $(0, 0)$ change? (Hint: compare $f'(0)$ and the
# derivative of $-f(-t)$ at $0$.)
# :::

# %% [markdown]
# :::{solution-start} dirac-gan-ex-1
# :class: dropdown
# :::
# With $a = f'(0)$: the $D$ step gives $\psi' = \psi + h a \theta$, then the $G$ step
# $\theta' = \theta - h a \psi' = (1 - h^2 a^2)\theta - h a \psi$. The matrix
# $\begin{pmatrix} 1 - h^2a^2 & -ha \\ ha & 1 \end{pmatrix}$ has determinant $1 - h^2a^2 + h^2a^2 = 1$ and
# trace $2 - h^2a^2 \in (-2, 2)$ for small $h$, so its eigenvalues are a conjugate pair on the unit circle:
# the iterates neither grow nor shrink, they orbit. The cell below measures it by finite differences.

# %%
eps = 1e-6
one_step = lambda s: dirac.simulate("rpgan", "none", 0.0, H, 1, start=s, scheme="alternating")[-1]  # noqa: E731
jac = np.stack([(one_step((eps, 0.0)) - one_step((-eps, 0.0))) / (2 * eps),
                (one_step((0.0, eps)) - one_step((0.0, -eps))) / (2 * eps)], axis=1)
print(np.round(jac, 6), "det =", round(float(np.linalg.det(jac)), 9))

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution} dirac-gan-ex-2
# :class: dropdown
# R1 + R2 adds $-\tfrac{\gamma}{2}\psi^2 - \tfrac{\gamma}{2}\psi^2 = -\gamma\psi^2$ to $D$'s objective, so
# $c = \gamma$ and $\lambda = -\gamma \pm \sqrt{\gamma^2 - f'(0)^2}$. The discriminant vanishes at
# $\gamma = f'(0) = 0.5$; `dirac.critical_gamma("rpgan", "r1+r2")` returns $0.5$ (printed above).
# :::

# %% [markdown]
# :::{solution-start} dirac-gan-ex-3
# :class: dropdown
# :::
# At $\gamma = 1$ both eigenvalues are $-0.5$, so $|1 - h/2| < 1 \iff 0 < h < 4$
# (`dirac.max_stable_step` returns 4.0). Below, from a start close to the equilibrium, $h = 3.9$ contracts
# the distance by $|1 - 1.95| = 0.95$ per step ($0.95^{60} \approx 0.05$) and $h = 4.1$ stretches it by
# $1.05$ per step ($1.05^{60} \approx 19$).

# %%
for h in (3.9, 4.1):
    path = dirac.simulate("rpgan", "r1", 1.0, h, 60, start=(1e-3, 1e-3))
    print(f"h = {h}: distance after 60 steps / at the start = {np.hypot(*path[-1]) / np.hypot(*path[0]):.3g}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution-start} dirac-gan-ex-4
# :class: dropdown
# :::
# From $(0.5, 0.5)$ it converges; from $(1, 1)$ it blows up, doubling every two steps. The eigenvalues
# describe the game only near $(0, 0)$, where $f'(\psi\theta) \approx f'(0) = 0.5$. Far from it the
# coupling $f'(\psi\theta) = \sigma(-\psi\theta)$ swings between about $0$ (when $\psi\theta \gg 0$) and
# about $1$ (when $\psi\theta \ll 0$), and with $h = 1$ the iterates lock into a period-two pattern that
# flips the sign of $\psi$ each step. Local convergence (Proposition II) is local.

# %%
for start in ((1.0, 1.0), (0.5, 0.5)):
    path = dirac.simulate("rpgan", "r1+r2", 1.0, 1.0, 40, start=start)
    print(f"start {start}: |x| after 10, 20, 40 steps = {[float(f'{np.hypot(*path[k]):.3g}') for k in (10, 20, 40)]}")

# %% [markdown]
# :::{solution-end}
# :::

# %% [markdown]
# :::{solution} dirac-gan-ex-5
# :class: dropdown
# The non-saturating generator follows $-\partial_\theta[-f(-\psi\theta)] = -\psi f'(-\psi\theta)$. At the
# equilibrium $f'(-0) = f'(0)$, so the linearisation, the Jacobian and its eigenvalues are unchanged: the
# non-saturating trick changes the dynamics only away from $(0, 0)$. The library's image losses use this
# form for $G$.
# :::
