"""Noise applied to training data: measurement noise (section 3.1.2) and augmentation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def measurement_noise(
    data: Float[Array | np.ndarray, "..."], xi: float, *, key: PRNGKeyArray
) -> Float[Array, "..."]:
    """The paper's noisy data ``(1 - xi) y + xi eta`` with ``eta ~ U(min y, max y)``.

    ``min y`` and ``max y`` are taken over the whole array (the whole trajectory set);
    ``xi = 0`` returns the data unchanged and ``xi = 1`` pure noise.
    """
    if not 0 <= xi <= 1:
        raise ValueError(f"xi must be in [0, 1], got {xi}")
    data = jnp.asarray(data)
    if xi == 0:
        return data
    eta = jax.random.uniform(key, data.shape, data.dtype, jnp.min(data), jnp.max(data))
    return (1 - xi) * data + xi * eta


def embed(
    frames: Float[Array | np.ndarray, "... H W C"], padding: int
) -> Float[Array, "... H2 W2 C"]:
    """Embed a lattice in a larger one: ``padding`` empty (zero) cells on every side."""
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    frames = jnp.asarray(frames)
    widths = [(0, 0)] * (frames.ndim - 3) + [(padding, padding), (padding, padding), (0, 0)]
    return jnp.pad(frames, widths)


def translate(
    frames: Float[Array, "... H W C"], shift, max_shift: int | None = None
) -> Float[Array, "... H W C"]:
    """Shift the lattice content by ``shift = (rows, columns)`` cells, filling with zeros.

    Content shifted past an edge is lost (it never wraps to the other side). ``shift`` may
    be traced (e.g. under ``vmap``); then ``max_shift``, a static bound on ``|shift|``, is
    required.
    """
    frames = jnp.asarray(frames)
    if max_shift is None:
        max_shift = max(abs(int(shift[0])), abs(int(shift[1])))
    height, width = frames.shape[-3], frames.shape[-2]
    padded = embed(frames, max_shift)
    start = [0] * (frames.ndim - 3) + [max_shift - shift[0], max_shift - shift[1], 0]
    return jax.lax.dynamic_slice(
        padded, start, frames.shape[:-3] + (height, width, frames.shape[-1])
    )


def rotate(frames: Float[Array, "... H W C"], degrees) -> Float[Array, "... H W C"]:
    """Rotate the lattice content by ``degrees`` anticlockwise (as displayed, rows downwards)
    about the lattice centre; on a square lattice ``rotate(x, 90)`` equals
    ``numpy.rot90(x, 1, axes=(-3, -2))``.

    Bilinear interpolation, zero outside; multiples of 90 degrees map cells onto cells
    exactly (on-lattice rotations).
    """
    frames = jnp.asarray(frames)
    height, width = frames.shape[-3], frames.shape[-2]
    theta = jnp.deg2rad(degrees)
    rows, cols = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    centre_r, centre_c = (height - 1) / 2, (width - 1) / 2
    dr, dc = rows - centre_r, cols - centre_c
    # the output cell (r, c) reads the input at the inverse rotation of its position
    source_r = centre_r + jnp.cos(theta) * dr + jnp.sin(theta) * dc
    source_c = centre_c - jnp.sin(theta) * dr + jnp.cos(theta) * dc
    source_r = jnp.round(source_r * 1e4) / 1e4  # exact cells for on-lattice angles
    source_c = jnp.round(source_c * 1e4) / 1e4
    flat = frames.reshape((-1, height, width, frames.shape[-1]))

    def one(image):
        def channel(plane):
            return jax.scipy.ndimage.map_coordinates(
                plane, [source_r, source_c], order=1, mode="constant", cval=0.0
            )

        return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)

    return jax.vmap(one)(flat).reshape(frames.shape)


def flip(frames: Float[Array, "... H W C"], axis: int = -2) -> Float[Array, "... H W C"]:
    """Mirror the lattice: ``axis=-2`` left-right, ``axis=-3`` up-down."""
    return jnp.flip(frames, axis=axis)


ROTATIONS = ("none", "lattice", "any")


def augmented_copies(
    sequence: Float[Array, "frames H W C"],
    copies: int,
    *,
    key: PRNGKeyArray,
    max_shift: int = 0,
    rotation: str = "none",
    flips: bool = False,
) -> Float[Array, "copies frames H W C"]:
    """``copies`` versions of one trajectory, each moved by its own random transformation.

    Every frame of a copy gets the same transformation, so a copy is still a consistent
    trajectory. Copy 0 is the untouched sequence. Each other copy is, in this order,
    flipped left-right with probability 1/2 (if ``flips``), rotated (``rotation``:
    ``"none"``; ``"lattice"``, a random multiple of 90 degrees; ``"any"``, a uniform angle in
    [0, 360)), and translated by a uniform integer shift in ``[-max_shift, max_shift]``
    (zero fill: on a lattice embedded with ``padding >= max_shift`` nothing is lost).
    Off-lattice rotations turn the image's corners up to 21% of its size beyond its box;
    with too little padding they are clipped at the lattice edge.
    """
    if rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
    return _augmented_copies(
        jnp.asarray(sequence),
        key,
        copies=int(copies),
        max_shift=int(max_shift),
        rotation=rotation,
        flips=bool(flips),
    )


@functools.partial(jax.jit, static_argnames=("copies", "max_shift", "rotation", "flips"))
def _augmented_copies(sequence, key, *, copies, max_shift, rotation, flips):
    """``augmented_copies`` as one compiled program (op by op, each redraw of a training
    run's copies dispatched and, the first time, compiled dozens of small programs)."""
    k_flip, k_angle, k_shift = jax.random.split(key, 3)
    flipped = jax.random.bernoulli(k_flip, 0.5, (copies,)) & flips
    if rotation == "lattice":
        angles = 90.0 * jax.random.randint(k_angle, (copies,), 0, 4)
    elif rotation == "any":
        angles = jax.random.uniform(k_angle, (copies,), maxval=360.0)
    else:
        angles = jnp.zeros((copies,))
    shifts = jax.random.randint(k_shift, (copies, 2), -max_shift, max_shift + 1)
    identity = jnp.arange(copies) == 0
    flipped = flipped & ~identity
    angles = jnp.where(identity, 0.0, angles)
    shifts = jnp.where(identity[:, None], 0, shifts)

    def one(is_flipped, angle, shift):
        frames = jnp.where(is_flipped, flip(sequence), sequence) if flips else sequence
        if rotation != "none":
            frames = rotate(frames, angle)
        return translate(frames, shift, max_shift)

    return jax.vmap(one)(flipped, angles, shifts)
