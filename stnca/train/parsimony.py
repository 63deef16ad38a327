"""Penalties on the weights that favour small rules (the paper's section 4: "train using
weight decay ... channels with weights close to zero", "sparsity").

With ``W2`` the input layer (``w_in``, hidden units x channels x kernels), ``W1`` the output
layer (``w_out``, updated channels x hidden units) and ``v`` its bias (``b_out``):

- ``l1``: ``sum |W2| + sum |W1|``, the lasso on every weight: single weights go to zero;
- ``kernel_lasso``: ``sum_{c, k} ||W2[:, c, k]||_2``, the group lasso on the first layer's
  kernel-channel blocks: a whole block (every hidden unit's reading of kernel ``k`` of
  channel ``c``) goes to zero together, so the rule stops perceiving it;
- ``channel_lasso``: ``sum_{hidden c} sqrt(||W2[:, c, :]||^2 + ||W1[c, :]||^2 + v_c^2)``,
  the group lasso on whole hidden channels, everything that reads or writes one: a channel
  the rule can do without is switched off, and ``stnca prune`` can then remove it.

Each is added to the training objective with its weight (``training.l1_penalty``,
``training.kernel_lasso``, ``training.channel_lasso``) once per update, so its (sub)gradient,
``w sign(W)`` for the lasso (JAX takes 1 at ``W = 0``) and ``w W_g / ||W_g||`` for a
group, joins the data's before the gradient normalisation and the optimiser (the norms are
smoothed by 1e-12 inside the square root, so a group at zero has gradient zero, not NaN).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array

from ..model import NCA

SMOOTH = 1e-12
"""Added under each group norm's square root: a zero group's gradient is 0, not NaN."""


def _norm(squares: Array) -> Array:
    return jnp.sqrt(squares + SMOOTH) - jnp.sqrt(SMOOTH)


def l1(model: NCA) -> Array:
    """``sum |W2| + sum |W1|``."""
    return jnp.sum(jnp.abs(model.w_in)) + jnp.sum(jnp.abs(model.w_out))


def kernel_lasso(model: NCA) -> Array:
    """``sum_{c, k} ||W2[:, c, k]||_2`` over the first layer's kernel-channel blocks."""
    return jnp.sum(_norm(jnp.sum(model.w_in**2, axis=0)))


def channel_lasso(model: NCA) -> Array:
    """``sum`` over hidden channels of the norm of everything that reads or writes it."""
    first = model.data_channels  # the hidden channels follow the data channels
    updated = model.observable_channels  # ... and the observable ones among the updated
    hidden = model.hidden_channels
    if not hidden:
        return jnp.zeros((), model.w_in.dtype)
    reads = jnp.sum(model.w_in[:, first : first + hidden, :] ** 2, axis=(0, 2))
    writes = jnp.sum(model.w_out[updated : updated + hidden] ** 2, axis=1)
    bias = model.b_out[updated : updated + hidden] ** 2
    return jnp.sum(_norm(reads + writes + bias))


def parsimony(model: NCA, l1_weight: float, kernel_weight: float, channel_weight: float) -> Array:
    """The weighted sum of the three penalties (terms of weight 0 are not computed)."""
    total = jnp.zeros((), model.w_in.dtype)
    if l1_weight:
        total = total + l1_weight * l1(model)
    if kernel_weight:
        total = total + kernel_weight * kernel_lasso(model)
    if channel_weight:
        total = total + channel_weight * channel_lasso(model)
    return total
