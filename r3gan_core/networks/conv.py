"""2D convolution for networks that R1/R2 differentiate twice: the same forward as F.conv2d, a backward written in
differentiable first-order ops.

R1 and R2 (paper Eq. 4) penalise D's input gradient, so training differentiates that gradient again. PyTorch's
own second derivative of a convolution (aten::_convolution_double_backward) computes a gradient for the weight
even when the weight is a constant (the FIR filter of Downsample2x), and for a grouped convolution it runs one
small convolution per group: a depthwise FIR filter over C channels becomes C convolutions, Config E's grouped
3x3 one per group. On a GPU that is many tiny kernels per step: measured on one H200 (cifar10 preset, batch 64,
bf16; benchmarks/measured/h200-2026-11-26/), R1 + R2 made a Config E iteration 5.74x slower than none with
PyTorch's double backward and 1.36x slower with this module (670 instead of 162 images/s; Config A: 364 instead
of 75).

`conv2d` returns F.conv2d(x, w) and records a node whose backward is

    dL/dx = F.conv_transpose2d(g, w)                  (the adjoint of the convolution)
    dL/dw = torch.nn.grad.conv2d_weight(x, w.shape, g)

Differentiating dL/dx again is then the ordinary first-order gradient of conv_transpose2d, grouped in one call,
and nothing is computed for a weight that needs no gradient. The maths is the same; only rounding differs (other
kernels sum the same products; tests/test_conv.py compares both in float64).

Which backward runs is a measured, per-device choice (`using(mode)` overrides it for tests and benchmarks):
  auto         the first-order backward on CUDA, PyTorch's own elsewhere. On this project's 2-core CPU the
               first-order backward measured no faster (trainer, Config E, stacked16, batch 32, two threads: 99.1
               vs 99.2 images/s with R1 + R2, 161 vs 173 without), so CPU runs stay bit-identical to F.conv2d's.
  first-order  always this module's backward
  reference    always plain F.conv2d
Without gradient recording (sampling, evaluation) every mode is plain F.conv2d.

Under autocast the forward runs as F.conv2d would (inputs cast to the autocast dtype); the backward computes in
the incoming gradient's dtype, and autograd casts each gradient back to its input's dtype, as for F.conv2d.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ..choices import require_choice

MODES = ("auto", "first-order", "reference")
_mode = "auto"


@contextlib.contextmanager
def using(mode: str) -> Iterator[None]:
    """Within this block conv2d's backward is `mode` (see the module docstring); ValueError names the choices."""
    global _mode
    require_choice("convolution backward", mode, MODES)
    before, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = before


def first_order_backward(x: Tensor) -> bool:
    """Whether conv2d of x records this module's backward (the mode, and for 'auto' the device)."""
    return torch.is_grad_enabled() and (_mode == "first-order" or (_mode == "auto" and x.is_cuda))


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] = 0, groups: int = 1) -> Tensor:
    """F.conv2d (no dilation) whose input gradient is differentiable by first-order ops (see the module doc)."""
    if not first_order_backward(x):
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)
    y = _Conv2d.apply(x, weight, _pair(stride), _pair(padding), groups)
    return y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1)


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stride: tuple[int, int], padding: tuple[int, int],
                groups: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.groups = stride, padding, groups
        return F.conv2d(x, weight, None, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = input_gradient(grad, weight.to(grad.dtype), x.shape, ctx.stride, ctx.padding, ctx.groups)
        if ctx.needs_input_grad[1]:
            grad_w = torch.nn.grad.conv2d_weight(x.to(grad.dtype), weight.shape, grad, ctx.stride, ctx.padding, 1,
                                                 ctx.groups)
        return grad_x, grad_w, None, None, None


def input_gradient(grad: Tensor, weight: Tensor, input_shape: torch.Size, stride: tuple[int, int],
                   padding: tuple[int, int], groups: int) -> Tensor:
    """d(sum(grad * conv2d(x, weight))) / dx as a transposed convolution, with the output padding that restores
    x's height and width when the stride dropped rows or columns."""
    k = weight.shape[-2:]
    extra = tuple(input_shape[2 + i] - ((grad.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + k[i]) for i in range(2))
    return F.conv_transpose2d(grad, weight, None, stride, padding, extra, groups)
