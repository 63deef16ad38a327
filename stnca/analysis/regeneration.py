"""Regeneration: does a pattern regrow after part of it is erased (growing NCA's test,
Mordvintsev et al. 2020)?

The model runs from its initial condition to the damage step ``n_d`` (by default twice the
training horizon, where a morphing model should hold its final image). There a disc is
erased (``stnca.train.damage``: observable channels to the fill, hidden channels to zero),
one disc per size and position, and the damaged states run on for ``recovery_steps`` beside
the undamaged one, with the same random keys (common random numbers: a stochastic rule's
own noise is not counted). Measured after each step, on the observable channels in the
model's units:

- the distance to the undamaged run, ``||x_damaged - x_undamaged|| / ||x_undamaged||``: its
  value right after the damage (how much was erased), its peak, its last value, and the
  *recovery time*: the steps after the damage from which it stays within ``tolerance`` to
  the end of the run (``None``: never within the run);
- with a ``target`` (a morphing model's final image), the relative error against it of
  the damaged runs and of the undamaged one;
- for a stochastic rule, the *noise floor*: the same distance for a second, undamaged run
  with other keys, how far apart the rule's own noise takes two runs (a damage cannot be
  expected to heal closer than that).

Sizes and positions are relative to the *pattern*: the bounding box of the cells where any
observable channel's magnitude exceeds ``pattern_threshold`` in the ``target`` if one is
given (so that every model of one target gets the same discs), else in the undamaged state
at ``n_d`` (the whole lattice if none does). A disc of size ``s`` has diameter ``s`` times the
box's longer side; position ``(f, g)`` centres it at fractions ``f`` of the box's height and
``g`` of its width (``(0.5, 0.5)``: the box's centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._resources import MAX_STEPS
from .._trajectory import NonFiniteError, require_finite_weights
from .._validate import count, real
from ..model import NCA, require_plane
from ..train.damage import FILLS, disc_mask, erase, fill_values
from ..viz import evenly_spaced

POSITIONS = ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))
"""Default disc centres, as fractions of the pattern's box: its centre, then the centres of
its four quarters."""
SIZES = (0.25, 0.5)
"""Default disc diameters, as fractions of the pattern's size."""


@dataclass(frozen=True)
class Regeneration:
    """The result of ``regeneration``.

    Attributes:
        damage_step, recovery_steps, tolerance, fill: the settings.
        pattern_box: ``(top, left, bottom, right)`` cells of the pattern (the target's, else
            the undamaged state's at the damage step).
        pattern_size: the box's longer side, in cells.
        damages: one dict per damage (``size``, ``position``, ``centre`` and ``radius`` in
            cells, ``disc_cells``, ``erased_cells``: the disc's cells inside the pattern),
            sizes outer.
        distance: ``(damages, recovery_steps + 1)`` distance to the undamaged run, from
            right after the damage (column 0).
        noise_floor: ``(recovery_steps + 1,)`` for a stochastic rule, the distance of a
            second undamaged run with other keys from the damage step on (how far the
            rule's own noise takes two runs apart); ``None`` for a deterministic rule.
        target_error: ``(1 + damages, recovery_steps + 1)`` relative error against the
            target, the undamaged run first; ``None`` without a target.
        snapshot_steps: steps after the damage of ``snapshots``.
        snapshots: ``(len(snapshot_steps), 1 + damages, H, W, observable)`` observable
            states (model units), the undamaged run first.
    """

    damage_step: int
    recovery_steps: int
    tolerance: float
    fill: str
    pattern_box: tuple[int, int, int, int]
    pattern_size: int
    damages: list[dict]
    distance: np.ndarray
    noise_floor: np.ndarray | None
    target_error: np.ndarray | None
    snapshot_steps: list[int]
    snapshots: np.ndarray

    def recovery_times(self) -> list[int | None]:
        """Per damage, the steps after the damage from which the distance stays within the
        tolerance to the end of the run; ``None`` if it ends outside."""
        times: list[int | None] = []
        for curve in self.distance:
            outside = np.flatnonzero(~(curve <= self.tolerance))
            if outside.size and outside[-1] == curve.size - 1:
                times.append(None)
            else:
                times.append(int(outside[-1]) + 1 if outside.size else 0)
        return times

    def rows(self) -> list[dict]:
        """One JSON-ready row per damage: the settings, the distance right after the damage,
        its peak and last value, the recovery time and, with a target, the last errors."""
        rows = []
        for i, (damage, recovered) in enumerate(
            zip(self.damages, self.recovery_times(), strict=True)
        ):
            curve = self.distance[i]
            row = {
                **damage,
                "distance_after_damage": float(curve[0]),
                "peak_distance": float(np.max(curve)),
                "final_distance": float(curve[-1]),
                "recovery_steps": recovered,
            }
            if self.target_error is not None:
                row["final_target_error"] = float(self.target_error[1 + i, -1])
                row["undamaged_final_target_error"] = float(self.target_error[0, -1])
            rows.append(row)
        return rows


def check_settings(
    damage_step: int,
    recovery_steps: int,
    sizes,
    positions,
    tolerance: float,
    fill: str,
) -> None:
    """Refuse bad ``regeneration`` settings, naming the argument."""
    count(damage_step, "damage_step", 0, MAX_STEPS)
    count(recovery_steps, "recovery_steps", 1, MAX_STEPS)
    if not len(sizes):
        raise ValueError("sizes must list at least one disc size")
    for size in sizes:
        if not 0 < real(size, "sizes", 0.0, 1.0):
            raise ValueError(f"sizes must be in (0, 1] (of the pattern's size), got {size}")
    if not len(positions):
        raise ValueError("positions must list at least one (row, column) position")
    for position in positions:
        if len(position) != 2:
            raise ValueError(f"positions must be (row, column) pairs, got {position!r}")
        for value in position:
            real(value, "positions (fractions of the pattern's box)", 0.0, 1.0)
    if not 0 < real(tolerance, "tolerance", 0.0):
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def pattern_box(
    observable: np.ndarray, threshold: float = 0.1
) -> tuple[tuple[int, int, int, int], int]:
    """``((top, left, bottom, right), size)``: the bounding box of the cells of an
    observable state ``(H, W, C)`` where any channel's magnitude exceeds ``threshold``
    (the whole lattice if none does), and its longer side."""
    inside = np.any(np.abs(np.asarray(observable)) > threshold, axis=-1)
    height, width = inside.shape
    if not inside.any():
        return (0, 0, height - 1, width - 1), max(height, width)
    rows, columns = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    box = (int(rows[0]), int(columns[0]), int(rows[-1]), int(columns[-1]))
    return box, max(box[2] - box[0], box[3] - box[1]) + 1


def regeneration(
    model: NCA,
    initial: Float[Array | np.ndarray, "height width observable"],
    *,
    damage_step: int,
    recovery_steps: int,
    sizes=SIZES,
    positions=POSITIONS,
    fill: str = "zero",
    tolerance: float = 0.05,
    target: Float[Array | np.ndarray, "height width observable"] | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    pattern_threshold: float = 0.1,
    snapshots: int = 6,
    key: PRNGKeyArray,
) -> Regeneration:
    """Erase discs from the state at ``damage_step`` and measure how the rule recovers.

    Args:
        model: a trained 2-D NCA.
        initial: observable initial state ``(H, W, C)`` in model units (hidden channels
            start at zero).
        damage_step: ``n_d``, the step at which the discs are erased (0: the initial state).
        recovery_steps: steps run after the damage.
        sizes: disc diameters as fractions of the pattern's size (default 1/4 and 1/2).
            Range: (0, 1].
        positions: disc centres ``(row, column)`` as fractions of the pattern's box
            (default ``POSITIONS``). Range: [0, 1].
        fill: ``zero`` (default), ``initial`` (``initial``'s values) or ``noise`` (uniform
            in ``bounds``).
        tolerance: the distance to the undamaged run that counts as recovered (default
            0.05). Range: > 0.
        target: an observable state ``(H, W, C)`` in model units to measure both runs
            against (a morphing model's final image); ``None``: none.
        pattern_threshold: a cell belongs to the pattern when a channel's magnitude
            exceeds this (default 0.1).
        snapshots: how many states to keep (evenly spaced after the damage, first and
            last included).
        key: PRNG key: the run's update masks (a stochastic NCA) and the noise fill.

    Raises:
        ValueError: bad settings, non-finite weights, or the undamaged run becomes
            non-finite before the damage.
    """
    require_plane(model, "regeneration")
    require_finite_weights(model)
    check_settings(damage_step, recovery_steps, sizes, positions, tolerance, fill)
    count(snapshots, "snapshots", 1)
    if target is not None and np.shape(target) != np.shape(initial):
        raise ValueError(
            f"target must have the initial state's shape {np.shape(initial)}, "
            f"got {np.shape(target)}"
        )
    k_before, k_after, k_noise = jax.random.split(key, 3)
    stochastic = model.stochastic
    initial = jnp.asarray(initial, jnp.float32)
    start = _advance(
        model, model.initial_state(initial), damage_step, k_before if stochastic else None
    )
    if not bool(jnp.all(jnp.isfinite(start))):
        raise NonFiniteError(
            f"the undamaged run became non-finite (NaN or infinite) within {damage_step} steps; "
            "nothing was written"
        )
    # the same discs for every model of one target
    pattern = np.asarray(model.observable(start) if target is None else target)
    box, size = pattern_box(pattern, pattern_threshold)
    lattice = tuple(start.shape[:-1])
    inside = np.any(np.abs(pattern) > pattern_threshold, axis=-1)
    damages, masks = [], []
    for diameter in sizes:
        for position in positions:
            centre = (
                box[0] + float(position[0]) * (box[2] - box[0]),
                box[1] + float(position[1]) * (box[3] - box[1]),
            )
            radius = float(diameter) * size / 2
            mask = np.asarray(disc_mask(lattice, centre, radius))
            masks.append(mask)
            damages.append(
                {
                    "size": float(diameter),
                    "position": [float(position[0]), float(position[1])],
                    "centre": [centre[0], centre[1]],
                    "radius": radius,
                    "disc_cells": int(mask.sum()),
                    "erased_cells": int((mask & inside).sum()),
                }
            )
    replacement = fill_values(fill, model.observable(initial), bounds, key=k_noise)
    damaged = erase(model, start[None], jnp.asarray(np.stack(masks)), replacement)
    steps = tuple(int(s) for s in evenly_spaced(recovery_steps + 1, snapshots))
    keys = floor_keys = None
    if stochastic:  # the floor's keys: a stream of their own, the others as without it
        keys = jax.random.split(k_after, recovery_steps)
        floor_keys = jax.random.split(jax.random.fold_in(k_after, 1), recovery_steps)
    encoded = None if target is None else jnp.asarray(target, jnp.float32)
    distance, floor, target_error, kept = _recover(
        model, start, damaged, keys, floor_keys, encoded, steps
    )
    return Regeneration(
        damage_step=int(damage_step),
        recovery_steps=int(recovery_steps),
        tolerance=float(tolerance),
        fill=fill,
        pattern_box=box,
        pattern_size=size,
        damages=damages,
        distance=np.asarray(distance),
        noise_floor=None if floor is None else np.asarray(floor),
        target_error=None if target_error is None else np.asarray(target_error),
        snapshot_steps=list(steps),
        snapshots=np.asarray(kept),
    )


@eqx.filter_jit
def _advance(model: NCA, state, steps: int, key):
    return model.advance(state, steps, key=key)


def _relative(difference, reference):
    """``||difference|| / ||reference||`` over the lattice and channels (the last 3 axes)."""
    norm = jnp.sqrt(jnp.sum(reference**2, axis=(-3, -2, -1)))
    return jnp.sqrt(jnp.sum(difference**2, axis=(-3, -2, -1))) / jnp.maximum(norm, 1e-30)


@eqx.filter_jit
def _recover(model: NCA, start, damaged, keys, floor_keys, target, steps: tuple[int, ...]):
    """Run the undamaged ``start`` and the ``damaged`` states on together, one step at a
    time with the same key for all (and, with ``floor_keys``, ``start`` once more with
    those); per step the distances, the noise floor, the target errors and, at ``steps``,
    the observable states."""
    states = jnp.concatenate([start[None], damaged])

    def measure(states, floor):
        observable = model.observable(states)
        distance = _relative(observable[1:] - observable[:1], observable[:1])
        if floor is not None:
            floor = _relative(model.observable(floor) - observable[0], observable[0])
        error = None if target is None else _relative(observable - target[None], target[None])
        return observable, (distance, floor, error)

    floor = None if floor_keys is None else start
    observable, first = measure(states, floor)
    at = jnp.asarray(steps)
    kept = jnp.zeros((len(steps),) + observable.shape, observable.dtype)
    kept = jnp.where((at == 0)[:, None, None, None, None], observable[None], kept)

    def body(carry, inputs):
        states, floor, kept = carry
        step_key, floor_key, index = inputs
        states = jax.vmap(lambda x: model(x, key=step_key))(states)
        if floor is not None:
            floor = model(floor, key=floor_key)
        observable, numbers = measure(states, floor)
        hit = (at == index + 1)[:, None, None, None, None]
        return (states, floor, jnp.where(hit, observable[None], kept)), numbers

    inputs = (keys, floor_keys, jnp.arange(steps[-1]))
    (_, _, kept), numbers = jax.lax.scan(body, (states, floor, kept), inputs)
    distance, floor, error = (
        None if n is None else jnp.concatenate([f[None], n]).T
        for f, n in zip(first, numbers, strict=True)
    )
    return distance, floor, error, kept
