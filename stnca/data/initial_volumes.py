"""Gray-Scott initial conditions on lines and volumes (1-D and 3-D lattices), by name and key.

The 2-D families of ``stnca.data.initial_conditions`` carried over to any dimension where
their definition does not depend on the plane: ``smooth`` (6-12 Gaussian blobs of B,
radius ``size/20`` to ``size/8``, wrapped around the periodic lattice), ``fourier_low``,
``fourier_mid`` and ``fourier_high`` (24 plane waves of random direction and phase with
wavelengths of 16-32, 8-16 and 4-8 cells, B their positive part), ``sparse_noise`` (B
uniform in ``[0, 1]`` in a random fifth of the cells), ``noise`` (B uniform in
``[0, 0.5]``), ``seeds`` (cubes of side 1-3 cells, about one per 256 cells) and
``uniform`` (``A = 1, B = 0``). Each returns ``(*lattice, 2)`` with ``A = 1 - B``; in 2-D
``initial_state`` hands over to ``stnca.data.initial_conditions`` (its exact draws).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import count
from .initial_conditions import (
    INITIAL_CONDITIONS,
    UNSEEN_SEED,
    initial_condition,
    unseen_initial_condition,
)

Lattice = tuple[int, ...]


def _from_b(b: Array) -> Array:
    b = jnp.clip(b, 0.0, 1.0).astype(jnp.float32)
    return jnp.stack([1.0 - b, b], axis=-1)


def _grid(lattice: Lattice) -> Array:
    """Cell coordinates, shape ``(dims, *lattice)``."""
    return jnp.stack(jnp.meshgrid(*[jnp.arange(n) for n in lattice], indexing="ij"))


def smooth(lattice: Lattice, key: PRNGKeyArray) -> Array:
    """6-12 Gaussian blobs of B, radius ``size/20`` to ``size/8`` (the training family)."""
    k_number, k_centre, k_radius, k_amplitude = jax.random.split(key, 4)
    blobs, dims = 12, len(lattice)
    number = jax.random.randint(k_number, (), 6, blobs + 1)
    sizes = jnp.array(lattice, jnp.float32)
    centres = jax.random.uniform(k_centre, (blobs, dims)) * sizes[None]
    scale = min(lattice)
    radii = jax.random.uniform(k_radius, (blobs,), minval=scale / 20, maxval=scale / 8)
    amplitudes = jax.random.uniform(k_amplitude, (blobs,), minval=0.5, maxval=1.0)
    amplitudes = jnp.where(jnp.arange(blobs) < number, amplitudes, 0.0)
    grid = _grid(lattice)[None]  # (1, dims, *lattice)
    centre = centres.reshape(blobs, dims, *([1] * dims))
    period = sizes.reshape(1, dims, *([1] * dims))
    delta = jnp.abs((grid - centre + period / 2) % period - period / 2)
    width = (2 * radii**2).reshape(blobs, *([1] * dims))
    amplitude = amplitudes.reshape(blobs, *([1] * dims))
    return _from_b(jnp.sum(amplitude * jnp.exp(-jnp.sum(delta**2, axis=1) / width), axis=0))


def _fourier(lattice: Lattice, key: PRNGKeyArray, shortest: float, longest: float) -> Array:
    """B = the positive part of 24 random plane waves, wavelengths in [shortest, longest]."""
    waves, dims = 24, len(lattice)
    k_direction, k_length, k_phase = jax.random.split(key, 3)
    direction = jax.random.normal(k_direction, (waves, dims))
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    length = jax.random.uniform(k_length, (waves,), minval=shortest, maxval=longest)
    phase = jax.random.uniform(k_phase, (waves,), maxval=2 * jnp.pi)
    wavevector = 2 * jnp.pi * direction / length[:, None]
    # round each wavevector to the lattice's periodic ones, so the field wraps seamlessly
    sizes = jnp.array(lattice, jnp.float32)
    wavevector = jnp.round(wavevector * sizes[None] / (2 * jnp.pi)) * 2 * jnp.pi / sizes[None]
    grid = _grid(lattice).astype(jnp.float32)
    argument = jnp.tensordot(wavevector, grid, axes=1) + phase.reshape(waves, *([1] * dims))
    field = jnp.sum(jnp.cos(argument), axis=0)
    field = field / jnp.maximum(jnp.max(jnp.abs(field)), 1e-6)
    return _from_b(jnp.maximum(field, 0.0))


def sparse_noise(lattice: Lattice, key: PRNGKeyArray) -> Array:
    """B uniform in [0, 1] in a random fifth of the cells, 0 elsewhere."""
    k_where, k_value = jax.random.split(key)
    where = jax.random.uniform(k_where, lattice) < 0.2
    return _from_b(jnp.where(where, jax.random.uniform(k_value, lattice), 0.0))


def noise(lattice: Lattice, key: PRNGKeyArray) -> Array:
    """B uniform in [0, 0.5] in every cell."""
    return _from_b(jax.random.uniform(key, lattice, maxval=0.5))


def seeds(lattice: Lattice, key: PRNGKeyArray) -> Array:
    """Cubes of B = 1 with sides of 1-3 cells, about one per 256 cells (at least one)."""
    number = max(1, int(np.prod(lattice)) // 256)
    k_corner, k_side = jax.random.split(key)
    corners = jax.random.randint(k_corner, (number, len(lattice)), 0, jnp.array([lattice]))
    sides = jax.random.randint(k_side, (number,), 1, 4)
    grid = _grid(lattice)[None]
    corner = corners.reshape(number, len(lattice), *([1] * len(lattice)))
    side = sides.reshape(number, 1, *([1] * len(lattice)))
    period = jnp.array(lattice).reshape(1, len(lattice), *([1] * len(lattice)))
    inside = jnp.all((grid - corner) % period < side, axis=1)
    return _from_b(jnp.any(inside, axis=0).astype(jnp.float32))


def uniform(lattice: Lattice, key: PRNGKeyArray) -> Array:
    """The homogeneous steady state A = 1, B = 0."""
    del key
    return _from_b(jnp.zeros(lattice))


FAMILIES: dict[str, Callable[[Lattice, PRNGKeyArray], Array]] = {
    "smooth": smooth,
    "fourier_low": lambda lattice, key: _fourier(lattice, key, 16, 32),
    "fourier_mid": lambda lattice, key: _fourier(lattice, key, 8, 16),
    "fourier_high": lambda lattice, key: _fourier(lattice, key, 4, 8),
    "sparse_noise": sparse_noise,
    "noise": noise,
    "seeds": seeds,
    "uniform": uniform,
}
"""Family name -> generator ``(lattice, key) -> (*lattice, 2)`` on 1-D and 3-D lattices."""


def initial_state(
    name: str, size: int, dims: int, *, key: PRNGKeyArray, batch: int | None = None
) -> Float[Array, "*batch *lattice 2"]:
    """A named Gray-Scott initial condition on a ``dims``-dimensional lattice of side ``size``
    (``batch`` of them on a leading axis if given); in 2-D the families of
    ``stnca.data.initial_conditions``, drawn exactly as there."""
    if dims == 2:
        return initial_condition(name, size, key=key, batch=batch)
    if dims not in (1, 3):
        raise ValueError(f"dimensions must be 1, 2 or 3, got {dims!r}")
    if name not in FAMILIES:
        known = sorted(FAMILIES)
        extra = " (a 2-D family)" if name in INITIAL_CONDITIONS else ""
        raise ValueError(
            f"initial condition {name!r}{extra} is not drawn on {dims}-D lattices; "
            f"choose from {known}"
        )
    lattice = (count(size, "size", 3),) * dims
    if batch is None:
        return _drawn(name, lattice, key)
    keys = jax.random.split(key, count(batch, "batch", 1))
    return jnp.stack([_drawn(name, lattice, k) for k in keys])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _drawn(name: str, lattice: tuple[int, ...], key: PRNGKeyArray) -> jax.Array:
    """One draw of a family, compiled once per family and lattice."""
    return FAMILIES[name](lattice, key)


UNSEEN_FAMILY = "fourier_high"
"""The unseen test's family on lines and in volumes (``high_frequency``'s shapes are 2-D):
4-8 cell waves, sharp next to the training family ``smooth``."""


def unseen_state(size: int, dims: int = 2) -> Float[Array, "*lattice 2"]:
    """The project's unseen test's initial state on a ``dims``-dimensional lattice: in 2-D
    ``stnca.data.initial_conditions.unseen_initial_condition``, else ``UNSEEN_FAMILY``
    drawn with the same seed."""
    if dims == 2:
        return unseen_initial_condition(size)
    return initial_state(UNSEEN_FAMILY, size, dims, key=jax.random.key(UNSEEN_SEED))
