"""Local perturbations (section 3.2.2, Fig 10): how far does a small change of the initial
condition spread by step ``n``?

For every position on a grid, an ``r x r`` patch of the initial condition's observable
channels is perturbed, the system is run ``n`` steps, and the cells of the final state
whose observable channels differ from the unperturbed final state by more than a threshold
(the paper's 0.1) are counted. A stochastic NCA is run with the same random keys with and
without the perturbation (common random numbers), so its own noise is not counted.

Everything works in the model's units (``[0, 1]`` for images and for min-max scaled PDE
data), where the paper's threshold is meaningful. The runs are ``vmap``-ed over positions
in chunks of ``chunk`` (``jax.lax.map``), never a Python loop over perturbations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _trajectory
from .._trajectory import NonFiniteError
from .._validate import count, real
from ..model import NCA

PERTURBATIONS = ("invert", "zero", "noise")
"""How a patch is perturbed: ``invert`` maps ``x -> low + high - x`` (a value near one
bound goes to the other), ``zero`` sets it to 0, ``noise`` to uniform noise in
``[low, high]`` (one noise field, the same for every position)."""

Observable = Float[Array | np.ndarray, "height width observable"]
Run = Callable[[Observable], Observable]
"""A system to perturb: initial observable state -> final observable state (model units);
``NCARun`` and ``PDERun`` are ``eqx.Module``s, so jitted scans take them as arguments."""


def patch_mask(height: int, width: int, row, column, size: int) -> Float[Array, "height width"]:
    """1 on the ``size x size`` patch whose top-left cell is ``(row, column)``, else 0.

    ``row`` and ``column`` may be traced (e.g. under ``vmap``).
    """
    rows = jnp.arange(height)[:, None]
    columns = jnp.arange(width)[None, :]
    inside = (rows >= row) & (rows < row + size) & (columns >= column) & (columns < column + size)
    return inside.astype(jnp.float32)


def perturb_patch(
    x: Observable,
    row,
    column,
    size: int,
    kind: str = "invert",
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    noise: Observable | None = None,
) -> Observable:
    """``x`` with its ``size x size`` patch at ``(row, column)`` perturbed (all channels)."""
    low, high = bounds
    if kind == "invert":
        replaced = low + high - x
    elif kind == "zero":
        replaced = jnp.zeros_like(x)
    elif kind == "noise":
        if noise is None:
            raise ValueError("kind='noise' needs a noise field")
        replaced = noise
    else:
        raise ValueError(f"kind must be one of {PERTURBATIONS}, got {kind!r}")
    mask = patch_mask(x.shape[-3], x.shape[-2], row, column, size)[:, :, None]
    return jnp.where(mask > 0, replaced, x)


def patch_positions(height: int, width: int, size: int, stride: int) -> np.ndarray:
    """Top-left corners ``(P, 2)`` of the patches on a grid of ``stride`` (row-major)."""
    rows = np.arange(0, height - size + 1, stride)
    columns = np.arange(0, width - size + 1, stride)
    return np.stack(np.meshgrid(rows, columns, indexing="ij"), axis=-1).reshape(-1, 2)


@dataclass(frozen=True)
class LocalPerturbations:
    """The result of ``local_perturbations``.

    Attributes:
        positions: top-left corners ``(P, 2)`` of the perturbed patches.
        grid_shape: ``(rows, columns)`` of the position grid (``P = rows * columns``).
        counts: changed cells of the final state per position, ``(rows, columns)``.
        reference: the unperturbed final observable state ``(H, W, C)``.
        size, kind, threshold, steps: the settings.
    """

    positions: np.ndarray
    grid_shape: tuple[int, int]
    counts: np.ndarray
    reference: np.ndarray
    size: int
    kind: str
    threshold: float
    steps: int

    def summary(self) -> dict:
        """Mean, median and maximum count, and where the maximum is."""
        flat = self.counts.reshape(-1)
        where = self.positions[int(np.argmax(flat))]
        return {
            "steps": self.steps,
            "patch_size": self.size,
            "kind": self.kind,
            "threshold": self.threshold,
            "positions": int(flat.size),
            "mean_changed_cells": float(flat.mean()),
            "median_changed_cells": float(np.median(flat)),
            "max_changed_cells": int(flat.max()),
            "max_at": [int(where[0]), int(where[1])],
            "patch_cells": self.size * self.size,
        }


def check_settings(height: int, width: int, size: int, stride: int, threshold: float, kind: str):
    """Validate the settings of a local-perturbation scan on a ``height x width`` lattice."""
    count(size, "size", 1)
    count(stride, "stride", 1)
    real(threshold, "threshold", 0.0)
    if kind not in PERTURBATIONS:
        raise ValueError(f"kind must be one of {', '.join(PERTURBATIONS)}, got {kind!r}")
    if size > min(height, width):
        raise ValueError(
            f"the perturbation size {size} is larger than the {height}x{width} lattice"
        )


def local_perturbations(
    run: Run,
    initial: Observable,
    *,
    steps: int,
    size: int = 1,
    kind: str = "invert",
    stride: int = 1,
    threshold: float = 0.1,
    bounds: tuple[float, float] = (0.0, 1.0),
    chunk: int = 64,
    key: PRNGKeyArray | None = None,
) -> LocalPerturbations:
    """Perturb every patch of ``initial`` in turn and count the changed cells of ``run``'s output.

    Args:
        run: the system, initial -> final observable state in model units, e.g.
            ``nca_run(model, steps, key=...)`` or ``pde_run(...)``; it must be traceable.
        initial: observable initial state ``(H, W, C)`` in model units.
        steps: the number of steps ``run`` takes (recorded in the result).
        size: patch side ``r`` (default 1: one cell, as the paper).
        kind: ``invert`` (default), ``zero`` or ``noise`` (see ``PERTURBATIONS``).
        stride: distance between perturbed patches (default 1: every cell).
        threshold: a cell counts as changed when any observable channel differs by more
            (default 0.1, the paper's).
        bounds: the data range used by ``invert`` and ``noise`` (default ``(0, 1)``).
        chunk: perturbations run at once (bounds memory).
        key: PRNG key for ``kind="noise"``.
    """
    initial = jnp.asarray(initial, jnp.float32)
    height, width = initial.shape[-3], initial.shape[-2]
    check_settings(height, width, size, stride, threshold, kind)
    count(chunk, "chunk", 1)
    noise = None
    if kind == "noise":
        if key is None:
            raise ValueError("kind='noise' needs a PRNG key")
        noise = jax.random.uniform(key, initial.shape, minval=bounds[0], maxval=bounds[1])
    positions = patch_positions(height, width, size, stride)
    rows = len(np.unique(positions[:, 0]))
    reference, counts = _scan(
        run, initial, jnp.asarray(positions), size, kind, threshold, bounds, noise, chunk
    )
    if not np.isfinite(np.asarray(reference)).all():
        raise NonFiniteError(
            f"the unperturbed run became non-finite (NaN or infinite) within {steps} steps; "
            "nothing was written"
        )
    return LocalPerturbations(
        positions=positions,
        grid_shape=(rows, len(positions) // rows),
        counts=np.asarray(counts).reshape(rows, -1),
        reference=np.asarray(reference),
        size=size,
        kind=kind,
        threshold=float(threshold),
        steps=int(steps),
    )


@eqx.filter_jit
def _scan(run, initial, positions, size, kind, threshold, bounds, noise, chunk):
    reference = run(initial)

    def changed(position):
        perturbed = perturb_patch(
            initial, position[0], position[1], size, kind, bounds=bounds, noise=noise
        )
        difference = jnp.abs(run(perturbed) - reference)
        return jnp.sum(jnp.any(difference > threshold, axis=-1))

    return reference, jax.lax.map(changed, positions, batch_size=chunk)


def perturbed_finals(
    run: Run,
    initial: Observable,
    positions: np.ndarray,
    *,
    size: int = 1,
    kind: str = "invert",
    bounds: tuple[float, float] = (0.0, 1.0),
    key: PRNGKeyArray | None = None,
) -> np.ndarray:
    """The final states ``(len(positions), H, W, C)`` for a few perturbation positions."""
    initial = jnp.asarray(initial, jnp.float32)
    noise = None
    if kind == "noise":
        if key is None:
            raise ValueError("noise perturbations need a PRNG key")
        noise = jax.random.uniform(key, initial.shape, minval=bounds[0], maxval=bounds[1])

    return np.asarray(_finals(run, initial, jnp.asarray(positions), size, kind, bounds, noise))


@eqx.filter_jit
def _finals(run, initial, positions, size, kind, bounds, noise):
    def one(position):
        return run(
            perturb_patch(initial, position[0], position[1], size, kind, bounds=bounds, noise=noise)
        )

    return jax.vmap(one)(positions)


@eqx.filter_jit
def final_state(model: NCA, initial: Observable, steps: int, key: PRNGKeyArray | None):
    """``Phi^n``: the observable state after ``steps`` from an observable ``initial`` (hidden
    channels zero), model units; ``key`` is ignored by a deterministic NCA. Compiled once per
    ``steps`` (and shape), not at every call."""
    key = key if model.stochastic else None
    return model.observable(model.advance(model.initial_state(initial), steps, key=key))


class NCARun(eqx.Module):
    """``run`` for an NCA: ``steps`` updates, the same ``key`` for every run (common random
    numbers). A pytree, so a jitted scan over it compiles once per shape, not per model."""

    model: NCA
    key: PRNGKeyArray | None
    steps: int = eqx.field(static=True)

    def __call__(self, initial: Observable) -> Observable:
        return final_state(self.model, initial, self.steps, self.key)


def nca_run(model: NCA, steps: int, *, key: PRNGKeyArray | None = None) -> NCARun:
    """``run`` for an NCA: hidden channels start at zero; the same ``key`` for every run."""
    count(steps, "steps", 1)
    if model.stochastic and key is None:
        raise ValueError("a stochastic NCA needs a PRNG key for common random numbers")
    return NCARun(model, key if model.stochastic else None, steps)


class PDERun(eqx.Module):
    """``run`` for a PDE integrator: decode model units to physical units with ``model``'s
    scaling, take ``pde_steps`` steps of ``step(state) -> state``, encode back (so both
    systems are compared alike)."""

    model: NCA
    step: Callable = eqx.field(static=True)
    pde_steps: int = eqx.field(static=True)

    def __call__(self, initial: Observable) -> Observable:
        physical = self.model.decode(initial)
        final = _trajectory.advance(lambda x, _: self.step(x), physical, self.pde_steps)
        return self.model.encode(final)


def pde_run(step: Callable, pde_steps: int, model: NCA) -> PDERun:
    """``run`` for the PDE behind ``model``'s data (``step`` in physical units; ``step``
    must be hashable, e.g. a ``functools.partial`` of a module-level function)."""
    count(pde_steps, "PDE steps", 1)
    return PDERun(model, step, pde_steps)
