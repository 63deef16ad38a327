"""The paper's fixed 3x3 perception kernels (equation 2), applied depthwise, and their
1-D and 3-D counterparts.

A kernel ``g`` acts on a lattice by correlation (equation 1)::

    z[i, j] = sum_{di, dj in -1, 0, 1} g[di + 1, dj + 1] * x[i + di, j + dj]

with ``i`` the row (height) index and ``j`` the column (width) index. Every kernel is
applied to every channel independently ("depthwise"). The implementation pads the lattice
once and combines shifted slices of that one padded array (all channels at once); the
sums are unrolled when the function is traced, so nothing loops over channels at run time.

**Other dimensions.** The paper's kernels are all built from two 3-point stencils, the
central difference ``d = [1, 0, -1] / 2`` and the smoothing ``s = [1, 2, 1] / 4``:
``gradient_x`` is ``d`` along the first lattice axis times ``s`` along the other, and the
Laplacian is ``4 (s x s - identity)``. ``kernels_for(dims)`` builds the same family in
1-D (``[1, -2, 1]``, ``[1, 0, -1] / 2``, the 3-point average) and 3-D (a 27-point
Laplacian ``4 (s x s x s - identity)``, Sobel-like gradients along each axis, the
27-point average): in 2-D the construction gives equation (2) exactly. Each Laplacian's
symbol is ``4 (prod_a cos^2(k_a / 2) - 1) = -|k|^2 + O(k^4)``; like the paper's 9-point
one its ``k^4`` error is anisotropic (mixed terms ``k_a^2 k_b^2 / 4``, where an isotropic
error would have ``/ 6``). A ``dims``-dimensional lattice is channel-last with
``dims`` lattice axes before the channels: ``(*batch, X, C)``, ``(*batch, H, W, C)`` or
``(*batch, D, H, W, C)``; the gradients are named ``gradient_x``, ``gradient_y``,
``gradient_z`` after the first, second and third lattice axis.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Sequence

import jax
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

DIMENSIONS = (1, 2, 3)
"""The lattice dimensions the stencils (and the NCA) support."""

_AXES = ("x", "y", "z")


def _stencil_family(dims: int) -> dict[str, np.ndarray]:
    """The ``3^dims`` kernels of the paper's construction on a ``dims``-dimensional lattice."""
    difference = np.array([1, 0, -1], np.float64) / 2
    smoothing = np.array([1, 2, 1], np.float64) / 4

    def outer(vectors):
        return functools.reduce(np.multiply.outer, vectors)

    identity = np.zeros((3,) * dims)
    identity[(1,) * dims] = 1
    family = {"identity": identity, "average": np.full((3,) * dims, 1 / 3**dims)}
    for axis in range(dims):
        vectors = [difference if a == axis else smoothing for a in range(dims)]
        family[f"gradient_{_AXES[axis]}"] = outer(vectors)
    family["laplacian"] = 4 * (outer([smoothing] * dims) - identity)
    return {name: kernel.astype(np.float32) for name, kernel in family.items()}


_FAMILIES: dict[int, dict[str, np.ndarray]] = {
    1: _stencil_family(1),
    2: KERNELS,  # equation (2) as printed (the construction gives the same numbers)
    3: _stencil_family(3),
}


def kernels_for(dims: int) -> dict[str, np.ndarray]:
    """Kernel name -> ``(3,) * dims`` array of a ``dims``-dimensional lattice (1, 2 or 3):
    ``KERNELS`` in 2-D, the same construction in 1-D and 3-D (module docstring)."""
    if dims not in _FAMILIES:
        raise ValueError(f"dimensions must be 1, 2 or 3, got {dims!r}")
    return _FAMILIES[dims]


def perceptions_for(dims: int) -> tuple[str, ...]:
    """Every name ``kernels=`` accepts on a ``dims``-dimensional lattice."""
    return (*kernels_for(dims), *DERIVED)


def check_kernels(kernels: Sequence[str], dims: int = 2) -> tuple[str, ...]:
    """Validate a selection of kernel names and return it as a tuple.

    Any non-empty subset of ``perceptions_for(dims)`` (``PERCEPTIONS`` in 2-D: the kernels
    and ``gradient_magnitude``) in any order is allowed; repeats are not.
    """
    allowed = perceptions_for(dims)
    if isinstance(kernels, str):
        kernels = (kernels,)
    kernels = tuple(kernels)
    if not kernels:
        raise ValueError(f"kernels must name at least one of {sorted(allowed)}")
    unknown = [k for k in kernels if k not in allowed]
    if unknown:
        where = "" if dims == 2 else f" on a {dims}-D lattice"
        raise ValueError(f"unknown kernel(s) {unknown}{where}; choose from {sorted(allowed)}")
    if len(set(kernels)) != len(kernels):
        raise ValueError(f"kernels must not repeat, got {list(kernels)}")
    return kernels


def perceive(
    x: Float[Array, "*batch height width channels"],
    kernels: Sequence[str],
    boundary: str,
    dims: int = 2,
) -> Float[Array, "*batch height width channels kernels"]:
    """Apply the named kernels depthwise to every channel of ``x``.

    Args:
        x: lattice state, channel-last, with any leading batch axes: ``dims`` lattice axes
            before the channels.
        kernels: kernel names from ``kernels_for(dims)`` (``KERNELS`` in 2-D), in the
            order wanted on the last output axis.
        boundary: ``periodic``, ``fixed`` or ``reflect``.
        dims: the lattice's dimension, 1, 2 (default) or 3.

    Returns:
        The perception ``z`` with one extra trailing axis of size ``len(kernels)``:
        ``z[..., i, j, c, k]`` is kernel ``k`` applied to channel ``c`` at cell ``(i, j)``.
    """
    family = kernels_for(dims)
    kernels = check_kernels(kernels, dims)
    # the linear kernels each output depends on, once each (gradient_magnitude reads the
    # gradients), applied together; the derived perceptions are built from them
    needed = tuple(
        dict.fromkeys(
            name
            for wanted in kernels
            for name in (
                [f"gradient_{_AXES[a]}" for a in range(dims)]
                if wanted == "gradient_magnitude"
                else [wanted]
            )
        )
    )
    if boundary in _SELF_ADJOINT_PADDING:
        linear = _correlate(x, needed, boundary, dims)
    else:
        linear = _correlate_stencils(x, tuple(family[name] for name in needed), boundary, dims)
    column = {name: linear[..., i] for i, name in enumerate(needed)}
    outputs = []
    for name in kernels:
        if name == "gradient_magnitude":
            squared = functools.reduce(
                operator.add, [column[f"gradient_{_AXES[a]}"] ** 2 for a in range(dims)]
            )
            # sqrt has an infinite derivative at 0; where the gradient vanishes use 0
            positive = squared > 0
            outputs.append(jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0))
        else:
            outputs.append(column[name])
    return jnp.stack(outputs, axis=-1)


def _correlate_stencils(
    x: Float[Array, "*batch height width channels"],
    stencils: tuple[np.ndarray, ...],
    boundary: str,
    dims: int,
) -> Float[Array, "*batch height width channels kernels"]:
    """Each ``3^dims`` stencil correlated with every channel of ``x`` (equation 1), stacked
    on a new last axis."""
    sizes = x.shape[-1 - dims : -1]
    padded = pad(x, boundary, dims=dims)

    def shifted(offset: tuple[int, ...]):
        window = tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, sizes, strict=True))
        return padded[(..., *window, slice(None))]

    # Each kernel is a weighted sum of the shifted slices with non-zero weight; written
    # out like this XLA fuses it into one pass over the lattice (no nine-fold stack).
    def linear(kernel: np.ndarray):
        terms = [
            shifted(offset) * kernel[tuple(o + 1 for o in offset)].item()
            for offset in itertools.product((-1, 0, 1), repeat=dims)
            if kernel[tuple(o + 1 for o in offset)] != 0
        ]
        return functools.reduce(operator.add, terms)

    return jnp.stack([linear(kernel) for kernel in stencils], axis=-1)


_SELF_ADJOINT_PADDING = ("periodic", "fixed")
"""Boundaries under which the adjoint of a correlation is the correlation with the mirrored
stencil (wrap-around and zero padding; a reflecting edge is not)."""


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _correlate(
    x: Float[Array, "*batch height width channels"],
    names: tuple[str, ...],
    boundary: str,
    dims: int,
) -> Float[Array, "*batch height width channels kernels"]:
    """``_correlate_stencils`` with the named kernels, differentiated by hand: the backward
    pass of a correlation under periodic or zero padding is the correlation of the
    cotangent with the mirrored stencil, one fused pass over the lattice where automatic
    differentiation of the padded slices makes a padded copy per stencil weight (on 2 CPU
    cores the paper's Gray-Scott epoch 1.04x faster; with ``stnca.cell_mlp`` the demo's
    1.3x: BENCHMARKS.md, "Hand-written backward passes")."""
    family = kernels_for(dims)
    return _correlate_stencils(x, tuple(family[name] for name in names), boundary, dims)


def _correlate_forward(x, names, boundary, dims):
    return _correlate(x, names, boundary, dims), None


def _correlate_backward(names, boundary, dims, _, cotangent):
    family = kernels_for(dims)
    adjoint = [
        _correlate_stencils(cotangent[..., i], (np.flip(family[name]),), boundary, dims)[..., 0]
        for i, name in enumerate(names)
    ]
    return (functools.reduce(operator.add, adjoint),)


_correlate.defvjp(_correlate_forward, _correlate_backward)


def apply_kernel(
    x: Float[Array, "*batch height width channels"], kernel: str, boundary: str, dims: int = 2
) -> Float[Array, "*batch height width channels"]:
    """Apply one named kernel depthwise: ``perceive`` with one kernel, without its last axis."""
    return perceive(x, (kernel,), boundary, dims)[..., 0]
