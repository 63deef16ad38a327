"""The optimisers a config may name (``training.optimizer``), each an Optax transformation
of a learning-rate schedule. One table, read by the config's validation and the trainer."""

from __future__ import annotations

from collections.abc import Callable

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
