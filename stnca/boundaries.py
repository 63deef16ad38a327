"""Boundary conditions: how a lattice is padded before a 3x3 stencil reads it.

The lattice axes come just before the channel axis, ``(..., height, width, channels)`` in
2-D (``(..., X, C)`` in 1-D, ``(..., D, H, W, C)`` in 3-D); leading axes are batch axes
and are never padded.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

#: Boundary name -> ``jnp.pad`` mode.
#:
#: - ``periodic``: the lattice wraps around (a torus), as for the Gray-Scott PDE.
#: - ``fixed``: the state vanishes outside the lattice (zero padding), as the paper's
#:   image-morphing task requires.
#: - ``reflect``: mirror about the edge cell (ghost cell ``x[-1] = x[1]``), so a central
#:   difference across the edge is zero: a no-flux (Neumann) boundary.
BOUNDARIES: dict[str, str] = {"periodic": "wrap", "fixed": "constant", "reflect": "reflect"}


def check_boundary(boundary: str) -> str:
    """Return ``boundary`` if it names a known boundary condition, else raise ``ValueError``."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {sorted(BOUNDARIES)}, got {boundary!r}")
    return boundary


def pad(
    x: Float[Array, "*batch height width channels"],
    boundary: str,
    width: int = 1,
    dims: int = 2,
):
    """Pad the ``dims`` lattice axes of ``x`` by ``width`` cells on every side.

    Args:
        x: state of shape ``(*batch, height, width, channels)`` (2-D; ``dims`` lattice axes
            before the channels in general).
        boundary: one of ``periodic``, ``fixed``, ``reflect`` (see ``BOUNDARIES``).
        width: number of ghost cells on each side (default 1, enough for a 3x3 stencil).
        dims: the number of lattice axes, 1, 2 (default) or 3.

    Returns:
        Array of shape ``(*batch, height + 2 width, width + 2 width, channels)``.
    """
    mode = BOUNDARIES[check_boundary(boundary)]
    pad_width = [(0, 0)] * (x.ndim - 1 - dims) + [(width, width)] * dims + [(0, 0)]
    return jnp.pad(x, pad_width, mode=mode)
