"""Algorithm 2 of the paper: one training epoch over every transition of every trajectory.

Notation: data ``y`` has shape ``(R, M + 1, H, W, C_obs)``: ``R`` trajectories of ``M + 1``
frames, ``t = steps_between_frames`` NCA steps apart. The *start states* ``x`` have shape
``(R, M, H, W, C)``: ``x[r, m]`` is the full NCA state (hidden channels included) from which
transition ``m -> m + 1`` of trajectory ``r`` starts.

One epoch (lines 5-27):

1. shuffle the ``M x R`` transitions and split them into ``B`` equal mini-batches;
2. for each mini-batch, roll the NCA ``t`` steps from its start states, compare the
   observable channels with the data (the loss summed over the mini-batch divided by
   ``M x R``), and add the gradient to an accumulator: the sum over mini-batches is the
   gradient of the mean loss over all transitions, while memory holds one mini-batch;
3. normalise the gradient (each parameter's gradient divided by its norm) and apply one
   optimiser update;
4. update the start states: the first ``reinitialised_batches`` trajectories restart from
   the data (hidden channels zero); the others take their predictions as the next epoch's
   start states (``x[r, m] <- xhat[r, m]``, hidden channels included), frame 0 staying data.

The whole epoch is one ``eqx.filter_jit`` region; the rollout is a ``jax.lax.scan``, the
mini-batches another.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..data.augment import measurement_noise
from ..losses import get_loss
from ..model import NCA
from .config import TrainingConfig


def normalise_per_parameter(eps: float = 1e-8) -> optax.GradientTransformation:
    """Divide each parameter's gradient by its own (Frobenius) norm, as in the paper's code."""

    def normalise(updates, params=None):
        del params
        return jax.tree.map(lambda g: g / (jnp.linalg.norm(g) + eps), updates)

    return optax.stateless(normalise)


def learning_rate_schedule(training: TrainingConfig) -> optax.Schedule:
    """``learning_rate * lr_decay_rate ** (epoch / lr_decay_epochs)`` (constant by default)."""
    return optax.exponential_decay(
        training.learning_rate, training.lr_decay_epochs, training.lr_decay_rate
    )


def make_optimizer(training: TrainingConfig) -> optax.GradientTransformation:
    """Gradient normalisation (optional) followed by the chosen optimiser (Nadam default)."""
    schedule = learning_rate_schedule(training)
    optimizers = {
        "nadam": lambda: optax.nadam(schedule),
        "adam": lambda: optax.adam(schedule),
        "adamw": lambda: optax.adamw(schedule),
        "sgd": lambda: optax.sgd(schedule, momentum=0.9, nesterov=True),
        "rmsprop": lambda: optax.rmsprop(schedule),
        "lion": lambda: optax.lion(schedule),
    }
    parts = [normalise_per_parameter()] if training.gradient_normalisation else []
    return optax.chain(*parts, optimizers[training.optimizer]())


def initial_states(model: NCA, y: Float[Array, "R frames H W obs"]) -> Float[Array, "R M H W C"]:
    """Line 2, ``x <- y``: every transition starts from data, hidden channels zero."""
    return model.initial_state(jnp.asarray(y)[:, :-1])


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
):
    """Lines 6-19: the mean loss over all ``M x R`` transitions and its gradient.

    Returns:
        ``(loss, gradient, predictions, losses)``: the mean loss, its gradient with respect
        to the model's arrays (accumulated over the mini-batches), the predicted states
        ``Phi^t(x)``, shape ``(R, M, H, W, C)``, and each transition's loss, ``(R, M)``.
    """
    loss_fn = get_loss(loss)
    transitions = states.shape[0] * states.shape[1]
    if transitions % minibatches:
        raise ValueError(
            f"minibatches ({minibatches}) must divide the number of transitions "
            f"M x R = {transitions}"
        )
    flat_states = states.reshape((transitions,) + states.shape[2:])
    flat_targets = targets.reshape((transitions,) + targets.shape[2:])
    k_order, k_batches = jax.random.split(key)
    order = jax.random.permutation(k_order, transitions).reshape(minibatches, -1)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def minibatch_loss(params, start, target, k):
        nca = eqx.combine(params, static)
        k_rollout, k_loss = jax.random.split(k)
        rollout_key = k_rollout if nca.stochastic else None
        predicted = nca.advance(start, steps_between_frames, key=rollout_key, checkpoint=checkpoint)
        each = loss_fn(nca.observable(predicted), target, key=k_loss)
        return jnp.sum(each) / transitions, (predicted, each)

    value_and_grad = jax.value_and_grad(minibatch_loss, has_aux=True)

    def body(carry, inputs):
        gradient, total, predictions, losses = carry
        index, k = inputs
        (value, (predicted, each)), g = value_and_grad(
            params, flat_states[index], flat_targets[index], k
        )
        gradient = jax.tree.map(jnp.add, gradient, g)
        predictions = predictions.at[index].set(predicted)
        return (gradient, total + value, predictions, losses.at[index].set(each)), None

    zero = jnp.zeros((), states.dtype)
    start = (jax.tree.map(jnp.zeros_like, params), zero, flat_states, jnp.zeros(transitions))
    keys = jax.random.split(k_batches, minibatches)
    (gradient, total, predictions, losses), _ = jax.lax.scan(body, start, (order, keys))
    return total, gradient, predictions.reshape(states.shape), losses.reshape(states.shape[:2])


def propagate(
    model: NCA,
    states: Float[Array, "R M H W C"],
    predictions: Float[Array, "R M H W C"],
    y: Float[Array, "R frames H W obs"],
    reinitialised_batches: int,
) -> Float[Array, "R M H W C"]:
    """Lines 22-26: the next epoch's start states.

    Trajectories ``r < reinitialised_batches`` restart from the data with zero hidden
    channels; the others start transition ``m + 1`` from the prediction of transition ``m``
    (hidden channels included), transition 1 always from frame 0.
    """
    carried = jnp.concatenate([states[:, :1], predictions[:, :-1]], axis=1)
    return restart(model, carried, y, reinitialised_batches)


def restart(
    model: NCA,
    states: Float[Array, "R M H W C"],
    y: Float[Array, "R frames H W obs"],
    reinitialised_batches: int,
) -> Float[Array, "R M H W C"]:
    """Start states with trajectories ``r < reinitialised_batches`` reset to the data."""
    fresh = model.initial_state(y[:, :-1])
    first = (jnp.arange(states.shape[0]) < reinitialised_batches).reshape(-1, 1, 1, 1, 1)
    return jnp.where(first, fresh, states)


class EpochResult(NamedTuple):
    """What one epoch returns: the updated model, optimiser state and start states, and the
    losses and raw gradient norm measured with the model as it was before the update.

    ``reinitialised_loss`` is the mean loss of the trajectories that restart from the data
    every epoch (equal to ``loss`` when none do): a one-interval error that does not depend
    on how far the propagated trajectories have drifted.
    """

    model: NCA
    opt_state: optax.OptState
    states: Array
    loss: Array
    reinitialised_loss: Array
    gradient_norm: Array


def make_epoch(
    training: TrainingConfig,
    optimizer: optax.GradientTransformation,
    augment_noise: float = 0.0,
):
    """Build the jitted epoch function ``(model, opt_state, states, y, key) -> EpochResult``.

    With ``augment_noise = a > 0`` the data of each epoch are ``(1 - a) y + a U(min y, max y)``
    (fresh noise every epoch; the paper's noise augmentation for stable final states).
    """

    @eqx.filter_jit
    def epoch(model, opt_state, states, y, key) -> EpochResult:
        k_noise, key = jax.random.split(key)
        noisy = measurement_noise(y, augment_noise, key=k_noise)
        if augment_noise:
            # re-initialised trajectories start from this epoch's (noisy) data
            states = restart(model, states, noisy, training.reinitialised_batches)
        loss, gradient, predictions, losses = accumulate_gradients(
            model,
            states,
            noisy[:, 1:],
            key=key,
            loss=training.loss,
            steps_between_frames=training.steps_between_frames,
            minibatches=training.minibatches,
            checkpoint=training.checkpoint_rollout,
        )
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(gradient, opt_state, params)
        next_states = propagate(model, states, predictions, y, training.reinitialised_batches)
        restarted = min(training.reinitialised_batches, states.shape[0])
        return EpochResult(
            eqx.apply_updates(model, updates),
            opt_state,
            next_states,
            loss,
            jnp.mean(losses[:restarted]) if restarted else loss,
            optax.tree.norm(gradient),
        )

    return epoch
