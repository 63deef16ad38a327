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

That is ``update_every = "epoch"``. The authors' code instead updates after every
mini-batch (``update_every = "minibatch"``, the default): step 2's loss is the mean over
the mini-batch, and steps 3 happen B times per epoch. An optional state-range penalty is
added to the minimised objective (never to the logged loss), and propagation can be
gated on the loss (``TrainingConfig``).

The whole epoch is one ``eqx.filter_jit`` region; the rollout is a ``jax.lax.scan``, the
mini-batches another. Scale (docs/concepts/scale.md): with a ``DataParallel`` placement each
mini-batch's transitions are split over several devices (``stnca.train.sharding``); the
loss can compare a random subset of the cells (``training.loss_fraction``,
``stnca.losses.subsampled``); the rollout is rematerialised every step or every
``training.remat_every`` steps in the backward pass.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _trajectory
from ..data.augment import measurement_noise
from ..losses import box_penalty, get_loss, subsampled
from ..model import NCA
from .config import TrainingConfig
from .optimizers import OPTIMIZERS
from .sharding import DataParallel


def normalise_per_parameter(eps: float = 1e-8) -> optax.GradientTransformation:
    """Divide each parameter's gradient by its own (Frobenius) norm, as in the paper's code."""

    def normalise(updates, params=None):
        del params
        return jax.tree.map(lambda g: g / (jnp.linalg.norm(g) + eps), updates)

    return optax.stateless(normalise)


def learning_rate_schedule(training: TrainingConfig) -> optax.Schedule:
    """The learning rate after ``n`` optimiser updates:
    ``learning_rate * lr_decay_rate ** (epoch / lr_decay_epochs)`` (constant by default),
    with ``epoch = n / updates_per_epoch``, so the decay is set in epochs in either mode."""
    return optax.exponential_decay(
        training.learning_rate,
        training.lr_decay_epochs * training.updates_per_epoch,
        training.lr_decay_rate,
    )


def make_optimizer(training: TrainingConfig) -> optax.GradientTransformation:
    """Gradient normalisation (optional) followed by the chosen optimiser (Nadam default)."""
    parts = [normalise_per_parameter()] if training.gradient_normalisation else []
    optimizer = OPTIMIZERS[training.optimizer](learning_rate_schedule(training))
    return optax.chain(*parts, optimizer)


def initial_states(model: NCA, y: Float[Array, "R frames H W obs"]) -> Float[Array, "R M H W C"]:
    """Line 2, ``x <- y``: every transition starts from data, hidden channels zero."""
    return model.initial_state(jnp.asarray(y)[:, :-1])


def advance_with_penalty(
    model: NCA,
    x: Float[Array, "*batch H W C"],
    steps: int,
    *,
    key: PRNGKeyArray | None,
    checkpoint: bool,
    bounds: tuple[float, float] = (0.0, 1.0),
    remat_every: int = 1,
) -> tuple[Array, Array]:
    """``Phi^steps(x)`` and the state-range penalty of the states after each step, averaged
    over the steps (``box_penalty`` summed over the batch, cells and channels).
    ``checkpoint``: rematerialise each step, or with ``remat_every = k > 1`` each block of
    ``k`` steps, in the backward pass."""
    keys = None if key is None else jax.random.split(key, steps)
    step = lambda s, k: model(s, key=k)  # noqa: E731 - a plain function for jax.checkpoint
    low, high = bounds
    zero = jnp.zeros((), x.dtype)
    if checkpoint and remat_every > 1:

        def penalised(carry, k):
            state, total = carry
            state = step(state, k)
            return state, total + box_penalty(state, low, high)

        final, total = _trajectory.scan_blocks(penalised, (x, zero), keys, steps, remat_every)
        return final, total / steps
    if checkpoint:
        step = jax.checkpoint(step)

    def body(carry, k):
        state, total = carry
        state = step(state, k)
        return (state, total + box_penalty(state, low, high)), None

    (final, total), _ = jax.lax.scan(body, (x, zero), keys, length=steps)
    return final, total / steps


def _minibatch_objective(
    training: TrainingConfig,
    transitions: int,
    minibatches: int,
    parallel: DataParallel | None = None,
):
    """The function ``(params, static, start, target, key) -> (objective, (xhat, losses))``
    minimised for one mini-batch.

    Per epoch (``update_every = "epoch"``) the data term is the mini-batch's summed loss
    divided by ``M x R``, so the sum over mini-batches is the mean over all transitions;
    per mini-batch it is the mini-batch's mean. The penalty term is ``state_penalty``
    times the mini-batch's penalty (divided by B per epoch, so the epoch's objective holds
    the mean penalty over mini-batches). The loss compares a random subset of the cells
    when ``training.loss_fraction < 1`` (its key: ``k_loss``). With ``parallel`` the
    mini-batch's start states and targets are split over its devices.
    """
    loss_fn = subsampled(training.loss, training.loss_fraction, training.loss_patch)
    per_minibatch = training.update_every == "minibatch"
    size = transitions // minibatches
    data_norm = size if per_minibatch else transitions
    penalty_weight = training.state_penalty / (1 if per_minibatch else minibatches)
    t = training.steps_between_frames
    remat_every = training.remat_every

    def objective(params, static, start, target, k):
        nca = eqx.combine(params, static)
        if parallel is not None:
            start, target = parallel.split(start), parallel.split(target)
        k_rollout, k_loss = jax.random.split(k)
        rollout_key = k_rollout if nca.stochastic else None
        if training.state_penalty:
            predicted, penalty = advance_with_penalty(
                nca,
                start,
                t,
                key=rollout_key,
                checkpoint=training.checkpoint_rollout,
                bounds=tuple(training.state_bounds),
                remat_every=remat_every,
            )
        elif remat_every > 1:
            predicted = _trajectory.advance(
                lambda s, key: nca(s, key=key),
                start,
                t,
                key=rollout_key,
                checkpoint=training.checkpoint_rollout,
                remat_every=remat_every,
            )
            penalty = jnp.zeros((), start.dtype)
        else:
            predicted = nca.advance(
                start, t, key=rollout_key, checkpoint=training.checkpoint_rollout
            )
            penalty = jnp.zeros((), start.dtype)
        # a conditioned model's targets carry the conditions too: only observables compare
        each = loss_fn(nca.observable(predicted), nca.observable(target), key=k_loss)
        value = jnp.sum(each) / data_norm + penalty_weight * penalty
        return value, (predicted, each)

    return objective


def _value_and_grad(objective, chunk: int):
    """``jax.value_and_grad(objective, has_aux=True)`` for a mini-batch, rolled out and
    differentiated ``chunk`` transitions at a time (0: all at once): the values and
    gradients of the chunks are summed (the objective is a sum over transitions), the
    predictions and losses put back in order. Each chunk gets its own key."""
    value_and_grad = jax.value_and_grad(objective, has_aux=True)
    if not chunk:
        return value_and_grad

    def chunked(params, static, start, target, k):
        count = start.shape[0] // chunk
        if count <= 1:
            return value_and_grad(params, static, start, target, k)
        starts = start.reshape((count, chunk) + start.shape[1:])
        targets = target.reshape((count, chunk) + target.shape[1:])

        def body(total, inputs):
            (value, (predicted, each)), g = value_and_grad(params, static, *inputs)
            return jax.tree.map(jnp.add, total, (value, g)), (predicted, each)

        zero = (jnp.zeros((), start.dtype), jax.tree.map(jnp.zeros_like, params))
        inputs = (starts, targets, jax.random.split(k, count))
        (value, g), (predicted, each) = jax.lax.scan(body, zero, inputs)
        return (value, (predicted.reshape(start.shape), each.reshape(-1))), g

    return chunked


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
    value_and_grad = _value_and_grad(objective, training.rollout_chunk)

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
    value_and_grad = _value_and_grad(objective, training.rollout_chunk)

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


def propagate(
    model: NCA,
    states: Float[Array, "R M H W C"],
    predictions: Float[Array, "R M H W C"],
    y: Float[Array, "R frames H W obs"],
    reinitialised_batches: int,
    hold_final: bool = False,
) -> Float[Array, "R M H W C"]:
    """Lines 22-26: the next epoch's start states.

    Trajectories ``r < reinitialised_batches`` restart from the data with zero hidden
    channels; the others start transition ``m + 1`` from the prediction of transition ``m``
    (hidden channels included), transition 1 always from frame 0.

    With ``hold_final`` (for a final frame that repeats, i.e. must be held) the last
    transition of a propagated trajectory starts from its *own* prediction instead: its
    start state becomes an ever longer rollout that must stay on the final frame, a pool of
    long-horizon states as in growing NCA (reset by any restart of the trajectory).
    """
    carried = jnp.concatenate([states[:, :1], predictions[:, :-1]], axis=1)
    if hold_final:
        carried = carried.at[:, -1].set(predictions[:, -1])
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


def redrawn_states(
    model: NCA, y: Float[Array, "R frames H W obs"], hidden_noise: float, *, key: PRNGKeyArray
) -> Float[Array, "R M H W C"]:
    """Every start state from the data, hidden channels drawn from ``U(0, hidden_noise)``."""
    states = initial_states(model, y)
    if not hidden_noise or not model.hidden_channels:
        return states
    shape = states.shape[:-1] + (model.hidden_channels,)
    noise = hidden_noise * jax.random.uniform(key, shape, states.dtype)
    return states.at[..., model.data_channels :].set(noise)


class EpochResult(NamedTuple):
    """What one epoch returns: the updated model, optimiser state and start states, and the
    losses and raw gradient norm measured during the epoch (per epoch: with the model as
    it was before the update; per mini-batch: as it was before each mini-batch's update).

    ``reinitialised_loss`` is the mean loss of the trajectories that restart from the data
    every epoch (equal to ``loss`` when none do): a one-interval error that does not depend
    on how far the propagated trajectories have drifted. ``propagated`` is whether the
    predictions were carried to the next epoch (False when ``propagate_tolerance`` reset
    them).
    """

    model: NCA
    opt_state: optax.OptState
    states: Array
    loss: Array
    reinitialised_loss: Array
    gradient_norm: Array
    propagated: Array


def make_epoch(
    training: TrainingConfig,
    optimizer: optax.GradientTransformation,
    augment_noise: float = 0.0,
    parallel: DataParallel | None = None,
):
    """Build the jitted epoch function
    ``(model, opt_state, states, y, key, lowest_loss) -> EpochResult``.

    With ``parallel`` each mini-batch's transitions are split over its devices and the
    result is replicated on all of them (the arguments must be placed there:
    ``parallel.place``).

    With ``augment_noise = a > 0`` the data of each epoch are ``(1 - a) y + a U(min y, max y)``
    (fresh noise every epoch; the paper's noise augmentation for stable final states).
    ``lowest_loss`` (the lowest epoch loss so far) gates propagation when
    ``training.propagate_tolerance`` is set.
    """

    @eqx.filter_jit
    def epoch(model, opt_state, states, y, key, lowest_loss) -> EpochResult:
        k_noise, key = jax.random.split(key)
        noisy = measurement_noise(y, augment_noise, key=k_noise)
        if augment_noise:
            # re-initialised trajectories start from this epoch's (noisy) data
            states = restart(model, states, noisy, training.reinitialised_batches)
        if training.update_every == "minibatch":
            new_model, opt_state, loss, gradient_norm, predictions, losses = minibatch_updates(
                model,
                opt_state,
                optimizer,
                states,
                noisy[:, 1:],
                training,
                key=key,
                parallel=parallel,
            )
        else:
            loss, gradient, predictions, losses = accumulate_gradients(
                model,
                states,
                noisy[:, 1:],
                key=key,
                loss=training.loss,
                steps_between_frames=training.steps_between_frames,
                minibatches=training.minibatches,
                checkpoint=training.checkpoint_rollout,
                state_penalty=training.state_penalty,
                state_bounds=(training.state_bounds[0], training.state_bounds[1]),
                remat_every=training.remat_every,
                loss_fraction=training.loss_fraction,
                loss_patch=training.loss_patch,
                parallel=parallel,
                rollout_chunk=training.rollout_chunk,
            )
            params = eqx.filter(model, eqx.is_inexact_array)
            updates, opt_state = optimizer.update(gradient, opt_state, params)
            new_model = eqx.apply_updates(model, updates)
            gradient_norm = optax.tree.norm(gradient)
        next_states = propagate(
            model, states, predictions, y, training.reinitialised_batches, training.hold_final
        )
        propagated = jnp.asarray(True)
        if training.propagate_tolerance is not None:
            propagated = loss <= lowest_loss + training.propagate_tolerance
            next_states = jnp.where(propagated, next_states, initial_states(model, y))
        restarted = min(training.reinitialised_batches, states.shape[0])
        result = EpochResult(
            new_model,
            opt_state,
            next_states,
            loss,
            jnp.mean(losses[:restarted]) if restarted else loss,
            gradient_norm,
            propagated,
        )
        # replicated, so that every process of a distributed run can read the result
        return result if parallel is None else parallel.replicated(result)

    return epoch


def transition_losses(
    model: NCA,
    states: Float[Array, "R M H W C"],
    targets: Float[Array, "R M H W obs"],
    steps_between_frames: int,
    loss: str = "euclidean",
    *,
    key: PRNGKeyArray | None = None,
) -> Float[Array, "R M"]:
    """Each transition's loss, ``L(Phi^t(x[r, m]), y[r, m + 1])``, without any update."""
    key = jax.random.key(0) if key is None else key
    predicted = model.advance(states, steps_between_frames, key=key if model.stochastic else None)
    return get_loss(loss)(model.observable(predicted), model.observable(targets))


def rollout_score(
    model: NCA,
    y: Float[Array, "R frames H W obs"],
    steps_between_frames: int,
    loss: str = "euclidean",
    *,
    key: PRNGKeyArray | None = None,
) -> Array:
    """The mean loss of a free rollout from frame 0 against every later frame of ``y``.

    No restarts: the model runs ``M t`` steps from each trajectory's first frame (hidden
    channels zero), in the model's units, and each frame ``m t`` is compared with ``y[m]``.
    This is what model selection by ``"rollout"`` minimises.
    """
    loss_fn = get_loss(loss)
    frames = y.shape[1] - 1
    key = jax.random.key(0) if key is None else key
    rollout = _trajectory.trajectory(
        lambda s, k: model(s, key=k),
        model.initial_state(y[:, 0]),
        frames * steps_between_frames,
        every=steps_between_frames,
        key=key if model.stochastic else None,
    )
    predicted = model.observable(jnp.moveaxis(rollout, -4, 0)[1:])  # (M, R, H, W, obs)
    each = loss_fn(predicted, model.observable(jnp.moveaxis(y[:, 1:], 1, 0)))
    return jnp.mean(each)
