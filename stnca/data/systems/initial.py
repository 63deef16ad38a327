"""Initial conditions for the zoo's systems in 1-D, 2-D and 3-D, by family name and key.

- ``noise``: the homogeneous steady state plus uniform noise of half-width the system's
  ``noise_amplitude`` in every cell and channel (Turing systems, phase fields).
- ``blobs``: the homogeneous state plus ``b`` times the system's ``blob_direction``, where
  ``b`` holds random Gaussian blobs (radius ``size/20`` to ``size/8``, wrapped around the
  torus), clipped to [0, 1]: 2-4 blobs in 1-D, 6-12 in 2-D, 12-24 in 3-D. For Gray-Scott
  in 2-D this is exactly ``stnca.data.initial_conditions.smooth`` (B blobs, A = 1 - B).
- ``seeds``: as ``blobs`` but small (radius 1-2 cells) and few: 1-2 in 1-D, 3-6 in 2-D,
  3-6 in 3-D (fronts that spread from points).
- ``uniform``: the homogeneous steady state.

Gray-Scott in 2-D also takes every name of ``stnca.data.initial_conditions``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import System

FAMILIES = ("noise", "blobs", "seeds", "uniform")
"""The families every system takes."""

_BLOBS = {1: (2, 4), 2: (6, 12), 3: (12, 24)}
_SEEDS = {1: (1, 2), 2: (3, 6), 3: (3, 6)}


def blob_field(
    dims: int, size: int, number: tuple[int, int], radius: tuple[float, float], *, key
) -> Float[Array, "*space"]:
    """A sum of ``number[0]``-``number[1]`` Gaussian blobs of amplitude 0.5-1 and radius in
    ``radius`` cells, wrapped around the periodic ``size ** dims`` lattice, clipped to [0, 1]."""
    k_number, k_centre, k_radius, k_amplitude = jax.random.split(key, 4)
    most = number[1]
    count = jax.random.randint(k_number, (), number[0], most + 1)
    centres = jax.random.uniform(k_centre, (most, dims)) * size
    radii = jax.random.uniform(k_radius, (most,), minval=radius[0], maxval=radius[1])
    amplitudes = jax.random.uniform(k_amplitude, (most,), minval=0.5, maxval=1.0)
    amplitudes = jnp.where(jnp.arange(most) < count, amplitudes, 0.0)
    axes = jnp.meshgrid(*([jnp.arange(size)] * dims), indexing="ij")
    squared = jnp.zeros((most,) + (size,) * dims)
    for axis, coordinate in enumerate(axes):
        delta = coordinate[None] - centres[(slice(None), axis, *([None] * dims))]
        squared = squared + jnp.abs((delta + size / 2) % size - size / 2) ** 2
    shape = (most,) + (1,) * dims
    blobs = amplitudes.reshape(shape) * jnp.exp(-squared / (2 * radii.reshape(shape) ** 2))
    return jnp.clip(jnp.sum(blobs, axis=0), 0.0, 1.0)


def families(system: System, dims: int) -> tuple[str, ...]:
    """The initial-condition families ``system`` takes in ``dims`` dimensions."""
    if system.name == "gray_scott" and dims == 2:
        from ..initial_conditions import INITIAL_CONDITIONS

        return (*FAMILIES, *(name for name in INITIAL_CONDITIONS if name not in FAMILIES))
    return FAMILIES


def draw(
    system: System, family: str, dims: int, size: int, *, key: PRNGKeyArray
) -> Float[Array, "*space channels"]:
    """One initial condition of ``family`` for ``system``: float32 ``(*space, channels)``."""
    allowed = families(system, dims)
    if family not in allowed:
        raise ValueError(
            f"unknown initial condition {family!r} for {system.name} in {dims}-D; choose "
            f"from {', '.join(allowed)}"
        )
    channels = len(system.channels)
    space = (size,) * dims
    base = jnp.asarray(system.homogeneous(), jnp.float32).reshape((1,) * dims + (channels,))
    if system.name == "gray_scott" and dims == 2 and family not in ("noise", "seeds", "uniform"):
        from ..initial_conditions import initial_condition

        return initial_condition("smooth" if family == "blobs" else family, size, key=key)
    if family == "uniform":
        return jnp.broadcast_to(base, (*space, channels))
    if family == "noise":
        noise = jax.random.uniform(key, (*space, channels), minval=-1.0, maxval=1.0)
        return (base + system.noise_amplitude * noise).astype(jnp.float32)
    if family == "blobs":
        field = blob_field(dims, size, _BLOBS[dims], (size / 20, size / 8), key=key)
    else:  # seeds
        field = blob_field(dims, size, _SEEDS[dims], (1.0, 2.0), key=key)
    direction = jnp.asarray(system.blob_direction, jnp.float32).reshape(base.shape)
    return (base + field[..., None] * direction).astype(jnp.float32)
