"""Training-time weight-modulated synthesis on the CPU, forward and backward in cache-sized blocks of points.

The batched layers (one ``baddbmm`` per layer over ``(B, P, W)`` activations) stream every activation and every
gradient through main memory several times per step: ReLU backward, the bias gradient and each GEMM read or write a
full 32 MiB tensor. `BlockedWeightModulatedSynthesis` runs the whole stack (the modulated ReLU layers and the
output layer) per image and per block of points instead, so a block's activations and gradients stay in the cache
between layers. It saves only the layers' outputs (after the ReLU, which are also its masks) and accumulates the
weight and bias gradients block by block. Same math as the batched layers, another summation order.

A training loss that is each image's mean squared error goes one step further (`BlockedSynthesisMSE`, what
``FeatureSynthesisDecoder.per_image_mse`` runs): a block goes up the layers and straight back down in the same pass,
so not even the layers' outputs leave the cache, and the backward only scales the per-image gradients it kept.

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
        transposed = [w.transpose(1, 2) for w in weights]  # views: the GEMM reads a transposed operand as it is
        out_t = out_weight.t()
        shared_inputs = h.split(block) if h.ndim == 2 else None
        for b in range(batch):  # this image's block views, taken once (one split per tensor, not a slice per block)
            inputs = shared_inputs if shared_inputs is not None else h[b].split(block)
            acts_b, weights_b = [a[b].split(block) for a in acts], [w[b] for w in transposed]
            out_b = out[b].split(block)
            for i, x in enumerate(inputs):
                for act, w_t, bias in zip(acts_b, weights_b, biases, strict=False):
                    x = torch.addmm(bias, x, w_t, out=act[i]).relu_()
                torch.addmm(out_bias, x, out_t, out=out_b[i])
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
        grad_w = [torch.zeros_like(w) if needed else None for w, needed in zip(weights, need_w, strict=False)]
        blocks = -(-points // block)
        bias_rows = [h.new_empty(batch, blocks, b.shape[0]) for b in biases]  # per-block sums, summed at the end
        grad_out_weight = torch.zeros_like(out_weight)
        width = max(w.shape[1] for w in weights)
        buffers = [h.new_empty(min(block, points), width) for _ in range(2)]
        # Each layer's gradient block in one of the two buffers (alternating from the top), for a full block and
        # for the last, shorter one: views taken once.
        last_rows = points - (blocks - 1) * block
        layers_down = range(len(weights) - 1, -1, -1)
        into = {}  # (layer, rows) -> the buffer view that layer's incoming gradient is written into
        for rows in {min(block, points), last_rows}:
            into[(len(weights) - 1, rows)] = buffers[0][:rows, : out_weight.shape[1]]
            for k in layers_down:
                if k:
                    into[(k - 1, rows)] = buffers[(len(weights) - k) % 2][:rows, : weights[k].shape[2]]
        threshold_backward = torch.ops.aten.threshold_backward.grad_input
        shared_inputs = h.split(block) if h.ndim == 2 else None
        shared_grad_h = grad_h.split(block) if grad_h is not None and h.ndim == 2 else None
        for b in range(batch):  # this image's block views, taken once (one split per tensor, not a slice per block)
            inputs = shared_inputs if shared_inputs is not None else h[b].split(block)
            acts_b, weights_b = [a[b].split(block) for a in acts], [w[b] for w in weights]
            grad_w_b = [g[b] if g is not None else None for g in grad_w]
            grad_h_b = shared_grad_h if grad_h is None or h.ndim == 2 else grad_h[b].split(block)
            grad_out_b, grad_out_t_b = grad_out[b].split(block), grad_out_t[b].split(block, dim=1)
            sums_b = [rows[b] for rows in bias_rows]
            for i in range(blocks):
                rows = grad_out_b[i].shape[0]
                grad_out_weight.addmm_(grad_out_t_b[i], acts_b[-1][i])
                g = torch.mm(grad_out_b[i], out_weight, out=into[(len(weights) - 1, rows)])
                for k in layers_down:
                    g = threshold_backward(g, acts_b[k][i], 0, grad_input=g)  # ReLU's backward in place: y > 0 passes
                    torch.sum(g, 0, out=sums_b[k][i])
                    x = acts_b[k - 1][i] if k else inputs[i]
                    if grad_w_b[k] is not None:
                        grad_w_b[k].addmm_(g.t(), x)
                    if k:
                        g = torch.mm(g, weights_b[k], out=into[(k - 1, rows)])
                    elif grad_h_b is not None and h.ndim == 2:
                        grad_h_b[i].addmm_(g, weights_b[0])
                    elif grad_h_b is not None:
                        torch.mm(g, weights_b[0], out=grad_h_b[i])
        grads = [grad_h, grad_out_weight if need[1] else None, grad_out.sum((0, 1)) if need[2] else None]
        for k in range(len(weights)):
            grads += [grad_w[k], bias_rows[k].sum((0, 1)) if need[4 + 2 * k] else None]
        return tuple(grads)


class BlockedSynthesisMSE(torch.autograd.Function):
    """Per-image MSE ``mean((synthesis(h)[b] - targets[b])^2)`` ``(B,)``, its gradient computed in the same pass.

    ``apply(h, targets, out_weight, out_bias, w_1, b_1, ..., w_L, b_L)``, the inputs of
    `BlockedWeightModulatedSynthesis` plus ``targets`` ``(B, P, out_channels)``. Image ``b``'s loss gradient w.r.t.
    its outputs is ``2 (out_b - targets_b) / (P C)`` times the upstream gradient of its MSE, so every gradient is
    known up to that one factor per image once a block's outputs are: forward runs each block up the layers and
    straight back down while its activations are still in the cache, and backward only scales what it kept by the
    upstream factors. No activation of the batch is written to memory and read back, as the two-pass function must.
    The per-image weights' gradients are per image anyway; the biases' and output layer's are kept per image (they
    are small); the gradient of features shared by the batch is kept summed over the images, exact when the
    upstream factors are equal (a sum or a mean of the errors), else computed again in backward with the factors.
    """

    @staticmethod
    def forward(ctx, h, targets, out_weight, out_bias, *layers):
        errors = torch.sub(out_bias, targets)  # the output layer's GEMM adds x @ out_weight^T: out - targets
        ctx.per_image = _one_pass(h, errors, out_weight, layers, ctx.needs_input_grad)
        ctx.save_for_backward(h, targets, out_weight, out_bias, *layers)
        return errors.square().mean(dim=(1, 2))

    @staticmethod
    def backward(ctx, grad_mse):
        h, targets, out_weight, out_bias, *layers = ctx.saved_tensors
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: differentiate plain ops so that the gradient has a graph too
            return _plain_mse_backward(h, targets, out_weight, out_bias, layers, grad_mse, need)
        errors, grad_h, grad_out_weight, grad_w, bias_rows = ctx.per_image
        batch, points, channels = errors.shape
        scale = grad_mse.to(errors.dtype) * (2.0 / (points * channels))  # d loss / d error, per image
        per_image = scale[:, None, None]
        grads = [None] * len(need)
        if need[0] and h.ndim == 3:
            grads[0] = grad_h * per_image
        elif need[0] and bool((scale == scale[0]).all()):
            grads[0] = grad_h * scale[0]
        elif need[0]:  # the shared features' gradient with unequal factors: one more pass, each image's scaled
            only_h = (True,) + (False,) * (len(need) - 1)
            grads[0] = _one_pass(h, errors, out_weight, layers, only_h, image_scale=scale)[1]
        if need[1]:
            grads[1] = errors * -per_image
        if need[2]:
            grads[2] = torch.mv(grad_out_weight.view(batch, -1).t(), scale).view(out_weight.shape)
        if need[3]:
            grads[3] = torch.mv(errors.sum(1).t(), scale)
        for k, (g, sums) in enumerate(zip(grad_w, bias_rows, strict=True)):
            if g is not None:
                grads[4 + 2 * k] = g * per_image
            if sums is not None:
                grads[5 + 2 * k] = torch.mv(sums.sum(1).t(), scale)
        return tuple(grads)


# Its way down the layers is BlockedWeightModulatedSynthesis.backward's (kept inline in both hot loops; here the bias
# sums are optional and g^T comes from a pre-transposed buffer): change the two together.
def _one_pass(h, errors, out_weight, layers, need, image_scale=None) -> tuple:
    """`BlockedSynthesisMSE`'s pass: every block of every image up the layers and straight back down.

    ``errors`` ``(B, P, C)`` holds ``out_bias - targets`` and receives ``out - targets``; with ``image_scale`` it
    already holds them (a second pass), and each image's loss gradient is scaled by its factor. ``need``: the
    function's ``needs_input_grad``. Returns ``(errors, grad_h, grad_out_weight, grad_w, bias_rows)`` without the
    factor ``2 / (P C)``: ``grad_h`` summed over the images for shared features ``(P, F)``, per image for
    ``(B, P, F)``; the output weight's per image ``(B, C, W)``; the layers' weights' per image; the biases' per
    image and block ``(B, blocks, out)``.
    """
    weights, biases = layers[0::2], layers[1::2]
    batch, points = errors.shape[:2]
    block = _block_points(weights, h)
    blocks = -(-points // block)
    grad_h = None if not need[0] else h.new_zeros(h.shape) if h.ndim == 2 else h.new_empty(h.shape)
    grad_out_weight = h.new_zeros(batch, *out_weight.shape) if need[2] else None
    grad_w = [torch.zeros_like(w) if need[4 + 2 * k] else None for k, w in enumerate(weights)]
    bias_rows = [h.new_empty(batch, blocks, b.shape[0]) if need[5 + 2 * k] else None for k, b in enumerate(biases)]
    # One block's activations (one buffer per layer, the ReLU masks of the way back) and its gradients (two
    # buffers, alternating from the top), for a full and for the last, shorter block: views taken once.
    rows_full, last_rows = min(block, points), points - (blocks - 1) * block
    act_buffers = [h.new_empty(rows_full, w.shape[1]) for w in weights]
    width = max(w.shape[1] for w in weights)
    buffers = [h.new_empty(rows_full, width) for _ in range(2)]
    acts, into = {}, {}
    layers_down = range(len(weights) - 1, -1, -1)
    for rows in {rows_full, last_rows}:
        acts[rows] = [a[:rows] for a in act_buffers]
        into[(len(weights) - 1, rows)] = buffers[0][:rows, : out_weight.shape[1]]
        for k in layers_down:
            if k:
                into[(k - 1, rows)] = buffers[(len(weights) - k) % 2][:rows, : weights[k].shape[2]]
    into_t = {key: view.t() for key, view in into.items()}  # the weight gradients' operand, transposed once
    threshold_backward = torch.ops.aten.threshold_backward.grad_input
    out_t = out_weight.t()
    # the loss gradient's way into the top layer, per image: the output weight, times the image's factor
    out_weights = (out_weight * image_scale[:, None, None]).unbind(0) if image_scale is not None else None
    any_grad = any(need)
    shared_inputs = h.split(block) if h.ndim == 2 else None
    shared_grad_h = grad_h.split(block) if grad_h is not None and h.ndim == 2 else None
    # each image's views, taken once (one unbind or split per tensor, not a select or slice per block)
    weights_by_image = list(zip(*[w.unbind(0) for w in weights], strict=True))
    transposed_by_image = list(zip(*[w.transpose(1, 2).unbind(0) for w in weights], strict=True))
    grad_w_by_image = list(zip(*[g.unbind(0) if g is not None else [None] * batch for g in grad_w], strict=True))
    sums_by_image = list(zip(*[[rows.unbind(0) for rows in s.unbind(0)] if s is not None else [None] * batch
                               for s in bias_rows], strict=True))  # each image's per-block rows
    grad_out_weight_by_image = grad_out_weight.unbind(0) if grad_out_weight is not None else [None] * batch
    for b, errors_image in enumerate(errors.unbind(0)):
        inputs = shared_inputs if shared_inputs is not None else h[b].split(block)
        weights_b, transposed_b, grad_w_b, sums_b = (weights_by_image[b], transposed_by_image[b],
                                                     grad_w_by_image[b], sums_by_image[b])
        errors_b, errors_t_b = errors_image.split(block), errors_image.t().split(block, dim=1)
        grad_h_b = shared_grad_h if grad_h is None or h.ndim == 2 else grad_h[b].split(block)
        grad_out_weight_b = grad_out_weight_by_image[b]
        out_weight_b = out_weights[b] if out_weights is not None else out_weight
        for i, x in enumerate(inputs):
            rows = x.shape[0]
            acts_i = acts[rows]
            for act, w_t, bias in zip(acts_i, transposed_b, biases, strict=False):
                x = torch.addmm(bias, x, w_t, out=act).relu_()
            err = errors_b[i] if image_scale is not None else errors_b[i].addmm_(x, out_t)
            if not any_grad:
                continue
            if grad_out_weight_b is not None:
                grad_out_weight_b.addmm_(errors_t_b[i], x)
            g = torch.mm(err, out_weight_b, out=into[(len(weights) - 1, rows)])
            for k in layers_down:
                g = threshold_backward(g, acts_i[k], 0, grad_input=g)  # ReLU's backward in place: y > 0 passes
                if sums_b[k] is not None:
                    torch.sum(g, 0, out=sums_b[k][i])
                if grad_w_b[k] is not None:
                    grad_w_b[k].addmm_(into_t[(k, rows)], acts_i[k - 1] if k else inputs[i])  # g^T x
                if k:
                    g = torch.mm(g, weights_b[k], out=into[(k - 1, rows)])
                elif grad_h_b is not None and h.ndim == 2:
                    grad_h_b[i].addmm_(g, weights_b[0])
                elif grad_h_b is not None:
                    torch.mm(g, weights_b[0], out=grad_h_b[i])
    return errors, grad_h, grad_out_weight, grad_w, bias_rows


def _block_points(weights, h: torch.Tensor) -> int:
    width = max(w.shape[1] for w in weights)
    return max(1, TRAINING_BLOCK_BYTES // (width * h.element_size()))


def _plain_synthesis(h, out_weight, out_bias, layers) -> torch.Tensor:
    """The synthesis as batched differentiable ops (twice differentiable): ``(B, P, out_channels)``."""
    x = h.expand(layers[0].shape[0], -1, -1) if h.ndim == 2 else h
    for w, bias in zip(layers[0::2], layers[1::2], strict=False):
        x = torch.relu(torch.baddbmm(bias, x, w.transpose(1, 2)))
    return x @ out_weight.t() + out_bias


def _gradients_with_graph(output, inputs, grad_output, needs_input_grad) -> tuple:
    wanted = [t for t, needed in zip(inputs, needs_input_grad, strict=False) if needed]
    found = iter(torch.autograd.grad(output, wanted, grad_output, create_graph=True, allow_unused=True))
    return tuple(next(found) if needed else None for needed in needs_input_grad)


def _plain_backward(h, out_weight, out_bias, layers, grad_out, needs_input_grad):
    """The same layers as batched differentiable ops, differentiated with a graph (second derivatives)."""
    out = _plain_synthesis(h, out_weight, out_bias, layers)
    return _gradients_with_graph(out, (h, out_weight, out_bias, *layers), grad_out, needs_input_grad)


def _plain_mse_backward(h, targets, out_weight, out_bias, layers, grad_mse, needs_input_grad):
    """`BlockedSynthesisMSE`'s gradients through plain ops, with a graph (second derivatives)."""
    mse = (_plain_synthesis(h, out_weight, out_bias, layers) - targets).square().mean(dim=(1, 2))
    return _gradients_with_graph(mse, (h, targets, out_weight, out_bias, *layers), grad_mse, needs_input_grad)


def blocked_weight_modulated_synthesis(h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                                       out_weight: torch.Tensor, out_bias: torch.Tensor) -> torch.Tensor:
    """``(B, P, out_channels)`` from features ``h`` and per-image modulated weights: see
    `BlockedWeightModulatedSynthesis`."""
    layers = [t for pair in zip(weights, biases, strict=False) for t in pair]
    return BlockedWeightModulatedSynthesis.apply(h, out_weight, out_bias, *layers)


def blocked_synthesis_mse(h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                          out_weight: torch.Tensor, out_bias: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(B,)`` per-image MSE of the synthesis against ``targets`` ``(B, P, out_channels)``, forward and backward
    in one pass per block: see `BlockedSynthesisMSE`."""
    layers = [t for pair in zip(weights, biases, strict=False) for t in pair]
    return BlockedSynthesisMSE.apply(h, targets, out_weight, out_bias, *layers)


__all__ = ["TRAINING_BLOCK_BYTES", "BlockedSynthesisMSE", "BlockedWeightModulatedSynthesis", "blocked_synthesis_mse",
           "blocked_weight_modulated_synthesis"]
