"""The paper's fixed 3x3 perception kernels (equation 2), applied depthwise.

A kernel ``g`` acts on a lattice by correlation (equation 1)::

    z[i, j] = sum_{di, dj in -1, 0, 1} g[di + 1, dj + 1] * x[i + di, j + dj]

with ``i`` the row (height) index and ``j`` the column (width) index. Every kernel is
applied to every channel independently ("depthwise"). The implementation pads the lattice
once and combines shifted slices of that one padded array (all channels at once); the
sums are unrolled when the function is traced, so nothing loops over channels at run time.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .boundaries import pad

KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32),
    "average": np.full((3, 3), 1 / 9, np.float32),
    "gradient_x": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32) / 8,
    "gradient_y": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32) / 8,
    "laplacian": np.array([[1, 2, 1], [2, -12, 2], [1, 2, 1]], np.float32) / 4,
}
"""Kernel name -> 3x3 array, exactly as in the paper's equation (2)."""

DERIVED = ("gradient_magnitude",)
"""Perceptions that are not one linear kernel: ``gradient_magnitude`` is
``sqrt(gradient_x^2 + gradient_y^2)``, a rotation-invariant edge detector (unchanged by
on-lattice rotations and flips), so a model with only symmetric perceptions can still see
edges."""

PERCEPTIONS = (*KERNELS, *DERIVED)
"""Every name ``kernels=`` accepts."""

_OFFSETS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]


def check_kernels(kernels: Sequence[str]) -> tuple[str, ...]:
    """Validate a selection of kernel names and return it as a tuple.

    Any non-empty subset of ``PERCEPTIONS`` (the kernels and ``gradient_magnitude``) in
    any order is allowed; repeats are not.
    """
    if isinstance(kernels, str):
        kernels = (kernels,)
    kernels = tuple(kernels)
    if not kernels:
        raise ValueError(f"kernels must name at least one of {sorted(PERCEPTIONS)}")
    unknown = [k for k in kernels if k not in PERCEPTIONS]
    if unknown:
        raise ValueError(f"unknown kernel(s) {unknown}; choose from {sorted(PERCEPTIONS)}")
    if len(set(kernels)) != len(kernels):
        raise ValueError(f"kernels must not repeat, got {list(kernels)}")
    return kernels


def perceive(
    x: Float[Array, "*batch height width channels"],
    kernels: Sequence[str],
    boundary: str,
) -> Float[Array, "*batch height width channels kernels"]:
    """Apply the named kernels depthwise to every channel of ``x``.

    Args:
        x: lattice state, channel-last, with any leading batch axes.
        kernels: kernel names from ``KERNELS``, in the order wanted on the last output axis.
        boundary: ``periodic``, ``fixed`` or ``reflect``.

    Returns:
        The perception ``z`` with one extra trailing axis of size ``len(kernels)``:
        ``z[..., i, j, c, k]`` is kernel ``k`` applied to channel ``c`` at cell ``(i, j)``.
    """
    kernels = check_kernels(kernels)
    height, width = x.shape[-3], x.shape[-2]
    padded = pad(x, boundary)

    def shifted(di: int, dj: int):
        return padded[..., 1 + di : 1 + di + height, 1 + dj : 1 + dj + width, :]

    # Each kernel is a weighted sum of the shifted slices with non-zero weight; written
    # out like this XLA fuses it into one pass over the lattice (no nine-fold stack).
    def linear(name: str):
        terms = [
            shifted(di, dj) * KERNELS[name][di + 1, dj + 1].item()
            for di, dj in _OFFSETS
            if KERNELS[name][di + 1, dj + 1] != 0
        ]
        return functools.reduce(operator.add, terms)

    outputs = []
    for name in kernels:
        if name == "gradient_magnitude":
            squared = linear("gradient_x") ** 2 + linear("gradient_y") ** 2
            # sqrt has an infinite derivative at 0; where the gradient vanishes use 0
            positive = squared > 0
            outputs.append(jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0))
        else:
            outputs.append(linear(name))
    return jnp.stack(outputs, axis=-1)


def apply_kernel(
    x: Float[Array, "*batch height width channels"], kernel: str, boundary: str
) -> Float[Array, "*batch height width channels"]:
    """Apply one named kernel depthwise: ``perceive`` with one kernel, without its last axis."""
    return perceive(x, (kernel,), boundary)[..., 0]
