"""The per-cell MLP of equation (3), ``F(z) = W1 u(W2 z + b) + v``, for every cell at once.

``cell_mlp`` computes it with matrix products and lets JAX differentiate them, which suits
most rules. A rule with few inputs and outputs per cell (the 2-channel Gray-Scott rule:
``z`` holds 2 channels x 2 kernels, ``F`` 2 outputs) spends most of a CPU training step
in products whose inner dimension is 2 to 4, and in the copies XLA makes to hand their
transposes to a matrix-product library. For those rules (on the CPU, where this was
measured: ``small_rule``) the MLP has a hand-written backward pass: the products with an
inner dimension of at most 4 are written as sums of broadcasts that XLA fuses with the
activation into one pass over the cells, and the weight gradients are products over the
cells in the layout the library takes without a copy. Same numbers to float rounding;
with the perception's hand-written backward pass (``stnca.stencils``), the demo's training
epoch (2-channel rule, width 64) is 1.3x faster on 2 CPU cores (BENCHMARKS.md, "Hand-written
backward passes"). Reverse-mode differentiation only (``jax.grad``, ``jax.vjp``) on that
path.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

SMALL_INNER = 4
"""The largest inner dimension written as broadcasts (the rule's outputs, for the backward
pass's ``dF W1``)."""

SMALL_FIRST_LAYER = 256
"""The largest first layer (inputs x hidden width) written as broadcasts: 4 x 64 and 8 x 32
were faster this way on the CPU, 8 x 64 and 16 x 32 slower."""


def small_rule(inputs: int, width: int, outputs: int) -> bool:
    """Whether a rule of ``inputs`` perceptions per cell, a hidden layer of ``width`` and
    ``outputs`` updated channels takes the hand-written path (on the CPU only)."""
    return (
        jax.default_backend() == "cpu"
        and outputs <= SMALL_INNER
        and inputs * width <= SMALL_FIRST_LAYER
    )


def cell_mlp(
    z: Float[Array, "cells inputs"],
    w_in: Float[Array, "width inputs"],
    b_in: Float[Array, " width"] | None,
    w_out: Float[Array, "outputs width"],
    b_out: Float[Array, " outputs"],
    activation: Callable[[Array], Array],
) -> Float[Array, "cells outputs"]:
    """``u(z W2^T + b) W1^T + v`` for a flat batch of cells (``b``: none when ``b_in`` is
    ``None``), by the hand-written path for a ``small_rule``, else by matrix products."""
    width, inputs = w_in.shape
    if small_rule(inputs, width, w_out.shape[0]):
        bias = jnp.zeros((width,), z.dtype) if b_in is None else b_in
        return _small_mlp(z, w_in, bias, w_out, b_out, activation)
    pre = z @ w_in.T
    if b_in is not None:
        pre = pre + b_in[None]
    return activation(pre) @ w_out.T + b_out[None]


def _broadcast_product(a: Float[Array, "cells inner"], b: Float[Array, "width inner"]) -> Array:
    """``a @ b.T`` for a small inner dimension, as a sum of broadcasts (one fused loop)."""
    return functools.reduce(
        operator.add, [a[:, j, None] * b[None, :, j] for j in range(a.shape[1])]
    )


_barrier = jax.lax.optimization_barrier
"""Keeps XLA from folding a transpose into a product, which would make it a product the
library does not take (and a slow fallback)."""


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _small_mlp(z, w_in, b_in, w_out, b_out, activation):
    return activation(_broadcast_product(z, w_in) + b_in[None]) @ w_out.T + b_out[None]


def _small_forward(z, w_in, b_in, w_out, b_out, activation):
    # only the inputs are kept: the backward pass recomputes the hidden layer (cheaper on
    # a CPU than storing it, and what jax.checkpoint of a step would do anyway)
    return _small_mlp(z, w_in, b_in, w_out, b_out, activation), (z, w_in, b_in, w_out)


def _small_backward(activation, residuals, cotangent):
    z, w_in, b_in, w_out = residuals
    pre = _broadcast_product(z, w_in) + b_in[None]
    hidden, activation_vjp = jax.vjp(activation, pre)
    (d_pre,) = activation_vjp(_broadcast_product(cotangent, w_out.T))
    d_w_in = _barrier(_barrier(z.T) @ d_pre).T
    d_w_out = _barrier(cotangent.T) @ hidden
    return d_pre @ w_in, d_w_in, jnp.sum(d_pre, 0), d_w_out, jnp.sum(cotangent, 0)


_small_mlp.defvjp(_small_forward, _small_backward)
