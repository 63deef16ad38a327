"""Damage: discs of the lattice erased, for regeneration training and its analysis (after
growing NCA, Mordvintsev et al. 2020, who erase random circles from part of each batch).

A disc of radius ``r`` cells about a centre ``c`` covers the cells whose centres lie within
``r`` of ``c`` (cell ``i``'s centre at coordinate ``i``); on a line it is a segment, in a
volume a ball. Inside it the state is reset: the hidden channels to zero, the observable
channels to the ``fill`` (``FILLS``), a conditioned model's condition channels kept.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ..model import NCA

FILLS = ("zero", "initial", "noise")
"""What an erased disc's observable channels hold: ``zero`` (for premultiplied RGBA images:
transparent, the empty lattice; growing NCA's erasure), ``initial`` (the state the run
started from: a trajectory's first frame) or ``noise`` (uniform in ``[low, high]``)."""


def disc_mask(lattice: tuple[int, ...], centre, radius) -> Bool[Array, "*lattice"]:
    """True on the cells of a lattice of shape ``lattice`` within ``radius`` cells of
    ``centre`` (one coordinate per lattice axis, in cells). ``centre`` and ``radius`` may be
    traced (e.g. under ``vmap``)."""
    centre = jnp.asarray(centre, jnp.float32)
    grids = jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) for n in lattice], indexing="ij")
    squared = sum((grid - centre[axis]) ** 2 for axis, grid in enumerate(grids))
    return squared <= jnp.asarray(radius, jnp.float32) ** 2


def erase(
    model: NCA,
    state: Float[Array, "*batch *lattice channels"],
    mask: Bool[Array, "*batch *lattice"],
    replacement: Float[Array, "*batch *lattice observable"] | float = 0.0,
) -> Float[Array, "*batch *lattice channels"]:
    """``state`` with the cells of ``mask`` reset: observable channels to ``replacement``
    (broadcast), hidden channels to zero, condition channels kept."""
    observable = model.observable_channels
    replacement = jnp.broadcast_to(
        jnp.asarray(replacement, state.dtype), state.shape[:-1] + (observable,)
    )
    hidden = jnp.zeros(state.shape[:-1] + (model.hidden_channels,), state.dtype)
    reset = jnp.concatenate([replacement, state[..., observable : model.data_channels], hidden], -1)
    return jnp.where(mask[..., None], reset, state)


def fill_values(
    fill: str,
    initial: Float[Array, "*batch *lattice observable"],
    bounds: tuple[float, float],
    *,
    key: PRNGKeyArray,
) -> Float[Array, "*batch *lattice observable"]:
    """The observable values a disc is reset to (``FILLS``), shaped like ``initial`` (the
    observable channels of the state the run started from)."""
    if fill == "zero":
        return jnp.zeros_like(initial)
    if fill == "initial":
        return initial
    if fill == "noise":
        return jax.random.uniform(key, initial.shape, initial.dtype, bounds[0], bounds[1])
    raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def damage_start_states(
    model: NCA,
    states: Float[Array, "R M *lattice C"],
    *,
    fraction: float,
    radius: tuple[float, float],
    fill: str,
    bounds: tuple[float, float],
    reinitialised_batches: int,
    key: PRNGKeyArray,
) -> Float[Array, "R M *lattice C"]:
    """Erase one random disc from each of a random part of the propagated start states.

    The start states that can be damaged are those of the trajectories that propagate
    (``r >= reinitialised_batches``), every transition but the first (``m >= 1``: transition
    0 always starts from the data's frame 0). Each is damaged with probability
    ``fraction``; its disc's radius is drawn from ``U(radius[0], radius[1])`` times the
    lattice's shortest side and its centre uniformly over the lattice. ``fill`` as in
    ``FILLS``: ``initial`` is the trajectory's frame 0 (``states[:, 0]``), ``noise`` is
    uniform in ``bounds``.
    """
    k_pick, k_centre, k_radius, k_noise = jax.random.split(key, 4)
    trajectories, transitions = states.shape[:2]
    lattice = tuple(states.shape[2:-1])
    eligible = (jnp.arange(trajectories)[:, None] >= reinitialised_batches) & (
        jnp.arange(transitions)[None, :] >= 1
    )
    picked = jax.random.bernoulli(k_pick, fraction, (trajectories, transitions)) & eligible
    size = jnp.asarray(lattice, jnp.float32).reshape(1, 1, -1)
    centres = jax.random.uniform(k_centre, (trajectories, transitions, len(lattice))) * size - 0.5
    radii = min(lattice) * jax.random.uniform(
        k_radius, (trajectories, transitions), minval=radius[0], maxval=radius[1]
    )
    masks = jax.vmap(jax.vmap(lambda c, r: disc_mask(lattice, c, r)))(centres, radii)
    masks = masks & picked.reshape(picked.shape + (1,) * len(lattice))
    initial = jnp.broadcast_to(
        model.observable(states[:, :1]), states.shape[:-1] + (model.observable_channels,)
    )
    return erase(model, states, masks, fill_values(fill, initial, bounds, key=k_noise))
