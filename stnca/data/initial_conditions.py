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
- ``sparse_noise``: B uniform in ``[0, 1]`` in a random fifth of the cells, 0 elsewhere.
  (Under the paper's parameters the PDE smooths dense noise of any level, ``noise``
  included, to the homogeneous state within a few hundred steps; sparse noise keeps the
  amplitude to grow patterns.)
- ``fourier_low``, ``fourier_mid``, ``fourier_high``: random Fourier series (24 plane waves
  of random direction and phase) with wavelengths of 16-32, 8-16 and 4-8 cells, B their
  positive part (``max(f, 0)``, ``f`` scaled to ``[-1, 1]``): smooth but irregular fields
  of three bandwidths, the same physics on any lattice size.
- ``seeds``: sparse small seeds of B, squares of 1-3 cells, about one per 256 cells.
- ``lines``: thin lines (1-2 cells wide) at random angles and a patch of stripes (period
  6-12 cells) at a random angle.
- ``mixture``: the lattice cut into four quadrants, each filled from one of the families
  above (drawn at random), with sharp seams between them.
- ``uniform``: the homogeneous steady state ``A = 1, B = 0`` (nothing ever happens).

``BENCHMARK_FAMILIES`` lists the families of the generalisation benchmark
(``stnca.analysis.benchmark``): all of them but ``noise`` and ``uniform``, which the PDE
smooths to the homogeneous state (a truth the spatial mean predicts exactly).
"""

from __future__ import annotations

import functools
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


def sparse_noise(size, *, key: PRNGKeyArray) -> State:
    """B uniform in ``[0, 1]`` in a random fifth of the cells, 0 elsewhere."""
    height, width = _lattice_size(size)
    k_value, k_where = jax.random.split(key)
    value = jax.random.uniform(k_value, (height, width))
    return _from_b(jnp.where(jax.random.uniform(k_where, (height, width)) < 0.2, value, 0.0))


def _fourier(size, key: PRNGKeyArray, shortest: float, longest: float) -> State:
    """24 plane waves, wavelengths in ``[shortest, longest]`` cells, rounded to the nearest
    wavevector that is periodic on the lattice; B = max(f / max |f|, 0) in [0, 1]."""
    height, width = _lattice_size(size)
    waves = 24
    k_length, k_angle, k_phase, k_amplitude = jax.random.split(key, 4)
    length = jax.random.uniform(k_length, (waves,), minval=shortest, maxval=longest)
    angle = jax.random.uniform(k_angle, (waves,), maxval=2 * jnp.pi)
    phase = jax.random.uniform(k_phase, (waves,), maxval=2 * jnp.pi)
    amplitude = jax.random.uniform(k_amplitude, (waves,), minval=0.5, maxval=1.0)
    m = jnp.round(height * jnp.sin(angle) / length)  # whole periods along each side
    n = jnp.round(width * jnp.cos(angle) / length)
    n = jnp.where((m == 0) & (n == 0), 1.0, n)  # never the constant mode
    rows, cols = _coordinates(height, width)
    argument = (
        2
        * jnp.pi
        * (m[:, None, None] * rows[None] / height + n[:, None, None] * cols[None] / width)
    )
    field = jnp.sum(amplitude[:, None, None] * jnp.cos(argument + phase[:, None, None]), axis=0)
    return _from_b(jnp.maximum(field / jnp.max(jnp.abs(field)), 0.0))


def fourier_low(size, *, key: PRNGKeyArray) -> State:
    """Random Fourier series, wavelengths 16-32 cells."""
    return _fourier(size, key, 16.0, 32.0)


def fourier_mid(size, *, key: PRNGKeyArray) -> State:
    """Random Fourier series, wavelengths 8-16 cells."""
    return _fourier(size, key, 8.0, 16.0)


def fourier_high(size, *, key: PRNGKeyArray) -> State:
    """Random Fourier series, wavelengths 4-8 cells."""
    return _fourier(size, key, 4.0, 8.0)


def seeds(size, *, key: PRNGKeyArray) -> State:
    """Sparse seeds: ``max(1, cells // 256)`` squares of B = 1, sides of 1-3 cells."""
    height, width = _lattice_size(size)
    number = max(1, height * width // 256)
    k_corner, k_side = jax.random.split(key)
    corner = jax.random.uniform(k_corner, (number, 2)) * jnp.array([[height, width]])
    corner = jnp.floor(corner).astype(jnp.int32)
    side = jax.random.randint(k_side, (number,), 1, 4)
    rows, cols = _coordinates(height, width)
    inside = ((rows[None] - corner[:, 0, None, None]) % height < side[:, None, None]) & (
        (cols[None] - corner[:, 1, None, None]) % width < side[:, None, None]
    )
    return _from_b(jnp.any(inside, axis=0).astype(jnp.float32))


def lines(size, *, key: PRNGKeyArray) -> State:
    """Two to four thin lines (1-2 cells wide) at random angles through random points, and a
    disc of stripes (period 6-12 cells, radius a quarter of the lattice) at a random angle."""
    height, width = _lattice_size(size)
    keys = jax.random.split(key, 8)
    most = 4
    number = jax.random.randint(keys[0], (), 2, most + 1)
    point = jax.random.uniform(keys[1], (most + 1, 2)) * jnp.array([[height, width]])
    angle = jax.random.uniform(keys[2], (most + 1,), maxval=jnp.pi)
    half_width = jax.random.uniform(keys[3], (most,), minval=0.5, maxval=1.0)
    period = jax.random.uniform(keys[4], (), minval=6.0, maxval=12.0)
    rows, cols = _coordinates(height, width)

    def wrapped(delta, length):  # signed minimum-image displacement
        return (delta + length / 2) % length - length / 2

    dr = wrapped(rows[None] - point[:, 0, None, None], height)
    dc = wrapped(cols[None] - point[:, 1, None, None], width)
    across = dr * jnp.cos(angle)[:, None, None] - dc * jnp.sin(angle)[:, None, None]
    present = jnp.arange(most) < number
    thin = (jnp.abs(across[:most]) < half_width[:, None, None]) & present[:, None, None]
    disc = dr[most] ** 2 + dc[most] ** 2 < (min(height, width) / 4) ** 2
    stripes = disc & (jnp.cos(2 * jnp.pi * across[most] / period) > 0.5)
    return _from_b((jnp.any(thin, axis=0) | stripes).astype(jnp.float32))


def mixture(size, *, key: PRNGKeyArray) -> State:
    """Four quadrants, each from a family of ``MIXED`` drawn at random."""
    height, width = _lattice_size(size)
    k_pick, *k_family = jax.random.split(key, 1 + len(MIXED))
    fields = jnp.stack(
        [
            INITIAL_CONDITIONS[name]((height, width), key=k)
            for name, k in zip(MIXED, k_family, strict=True)
        ]
    )
    pick = jax.random.randint(k_pick, (2, 2), 0, len(MIXED))
    rows, cols = _coordinates(height, width)
    quadrant = pick[(rows >= height // 2).astype(int), (cols >= width // 2).astype(int)]
    return jnp.take_along_axis(fields, quadrant[None, :, :, None], axis=0)[0]


def uniform(size, *, key: PRNGKeyArray | None = None) -> State:
    """The homogeneous steady state ``A = 1``, ``B = 0``."""
    del key
    height, width = _lattice_size(size)
    return _from_b(jnp.zeros((height, width)))


INITIAL_CONDITIONS: dict[str, Callable[..., State]] = {
    "smooth": smooth,
    "high_frequency": high_frequency,
    "noise": noise,
    "sparse_noise": sparse_noise,
    "fourier_low": fourier_low,
    "fourier_mid": fourier_mid,
    "fourier_high": fourier_high,
    "seeds": seeds,
    "lines": lines,
    "mixture": mixture,
    "uniform": uniform,
}
"""Initial-condition name -> generator ``(size, *, key) -> (height, width, 2)``."""

MIXED: tuple[str, ...] = ("smooth", "high_frequency", "sparse_noise", "fourier_low")
MIXED += ("fourier_mid", "fourier_high", "seeds", "lines")
"""The families a ``mixture`` draws its quadrants from."""

BENCHMARK_FAMILIES = (*MIXED, "mixture")
"""The initial-condition families of the generalisation benchmark."""


EAGER = ("smooth", "high_frequency", "noise", "uniform")
"""Families generated operation by operation, as they always were: compiled, ``smooth``'s
blobs would round differently and every Gray-Scott training set made from it would change.
The others are compiled once per lattice size."""


@functools.partial(jax.jit, static_argnums=(0, 1))
def _compiled(name: str, size: tuple[int, int], key: PRNGKeyArray) -> State:
    return INITIAL_CONDITIONS[name](size, key=key)


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
    if name not in EAGER:
        generator = functools.partial(_compiled, name)
    size = _lattice_size(size)
    if batch is None:
        return generator(size, key=key)
    keys = jax.random.split(key, count(batch, "batch", 1))
    return jnp.stack([generator(size, key=k) for k in keys])


UNSEEN_FAMILY = "high_frequency"
UNSEEN_SEED = 2024
"""The project's unseen test (the demo's and every sweep's): a Gray-Scott run from a
``high_frequency`` initial condition drawn with this seed, a family no preset trains on."""


def unseen_initial_condition(size: int) -> Float[Array, "size size 2"]:
    """The unseen test's initial state ``(size, size, 2)`` (``UNSEEN_FAMILY``, ``UNSEEN_SEED``)."""
    return initial_condition(UNSEEN_FAMILY, size, key=jax.random.key(UNSEEN_SEED))
