"""Retraining what pruning left (``stnca prune --fine-tune-epochs``): a few epochs of
Algorithm 2 on the model's training data with the removed kernel-channel blocks of the
first layer and the switched-off hidden channels held at exactly zero.

The epochs are the trainer's own (``stnca.train.make_epoch`` with the run's
``[training]`` settings: mini-batches, propagation, penalties, gradient normalisation), its
optimiser followed by a mask that zeroes every update of a removed block, so a block that
is zero stays exactly zero, and so does a hidden channel switched off (``without_hidden``).
Pruning judges a rule by its error on a test trajectory, so the fine-tuning keeps the
epoch whose weights score lowest there, epoch 0 (the weights as they came) included: it
never makes that error worse.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validate import count
from ..model import NCA
from ..train import initial_states, make_epoch, make_optimizer
from ..train.config.training import TrainingConfig
from .inspect_function import rollout_error


class FineTuned(NamedTuple):
    """What ``fine_tune`` returns: the ``model`` of the ``epoch`` with the lowest test
    ``error`` (epoch 0: the model as given)."""

    model: NCA
    error: float
    epoch: int


class _Held(NamedTuple):
    """1 where a weight may change, 0 where it is held at zero (the shapes of the weights)."""

    w_in: jax.Array
    w_out: jax.Array
    b_out: jax.Array


def hold_zero_blocks() -> optax.GradientTransformation:
    """Zero every update of what is removed when the optimiser starts (its state holds
    which): the kernel-channel blocks of ``w_in`` that are all zero, and the channels
    switched off (``without_hidden``: nothing reads them, nothing writes them), so they
    stay exactly zero. The weights are an NCA's (``eqx.filter(model,
    eqx.is_inexact_array)``)."""

    def init(params):
        w_in, w_out, b_out = params.w_in, params.w_out, params.b_out
        read = jnp.any(w_in != 0, axis=0)  # (channels, kernels)
        written = jnp.any(w_out != 0, axis=1) | (b_out != 0)
        on = (jnp.any(read, axis=1) | written).astype(w_out.dtype)  # (channels,)
        return _Held(
            jnp.broadcast_to(read, w_in.shape).astype(w_in.dtype),
            jnp.broadcast_to(on[:, None], w_out.shape),
            on,
        )

    def update(updates, state, params=None):
        del params
        held = (updates.w_in * state.w_in, updates.w_out * state.w_out, updates.b_out * state.b_out)
        return eqx.tree_at(lambda u: (u.w_in, u.w_out, u.b_out), updates, held), state

    return optax.GradientTransformation(init, update)


_STEPS: dict[tuple, object] = {}


def _epoch_function(training: TrainingConfig, augment_noise: float):
    """The trainer's epoch with ``hold_zero_blocks`` after its optimiser, built once per
    settings, so that the rounds of one pruning compile it once per model shape."""
    # the weights' average would see the updates before they are held at zero: left out
    training = dataclasses.replace(training, weight_average=0.0)
    key = (repr(training), float(augment_noise))
    if key not in _STEPS:
        optimizer = optax.chain(make_optimizer(training), hold_zero_blocks())
        _STEPS.clear()  # one pruning's settings at a time
        _STEPS[key] = (optimizer, make_epoch(training, optimizer, augment_noise))
    return _STEPS[key]


def fine_tune(
    model: NCA,
    y: np.ndarray,
    training: TrainingConfig,
    truth: np.ndarray,
    every: int,
    *,
    epochs: int,
    learning_rate: float | None = None,
    augment_noise: float = 0.0,
    key=None,
) -> FineTuned:
    """Retrain ``model`` for ``epochs`` epochs, its all-zero kernel-channel blocks and its
    switched-off channels held at zero (``hold_zero_blocks``), and keep the epoch with the
    lowest ``rollout_error`` on ``truth``.

    Args:
        model: an unconditioned NCA.
        y: the training trajectories ``(R, M + 1, H, W, observable)``, physical units.
        training: Algorithm 2's settings (a run's ``[training]``; its ``epochs``, the
            host's fields and the learning rate's decay are not read).
        truth, every: the test trajectory and its NCA steps per frame (``rollout_error``).
        epochs: epochs of retraining (0: the model as it is).
        learning_rate: constant learning rate (default: ``training.learning_rate``, the
            one the training started at: a few epochs at the rate a run ends at, often
            10x lower, barely move the weights).
        augment_noise: the data's noise augmentation (``TrainingData.augment_noise``).
        key: PRNG key of the epochs (default ``jax.random.key(0)``).
    """
    count(epochs, "fine_tune_epochs")
    rate = training.learning_rate if learning_rate is None else learning_rate
    if not rate > 0:
        raise ValueError(f"fine_tune_learning_rate must be > 0, got {rate}")
    best = FineTuned(model, rollout_error(model, truth, every), 0)
    if not epochs:
        return best
    training = dataclasses.replace(training, learning_rate=rate, lr_decay_rate=1.0)
    optimizer, step = _epoch_function(training, augment_noise)
    encoded = jnp.asarray(model.encode(np.asarray(y, np.float32)))
    states = initial_states(model, encoded)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    lowest = jnp.asarray(jnp.inf, jnp.float32)
    key = jax.random.key(0) if key is None else key
    for epoch in range(1, epochs + 1):
        result = step(model, opt_state, states, encoded, jax.random.fold_in(key, epoch), lowest)
        model, opt_state, states = result.model, result.opt_state, result.states
        lowest = jnp.minimum(lowest, result.loss)
        error = rollout_error(model, truth, every)
        if error < best.error:
            best = FineTuned(model, error, epoch)
    return best
