"""Adversarial initial conditions (section 3.2.2, Fig 11).

With ``Phi^n`` the NCA run for ``n`` steps from an initial condition ``x0`` and a
perturbation ``x~`` of it, the paper's objective is::

    kappa^n(x0, x~) = ||x~|| - ||Phi^n(x0 + x~) - Phi^n(x0)||

Minimising ``kappa`` finds a small perturbation that destroys the state at step ``n``
(``destroy``); maximising it a large one that leaves that state unchanged (``preserve``).
The perturbation acts on the observable channels and is projected after every optimiser
step so that ``x0 + x~`` stays in the data range (and, with a ``budget``, ``||x~|| <=
budget``). The rollout's random keys are fixed during the optimisation. An adversarial
result means something only beside a control: a random perturbation of the same norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._resources import MAX_STEPS
from .._trajectory import require_finite_weights
from .._validate import count, real
from ..model import NCA
from .perturbation import final_state

MODES = ("destroy", "preserve")


def _norm(x: Array) -> Array:
    """Euclidean norm with a finite gradient at 0 (NaN and infinity pass through)."""
    squared = jnp.sum(x**2)
    zero = squared == 0
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, squared)))


def kappa(
    model: NCA,
    initial: Array,
    perturbation: Array,
    steps: int,
    *,
    key: PRNGKeyArray | None = None,
) -> Array:
    """The paper's ``kappa^n(x0, x~) = ||x~|| - ||Phi^n(x0 + x~) - Phi^n(x0)||``."""
    change = final_state(model, initial + perturbation, steps, key) - final_state(
        model, initial, steps, key
    )
    return _norm(perturbation) - _norm(change)


def project(
    initial: Array,
    perturbation: Array,
    bounds: tuple[float, float],
    budget: float | None = None,
) -> Array:
    """The nearest perturbation that keeps ``initial + x~`` in ``bounds`` (and, with a
    ``budget``, then scales it into the ball ``||x~|| <= budget``, which keeps it in bounds)."""
    perturbation = jnp.clip(initial + perturbation, *bounds) - initial
    if budget is not None:
        norm = _norm(perturbation)
        perturbation = perturbation * jnp.minimum(1.0, budget / jnp.maximum(norm, 1e-30))
    return perturbation


@dataclass(frozen=True)
class Adversarial:
    """One optimised perturbation and its control.

    Attributes:
        mode: ``destroy`` or ``preserve``.
        perturbation: the optimised ``x~`` ``(H, W, C)`` in model units.
        control: a random perturbation of the same norm (as near as the data range allows).
        history: ``kappa`` before each optimiser step (the final one is in ``numbers``).
        numbers: JSON-ready numbers (norms, final-state changes, kappa) for both.
    """

    mode: str
    perturbation: np.ndarray
    control: np.ndarray
    history: np.ndarray
    numbers: dict
    rollout_key: PRNGKeyArray | None


def random_control(
    initial: np.ndarray,
    norm: float,
    bounds: tuple[float, float],
    *,
    key: PRNGKeyArray,
) -> np.ndarray:
    """A random (Gaussian-direction) perturbation with norm ``norm`` after projection into
    ``bounds``; the scale is found by bisection (the projected norm grows with it). If the
    data range cannot hold that much, the largest reachable one is returned."""
    initial = np.asarray(initial, np.float64)
    direction = np.asarray(jax.random.normal(key, initial.shape), np.float64)
    direction /= np.linalg.norm(direction)

    def projected(scale: float) -> np.ndarray:
        return np.clip(initial + scale * direction, *bounds) - initial

    low, high = 0.0, max(norm, 1e-12)
    while np.linalg.norm(projected(high)) < norm and high < 1e6:
        high *= 2.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if np.linalg.norm(projected(middle)) < norm:
            low = middle
        else:
            high = middle
    return projected(high).astype(np.float32)


def adversarial(
    model: NCA,
    initial: Float[Array, "height width observable"],
    steps: int,
    *,
    mode: str = "destroy",
    iterations: int = 200,
    learning_rate: float = 0.01,
    budget: float | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    key: PRNGKeyArray,
) -> Adversarial:
    """Optimise a perturbation of ``initial`` with Adam on ``kappa^n`` (minimised for
    ``destroy``, maximised for ``preserve``) and measure it against a random control.

    Args:
        model: a trained NCA.
        initial: observable initial state ``(H, W, C)`` in model units.
        steps: ``n``, the step at which the state should be destroyed or preserved.
        mode: ``destroy`` or ``preserve``.
        iterations: optimiser steps ``K`` (default 200).
        learning_rate: Adam's step size, in data units per step (default 0.01).
        budget: largest allowed ``||x~||`` (default: only the data range bounds it).
        bounds: the data range ``x0 + x~`` must stay in (default ``(0, 1)``).
        key: PRNG key: the starting perturbation, the control and the fixed rollout keys.

    Raises:
        ValueError: bad settings, or the objective became non-finite (the model blows up).
    """
    require_finite_weights(model)
    _check_settings(mode, steps, iterations, learning_rate, budget)
    initial = jnp.asarray(initial, jnp.float32)
    k_start, k_control, k_rollout = jax.random.split(key, 3)
    rollout_key = k_rollout if model.stochastic else None
    sign = 1.0 if mode == "destroy" else -1.0
    start = project(initial, 0.01 * jax.random.normal(k_start, initial.shape), bounds, budget)

    perturbation, history = _optimise(
        model,
        initial,
        start,
        rollout_key,
        jnp.float32(learning_rate),
        steps,
        sign,
        iterations,
        bounds,
        budget,
    )
    history = _finite_history(np.asarray(history))
    perturbation = np.asarray(perturbation)
    control = random_control(
        np.asarray(initial), float(np.linalg.norm(perturbation)), bounds, key=k_control
    )
    adversarial_numbers = _measure(model, initial, perturbation, steps, rollout_key)
    if not np.isfinite(adversarial_numbers["kappa"]):
        raise ValueError(
            "the adversarial objective became non-finite after the last iteration (the model "
            "blows up from the perturbed initial condition); lower steps or budget"
        )
    return Adversarial(
        mode=mode,
        perturbation=perturbation,
        control=control,
        history=history,
        rollout_key=rollout_key,
        numbers={
            "mode": mode,
            "steps": steps,
            "iterations": iterations,
            "adversarial": adversarial_numbers,
            "random_control": _measure(model, initial, control, steps, rollout_key),
        },
    )


def _check_settings(
    mode: str, steps: int, iterations: int, learning_rate: float, budget: float | None
) -> None:
    """Refuse bad ``adversarial`` settings, naming the argument."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    count(steps, "steps", 1)
    count(iterations, "iterations", 1, MAX_STEPS)  # a scan length: 32-bit
    real(learning_rate, "learning_rate", 0.0)
    if learning_rate == 0:
        raise ValueError("learning_rate must be > 0")
    if budget is not None:
        real(budget, "budget", 0.0)
        if budget == 0:
            raise ValueError("budget must be > 0")


def _finite_history(history: np.ndarray) -> np.ndarray:
    """``history``, or a ``ValueError`` naming the first iteration whose objective is not
    finite."""
    if not np.all(np.isfinite(history)):
        first = int(np.argmin(np.isfinite(history)))
        raise ValueError(
            f"the adversarial objective became non-finite at iteration {first + 1} (the model "
            f"blows up from a perturbed initial condition); lower steps or budget"
        )
    return history


@eqx.filter_jit
def _optimise(model, initial, start, key, learning_rate, steps, sign, iterations, bounds, budget):
    optimiser = optax.adam(learning_rate)

    def objective(p):
        return sign * kappa(model, initial, p, steps, key=key)

    def step(carry, _):
        p, state = carry
        value, gradient = jax.value_and_grad(objective)(p)
        updates, state = optimiser.update(gradient, state, p)
        p = project(initial, optax.apply_updates(p, updates), bounds, budget)
        return (p, state), sign * value

    (p, _), history = jax.lax.scan(step, (start, optimiser.init(start)), None, length=iterations)
    return p, history


@eqx.filter_jit
def _changes(model, initial, perturbation, steps, key):
    def change(n):
        return _norm(
            final_state(model, initial + perturbation, n, key) - final_state(model, initial, n, key)
        )

    return change(steps), change(2 * steps), _norm(final_state(model, initial, steps, key))


def _measure(model, initial, perturbation, steps, key) -> dict:
    change, change_twice, reference = (
        float(v) for v in _changes(model, initial, jnp.asarray(perturbation), steps, key)
    )
    norm = float(np.linalg.norm(perturbation))
    return {
        "perturbation_norm": norm,
        "perturbation_relative_to_initial": norm / max(float(np.linalg.norm(initial)), 1e-30),
        "final_change": change,
        "final_change_relative": change / max(reference, 1e-30),
        "final_change_at_twice_n": change_twice,
        "kappa": norm - change,
    }
