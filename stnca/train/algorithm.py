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

Regeneration (``training.damage_fraction``, after growing NCA): before step 2 some
propagated start states have a random disc erased (``stnca.train.damage``).

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

This module holds the optimiser, the start states (lines 2 and 22-26) and the epoch; the
objective of a mini-batch and the plain scores are in ``stnca.train.objective``, the pass
over the mini-batches (lines 6-19) in ``stnca.train.gradients`` (their names still import
from here).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..data.augment import measurement_noise
from ..model import NCA
from .config import TrainingConfig
from .damage import damage_start_states
from .gradients import accumulate_gradients as accumulate_gradients
from .gradients import check_minibatches as check_minibatches
from .gradients import minibatch_updates as minibatch_updates
from .objective import advance_with_penalty as advance_with_penalty
from .objective import rollout_score as rollout_score
from .objective import transition_losses as transition_losses
from .optimizers import OPTIMIZERS, average_weights, averaged
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
    """Gradient normalisation (optional), the chosen optimiser (Nadam default), then the
    weights' moving average (``training.weight_average``, optional)."""
    parts = [normalise_per_parameter()] if training.gradient_normalisation else []
    optimizer = OPTIMIZERS[training.optimizer](learning_rate_schedule(training))
    average = [average_weights(training.weight_average)] if training.weight_average else []
    return optax.chain(*parts, optimizer, *average)


def initial_states(model: NCA, y: Float[Array, "R frames H W obs"]) -> Float[Array, "R M H W C"]:
    """Line 2, ``x <- y``: every transition starts from data, hidden channels zero."""
    return model.initial_state(jnp.asarray(y)[:, :-1])


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
    first = jnp.arange(states.shape[0]) < reinitialised_batches
    first = first.reshape((-1,) + (1,) * (states.ndim - 1))
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


DAMAGE_STREAM = 2
"""``fold_in(epoch key, DAMAGE_STREAM)`` draws an epoch's damage (``training.damage_fraction``);
``fold_in(epoch key, 1)`` is the restarts' hidden noise."""


class EpochResult(NamedTuple):
    """What one epoch returns: the updated model, optimiser state and start states, and the
    losses and raw gradient norm measured during the epoch (per epoch: with the model as
    it was before the update; per mini-batch: as it was before each mini-batch's update).

    ``reinitialised_loss`` is the mean loss of the trajectories that restart from the data
    every epoch (equal to ``loss`` when none do): a one-interval error that does not depend
    on how far the propagated trajectories have drifted. ``propagated`` is whether the
    predictions were carried to the next epoch (False when ``propagate_tolerance`` reset
    them). ``average`` is the model with the weights' moving average
    (``training.weight_average``), ``None`` without one.
    """

    model: NCA
    opt_state: optax.OptState
    states: Array
    loss: Array
    reinitialised_loss: Array
    gradient_norm: Array
    propagated: Array
    average: NCA | None = None


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
    ``training.propagate_tolerance`` is set. With ``training.damage_fraction`` > 0 the
    propagated start states are damaged first (``stnca.train.damage.damage_start_states``).
    """

    @eqx.filter_jit
    def epoch(model, opt_state, states, y, key, lowest_loss) -> EpochResult:
        if training.damage_fraction:
            # the reinitialised trajectories, which the noise below restarts, are never damaged
            states = damage_start_states(
                model,
                states,
                fraction=training.damage_fraction,
                radius=(training.damage_radius[0], training.damage_radius[1]),
                fill=training.damage_fill,
                bounds=(training.state_bounds[0], training.state_bounds[1]),
                reinitialised_batches=training.reinitialised_batches,
                # a stream of its own, so that every other draw is as without damage
                key=jax.random.fold_in(key, DAMAGE_STREAM),
            )
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
            eqx.combine(averaged(opt_state), new_model) if training.weight_average else None,
        )
        # replicated, so that every process of a distributed run can read the result
        return result if parallel is None else parallel.replicated(result)

    return epoch


HOST_FIELDS = frozenset(
    {
        "seed",
        "epochs",
        "checkpoint_every",
        "validate_every",
        "select_by",
        "select_after",
        "tensorboard",
        "tensorboard_every",
        "restart_every",
        "restart_hidden_noise",
        "devices",
    }
)
"""The ``TrainingConfig`` fields only the host's loop reads (``stnca.train.epoch``): the
epoch function and its optimiser never do, so configs that differ only in these share one."""

_SHARED_EPOCHS: OrderedDict[tuple, object] = OrderedDict()
SHARED_EPOCHS_KEPT = 16
"""How many epoch functions (with their compiled programs) a process keeps."""


def shared_epoch(training: TrainingConfig, augment_noise: float = 0.0):
    """``make_epoch(training, make_optimizer(training), augment_noise)``, built once per
    process for every config equal in all but ``HOST_FIELDS``.

    A new epoch function is a new ``eqx.filter_jit`` wrapper, which traces, lowers and
    compiles again; the shared one is compiled once for each shape of its arguments, so
    that training the same configuration again (another seed, a resume, the cells of a
    sweep with the same settings) starts at once. The optimiser is rebuilt from
    ``training`` and is a pure function of it, so any optimiser state from
    ``make_optimizer(training)`` fits it.
    """
    key = tuple(
        (field.name, getattr(training, field.name))
        for field in dataclasses.fields(training)
        if field.name not in HOST_FIELDS
    ) + (float(augment_noise),)
    epoch = _SHARED_EPOCHS.pop(key, None)
    if epoch is None:
        epoch = make_epoch(training, make_optimizer(training), augment_noise)
    _SHARED_EPOCHS[key] = epoch  # the most recently used last
    while len(_SHARED_EPOCHS) > SHARED_EPOCHS_KEPT:
        _SHARED_EPOCHS.popitem(last=False)
    return epoch
