"""Causal depthwise convolution over time, forward and backward as in-place shifted multiply-adds.

out[b, t, c] = bias[c] + sum_j weight[K-1-j, c] * x[b, t-j, c]   (x before the first row: the cache, or 0)

Same maths as a grouped Conv1d with left padding. Autograd through shifted slices of a padded copy made
about ten full passes over (B, T, C) per call and its grouped-conv backward is slow on CPU; here the
forward is K fused multiply-adds into one output and the backward K more, with no padded copy.
"""

from __future__ import annotations

import torch


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, cache: torch.Tensor | None):
    """x: (B, T, C); weight: (K, C), the last row multiplies the current step; cache: (B, K-1, C) or None.

    Returns (out, new_cache): new_cache holds the last K-1 input rows (with the old cache before them).
    """
    kernel = weight.shape[0]
    if cache is not None:
        # Streaming continuation: prepend the history and drop its outputs (rare; plain autograd is fine).
        padded = torch.cat([cache, x], dim=1)
        out = _CausalConv.apply(padded, weight, bias)[:, kernel - 1 :]
        return out, padded[:, padded.shape[1] - (kernel - 1) :]
    out = _CausalConv.apply(x, weight, bias)
    history = x[:, max(0, x.shape[1] - (kernel - 1)) :]
    if history.shape[1] < kernel - 1:
        history = torch.cat([history.new_zeros(x.shape[0], kernel - 1 - history.shape[1], x.shape[2]), history], 1)
    return out, history


class _CausalConv(torch.autograd.Function):
    """Zero history: out[:, t] = bias + sum_{lag < min(K, t+1)} weight[K-1-lag] * x[:, t-lag]."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        kernel, length = weight.shape[0], x.shape[1]
        out = torch.addcmul(bias, x, weight[-1])
        for lag in range(1, min(kernel, length)):
            out[:, lag:].addcmul_(x[:, :-lag], weight[-1 - lag])
        return out

    @staticmethod
    def backward(ctx, d_out):
        x, weight = ctx.saved_tensors
        kernel, length = weight.shape[0], x.shape[1]
        d_x = d_out * weight[-1]
        d_weight = torch.zeros_like(weight)
        d_weight[-1] = (d_out * x).sum((0, 1))
        for lag in range(1, min(kernel, length)):
            d_x[:, :-lag].addcmul_(d_out[:, lag:], weight[-1 - lag])
            d_weight[-1 - lag] = (d_out[:, lag:] * x[:, :-lag]).sum((0, 1))
        return d_x, d_weight, d_out.sum((0, 1))
