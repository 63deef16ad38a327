"""Lines 6-19 of Algorithm 2: one pass over the ``M x R`` transitions, shuffled and split
into ``B`` equal mini-batches, each rolled out and differentiated in a ``jax.lax.scan``.

Per epoch (``accumulate_gradients``) the gradients of the mini-batches are summed into the
gradient of the mean loss, for one update afterwards; per mini-batch (``minibatch_updates``,
the authors' code) each gradient is applied at once, so later mini-batches are rolled out
with the already updated model. Both return the predictions and each transition's loss.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..model import NCA
from .config import TrainingConfig
from .objective import _minibatch_objective, _value_and_grad
from .sharding import DataParallel


def check_minibatches(trajectories: int, transitions: int, minibatches: int, name: str) -> None:
    """Mini-batches must split the ``transitions x trajectories`` transitions evenly."""
    if (trajectories * transitions) % minibatches:
        raise ValueError(
            f"{name} ({minibatches}) must divide the number of transitions M x R = "
            f"{transitions} x {trajectories} = {trajectories * transitions}"
        )


def _flatten(states, targets, minibatches, key):
    check_minibatches(states.shape[0], states.shape[1], minibatches, "minibatches")
    transitions = states.shape[0] * states.shape[1]
    flat_states = states.reshape((transitions,) + states.shape[2:])
    flat_targets = targets.reshape((transitions,) + targets.shape[2:])
    k_order, k_batches = jax.random.split(key)
    order = jax.random.permutation(k_order, transitions).reshape(minibatches, -1)
    keys = jax.random.split(k_batches, minibatches)
    return transitions, flat_states, flat_targets, order, keys


def accumulate_gradients(
    model: NCA,
    states: Float[Array, "R M H W C"],
    targets: Float[Array, "R M H W obs"],
    *,
    key: PRNGKeyArray,
    loss: str = "euclidean",
    steps_between_frames: int,
    minibatches: int = 1,
    checkpoint: bool = False,
    state_penalty: float = 0.0,
    state_bounds: tuple[float, float] = (0.0, 1.0),
    remat_every: int = 1,
    loss_fraction: float = 1.0,
    loss_patch: int = 1,
    parallel: DataParallel | None = None,
    rollout_chunk: int = 0,
):
    """Lines 6-19: the mean loss over all ``M x R`` transitions and its gradient.

    The gradient is that of the mean loss plus ``state_penalty`` times the mean (over
    mini-batches) state-range penalty; the returned loss leaves the penalty out.
    ``remat_every``, ``loss_fraction``, ``loss_patch`` and ``rollout_chunk`` are
    ``TrainingConfig``'s; ``parallel`` splits each mini-batch over its devices.

    Returns:
        ``(loss, gradient, predictions, losses)``: the mean loss, its gradient with respect
        to the model's arrays (accumulated over the mini-batches), the predicted states
        ``Phi^t(x)``, shape ``(R, M, H, W, C)``, and each transition's loss, ``(R, M)``.
    """
    training = TrainingConfig(
        steps_between_frames=steps_between_frames,
        minibatches=minibatches,
        loss=loss,
        update_every="epoch",
        checkpoint_rollout=checkpoint,
        state_penalty=state_penalty,
        state_bounds=tuple(state_bounds),
        remat_every=remat_every,
        loss_fraction=loss_fraction,
        loss_patch=loss_patch,
        rollout_chunk=rollout_chunk,
    )
    transitions, flat_states, flat_targets, order, keys = _flatten(
        states, targets, minibatches, key
    )
    objective = _minibatch_objective(training, transitions, minibatches, parallel)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    value_and_grad = _value_and_grad(objective, training.rollout_chunk, training.sam_radius)

    def body(carry, inputs):
        gradient, predictions, losses = carry
        index, k = inputs
        (_, (predicted, each)), g = value_and_grad(
            params, static, flat_states[index], flat_targets[index], k
        )
        gradient = jax.tree.map(jnp.add, gradient, g)
        predictions = predictions.at[index].set(predicted)
        return (gradient, predictions, losses.at[index].set(each)), None

    start = (jax.tree.map(jnp.zeros_like, params), flat_states, jnp.zeros(transitions))
    (gradient, predictions, losses), _ = jax.lax.scan(body, start, (order, keys))
    return (
        jnp.mean(losses),
        gradient,
        predictions.reshape(states.shape),
        losses.reshape(states.shape[:2]),
    )


def minibatch_updates(
    model: NCA,
    opt_state: optax.OptState,
    optimizer: optax.GradientTransformation,
    states: Float[Array, "R M H W C"],
    targets: Float[Array, "R M H W obs"],
    training: TrainingConfig,
    *,
    key: PRNGKeyArray,
    parallel: DataParallel | None = None,
):
    """One optimiser update per mini-batch (the authors' code), each gradient normalised
    on its own; later mini-batches are rolled out with the already updated model;
    ``parallel`` splits each mini-batch over its devices.

    Returns:
        ``(model, opt_state, loss, gradient_norm, predictions, losses)``: the updated model
        and optimiser state, the mean loss over all transitions (penalty left out), the mean
        raw gradient norm over the mini-batches, the predicted states and each
        transition's loss.
    """
    minibatches = training.minibatches
    transitions, flat_states, flat_targets, order, keys = _flatten(
        states, targets, minibatches, key
    )
    objective = _minibatch_objective(training, transitions, minibatches, parallel)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    value_and_grad = _value_and_grad(objective, training.rollout_chunk, training.sam_radius)

    def body(carry, inputs):
        params, opt_state, predictions, losses, norms = carry
        index, k = inputs
        (_, (predicted, each)), g = value_and_grad(
            params, static, flat_states[index], flat_targets[index], k
        )
        updates, opt_state = optimizer.update(g, opt_state, params)
        params = eqx.apply_updates(params, updates)
        predictions = predictions.at[index].set(predicted)
        return (
            params,
            opt_state,
            predictions,
            losses.at[index].set(each),
            norms + optax.tree.norm(g),
        ), None

    zero = jnp.zeros((), states.dtype)
    start = (params, opt_state, flat_states, jnp.zeros(transitions), zero)
    (params, opt_state, predictions, losses, norms), _ = jax.lax.scan(body, start, (order, keys))
    return (
        eqx.combine(params, static),
        opt_state,
        jnp.mean(losses),
        norms / minibatches,
        predictions.reshape(states.shape),
        losses.reshape(states.shape[:2]),
    )
