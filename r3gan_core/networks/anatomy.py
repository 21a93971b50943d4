"""Looking inside the networks: parameter counts, layer tables and activation statistics through depth.

Used by the anatomy chapter and the tests; nothing here changes a network except `naive_init_`, which
re-initialises one on purpose (the baseline the fix-up initialisation is compared against).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .layers import LRELU_GAIN, init_weight_


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; works on the meta device."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _shape(out: Any) -> str:
    if isinstance(out, Tensor):
        return "x".join(str(s) for s in out.shape)
    if isinstance(out, (tuple, list)):
        return ", ".join(_shape(o) for o in out)
    return type(out).__name__


def layer_table(module: nn.Module, *inputs: Any, depth: int = 2, **kwargs: Any) -> list[dict[str, Any]]:
    """One row per submodule down to `depth` dots: name, type, parameter count, output shape.

    Output shapes need an example forward: pass the module's inputs (e.g. `layer_table(G, z)` or
    `layer_table(D, x)`); without inputs the shape column is empty. Rows are in registration order.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, sub in module.named_modules():
        if not name or name.count(".") >= depth:
            continue
        rows[name] = {"name": name, "type": type(sub).__name__, "params": count_parameters(sub), "output": ""}
    if inputs:
        handles = []
        for name, sub in module.named_modules():
            if name in rows:
                handles.append(sub.register_forward_hook(
                    lambda _m, _i, out, name=name: rows[name].__setitem__("output", _shape(out))))
        try:
            with torch.no_grad():
                module(*inputs, **kwargs)
        finally:
            for h in handles:
                h.remove()
    return list(rows.values())


def describe(module: nn.Module, *inputs: Any, depth: int = 2, **kwargs: Any) -> str:
    """`layer_table` as aligned text, with the total parameter count on the last line."""
    rows = layer_table(module, *inputs, depth=depth, **kwargs)
    w_name = max([len(r["name"]) + 2 * r["name"].count(".") for r in rows] + [6])
    w_type = max([len(r["type"]) for r in rows] + [4])
    lines = [f"{'module':<{w_name}}  {'type':<{w_type}}  {'params':>11}  output"]
    for r in rows:
        indent = "  " * r["name"].count(".")
        lines.append(f"{indent + r['name']:<{w_name}}  {r['type']:<{w_type}}  {r['params']:>11,}  {r['output']}")
    lines.append(f"{'total':<{w_name}}  {type(module).__name__:<{w_type}}  {count_parameters(module):>11,}")
    return "\n".join(lines)


def parameters_by_resolution(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, int]:
    """Parameters grouped by the feature-map size their module works at ('4x4', ..., 'dense').

    One forward (it works on the meta device) records each module's input and output feature-map sizes;
    a module's own parameters go to the larger of the two (an upsampling conv counts at the resolution it
    produces, a downsampling one at the resolution it reads, as StyleGAN names its blocks). A module that
    touches no feature map (a linear layer) hands its parameters to the nearest enclosing module that does
    (StyleGAN2's affine layers go to their conv's resolution); the rest (mapping network, label
    embeddings, D's dense head) is 'dense'. The network itself is not used as an enclosing module.
    """
    sizes: dict[str, int] = {}

    def side(t: Any) -> int | None:
        if isinstance(t, (tuple, list)):
            found = [side(o) for o in t]
            found = [f for f in found if f is not None]
            return max(found) if found else None
        return t.shape[-1] if isinstance(t, Tensor) and t.ndim == 4 else None

    def record(name: str):
        def hook(_m: nn.Module, args: tuple, out: Any) -> None:
            found = [s for s in (side(args), side(out)) if s is not None]
            if found:
                sizes[name] = max(found)
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    totals: dict[str, int] = {}
    for name, m in model.named_modules():
        own = sum(p.numel() for p in m.parameters(recurse=False))
        if own == 0:
            continue
        key, parts = "dense", name.split(".") if name else []
        while parts:
            size = sizes.get(".".join(parts))
            if size is not None:
                key = f"{size}x{size}"
                break
            parts = parts[:-1]
        totals[key] = totals.get(key, 0) + own
    return totals


def residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, block) of every residual block, in forward order: the modules with a `branch` method."""
    return [(n, m) for n, m in model.named_modules() if n and callable(getattr(m, "branch", None))]


@torch.no_grad()
def activation_variance_through_depth(model: nn.Module, *inputs: Any, blocks: list[tuple[str, nn.Module]] | None = None,
                                      **kwargs: Any) -> list[dict[str, Any]]:
    """Variance of each residual block's output (and of its branch) over one forward of `inputs`.

    Forward hooks record the output of every block in `blocks` (default: `residual_blocks(model)`); rows
    are (depth index, block name, var of output, var of the branch's contribution output - input).
    A well-initialised network keeps the output variance roughly flat through depth.
    """
    blocks = residual_blocks(model) if blocks is None else blocks
    rows: list[dict[str, Any]] = []
    handles = []

    def hook(name: str):
        def record(_m: nn.Module, args: tuple, out: Tensor) -> None:
            x = args[0]
            delta = (out - x).float().var().item() if out.shape == x.shape else float("nan")
            rows.append({"depth": len(rows), "block": name, "variance": out.float().var().item(),
                         "branch_variance": delta})
        return record

    for name, block in blocks:
        handles.append(block.register_forward_hook(hook(name)))
    try:
        model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return rows


@torch.no_grad()
def naive_init_(model: nn.Module, gain: float = LRELU_GAIN) -> nn.Module:
    """He-initialise every conv / linear weight (N(0, gain / sqrt(fan_in))): no L^(-1/4), no zero last conv.

    The baseline the anatomy chapter compares fix-up initialisation against; learned bases stay as they are.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            init_weight_(m.weight, gain)
    return model


# ---------------------------------------------------------------------------------------------------------
# Tables and profiles the anatomy chapter shows (each a list of plain dict rows: easy to print or plot).
# ---------------------------------------------------------------------------------------------------------
def _pct(ours: float, paper: float) -> float:
    return 100.0 * (ours - paper) / paper


def parameter_table(configs: tuple[str, ...] | None = None, **overrides: Any) -> list[dict[str, Any]]:
    """Table 2's parameter counts at FFHQ-256 beside ours (millions), built on the meta device."""
    from . import CONFIGS, build

    rows = []
    for name in configs or tuple(CONFIGS):
        info = CONFIGS[name]
        with torch.device("meta"):
            G, D = build(name, "ffhq256", **overrides)
        g, d = count_parameters(G) / 1e6, count_parameters(D) / 1e6
        rows.append({"config": name, "G paper (M)": info.paper_g_params, "G ours (M)": round(g, 3),
                     "G diff (%)": round(_pct(g, info.paper_g_params), 3), "D paper (M)": info.paper_d_params,
                     "D ours (M)": round(d, 3), "D diff (%)": round(_pct(d, info.paper_d_params), 3)})
    return rows


def preset_parameter_table(config: str = "E") -> list[dict[str, Any]]:
    """Config E on every preset with official counts (PAPER_FACTS Sec. 5), conditional where the paper is."""
    from . import PRESETS, build

    rows = []
    for name, p in PRESETS.items():
        if p.paper_e_params is None:
            continue
        with torch.device("meta"):
            G, D = build(config, name, conditional=p.num_classes > 0)
        g, d = count_parameters(G) / 1e6, count_parameters(D) / 1e6
        rows.append({"preset": name, "conditional": p.num_classes > 0, "G paper (M)": p.paper_e_params[0],
                     "G ours (M)": round(g, 3), "G diff (%)": round(_pct(g, p.paper_e_params[0]), 2),
                     "D paper (M)": p.paper_e_params[1], "D ours (M)": round(d, 3),
                     "D diff (%)": round(_pct(d, p.paper_e_params[1]), 2)})
    return rows


INIT_SCHEMES = ("fix-up (at init)", "fix-up, last conv non-zero", "naive He init")


def _apply_init(model: nn.Module, scheme: str) -> nn.Module:
    from .layers import fixup_gain

    if scheme == INIT_SCHEMES[1]:  # what fix-up looks like once training has moved the zero convs
        blocks = residual_blocks(model)
        for _, block in blocks:
            init_weight_(block.conv3.weight, fixup_gain(len(blocks)))
    elif scheme == INIT_SCHEMES[2]:
        naive_init_(model)
    return model


def init_variance_profile(config: str, preset: str, blocks_per_stage: int = 4, batch: int = 64, seed: int = 0,
                          schemes: tuple[str, ...] = INIT_SCHEMES) -> list[dict[str, Any]]:
    """Residual-block output variance through depth of G and D under each initialisation scheme.

    G is fed z ~ N(0, I); D is fed unit-variance white-noise images (the FIR low-pass of each downsampling
    keeps only sum(k^2) = (20/64)^2 ~ 0.1 of white noise's variance, hence D's steps between stages).
    """
    from . import build

    rows = []
    for scheme in schemes:
        torch.manual_seed(seed)
        G, D = build(config, preset, blocks_per_stage=blocks_per_stage)
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(batch, G.z_dim, generator=gen)
        x = torch.randn(batch, D.channels, D.resolution, D.resolution, generator=gen)
        for net_name, net, inp in (("G", G, z), ("D", D, x)):
            for r in activation_variance_through_depth(_apply_init(net, scheme), inp):
                rows.append({"config": config, "network": net_name, "init": scheme, **r})
    return rows
