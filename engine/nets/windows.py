"""Cutting many windows out of one shared weight with a single autograd node."""

from __future__ import annotations

import torch


class Windows(torch.autograd.Function):
    """Several windows of one shared weight, each as a dense tensor, with one gradient.

    Slicing the parameter once per use makes autograd allocate and zero a parameter-sized
    gradient for every use (the shared op weights hold every kernel size, width and group
    count at once, so that is most of their size each time). Here backward zeroes one
    buffer per parameter per step and adds each window's gradient into its place."""

    @staticmethod
    def forward(ctx, param: torch.Tensor, windows: tuple[tuple[slice, ...], ...]):  # type: ignore[override]
        ctx.param, ctx.windows = param, windows
        fmt = (torch.channels_last if param.dim() == 4 and not param.is_contiguous()
               and param.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
        return tuple(param[w].contiguous(memory_format=fmt) for w in windows)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        grad = None
        for w, g in zip(ctx.windows, grads, strict=True):
            if g is None:
                continue
            if grad is None:
                grad = torch.zeros_like(ctx.param)
            grad[w] += g
        ctx.param = None
        return grad, None
