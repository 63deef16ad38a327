"""One rollout helper shared by the NCA and the PDE simulators (after jax-cfd's ``trajectory``).

Rematerialisation (``checkpoint``): reverse-mode differentiation of a rollout keeps what
each step's backward pass needs (its inputs and intermediate activations) for every step.
``checkpoint = True`` with ``remat_every = 1`` wraps each step in ``jax.checkpoint``: only
the state before each step is kept and the step is recomputed in the backward pass.
``remat_every = k > 1`` checkpoints blocks of ``k`` steps instead: only the state before
each block is kept (``steps / k`` states), and a block's ``k`` steps are recomputed, with
their activations held, while its backward pass runs. The forward values are the same in
every case; only memory and time change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ._resources import MAX_STEPS
from ._validate import count

Step = Callable[[Array, PRNGKeyArray | None], Array]
Carry = TypeVar("Carry")


def check_steps(steps: int, every: int = 1) -> None:
    """Validate a rollout length ``steps`` and a frame interval ``every``."""
    steps = count(steps, "steps")
    every = count(every, "every", minimum=1)
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS:_}, got {steps:_}")
    if steps % every:
        raise ValueError(f"steps ({steps}) must be a multiple of every ({every})")


def _step_keys(key: PRNGKeyArray | None, steps: int):
    return None if key is None else jax.random.split(key, steps)


def advance(
    step: Step,
    x: Array,
    steps: int,
    *,
    key: PRNGKeyArray | None = None,
    checkpoint: bool = False,
    remat_every: int = 1,
) -> Array:
    """Apply ``step`` ``steps`` times under ``jax.lax.scan`` and return the final state.

    Args:
        step: pure function ``(state, key) -> state``; ``key`` is ``None`` when no key is given.
        x: initial state.
        steps: number of steps (0 returns ``x``).
        key: PRNG key, split into one key per step; ``None`` for a deterministic step.
        checkpoint: rematerialise in the backward pass (``jax.checkpoint``), trading
            compute for memory on long rollouts or large lattices.
        remat_every: with ``checkpoint``, rematerialise blocks of this many steps (default
            1: each step; see the module's docstring). Range: >= 1.
    """
    check_steps(steps)
    remat_every = count(remat_every, "remat_every", minimum=1)
    return _advance_with_keys(step, x, steps, _step_keys(key, steps), checkpoint, remat_every)


def trajectory(
    step: Step,
    x: Array,
    steps: int,
    *,
    every: int = 1,
    key: PRNGKeyArray | None = None,
    checkpoint: bool = False,
    dims: int = 2,
) -> Array:
    """Run ``step`` for ``steps`` steps and keep every ``every``-th state, frame 0 included.

    Args:
        step: pure function ``(state, key) -> state``.
        x: initial state of shape ``(*batch, height, width, channels)``.
        steps: number of steps, a multiple of ``every``.
        every: keep one frame every this many steps (default 1).
        key: PRNG key, split into one key per step; ``None`` for a deterministic step.
        checkpoint: rematerialise each step in the backward pass.
        dims: the number of lattice axes of ``x`` (before its channel axis; default 2).

    Returns:
        Frames of shape ``(*batch, steps // every + 1, height, width, channels)``: the time
        axis sits just before the lattice axes, the layout of a trajectory file.
    """
    check_steps(steps, every)
    frames = steps // every
    keys = _step_keys(key, steps)
    if keys is not None:
        keys = keys.reshape((frames, every) + keys.shape[1:])

    def frame_body(state, frame_keys):
        state = _advance_with_keys(step, state, every, frame_keys, checkpoint)
        return state, state

    _, later = jax.lax.scan(frame_body, x, keys, length=frames)
    stacked = jnp.concatenate([x[None], later], axis=0)
    return jnp.moveaxis(stacked, 0, -2 - dims)


def _advance_with_keys(
    step: Step, x: Array, steps: int, keys, checkpoint: bool, remat_every: int = 1
) -> Array:
    if checkpoint and remat_every > 1:
        return scan_blocks(lambda state, k: step(state, k), x, keys, steps, remat_every)
    # A plain function for jax.checkpoint: ``step`` may be a bound method of a Module,
    # which jax would try (and fail) to hash while its arrays are being traced.
    body = jax.checkpoint(lambda state, k: step(state, k)) if checkpoint else step

    def scan_body(state, step_key):
        return body(state, step_key), None

    final, _ = jax.lax.scan(scan_body, x, keys, length=steps)
    return final


def scan_blocks(
    body: Callable[[Carry, PRNGKeyArray | None], Carry],
    carry: Carry,
    keys: PRNGKeyArray | None,
    steps: int,
    block: int,
) -> Carry:
    """``carry <- body(carry, keys[n])`` for ``n < steps``, each block of ``block`` steps
    rematerialised as a whole in the backward pass (``jax.checkpoint`` around a scan of
    ``block`` steps; a last, shorter block takes the remainder when ``block`` does not
    divide ``steps``). ``keys``: one key per step, or ``None``."""
    blocks, rest = divmod(steps, block)

    def run(length: int):
        def inner(state, step_key):
            return body(state, step_key), None

        # a plain function of arrays for jax.checkpoint; ``length`` is fixed per block size
        return jax.checkpoint(lambda state, ks: jax.lax.scan(inner, state, ks, length=length)[0])

    full, last = (None, None) if keys is None else (keys[: blocks * block], keys[blocks * block :])
    if full is not None:
        full = full.reshape((blocks, block) + full.shape[1:])
    if blocks:
        whole = run(block)
        carry, _ = jax.lax.scan(lambda c, ks: (whole(c, ks), None), carry, full, length=blocks)
    if rest:
        carry = run(rest)(carry, last)
    return carry


class NonFiniteError(ValueError):
    """A result that holds NaN or infinite values (a diverged rollout or simulation)."""


def first_non_finite(frames, start: int = 0, dims: int = 2) -> int | None:
    """The index (counted from ``start``) of the first frame of ``frames`` (``(T, H, W, C)``
    or ``(R, T, H, W, C)``; ``dims`` lattice axes) that holds a NaN or an infinity in any
    trajectory; ``None`` if all are finite."""
    import numpy as np

    frames = np.asarray(frames)
    finite = np.isfinite(frames).all(axis=tuple(range(-1 - dims, 0)))
    finite = finite.reshape(-1, finite.shape[-1]).all(axis=0)
    return None if finite.all() else start + int(np.argmin(finite))


def require_finite(
    frames, every: int, what: str = "the rollout", start: int = 0, dims: int = 2
) -> None:
    """Raise ``NonFiniteError`` naming the first step (frame index x ``every``) at which
    ``frames`` stop being finite."""
    frame = first_non_finite(frames, start, dims)
    if frame is not None:
        raise NonFiniteError(
            f"{what} became non-finite (NaN or infinite) at step {frame * every} "
            f"(frame {frame}); nothing was written"
        )


def require_finite_weights(model) -> None:
    """Raise ``NonFiniteError`` if ``model``'s weights hold NaN or infinite values (every
    result computed from it would be NaN)."""
    import equinox as eqx
    import numpy as np

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    if not all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in leaves):
        raise NonFiniteError("the model's weights hold NaN or infinite values; nothing was written")
