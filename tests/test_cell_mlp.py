"""The per-cell MLP's hand-written backward pass (stnca.cell_mlp) against plain automatic
differentiation, and the perception's (stnca.stencils) against the padded slices'."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stnca.cell_mlp import _small_mlp, cell_mlp, small_rule
from stnca.model import ACTIVATIONS, NCA
from stnca.stencils import _correlate_stencils, kernels_for, perceive, perceptions_for


def reference_mlp(z, w_in, b_in, w_out, b_out, activation):
    """Equation (3) as written, differentiated by JAX."""
    return activation(z @ w_in.T + b_in[None]) @ w_out.T + b_out[None]


def random_inputs(cells, inputs, width, outputs, seed=0):
    keys = jax.random.split(jax.random.key(seed), 6)
    return (
        jax.random.normal(keys[0], (cells, inputs)),
        jax.random.normal(keys[1], (width, inputs)) / 2,
        jax.random.normal(keys[2], (width,)) / 4,
        jax.random.normal(keys[3], (outputs, width)) / 8,
        jax.random.normal(keys[4], (outputs,)),
        jax.random.normal(keys[5], (cells, outputs)),  # a cotangent
    )


@pytest.mark.parametrize(
    ("shape", "activations"),
    [
        ((4, 64, 2), ("relu", "tanh", "silu")),
        ((8, 32, 4), ("relu", "linear")),
        ((1, 3, 1), ("relu",)),
    ],
)
def test_the_small_path_has_the_gradients_of_the_formula(shape, activations):
    inputs, width, outputs = shape
    z, w_in, b_in, w_out, b_out, cotangent = random_inputs(50, inputs, width, outputs)
    for activation in activations:
        u = ACTIVATIONS[activation]
        fast, fast_pullback = jax.vjp(
            lambda *a, u=u: _small_mlp(*a, u), z, w_in, b_in, w_out, b_out
        )
        plain, plain_pullback = jax.vjp(
            lambda *a, u=u: reference_mlp(*a, u), z, w_in, b_in, w_out, b_out
        )
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)
        for got, want in zip(fast_pullback(cotangent), plain_pullback(cotangent), strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_the_small_path_batches_over_stacked_weights_as_seeds_train():
    z, w_in, b_in, w_out, b_out, cotangent = random_inputs(40, 4, 16, 2)
    stacked = [jnp.stack([a, 2 * a]) for a in (w_in, b_in, w_out, b_out)]

    def loss(weights, mlp):
        return jnp.sum(mlp(z, *weights, jax.nn.relu) * cotangent)

    def per_run(mlp):
        return jax.vmap(jax.grad(lambda w: loss(w, mlp)))(stacked)

    for got, want in zip(per_run(_small_mlp), per_run(reference_mlp), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_which_rules_take_the_small_path():
    cpu = jax.default_backend() == "cpu"
    assert small_rule(4, 64, 2) == cpu  # the demo's 2-channel Gray-Scott rule
    assert small_rule(8, 32, 4) == cpu
    assert not small_rule(16, 32, 8)  # the paper's 8-channel rule
    assert not small_rule(8, 64, 2)
    assert not small_rule(4, 16, 5)


@pytest.mark.parametrize(("inputs", "width", "outputs"), [(4, 32, 2), (16, 32, 8)])
def test_cell_mlp_without_a_hidden_bias_matches_the_formula_on_both_paths(inputs, width, outputs):
    z, w_in, _, w_out, b_out, cotangent = random_inputs(30, inputs, width, outputs, seed=1)
    zero = jnp.zeros((width,))
    got = jax.grad(lambda w: jnp.sum(cell_mlp(z, w, None, w_out, b_out, jnp.tanh) * cotangent))
    want = jax.grad(
        lambda w: jnp.sum(reference_mlp(z, w, zero, w_out, b_out, jnp.tanh) * cotangent)
    )
    np.testing.assert_allclose(got(w_in), want(w_in), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("hidden", "width"), [(0, 64), (6, 32)])
def test_a_models_gradient_through_a_rollout_is_unchanged_by_the_hand_written_passes(hidden, width):
    # the 2-channel rule (small path) and an 8-channel one (matrix products), periodic
    model = NCA(2, hidden, hidden_width=width, hidden_bias=True, key=jax.random.key(0))
    model = eqx.tree_at(lambda m: m.w_out, model, jnp.full_like(model.w_out, 0.01))
    x = jax.random.uniform(jax.random.key(1), (2, 12, 12, model.channels))

    def reference_step(m, s):
        z = jnp.stack(
            [
                _correlate_stencils(s, (kernels_for(2)[k],), m.boundary, 2)[..., 0]
                for k in m.kernels
            ],
            -1,
        )
        flat = reference_mlp(
            z.reshape(-1, z.shape[-2] * z.shape[-1]),
            m.w_in.reshape(m.w_in.shape[0], -1),
            m.b_in,
            m.w_out,
            m.b_out,
            jax.nn.relu,
        )
        return s + flat.reshape(s.shape)

    def loss(m, step):
        s = x
        for _ in range(4):
            s = step(m, s)
        return jnp.sum(jnp.sin(3 * s))

    got = eqx.filter_grad(lambda m: loss(m, lambda mm, s: mm(s)))(model)
    want = eqx.filter_grad(lambda m: loss(m, reference_step))(model)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("dims", "boundary"),
    # every dimension and both hand-written boundaries; reflect keeps automatic differentiation
    [(1, "fixed"), (2, "periodic"), (2, "fixed"), (2, "reflect"), (3, "periodic")],
)
def test_the_perceptions_backward_pass_is_the_padded_slices_gradient(dims, boundary):
    names = perceptions_for(dims)  # every kernel, and gradient_magnitude
    linear = tuple(name for name in names if name in kernels_for(dims))
    x = jax.random.normal(jax.random.key(0), (2, *(5, 6, 4)[:dims], 3))

    def reference(v):
        return _correlate_stencils(v, tuple(kernels_for(dims)[n] for n in linear), boundary, dims)

    value, pullback = jax.vjp(lambda v: perceive(v, linear, boundary, dims), x)
    want_value, want_pullback = jax.vjp(reference, x)
    cotangent = jax.random.normal(jax.random.key(1), value.shape)
    np.testing.assert_array_equal(value, want_value)
    np.testing.assert_allclose(pullback(cotangent)[0], want_pullback(cotangent)[0], atol=1e-5)

    # the derived perception differentiates through the hand-written linear part
    def magnitude(v):
        gradients = reference(v)[..., [linear.index(f"gradient_{a}") for a in "xyz"[:dims]]]
        squared = jnp.sum(gradients**2, -1)
        positive = squared > 0  # as perceive does: 0 where the gradient vanishes
        return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)

    got = jax.grad(lambda v: jnp.sum(jnp.sin(perceive(v, ("gradient_magnitude",), boundary, dims))))
    want = jax.grad(lambda v: jnp.sum(jnp.sin(magnitude(v))))
    np.testing.assert_allclose(got(x), want(x), atol=1e-5)
