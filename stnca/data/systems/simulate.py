"""Simulate a zoo system: one trajectory, a batch, or a batch written to a ``.npy`` file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..._resources import check_disk, check_memory
from ..._trajectory import advance, check_steps
from ..._validate import count
from ._base import DIMENSIONS, System
from .initial import families


def system(name_or_system: str | System, parameters: Mapping[str, Any] | None = None) -> System:
    """A zoo system by registry name (or as given), with ``parameters`` replacing defaults.

    Raises:
        ValueError: an unknown name, an unknown parameter or a value out of its range.
    """
    from . import SYSTEMS

    if isinstance(name_or_system, System):
        if not parameters:
            return name_or_system
        values = {name: getattr(name_or_system, name) for name in name_or_system.parameter_names()}
        return type(name_or_system).with_parameters(values | dict(parameters))
    if name_or_system not in SYSTEMS:
        raise ValueError(f"unknown system {name_or_system!r}; choose from {', '.join(SYSTEMS)}")
    return SYSTEMS[name_or_system].with_parameters(dict(parameters or {}))


def check_dims(dims: int) -> int:
    """``dims`` if it is 1, 2 or 3, else ``ValueError``."""
    if isinstance(dims, bool) or dims not in DIMENSIONS:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims!r}")
    return int(dims)


@eqx.filter_jit
def _rollout(stepper, initial, frames: int, every: int):
    """Frames ``(R, T, C, *space)`` of channel-first ``initial`` ``(R, C, *space)``."""

    def one(u0):
        def frame(u, _):
            u = advance(lambda x, _: stepper(x), u, every)
            return u, u

        _, later = jax.lax.scan(frame, u0, None, length=frames)
        return jnp.concatenate([u0[None], later])

    return jax.vmap(one)(initial)


def simulate_systems(
    name_or_system: str | System,
    initial: str | Float[Array | np.ndarray, "batch *space channels"] | None = None,
    steps: int | None = None,
    *,
    every: int | None = None,
    dims: int = 2,
    size: int = 64,
    batch: int = 1,
    key: PRNGKeyArray | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Simulate ``batch`` trajectories of a zoo system on a periodic lattice.

    Args:
        name_or_system: a name of ``SYSTEMS`` or a ``System``.
        initial: states ``(R, *space, C)``, or the name of an initial-condition family
            (``stnca.data.systems.initial``) drawn ``batch`` times with ``key``; ``None``:
            the system's default family.
        steps: steps of the system's ``dt``; ``None``: the system's default. A multiple
            of ``every``.
        every: steps between saved frames; ``None``: the system's default.
        dims: spatial dimensions of a drawn initial condition, 1-3 (an array's own shape
            sets them otherwise).
        size: cells per side of a drawn initial condition (>= 4).
        batch: trajectories ``R`` of a drawn initial condition (>= 1).
        key: PRNG key of the drawn initial conditions.
        parameters: name -> value replacing the system's defaults.

    Returns:
        float32 ``(R, steps // every + 1, *space, C)``: channel-last, ``space`` ``(X,)``,
        ``(H, W)`` or ``(D, H, W)``.

    Raises:
        ValueError: bad arguments, or the simulation diverged (non-finite values).
    """
    chosen = system(name_or_system, parameters)
    steps = chosen.steps if steps is None else steps
    every = chosen.every if every is None else every
    check_steps(steps, every)
    if initial is None or isinstance(initial, str):
        dims = check_dims(dims)
        size = count(size, "size", 4)
        batch = count(batch, "batch", 1)
        family = chosen.initial_condition if initial is None else initial
        if family not in families(chosen, dims):
            raise ValueError(
                f"unknown initial condition {family!r} for {chosen.name} in {dims}-D; "
                f"choose from {', '.join(families(chosen, dims))}"
            )
        check_memory(batch * size**dims * len(chosen.channels) * (steps // every + 3), "it")
        keys = jax.random.split(jax.random.key(0) if key is None else key, batch)
        states = jnp.stack([chosen.initial_state(family, dims, size, key=k) for k in keys])
    else:
        states = jnp.asarray(initial, jnp.float32)
        _check_states(chosen, states)
        dims, size = states.ndim - 2, states.shape[1]
    # exponax broadcasts arrays of different ranks (which stnca's tests otherwise refuse)
    with jax.numpy_rank_promotion("allow"):
        stepper = chosen.stepper(dims, size)
        channel_first = jnp.moveaxis(states, -1, 1)
        frames = _rollout(stepper, channel_first, steps // every, every)
    trajectory = np.asarray(jnp.moveaxis(frames, 2, -1), np.float32)
    if not np.all(np.isfinite(trajectory)):
        raise ValueError(
            f"the {chosen.title} simulation diverged (non-finite values); lower dt or raise "
            "substeps"
        )
    return trajectory


def _check_states(chosen: System, states: Array) -> None:
    channels = len(chosen.channels)
    shape = states.shape
    if states.ndim - 2 not in DIMENSIONS or shape[-1] != channels:
        raise ValueError(
            f"{chosen.name} states must have shape (batch, *space, {channels}) with 1-3 "
            f"spatial axes, got {shape}"
        )
    space = shape[1:-1]
    if len(set(space)) != 1 or space[0] < 4:
        raise ValueError(f"the lattice must be a square or cube of side >= 4, got {space}")
    if not bool(jnp.all(jnp.isfinite(states))):
        raise ValueError("the initial states hold NaN or infinite values")


def simulate_system(
    name_or_system: str | System,
    initial: str | Float[Array | np.ndarray, "*space channels"] | None = None,
    steps: int | None = None,
    *,
    every: int | None = None,
    dims: int = 2,
    size: int = 64,
    key: PRNGKeyArray | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """One trajectory of a zoo system: float32 ``(T, *space, C)``, ``T = steps // every + 1``.

    ``initial`` is one state ``(*space, C)``, a family name or ``None`` (the system's
    default family); the other arguments as for ``simulate_systems``.
    """
    if initial is not None and not isinstance(initial, str):
        initial = jnp.asarray(initial)[None]
    return simulate_systems(
        name_or_system,
        initial,
        steps,
        every=every,
        dims=dims,
        size=size,
        key=key,
        parameters=parameters,
    )[0]


def simulate_system_to_file(
    out: str | os.PathLike,
    name_or_system: str | System,
    initial: str | None = None,
    steps: int | None = None,
    *,
    every: int | None = None,
    dims: int = 2,
    size: int = 64,
    batch: int | None = None,
    key: PRNGKeyArray | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Simulate a zoo system and write the frames to the ``.npy`` file ``out`` atomically
    (nothing is written when anything fails): ``(T, *space, C)``, or ``(R, T, *space, C)``
    with ``batch``. Arguments as for ``simulate_systems``. Returns the trajectory."""
    from ..io import save_array

    chosen = system(name_or_system, parameters)
    steps = chosen.steps if steps is None else steps
    every = chosen.every if every is None else every
    check_steps(steps, every)
    dims = check_dims(dims)
    size = count(size, "size", 4)
    runs = 1 if batch is None else count(batch, "batch", 1)
    floats = runs * (steps // every + 1) * size**dims * len(chosen.channels)
    check_disk(floats, Path(out).parent, f"a simulation of {steps // every + 1} frames")
    trajectory = simulate_systems(
        chosen, initial, steps, every=every, dims=dims, size=size, batch=runs, key=key
    )
    trajectory = trajectory[0] if batch is None else trajectory
    save_array(out, trajectory)
    return trajectory
