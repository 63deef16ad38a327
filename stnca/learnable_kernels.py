"""Learnable 3x3 perception kernels: the paper's "arbitrary kernels" (its discussion), beside
or instead of the fixed stencils of ``stnca.stencils``.

A learnable kernel is a 3x3 array ``g`` trained with the rest of the rule and applied like
the fixed ones, depthwise, by correlation (``stnca.stencils``, equation 1). Its free
parameters depend on the ``symmetry``:

- ``none``: the nine weights themselves, ``(kernels, 3, 3)``.
- ``d4``: three numbers per kernel, ``(kernels, 3)``: the centre, the four edge cells and
  the four corner cells, so that ``g`` is unchanged by the eight rotations and reflections
  of the square (the dihedral group D4, the lattice's own symmetries). Such a kernel is
  isotropic as far as a 3x3 stencil can be, like the Laplacian: the D4-invariant 3x3
  kernels are exactly the combinations of ``identity``, ``average`` and ``laplacian``.

The kernels start small and random (``INIT_SCALE``); a model's output layer starts at zero,
so an untrained NCA still leaves every state unchanged.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._validate import choice, count
from .boundaries import pad

SYMMETRIES = ("none", "d4")
"""The parametrisations of a learnable kernel (module docstring)."""

INIT_SCALE = 0.1
"""Standard deviation of a learnable kernel's free parameters at initialisation."""

D4_BASIS = np.array(
    [
        [[0, 0, 0], [0, 1, 0], [0, 0, 0]],  # centre
        [[0, 1, 0], [1, 0, 1], [0, 1, 0]],  # edges
        [[1, 0, 1], [0, 0, 0], [1, 0, 1]],  # corners
    ],
    np.float32,
)
"""The three 3x3 masks a D4-tied kernel combines: centre, edge cells, corner cells."""


def d4_images(kernel: np.ndarray) -> list[np.ndarray]:
    """The eight images of a 3x3 ``kernel`` under the rotations and reflections of the square."""
    turns = [np.rot90(kernel, r) for r in range(4)]
    return turns + [np.transpose(k) for k in turns]


def check_learnable(learnable_kernels: int, symmetry: str, dimensions: int) -> tuple[int, str]:
    """Validate a count of learnable kernels and their symmetry on a lattice of that dimension;
    return them. Learnable kernels are 3x3 (2-D lattices only); a symmetry other than
    ``none`` needs at least one kernel."""
    number = count(learnable_kernels, "learnable_kernels", 0)
    choice(symmetry, "learnable_kernel_symmetry", SYMMETRIES)
    if number and dimensions != 2:
        raise ValueError(
            f"learnable_kernels needs a 2-D lattice (3x3 kernels), got dimensions = {dimensions}"
        )
    if not number and symmetry != "none":
        raise ValueError(
            f"learnable_kernel_symmetry = {symmetry!r} needs learnable_kernels >= 1 "
            "(with none it must be 'none')"
        )
    return number, symmetry


def parameter_shape(learnable_kernels: int, symmetry: str) -> tuple[int, ...]:
    """The shape of the free parameters of ``learnable_kernels`` kernels."""
    return (learnable_kernels, 3) if symmetry == "d4" else (learnable_kernels, 3, 3)


def init_parameters(
    learnable_kernels: int, symmetry: str, *, key: PRNGKeyArray
) -> Float[Array, "kernels ..."]:
    """Small random free parameters (``INIT_SCALE``) for ``learnable_kernels`` kernels."""
    return INIT_SCALE * jax.random.normal(key, parameter_shape(learnable_kernels, symmetry))


def kernel_arrays(
    parameters: Float[Array, "kernels ..."], symmetry: str
) -> Float[Array, "kernels 3 3"]:
    """The kernels as 3x3 arrays: the parameters themselves, or under ``d4`` their
    combinations of the centre, edge and corner masks (``D4_BASIS``)."""
    if symmetry == "d4":
        return jnp.einsum("kb,bij->kij", parameters, jnp.asarray(D4_BASIS))
    return parameters


def _basis(
    x: Float[Array, "*batch height width channels"], symmetry: str, boundary: str
) -> Float[Array, "*batch height width channels basis"]:
    """What the free parameters multiply: the nine shifted copies of ``x`` (row-major, as a
    kernel's ``ravel``), or under ``d4`` the centre, the sum of the four edge neighbours and
    the sum of the four corner neighbours."""
    height, width = x.shape[-3:-1]
    padded = pad(x, boundary)

    def shifted(di: int, dj: int):
        return padded[..., 1 + di : 1 + di + height, 1 + dj : 1 + dj + width, :]

    if symmetry == "d4":
        edges = shifted(-1, 0) + shifted(0, -1) + shifted(0, 1) + shifted(1, 0)
        corners = shifted(-1, -1) + shifted(-1, 1) + shifted(1, -1) + shifted(1, 1)
        return jnp.stack([shifted(0, 0), edges, corners], axis=-1)
    return jnp.stack([shifted(*o) for o in itertools.product((-1, 0, 1), repeat=2)], axis=-1)


def perceive_learnable(
    x: Float[Array, "*batch height width channels"],
    parameters: Float[Array, "kernels ..."],
    symmetry: str,
    boundary: str,
) -> Float[Array, "*batch height width channels kernels"]:
    """Apply the kernels of these free ``parameters`` (``kernel_arrays``) depthwise to every
    channel of ``x``, as ``stnca.stencils.perceive`` applies the named ones:
    ``z[..., i, j, c, k] = sum_{di, dj} g_k[di + 1, dj + 1] x[..., i + di, j + dj, c]``.

    The basis perceptions (``_basis``: nine shifted copies, or three under ``d4``) times the
    parameters, one contraction: its gradient with respect to the parameters is one
    contraction too (a weighted sum of nine broadcast scalars per kernel ran about 1.7x
    slower in a training step, value and gradient, on the CPU)."""
    weights = parameters if symmetry == "d4" else parameters.reshape(parameters.shape[0], 9)
    return jnp.einsum("...b,kb->...k", _basis(x, symmetry, boundary), weights)
