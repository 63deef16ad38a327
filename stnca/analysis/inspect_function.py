"""What each part of a rule does, by taking it away or shaking it: the error on a test
trajectory when one kernel of one channel is removed from the perception, when one hidden
channel is switched off, when hidden channels go one by one (how many the rule needs), and
when Gaussian noise or dropout hits every weight (how robust the rule is to its own
weights)."""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model import NCA, observable_rollout
from .metrics import relative_error

LEVELS = (0.0, 0.01, 0.03, 0.1, 0.3)
"""Relative weight-noise levels (and dropout rates) of ``robustness``."""


def rollout_error(model: NCA, truth: np.ndarray, every: int, key=None) -> float:
    """Mean over frames after the first of ``||model - truth|| / ||truth||``, the model run
    from ``truth[0]`` (``(T, H, W, observable)``, physical units) for ``every`` NCA steps per
    frame."""
    key = jax.random.key(0) if key is None else key
    frames = observable_rollout(model, jnp.asarray(truth[0]), (len(truth) - 1) * every, every, key)
    with np.errstate(all="ignore"):  # a broken rule may blow up: its error is infinite
        value = float(np.mean(relative_error(np.asarray(frames)[1:], truth[1:])))
    return value if np.isfinite(value) else float("inf")


def without_kernel(model: NCA, channel: int, kernel: int) -> NCA:
    """``model`` with kernel ``kernel`` of input channel ``channel`` removed from perception."""
    return eqx.tree_at(lambda m: m.w_in, model, model.w_in.at[:, channel, kernel].set(0.0))


def without_hidden(model: NCA, hidden: int) -> NCA:
    """``model`` with hidden channel ``hidden`` (0-based) switched off: nothing reads it and
    nothing writes it, so it stays at its start value, zero."""
    index = model.observable_channels + hidden
    return eqx.tree_at(
        lambda m: (m.w_in, m.w_out, m.b_out),
        model,
        (
            model.w_in.at[:, index, :].set(0.0),
            model.w_out.at[index, :].set(0.0),
            model.b_out.at[index].set(0.0),
        ),
    )


def perturbed_weights(model: NCA, level: float, key, dropout: bool = False) -> NCA:
    """``model`` with every weight array ``W`` shaken: ``W + level * rms(W) * N(0, 1)``, or
    with ``dropout`` each weight zeroed with probability ``level`` (the rest kept as they are).
    The arrays are ``w_in``, ``w_out``, ``b_out`` and, for a model with learnable kernels,
    their free parameters ``kernel_weights``."""
    names = ("w_in", "w_out", "b_out") + (("kernel_weights",) if model.learnable_kernels else ())
    arrays = [getattr(model, name) for name in names]
    keys = jax.random.split(key, len(arrays))
    shaken = []
    for array, k in zip(arrays, keys, strict=True):
        if dropout:
            shaken.append(jnp.where(jax.random.bernoulli(k, level, array.shape), 0.0, array))
        else:
            rms = jnp.sqrt(jnp.mean(array**2))
            shaken.append(array + level * rms * jax.random.normal(k, array.shape))
    return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), model, tuple(shaken))


@dataclass(frozen=True)
class Function:
    """What ``function_of_parts`` measured (errors are ``rollout_error``'s)."""

    error: float  # the whole rule
    kernel_removed: np.ndarray  # (channels, kernels): the error with that kernel removed
    hidden_removed: np.ndarray  # (hidden,): the error with that hidden channel off
    removal_order: list[int]  # hidden channels, the least needed first
    removal_errors: list[float]  # the error with the first 1, 2, ... of them off together
    effective_channels: int  # observable + the hidden channels the rule still needs
    tolerance: float
    levels: tuple[float, ...]
    noise: np.ndarray  # (levels, seeds) errors under Gaussian weight noise
    dropout: np.ndarray  # (levels, seeds) errors under weight dropout

    def to_json(self) -> dict:
        return {
            "error": self.error,
            "kernel_removed": self.kernel_removed.tolist(),
            "hidden_removed": self.hidden_removed.tolist(),
            "removal_order": [h + 1 for h in self.removal_order],
            "removal_errors": self.removal_errors,
            "effective_channels": self.effective_channels,
            "tolerance": self.tolerance,
            "levels": list(self.levels),
            "weight_noise": self.noise.tolist(),
            "weight_dropout": self.dropout.tolist(),
        }


def function_of_parts(
    model: NCA,
    truth: np.ndarray,
    every: int,
    *,
    tolerance: float = 0.1,
    levels: tuple[float, ...] = LEVELS,
    seeds: int = 3,
    key=None,
) -> Function:
    """Take ``model`` apart on the test trajectory ``truth`` (see ``rollout_error``): every
    kernel of every channel removed alone, every hidden channel off alone; then hidden
    channels off together, least needed first, for as long as the error stays within
    ``1 + tolerance`` of the whole rule's (``effective_channels`` counts what is left); and
    the error under weight noise and dropout at each of ``levels``, ``seeds`` draws each."""
    key = jax.random.key(0) if key is None else key
    truth = np.asarray(truth, np.float32)
    base = rollout_error(model, truth, every)
    channels, kernels = model.w_in.shape[1:]
    kernel_removed = np.array(
        [
            [rollout_error(without_kernel(model, c, k), truth, every) for k in range(kernels)]
            for c in range(channels)
        ]
    )
    hidden_removed = np.array(
        [
            rollout_error(without_hidden(model, h), truth, every)
            for h in range(model.hidden_channels)
        ]
    )
    order = [int(h) for h in np.argsort(hidden_removed, kind="stable")]
    removal_errors: list[float] = []
    reduced, needed = model, model.hidden_channels
    for h in order:
        reduced = without_hidden(reduced, h)
        removal_errors.append(rollout_error(reduced, truth, every))
        if removal_errors[-1] <= (1 + tolerance) * base:
            needed = model.hidden_channels - len(removal_errors)
        else:
            break
    draws = jax.random.split(key, (2, len(levels), seeds))
    noise, dropout = (
        np.array(
            [
                [
                    rollout_error(
                        perturbed_weights(model, level, draws[kind, i, s], kind == 1), truth, every
                    )
                    for s in range(seeds)
                ]
                for i, level in enumerate(levels)
            ]
        )
        for kind in (0, 1)
    )
    return Function(
        error=base,
        kernel_removed=kernel_removed,
        hidden_removed=hidden_removed,
        removal_order=order,
        removal_errors=removal_errors,
        effective_channels=model.observable_channels + needed,
        tolerance=tolerance,
        levels=tuple(levels),
        noise=noise,
        dropout=dropout,
    )
