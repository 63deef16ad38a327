"""Symmetry perturbations (section 3.2.2, Fig 12): does the rule commute with rotations and
reflections of its initial condition?

For a transformation ``T`` of the lattice the NCA is equivariant if
``Phi^n(T x0) = T Phi^n(x0)``. We report the relative error between the two (observable
channels) for rotations by 90, 180 and 270 degrees and flips (on-lattice: cells map to
cells exactly) and 45 degrees (off-lattice: bilinear interpolation, as the augmentation;
that interpolation alone makes the two sides differ slightly, even for an exactly
isotropic rule). A stochastic NCA is run with common random numbers under ``T``: the run
from ``T x0`` updates, at every step, the cells ``T`` maps the unperturbed run's updated
cells to, so the error measures the rule, not its noise. The noise floor, the relative
error between two runs from ``x0`` with different keys, is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .. import _trajectory
from .._trajectory import require_finite_weights
from .._validate import count
from ..data.augment import flip, rotate
from ..model import NCA
from .metrics import relative_error
from .perturbation import final_state

TRANSFORMS: dict[str, Callable[[Array], Array]] = {
    "rotate 90": lambda x: jnp.rot90(x, 1, axes=(-3, -2)),
    "rotate 180": lambda x: jnp.rot90(x, 2, axes=(-3, -2)),
    "rotate 270": lambda x: jnp.rot90(x, 3, axes=(-3, -2)),
    "rotate 45": lambda x: rotate(x, 45.0),
    "flip left-right": lambda x: flip(x, axis=-2),
    "flip up-down": lambda x: flip(x, axis=-3),
}
"""Transformation name -> function on ``(..., H, W, C)``; 90-degree rotations need a
square lattice."""

NEED_SQUARE = ("rotate 90", "rotate 270", "rotate 45")
ON_LATTICE = ("rotate 90", "rotate 180", "rotate 270", "flip left-right", "flip up-down")


@dataclass(frozen=True)
class Symmetry:
    """The result of ``symmetry``.

    Attributes:
        reference: ``Phi^n(x0)``, observable ``(H, W, C)``.
        inputs: ``T x0`` per transformation.
        outputs: ``Phi^n(T x0)`` per transformation.
        expected: ``T Phi^n(x0)`` per transformation.
        errors: relative error ``||Phi^n(T x0) - T Phi^n(x0)|| / ||T Phi^n(x0)||`` per
            transformation.
        noise_floor: the relative error between two unperturbed runs with different keys
            (0 for a deterministic NCA).
    """

    reference: np.ndarray
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    errors: dict[str, float]
    noise_floor: float

    def to_json(self) -> dict:
        on = [self.errors[name] for name in ON_LATTICE if name in self.errors]
        return {
            "relative_error": self.errors,
            "mean_on_lattice": float(np.mean(on)) if on else None,
            "stochastic_noise_floor": self.noise_floor,
        }


def symmetry(
    model: NCA,
    initial: Array | np.ndarray,
    steps: int,
    *,
    transforms: tuple[str, ...] | None = None,
    key: PRNGKeyArray | None = None,
) -> Symmetry:
    """Run ``model`` from ``initial`` and its transformations; compare with the transformed run.

    Args:
        model: an NCA.
        initial: observable initial state ``(H, W, C)`` in model units; square for the
            90-degree rotations.
        steps: ``n``.
        transforms: names from ``TRANSFORMS`` (default: all that fit the lattice).
        key: PRNG key for a stochastic NCA (one key, shared by all runs).
    """
    require_finite_weights(model)
    count(steps, "steps", 1)
    initial = jnp.asarray(initial, jnp.float32)
    square = initial.shape[-3] == initial.shape[-2]
    if transforms is None:
        transforms = tuple(n for n in TRANSFORMS if square or n not in NEED_SQUARE)
    unknown = [n for n in transforms if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown transforms {unknown}; choose from {list(TRANSFORMS)}")
    if not square and any(n in NEED_SQUARE for n in transforms):
        raise ValueError("90- and 45-degree rotations need a square lattice")
    k_run, k_other = None, None
    if model.stochastic:
        if key is None:
            raise ValueError("a stochastic NCA needs a PRNG key")
        k_run, k_other = jax.random.split(key)
    inputs = [np.asarray(TRANSFORMS[n](initial)) for n in transforms]
    finals = np.asarray(
        _finals(model, jnp.stack([initial, *inputs]), ("identity", *transforms), steps, k_run)
    )
    reference, outputs = finals[0], finals[1:]
    floor = 0.0
    if model.stochastic:
        other = np.asarray(_finals(model, initial[None], ("identity",), steps, k_other))[0]
        floor = float(relative_error(other, reference))
    expected = {n: np.asarray(TRANSFORMS[n](jnp.asarray(reference))) for n in transforms}
    errors = {n: float(relative_error(outputs[i], expected[n])) for i, n in enumerate(transforms)}
    return Symmetry(
        reference=reference,
        inputs=dict(zip(transforms, inputs, strict=True)),
        outputs={n: outputs[i] for i, n in enumerate(transforms)},
        expected=expected,
        errors=errors,
        noise_floor=floor,
    )


@eqx.filter_jit
def _finals(model: NCA, initials, names: tuple[str, ...], steps: int, key):
    """``Phi^n`` of each of ``initials`` (vmapped); ``names[i]`` is the transformation that
    made ``initials[i]``. For a stochastic NCA each step's update mask is the one the
    unperturbed run draws (same key), transformed by ``names[i]``: common random numbers
    under the transformation, so an exactly equivariant stochastic rule gives 0 error."""
    if not model.stochastic:
        return jax.vmap(lambda x: final_state(model, x, steps, None))(initials)
    branches = [lambda m: m] + [TRANSFORMS[n] for n in names if n != "identity"]
    indices = _branch_indices(names)

    def run(initial, index):
        def step(x, step_key):
            mask = jax.random.bernoulli(step_key, model.update_probability, x.shape)
            mask = jax.lax.switch(index, branches, mask.astype(jnp.float32)) > 0.5
            return x + jnp.where(mask, model.increment(x), 0.0)

        state = _trajectory.advance(step, model.initial_state(initial), steps, key=key)
        return model.observable(state)

    return jax.vmap(run)(initials, indices)


def _branch_indices(names: tuple[str, ...]) -> jnp.ndarray:
    """Index into ``[identity, *the non-identity names]`` for each name."""
    others = [n for n in names if n != "identity"]
    return jnp.array([0 if n == "identity" else 1 + others.index(n) for n in names], jnp.int32)
