"""Training-time weight-modulated synthesis on the CPU, forward and backward in cache-sized blocks of points.

The batched layers (one ``baddbmm`` per layer over ``(B, P, W)`` activations) stream every activation and every
gradient through main memory several times per step: ReLU backward, the bias gradient and each GEMM read or write a
full 32 MiB tensor. :class:`BlockedWeightModulatedSynthesis` runs the whole stack (the modulated ReLU layers and the
output layer) per image and per block of points instead, so a block's activations and gradients stay in the cache
between layers. It saves only the layers' outputs (after the ReLU, which are also its masks) and accumulates the
weight and bias gradients block by block. Same math as the batched layers, another summation order.

Used only on the CPU in fp32/fp64 without autocast; CUDA and bf16 keep the batched layers.
"""
from __future__ import annotations

import torch

TRAINING_BLOCK_BYTES = 2**20
"""Bytes of one layer's activations per block in training: a block's working set stays in a 1-2 MiB L2 cache."""


class BlockedWeightModulatedSynthesis(torch.autograd.Function):
    """``out = relu(...relu(h @ w_1[b]^T + b_1)... @ w_L[b]^T + b_L) @ out_weight^T + out_bias`` for every image ``b``.

    ``apply(h, out_weight, out_bias, w_1, b_1, ..., w_L, b_L)``: ``h`` ``(P, in)`` shared by the batch or
    ``(B, P, in)``, ``w_k`` ``(B, out_k, in_k)`` per-image (already modulated) weights, ``b_k`` ``(out_k,)``;
    returns ``(B, P, out_channels)``. Differentiable w.r.t. every input; a second derivative (``create_graph``, e.g.
    second-order meta-learning) recomputes the layers with plain, twice-differentiable ops.
    """

    @staticmethod
    def forward(ctx, h, out_weight, out_bias, *layers):
        weights, biases = layers[0::2], layers[1::2]  # h as it comes: a strided (e.g. feature-major) block is a
        # GEMM operand as it is, and a copy made here would not carry h's graph into a second derivative
        batch, points = weights[0].shape[0], h.shape[-2]
        block = _block_points(weights, h)
        acts = [h.new_empty(batch, points, w.shape[1]) for w in weights]
        out = h.new_empty(batch, points, out_weight.shape[0])
        transposed = [w.transpose(1, 2) for w in weights]
        out_t = out_weight.t()
        spans = [(start, min(start + block, points)) for start in range(0, points, block)]
        for b in range(batch):  # this image's views, taken once (a Python-level index costs as much as a small op)
            inputs, acts_b, weights_b, out_b = h if h.ndim == 2 else h[b], [a[b] for a in acts], \
                [w[b] for w in transposed], out[b]
            for start, stop in spans:
                x = inputs[start:stop]
                for act, w_t, bias in zip(acts_b, weights_b, biases):
                    x = torch.addmm(bias, x, w_t, out=act[start:stop]).relu_()
                torch.addmm(out_bias, x, out_t, out=out_b[start:stop])
        ctx.save_for_backward(h, out_weight, out_bias, *layers)
        ctx.acts = acts  # intermediates (not inputs or outputs): kept on ctx, freed with the graph
        ctx.block = block
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h, out_weight, out_bias, *layers = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: differentiate plain ops so that the gradient has a graph too
            return _plain_backward(h, out_weight, out_bias, layers, grad_out, ctx.needs_input_grad)
        weights, biases = layers[0::2], layers[1::2]
        acts, block = ctx.acts, ctx.block
        need = ctx.needs_input_grad
        need_h, need_w = need[0], [need[3 + 2 * k] for k in range(len(weights))]
        grad_out = grad_out.contiguous()
        grad_out_t = grad_out.transpose(1, 2).contiguous()  # (B, C, P): the output layer's weight gradient as a
        # (C, block) @ (block, W) GEMM with unit-stride rows, several times faster than a transposed (block, C) view
        batch, points = grad_out.shape[:2]
        grad_h = None
        if need_h:
            grad_h = h.new_zeros(h.shape) if h.ndim == 2 else h.new_empty(h.shape)
        grad_w = [torch.zeros_like(w) if needed else None for w, needed in zip(weights, need_w)]
        blocks = -(-points // block)
        bias_rows = [h.new_empty(batch * blocks, b.shape[0]) for b in biases]  # per-block sums, summed at the end
        grad_out_weight = torch.zeros_like(out_weight)
        width = max(w.shape[1] for w in weights)
        buffers = [h.new_empty(min(block, points), width) for _ in range(2)]
        spans = [(start, min(start + block, points)) for start in range(0, points, block)]
        threshold_backward = torch.ops.aten.threshold_backward.grad_input
        layers_down = range(len(weights) - 1, -1, -1)
        row = 0
        for b in range(batch):  # this image's views, taken once
            inputs, acts_b, weights_b = h if h.ndim == 2 else h[b], [a[b] for a in acts], [w[b] for w in weights]
            grad_w_b = [g[b] if g is not None else None for g in grad_w]
            grad_h_b = grad_h if grad_h is None or h.ndim == 2 else grad_h[b]
            grad_out_b, grad_out_t_b, last = grad_out[b], grad_out_t[b], acts_b[-1]
            for start, stop in spans:
                grad_out_weight.addmm_(grad_out_t_b[:, start:stop], last[start:stop])
                g = torch.mm(grad_out_b[start:stop], out_weight, out=buffers[0][: stop - start, : out_weight.shape[1]])
                for k in layers_down:
                    y = acts_b[k][start:stop]
                    g = threshold_backward(g, y, 0, grad_input=g)  # ReLU's backward in place: y > 0 passes
                    torch.sum(g, 0, out=bias_rows[k][row])
                    x = acts_b[k - 1][start:stop] if k else inputs[start:stop]
                    if grad_w_b[k] is not None:
                        grad_w_b[k].addmm_(g.t(), x)
                    if k:
                        spare = buffers[1] if g.data_ptr() == buffers[0].data_ptr() else buffers[0]
                        g = torch.mm(g, weights_b[k], out=spare[: stop - start, : weights_b[k].shape[1]])
                    elif grad_h_b is not None and h.ndim == 2:
                        grad_h_b[start:stop].addmm_(g, weights_b[0])
                    elif grad_h_b is not None:
                        torch.mm(g, weights_b[0], out=grad_h_b[start:stop])
                row += 1
        grads = [grad_h, grad_out_weight if need[1] else None, grad_out.sum((0, 1)) if need[2] else None]
        for k in range(len(weights)):
            grads += [grad_w[k], bias_rows[k].sum(0) if need[4 + 2 * k] else None]
        return tuple(grads)


def _block_points(weights, h: torch.Tensor) -> int:
    width = max(w.shape[1] for w in weights)
    return max(1, TRAINING_BLOCK_BYTES // (width * h.element_size()))


def _plain_backward(h, out_weight, out_bias, layers, grad_out, needs_input_grad):
    """The same layers as batched differentiable ops, differentiated with a graph (second derivatives)."""
    inputs = (h, out_weight, out_bias, *layers)
    x = h.expand(layers[0].shape[0], -1, -1) if h.ndim == 2 else h
    for w, bias in zip(layers[0::2], layers[1::2]):
        x = torch.relu(torch.baddbmm(bias, x, w.transpose(1, 2)))
    out = x @ out_weight.t() + out_bias
    wanted = [t for t, needed in zip(inputs, needs_input_grad) if needed]
    found = iter(torch.autograd.grad(out, wanted, grad_out, create_graph=True, allow_unused=True))
    return tuple(next(found) if needed else None for needed in needs_input_grad)


def blocked_weight_modulated_synthesis(h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                                       out_weight: torch.Tensor, out_bias: torch.Tensor) -> torch.Tensor:
    """``(B, P, out_channels)`` from features ``h`` and per-image modulated weights: see
    :class:`BlockedWeightModulatedSynthesis`."""
    layers = [t for pair in zip(weights, biases) for t in pair]
    return BlockedWeightModulatedSynthesis.apply(h, out_weight, out_bias, *layers)


__all__ = ["TRAINING_BLOCK_BYTES", "BlockedWeightModulatedSynthesis", "blocked_weight_modulated_synthesis"]
