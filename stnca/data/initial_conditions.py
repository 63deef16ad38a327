"""Initial conditions for the Gray-Scott equations, by name and key.

Each generator returns (A, B) of shape ``(height, width, 2)`` with ``A = 1 - B``, B in
``[0, 1]``, on a periodic lattice:

- ``smooth``: the training family. 6-12 random Gaussian blobs of B (wrapped around the
  torus) in a sea of ``A = 1``. Smooth: almost all spectral power at wavelengths of many
  cells.
- ``high_frequency``: the test family, for generalisation. Random rectangles, hollow
  squares and patches of stripes and checkerboards with a period of 4-8 cells, all with
  sharp edges: the "high frequency components not observed at all during training" of the
  paper's section 3.1.1 (after the authors' test condition of stripes of period 8 beside a
  hollow square).
- ``noise``: B uniform in ``[0, 0.5]`` in every cell.
- ``uniform``: the homogeneous steady state ``A = 1, B = 0`` (nothing ever happens).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import count

State = Float[Array, "height width 2"]


def _lattice_size(size) -> tuple[int, int]:
    if isinstance(size, tuple | list):
        if len(size) != 2:
            raise ValueError(f"size must be an integer or (height, width), got {size!r}")
        height, width = (count(s, "size", 3) for s in size)
    else:
        height = width = count(size, "size", 3)
    return height, width


def _from_b(b: Array) -> State:
    b = jnp.clip(b, 0.0, 1.0).astype(jnp.float32)
    return jnp.stack([1.0 - b, b], axis=-1)


def _coordinates(height: int, width: int):
    return jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")


def smooth(size, *, key: PRNGKeyArray) -> State:
    """Training family: 6-12 Gaussian blobs of B, radius ``size/20`` to ``size/8``."""
    height, width = _lattice_size(size)
    k_number, k_centre, k_radius, k_amplitude = jax.random.split(key, 4)
    max_blobs = 12
    number = jax.random.randint(k_number, (), 6, max_blobs + 1)
    centres = jax.random.uniform(k_centre, (max_blobs, 2)) * jnp.array([[height, width]])
    scale = min(height, width)
    radii = jax.random.uniform(k_radius, (max_blobs,), minval=scale / 20, maxval=scale / 8)
    amplitudes = jax.random.uniform(k_amplitude, (max_blobs,), minval=0.5, maxval=1.0)
    amplitudes = jnp.where(jnp.arange(max_blobs) < number, amplitudes, 0.0)
    rows, cols = _coordinates(height, width)

    def wrapped(delta, period):
        return jnp.abs((delta + period / 2) % period - period / 2)

    dr = wrapped(rows[None] - centres[:, 0, None, None], height)
    dc = wrapped(cols[None] - centres[:, 1, None, None], width)
    blobs = amplitudes[:, None, None] * jnp.exp(-(dr**2 + dc**2) / (2 * radii[:, None, None] ** 2))
    return _from_b(jnp.sum(blobs, axis=0))


def high_frequency(size, *, key: PRNGKeyArray) -> State:
    """Test family: sharp rectangles, hollow squares, stripes and checkerboards (period 4-8)."""
    height, width = _lattice_size(size)
    rows, cols = _coordinates(height, width)
    scale = min(height, width)
    shapes = 6
    keys = jax.random.split(key, 7)
    kind = jax.random.randint(keys[0], (shapes,), 0, 4)
    corner = jax.random.uniform(keys[1], (shapes, 2)) * jnp.array([[height, width]])
    extent = jax.random.uniform(keys[2], (shapes, 2), minval=scale / 6, maxval=scale / 3)
    period = jax.random.randint(keys[3], (shapes,), 4, 9)
    phase = jax.random.randint(keys[4], (shapes,), 0, 8)
    present = jax.random.uniform(keys[5], (shapes,)) < 0.8
    present = present.at[0].set(True)

    def inside(r, c, r0, c0, h, w):
        return ((r - r0) % height < h) & ((c - c0) % width < w)

    def one_shape(kind, corner, extent, period, phase):
        r0, c0 = corner
        h, w = extent
        box = inside(rows, cols, r0, c0, h, w)
        rim = jnp.maximum(2.0, jnp.minimum(h, w) / 6)
        hollow = box & ~inside(rows, cols, r0 + rim, c0 + rim, h - 2 * rim, w - 2 * rim)
        on = (rows + phase) % period < period // 2
        on_c = (cols + phase) % period < period // 2
        patterns = jnp.stack([box, hollow, box & on, box & (on ^ on_c)])
        return patterns[kind]

    masks = jax.vmap(one_shape)(kind, corner, extent, period, phase)
    masks = masks & present[:, None, None]
    return _from_b(jnp.any(masks, axis=0).astype(jnp.float32))


def noise(size, *, key: PRNGKeyArray) -> State:
    """B uniform in ``[0, 0.5]`` independently in every cell."""
    height, width = _lattice_size(size)
    return _from_b(jax.random.uniform(key, (height, width), maxval=0.5))


def uniform(size, *, key: PRNGKeyArray | None = None) -> State:
    """The homogeneous steady state ``A = 1``, ``B = 0``."""
    del key
    height, width = _lattice_size(size)
    return _from_b(jnp.zeros((height, width)))


INITIAL_CONDITIONS: dict[str, Callable[..., State]] = {
    "smooth": smooth,
    "high_frequency": high_frequency,
    "noise": noise,
    "uniform": uniform,
}
"""Initial-condition name -> generator ``(size, *, key) -> (height, width, 2)``."""


def initial_condition(
    name: str, size, *, key: PRNGKeyArray, batch: int | None = None
) -> Float[Array, "*batch height width 2"]:
    """Generate a named Gray-Scott initial condition.

    Args:
        name: one of ``INITIAL_CONDITIONS``.
        size: lattice size ``S`` (square) or ``(height, width)``.
        key: PRNG key; the same key gives the same condition.
        batch: if given, return ``batch`` independent conditions stacked on a leading axis.
    """
    if name not in INITIAL_CONDITIONS:
        raise ValueError(
            f"unknown initial condition {name!r}; choose from {sorted(INITIAL_CONDITIONS)}"
        )
    generator = INITIAL_CONDITIONS[name]
    _lattice_size(size)
    if batch is None:
        return generator(size, key=key)
    keys = jax.random.split(key, count(batch, "batch", 1))
    return jnp.stack([generator(size, key=k) for k in keys])
