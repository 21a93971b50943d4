"""Dirac-GAN and DiracRpGAN: the two-parameter games of paper Sec. 2.2-2.3 (App. B-C; Mescheder et al. 2018).

Data p_D = delta_0, generator p_theta = delta_theta, discriminator D_psi(x) = psi * x. In the paper's
convention (G minimises, D maximises, f(t) = -log(1 + exp(-t)), f'(0) = 1/2):

* classic GAN:  L(theta, psi) = f(D_psi(theta)) + f(-D_psi(0)) = f(psi theta) + f(0)
* RpGAN:        L(theta, psi) = f(D_psi(theta) - D_psi(0))    = f(psi theta)

Both give the same vector field v = (-psi f'(psi theta), theta f'(psi theta)); this module builds each
objective from D_psi honestly and lets autograd find the field, so the tests can check that they agree.
R1 = (dD/dx at x = 0)^2 and R2 = (dD/dx at x = theta)^2 are both psi^2 here; they are computed with
`losses.zero_centered_penalty`, weighted by `losses.penalty_weights` (gamma/2 on each switched on), and
regularise D only. Everything runs in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..choices import require_choice, require_positive
from ..losses import LOSSES, PENALTIES, penalty_weights, zero_centered_penalty

SCHEMES = ("simultaneous", "alternating")
F_PRIME_0 = 0.5  # f'(0) for f(t) = -log(1 + exp(-t)), paper Sec. 2.2
DTYPE = torch.float64

VectorField = Callable[[Tensor], Tensor]


def paper_f(t: Tensor) -> Tensor:
    """f(t) = -log(1 + exp(-t)) = -softplus(-t), the concave f of the paper's L (Sec. 2, Eq. 1)."""
    return -torch.nn.functional.softplus(-t)


def dirac_discriminator(psi: Tensor, x: Tensor) -> Tensor:
    """D_psi(x) = psi * x, the linear discriminator of the Dirac-GAN (Mescheder et al. 2018, Def. 1)."""
    return psi * x


def dirac_objective(loss: str, theta: Tensor, psi: Tensor) -> Tensor:
    """The paper's L per element: GAN f(D(theta)) + f(-D(0)); RpGAN f(D(theta) - D(0)) (Sec. 2.2, App. B)."""
    require_choice("loss", loss, LOSSES)
    real = torch.zeros_like(theta)  # the data is the Dirac at 0
    fake_score, real_score = dirac_discriminator(psi, theta), dirac_discriminator(psi, real)
    if loss == "gan":
        return paper_f(fake_score) + paper_f(-real_score)
    return paper_f(fake_score - real_score)


def dirac_penalty(penalty: str, gamma: float, theta: Tensor, psi: Tensor) -> Tensor:
    """w1 R1 + w2 R2 per element, (w1, w2) = penalty_weights: R1 at the real 0, R2 at the (detached) fake."""
    w_r1, w_r2 = penalty_weights(penalty, gamma)
    total = torch.zeros_like(psi)
    for weight, point in ((w_r1, torch.zeros_like(theta)), (w_r2, theta.detach())):
        if weight > 0:
            x = point.reshape(-1, 1).clone().requires_grad_(True)  # [N, 1]: one "image" of one pixel
            total = total + weight * zero_centered_penalty(x, dirac_discriminator(psi.reshape(-1, 1), x))
    return total


def _check_game(loss: str, penalty: str, gamma: float) -> None:
    require_choice("loss", loss, LOSSES)
    require_choice("penalty", penalty, PENALTIES)
    require_positive("gamma", gamma, allow_zero=True)


def vector_field(loss: str, penalty: str, gamma: float) -> VectorField:
    """v(theta, psi) = (-dL/dtheta, d(L - penalty)/dpsi): G descends L, D ascends its regularised L.

    The returned callable takes a float tensor of shape [..., 2] (theta, psi) and returns the same shape.
    When its input requires grad the result stays differentiable (for `equilibrium_eigenvalues`).
    """
    _check_game(loss, penalty, gamma)

    def field(state: Tensor) -> Tensor:
        state = torch.as_tensor(state, dtype=DTYPE)
        keep_graph = state.requires_grad
        if not keep_graph:
            state = state.detach().requires_grad_(True)
        with torch.enable_grad():
            flat = state.reshape(-1, 2)
            theta, psi = flat[:, 0], flat[:, 1]
            objective = dirac_objective(loss, theta, psi).sum()  # elements are independent games
            d_theta, d_psi = torch.autograd.grad(objective, (theta, psi), create_graph=True)
            reg = dirac_penalty(penalty, gamma, theta, psi).sum()
            if reg.requires_grad:
                (d_reg,) = torch.autograd.grad(reg, psi, create_graph=True)
                d_psi = d_psi - d_reg
            out = torch.stack((-d_theta, d_psi), dim=-1).reshape(state.shape)
        return out if keep_graph else out.detach()

    return field


def _sort_eigenvalues(eigs: np.ndarray) -> np.ndarray:
    """Order by real part, then imaginary part, after rounding away float noise (both functions use it)."""
    eigs = np.asarray(eigs, dtype=complex) + 0.0  # + 0.0 turns -0.0 into 0.0 for printing
    keys = sorted(range(len(eigs)), key=lambda i: (round(eigs[i].real, 9), round(eigs[i].imag, 9)))
    return eigs[keys]


def equilibrium_jacobian(loss: str, penalty: str, gamma: float) -> np.ndarray:
    """dv/d(theta, psi) at the equilibrium (0, 0) by autograd (torch.autograd.functional.jacobian, float64)."""
    field = vector_field(loss, penalty, gamma)
    jac = torch.autograd.functional.jacobian(field, torch.zeros(2, dtype=DTYPE))
    return jac.detach().numpy()


def equilibrium_eigenvalues(loss: str, penalty: str, gamma: float) -> np.ndarray:
    """Eigenvalues (complex, sorted) of the autograd Jacobian of v at (0, 0)."""
    return _sort_eigenvalues(np.linalg.eigvals(equilibrium_jacobian(loss, penalty, gamma)))


def damping(penalty: str, gamma: float) -> float:
    """c in lambda^2 + 2c lambda + f'(0)^2 = 0: 0, gamma/2 for R1 or R2, gamma for R1 + R2.

    A penalty w psi^2 adds -2 w psi to v_psi, so the Jacobian at (0, 0) is [[0, -f'(0)], [f'(0), -2c]] with
    c = w_r1 + w_r2.
    """
    w_r1, w_r2 = penalty_weights(penalty, gamma)
    return w_r1 + w_r2


def closed_form_eigenvalues(loss: str, penalty: str, gamma: float) -> np.ndarray:
    """lambda = -c +- sqrt(c^2 - f'(0)^2) (App. B-C; the paper's Eq. 12 drops the square on f'(0)).

    c = 0 (none: +-0.5i), gamma/2 (R1 or R2), gamma (R1 + R2 at gamma/2 each). The same for GAN and RpGAN.
    """
    _check_game(loss, penalty, gamma)
    c = damping(penalty, gamma)
    root = np.sqrt(complex(c * c - F_PRIME_0**2))
    return _sort_eigenvalues(np.array([-c + root, -c - root]))


def critical_gamma(loss: str, penalty: str, tol: float = 1e-10) -> float:
    """The smallest gamma whose autograd Jacobian has real eigenvalues (trace^2 >= 4 det), by bisection.

    Critical damping: 2 |f'(0)| = 1 for R1 or R2, 0.5 for R1 + R2. The unregularised game has none.
    """
    _check_game(loss, penalty, 0.0)
    if penalty == "none":
        raise ValueError("penalty 'none' never damps the Dirac-GAN; choose one of 'r1', 'r2', 'r1+r2'")

    def real_eigs(gamma: float) -> bool:
        j = equilibrium_jacobian(loss, penalty, gamma)
        return np.trace(j) ** 2 - 4 * np.linalg.det(j) >= 0

    lo, hi = 0.0, 1.0
    while not real_eigs(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if real_eigs(mid) else (mid, hi)
    return hi


def eigenvalue_locus(loss: str, penalty: str, gammas: Sequence[float]) -> np.ndarray:
    """Autograd eigenvalues for each gamma: a complex array of shape [len(gammas), 2]."""
    return np.stack([equilibrium_eigenvalues(loss, penalty, float(g)) for g in gammas])


def is_discretely_stable(eigs: np.ndarray, h: float) -> bool:
    """x <- x + h v converges locally iff |1 + h lambda| < 1 for every eigenvalue (Mescheder et al. 2018, Sec. 2)."""
    require_positive("h", h)
    return bool(np.all(np.abs(1 + h * np.asarray(eigs)) < 1))


def update_spectral_radius(eigs: np.ndarray, hs: Sequence[float]) -> np.ndarray:
    """max_k |1 + h lambda_k| for each row of `eigs` ([G, K]) and each h: shape [G, len(hs)]; < 1 = stable.

    It is the spectral radius of the linearised simultaneous update x <- x + h v, i.e. the factor by which
    the distance to (0, 0) shrinks per step near the equilibrium.
    """
    eigs, hs = np.atleast_2d(eigs), np.asarray(hs, dtype=float)
    if np.any(hs <= 0):
        raise ValueError("every step size h must be > 0")
    return np.abs(1 + hs[None, :, None] * eigs[:, None, :]).max(axis=-1)


def max_stable_step(eigs: np.ndarray) -> float:
    """The largest h with |1 + h lambda| < 1 for every eigenvalue: min over lambda of -2 Re(lambda) / |lambda|^2.

    From |1 + h lambda|^2 = 1 + 2 h Re(lambda) + h^2 |lambda|^2 < 1. 0.0 when some Re(lambda) >= 0 (no step
    size converges), e.g. the unregularised game's +-0.5i.
    """
    eigs = np.asarray(eigs, dtype=complex)
    if np.any(eigs.real >= 0):
        return 0.0
    return float(np.min(-2 * eigs.real / np.abs(eigs) ** 2))


def stability_region_mask(re: np.ndarray, im: np.ndarray, h: float) -> np.ndarray:
    """Boolean mask of |1 + h (re + i im)| < 1: the disc of radius 1/h centred at -1/h."""
    require_positive("h", h)
    return np.abs(1 + h * (np.asarray(re) + 1j * np.asarray(im))) < 1


def simulate(
    loss: str,
    penalty: str,
    gamma: float,
    h: float,
    steps: int,
    start: tuple[float, float] = (1.0, 1.0),
    scheme: str = "simultaneous",
) -> np.ndarray:
    """Gradient steps of size h on v from `start`; returns the path (theta, psi), shape [steps + 1, 2].

    simultaneous: x <- x + h v(x). alternating: one D step then one G step at the new psi (the order of the
    official training loop); its linearisation has determinant 1, so without a penalty it cycles.
    """
    require_choice("scheme", scheme, SCHEMES)
    require_positive("h", h)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if len(start) != 2:
        raise ValueError(f"start must be (theta, psi), got {start!r}")
    field = vector_field(loss, penalty, gamma)
    path = np.empty((int(steps) + 1, 2))
    x = torch.tensor(start, dtype=DTYPE)
    path[0] = x.numpy()
    for k in range(1, int(steps) + 1):
        x = update_step(x, field, h, scheme)
        path[k] = x.numpy()
    return path


def update_step(x: Tensor, field: VectorField, h: float, scheme: str) -> Tensor:
    """One gradient step of size h on `field` from x = (theta, psi).

    simultaneous: x <- x + h v(x). alternating: one D step (psi) then one G step (theta) at the new psi, the order
    of the official training loop. Differentiable in x when x requires grad (lazy.period_jacobian uses that).
    """
    if scheme == "simultaneous":
        return x + h * field(x)
    x = torch.stack((x[..., 0], x[..., 1] + h * field(x)[..., 1]), dim=-1)  # D: psi
    return torch.stack((x[..., 0] + h * field(x)[..., 0], x[..., 1]), dim=-1)  # G: theta, against the new psi


def simulate_step_sizes(
    loss: str,
    penalty: str,
    gamma: float,
    hs: Sequence[float],
    steps: int,
    start: tuple[float, float] = (1.0, 1.0),
    scheme: str = "simultaneous",
) -> np.ndarray:
    """`simulate` for several step sizes at once (one batched field evaluation per step): shape [len(hs), steps + 1, 2].

    Row i equals simulate(loss, penalty, gamma, hs[i], steps, start, scheme) (tests/test_dirac.py checks it); the
    explorable precomputes its hundreds of paths with it. Values beyond 1e6 in magnitude are kept as they come
    (a diverging path overflows to inf and then nan, as the one-h version does).
    """
    require_choice("scheme", scheme, SCHEMES)
    hs_array = np.asarray(hs, dtype=float)
    if hs_array.ndim != 1 or len(hs_array) == 0 or np.any(hs_array <= 0):
        raise ValueError(f"hs must be a non-empty list of step sizes > 0, got {hs!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    field = vector_field(loss, penalty, gamma)
    h = torch.tensor(hs_array, dtype=DTYPE)
    x = torch.tensor(start, dtype=DTYPE).expand(len(hs_array), 2).clone()
    path = np.empty((len(hs_array), int(steps) + 1, 2))
    path[:, 0] = x.numpy()
    h_col = h[:, None]
    for k in range(1, int(steps) + 1):
        x = x + h_col * field(x) if scheme == "simultaneous" else update_step(x, field, h, scheme)
        path[:, k] = x.numpy()
    return path


def field_on_grid(
    loss: str, penalty: str, gamma: float, lim: float = 2.0, n: int = 17
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(theta, psi, v_theta, v_psi) on an n x n grid over [-lim, lim]^2, for quiver plots."""
    require_positive("lim", lim)
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n!r}")
    axis = torch.linspace(-lim, lim, n, dtype=DTYPE)
    theta, psi = torch.meshgrid(axis, axis, indexing="xy")
    v = vector_field(loss, penalty, gamma)(torch.stack((theta, psi), dim=-1))
    return theta.numpy(), psi.numpy(), v[..., 0].numpy(), v[..., 1].numpy()


# ----- figures shared by the Dirac-GAN chapter and any later chapter that recalls it -----

SCHEME_COLOURS = {"simultaneous": "C3", "alternating": "C0"}
SCHEME_STYLES = {"simultaneous": "-", "alternating": "--"}  # distinct, so that one path cannot hide the other

def plot_phase_portrait(
    ax: plt.Axes, loss: str, penalty: str, gamma: float, h: float, steps: int, n: int = 17, lim: float = 3.5,
    schemes: Sequence[str] = SCHEMES, start: tuple[float, float] = (1.0, 1.0),
) -> dict[str, np.ndarray]:
    """Quiver of v (direction only, colour = speed) with the trajectory of each scheme; returns the paths."""
    theta, psi, u, v = field_on_grid(loss, penalty, gamma, lim, n)
    speed = np.hypot(u, v)
    spacing = 2 * lim / (n - 1)  # unit arrows drawn at 0.7 of the grid spacing, whatever n is
    arrows = ax.quiver(theta, psi, u / (speed + 1e-12), v / (speed + 1e-12), speed, cmap="Greys", alpha=0.8,
                       angles="xy", scale_units="xy", scale=1 / (0.7 * spacing), pivot="mid", width=0.004)
    arrows.set_clim(-0.4 * speed.max(), speed.max())  # slow arrows stay visible (light grey, not white)
    paths = {}
    for scheme in schemes:
        colour = SCHEME_COLOURS[scheme]
        path = simulate(loss, penalty, gamma, h, steps, start=start, scheme=scheme)
        ax.plot(path[:, 0], path[:, 1], color=colour, lw=1.4, ls=SCHEME_STYLES[scheme], label=scheme)
        ax.plot(*path[-1], "o", color=colour, ms=4)
        paths[scheme] = path
    ax.plot(*start, "k*", ms=8)
    ax.plot(0, 0, "k+", ms=10)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel=r"$\theta$ (generator)",
           ylabel=r"$\psi$ (discriminator)")
    return paths


def plot_stability_disc(ax: plt.Axes, h: float, eigs: np.ndarray | None = None, lim: float | None = None) -> None:
    """Shade |1 + h lambda| < 1 (the disc of radius 1/h at -1/h) and mark `eigs`: filled inside, hollow outside.

    The window is Re in [-lim, 0.5], Im in [-lim/2, lim/2]; lim None = 2.5 or enough to show every eigenvalue.
    """
    eigs = None if eigs is None else np.asarray(eigs)
    if lim is None:
        lim = 2.5 if eigs is None else max(2.5, 1.2 * np.abs(eigs.real).max(), 2.4 * np.abs(eigs.imag).max())
    re, im = np.meshgrid(np.linspace(-lim, 0.5, 401), np.linspace(-lim / 2, lim / 2, 301))
    inside = stability_region_mask(re, im, h).astype(float)
    ax.contourf(re, im, inside, levels=[0.5, 1.5], colors=["C2"], alpha=0.25)
    ax.contour(re, im, inside, levels=[0.5], colors=["C2"], linewidths=1.0)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.axhline(0, color="0.3", lw=0.8)
    if eigs is not None:
        stable = np.abs(1 + h * eigs) < 1
        ax.plot(eigs.real[stable], eigs.imag[stable], "o", color="C3", ms=6)
        ax.plot(eigs.real[~stable], eigs.imag[~stable], "o", mfc="none", color="C3", ms=6)
    ax.set(xlim=(-lim, 0.5), ylim=(-lim / 2, lim / 2), xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$",
           aspect="equal")


def plot_eigenvalue_locus(ax: plt.Axes, gammas: np.ndarray, locus: np.ndarray, marker: str = "o",
                          label: str | None = None, cmap: str = "viridis"):
    """Both eigenvalue branches of `locus` ([G, 2], from eigenvalue_locus) coloured by gamma; returns the
    scatter (for a colour bar)."""
    gammas = np.asarray(gammas)
    colours = np.concatenate([gammas, gammas])
    points = np.concatenate([locus[:, 0], locus[:, 1]])
    art = ax.scatter(points.real, points.imag, c=colours, cmap=cmap, marker=marker, s=14, label=label,
                     vmin=gammas.min(), vmax=gammas.max())
    ax.axvline(0, color="0.3", lw=0.8)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set(xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$")
    return art


def explorer_figure(loss: str = "rpgan", penalty: str = "r1", gamma: float = 1.0, h: float = 0.2,
                    steps: int = 500, scheme: str = "simultaneous") -> plt.Figure:
    """One game at a glance (the chapter's widget view): phase portrait with the trajectory of `scheme`, and
    the equilibrium eigenvalues against the stability disc |1 + h lambda| < 1 (meaningful for simultaneous)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.8, 3.8))
    path = plot_phase_portrait(left, loss, penalty, gamma, h, steps, schemes=(scheme,))[scheme]
    left.set_title(f"{loss} + {penalty}, gamma={gamma:g}, h={h:g}: |x_end| = {np.hypot(*path[-1]):.3g}",
                   fontsize=9)
    eigs = equilibrium_eigenvalues(loss, penalty, gamma)
    plot_stability_disc(right, h, eigs)
    right.set_title(f"max |1 + h$\\lambda$| = {update_spectral_radius(eigs, [h]).item():.3f}", fontsize=9)
    fig.tight_layout()
    return fig
