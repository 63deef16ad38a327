"""Noise applied to training data: measurement noise (section 3.1.2) and augmentation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def measurement_noise(
    data: Float[Array, "..."], xi: float, *, key: PRNGKeyArray
) -> Float[Array, "..."]:
    """The paper's noisy data ``(1 - xi) y + xi eta`` with ``eta ~ U(min y, max y)``.

    ``min y`` and ``max y`` are taken over the whole array (the whole trajectory set);
    ``xi = 0`` returns the data unchanged and ``xi = 1`` pure noise.
    """
    if not 0 <= xi <= 1:
        raise ValueError(f"xi must be in [0, 1], got {xi}")
    if xi == 0:
        return data
    eta = jax.random.uniform(key, data.shape, data.dtype, jnp.min(data), jnp.max(data))
    return (1 - xi) * data + xi * eta
