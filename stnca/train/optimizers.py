"""The optimisers a config may name (``training.optimizer``), each an Optax transformation
of a learning-rate schedule (one table, read by the config's validation and the trainer),
and the weights' moving average that may follow them (``training.weight_average``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS: dict[str, Callable[[optax.ScalarOrSchedule], optax.GradientTransformation]] = {
    "nadam": optax.nadam,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "sgd": lambda schedule: optax.sgd(schedule, momentum=0.9, nesterov=True),
    "rmsprop": optax.rmsprop,
    "lion": optax.lion,
}
"""Optimiser name -> ``schedule -> optax.GradientTransformation`` (Nadam, the paper's, first)."""


class AverageState(NamedTuple):
    """``average_weights``'s state: the decayed sum of the weights after each update, and the
    decayed sum of their factors (``1 - decay ** n`` after ``n`` updates)."""

    total: optax.Params
    norm: jax.Array


def average_weights(decay: float) -> optax.GradientTransformation:
    """Keep an exponential moving average of the weights after every update (Polyak
    averaging), leaving the updates as they are: the last transformation of a chain.

    ``averaged(state)`` gives the average, normalised so that the initial weights carry no
    weight: the weights after update ``n`` of ``N`` carry a weight proportional to
    ``decay ** (N - n)``, an average over roughly the last ``1 / (1 - decay)`` updates.
    """

    def init(params):
        return AverageState(jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("average_weights needs the weights: update(g, state, params)")
        new = optax.apply_updates(params, updates)
        total = jax.tree.map(lambda t, w: decay * t + (1 - decay) * w, state.total, new)
        return updates, AverageState(total, decay * state.norm + (1 - decay))

    return optax.GradientTransformation(init, update)


def averaged(state: optax.OptState) -> optax.Params:
    """The averaged weights kept by the one ``average_weights`` within an optimiser state
    (e.g. a chain's); a ``ValueError`` if there is none, or more than one."""
    found = [
        s
        for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, AverageState))
        if isinstance(s, AverageState)
    ]
    if len(found) != 1:
        raise ValueError(f"the optimiser state holds {len(found)} weight averages, not one")
    (average,) = found
    norm = jnp.maximum(average.norm, jnp.finfo(jnp.float32).tiny)
    return jax.tree.map(lambda t: t / norm, average.total)
