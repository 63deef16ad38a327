"""Where the time of the paper's Gray-Scott training step goes: each piece of one NCA step timed
on its own (a jitted ``lax.scan`` of 32 steps, median of 7), per step and per 64x64 state,
for 32 states at once and for 4 at once; then the forward-and-backward call training makes.

    python benchmarks/step_profile.py
"""

from __future__ import annotations

import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp

import stnca
from stnca.stencils import perceive

STEPS = 32


def median_seconds(fn, *args, repeats: int = 7) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pieces(model: stnca.NCA) -> dict:
    """Cumulative prefixes of one step; each returns a state, so that a scan can carry it."""

    def perception(x):
        return x + perceive(x, model.kernels, model.boundary)[..., 1]

    def first_layer(x):
        z = perceive(x, model.kernels, model.boundary)
        return x + jnp.einsum("...ck,hck->...h", z, model.w_in)[..., : x.shape[-1]]

    def relu(x):
        z = perceive(x, model.kernels, model.boundary)
        hidden = jax.nn.relu(jnp.einsum("...ck,hck->...h", z, model.w_in))
        return x + hidden[..., : x.shape[-1]]

    return {
        "perception": perception,
        "+ first layer (16 -> 32)": first_layer,
        "+ relu": relu,
        "whole step (+ 32 -> 8, residual)": model,
    }


def scanned(step):
    return jax.jit(lambda x: jax.lax.scan(lambda s, _: (step(s), None), x, None, STEPS)[0])


@eqx.filter_jit
def value_and_grad(model, x, y):
    def loss(m):
        final = m.advance(x, STEPS, checkpoint=True)
        return jnp.mean(stnca.losses.euclidean(m.observable(final), y))

    return eqx.filter_value_and_grad(loss)(model)


def main() -> None:
    key = jax.random.key(0)
    model = stnca.NCA(2, 6, key=key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.01 * jnp.ones_like(model.w_out))
    for batch in (32, 4):
        x = jax.random.uniform(key, (batch, 64, 64, 8))
        y = jax.random.uniform(key, (batch, 64, 64, 2))
        per_state = STEPS * batch / 1e6  # -> microseconds per step and state
        print(f"{batch} states at once: microseconds per NCA step per 64x64 state")
        for name, step in pieces(model).items():
            print(f"  forward: {name:40s} {median_seconds(scanned(step), x) / per_state:8.1f}")
        seconds = median_seconds(value_and_grad, model, x, y)
        print(f"  {'forward and backward, every step remat':49s} {seconds / per_state:8.1f}")


if __name__ == "__main__":
    main()
