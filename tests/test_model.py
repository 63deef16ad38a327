import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stnca import NCA
from stnca.model import ACTIVATIONS
from stnca.stencils import apply_kernel


def make(key, **kwargs):
    settings = dict(observable_channels=2, hidden_channels=3)
    settings.update(kwargs)
    return NCA(key=key, **settings)


@pytest.mark.parametrize("update_probability", [1.0, 0.5])
@pytest.mark.parametrize("boundary", ["periodic", "fixed", "reflect"])
def test_untrained_nca_is_the_identity(key, rng, update_probability, boundary):
    model = make(
        key,
        kernels=("identity", "average", "gradient_x", "gradient_y", "laplacian"),
        update_probability=update_probability,
        boundary=boundary,
    )
    x = jnp.asarray(rng.normal(size=(3, 10, 12, 5)).astype(np.float32))
    assert np.any(np.asarray(model.w_in) != 0)  # W2 random, W1 and v zero
    assert np.all(np.asarray(model.w_out) == 0) and np.all(np.asarray(model.b_out) == 0)
    np.testing.assert_array_equal(model(x, key=key), x)
    frames = model.rollout(x, 20, every=5, key=key)
    assert frames.shape == (3, 5, 10, 12, 5)
    np.testing.assert_array_equal(frames, jnp.broadcast_to(x[:, None], frames.shape))


def test_shapes_single_and_batched(key, rng):
    model = make(key)
    single = jnp.asarray(rng.normal(size=(8, 8, 5)).astype(np.float32))
    batched = jnp.asarray(rng.normal(size=(2, 3, 8, 8, 5)).astype(np.float32))
    assert model(single).shape == (8, 8, 5)
    assert model(batched).shape == (2, 3, 8, 8, 5)
    assert model.rollout(single, 6, every=2).shape == (4, 8, 8, 5)
    assert model.advance(batched, 3).shape == batched.shape
    assert model.hidden_width == 4 * 5
    with pytest.raises(ValueError, match=r"\(\.\.\., height, width, 5\)"):
        model(jnp.zeros((8, 8, 4)))


def trained_like(model, key):
    """A model with random non-zero output weights (so that it does something)."""
    k1, k2 = jax.random.split(key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.1 * jax.random.normal(k1, model.w_out.shape))
    return eqx.tree_at(lambda m: m.b_out, model, 0.1 * jax.random.normal(k2, model.b_out.shape))


def test_step_matches_equation_3_by_hand(key, rng):
    model = trained_like(make(key, kernels=("identity", "laplacian"), activation="tanh"), key)
    x = rng.normal(size=(6, 7, 5)).astype(np.float32)
    lap = np.asarray(apply_kernel(jnp.asarray(x), "laplacian", "periodic"))
    z = np.stack([x, lap], axis=-1)  # (H, W, C, K)
    w2, w1, v = (np.asarray(a) for a in (model.w_in, model.w_out, model.b_out))
    expected = x + np.tanh(np.einsum("ijck,hck->ijh", z, w2)) @ w1.T + v
    np.testing.assert_allclose(model(jnp.asarray(x)), expected, atol=1e-5)


def test_linear_nca_can_be_pure_diffusion(key, rng):
    # F = D * laplacian(x) with linear activation: an NCA step is one Euler diffusion step.
    model = make(
        key,
        observable_channels=1,
        hidden_channels=0,
        kernels=("laplacian",),
        activation="linear",
        hidden_width=1,
    )
    model = eqx.tree_at(
        lambda m: (m.w_in, m.w_out), model, (jnp.ones((1, 1, 1)), jnp.full((1, 1), 0.1))
    )
    x = jnp.asarray(rng.normal(size=(9, 9, 1)).astype(np.float32))
    expected = x
    for _ in range(5):
        expected = expected + 0.1 * apply_kernel(expected, "laplacian", "periodic")
    np.testing.assert_allclose(model.advance(x, 5), expected, atol=1e-5)


def test_rollout_matches_repeated_steps_and_keeps_frame_zero(key, rng):
    model = trained_like(make(key, update_probability=0.7), key)
    x = jnp.asarray(rng.normal(size=(6, 6, 5)).astype(np.float32))
    frames = model.rollout(x, 6, every=3, key=key)
    keys = jax.random.split(key, 6)
    manual = [x]
    state = x
    for n in range(6):
        state = model(state, key=keys[n])
        if (n + 1) % 3 == 0:
            manual.append(state)
    np.testing.assert_allclose(frames, jnp.stack(manual), atol=1e-6)
    np.testing.assert_allclose(model.advance(x, 6, key=key), manual[-1], atol=1e-6)
    np.testing.assert_allclose(model.advance(x, 6, key=key, checkpoint=True), manual[-1], atol=1e-6)


def test_stochastic_mask_rate_and_key_determinism(key):
    p_update = 0.3
    model = make(key, observable_channels=2, hidden_channels=2, update_probability=p_update)
    model = eqx.tree_at(lambda m: m.b_out, model, jnp.ones(4))  # F = 1 everywhere
    x = jnp.zeros((64, 64, 4))
    k1, k2 = jax.random.split(key)
    updated = np.asarray(model(x, key=k1))
    assert set(np.unique(updated)) <= {0.0, 1.0}
    n = updated.size
    rate = updated.mean()
    assert abs(rate - p_update) < 4 * np.sqrt(p_update * (1 - p_update) / n)
    # the mask is per cell AND channel: channels of one cell are not all updated together
    per_cell = updated.reshape(-1, 4)
    assert np.mean(np.all(per_cell == per_cell[:, :1], axis=1)) < 0.5
    np.testing.assert_array_equal(model(x, key=k1), updated)
    assert np.any(np.asarray(model(x, key=k2)) != updated)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        model(x)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        model.rollout(x, 2)


def test_deterministic_model_ignores_key(key, rng):
    model = trained_like(make(key), key)
    x = jnp.asarray(rng.normal(size=(5, 5, 5)).astype(np.float32))
    np.testing.assert_array_equal(model(x), model(x, key=key))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_runs_and_differs(key, rng, activation):
    model = trained_like(make(key, activation=activation), key)
    x = jnp.asarray(rng.normal(size=(5, 5, 5)).astype(np.float32))
    out = model(x)
    assert np.all(np.isfinite(out)) and np.any(np.asarray(out) != np.asarray(x))


def test_gradients_through_a_long_rollout_are_finite(key, rng):
    model = trained_like(make(key), key)
    x = jnp.asarray(rng.uniform(size=(8, 8, 5)).astype(np.float32))

    @eqx.filter_grad
    def grad(m):
        return jnp.sum(m.advance(x, 64, checkpoint=True)[..., :2] ** 2)

    g = grad(model)
    leaves = jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_array))
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves)
    assert any(np.any(leaf != 0) for leaf in leaves)


def test_initial_state_and_observable(key):
    model = make(key)
    data = jnp.ones((3, 4, 4, 2))
    state = model.initial_state(data)
    assert state.shape == (3, 4, 4, 5)
    np.testing.assert_array_equal(state[..., 2:], 0)
    np.testing.assert_array_equal(model.observable(state), data)
    with pytest.raises(ValueError, match="2 observable channels"):
        model.initial_state(jnp.ones((4, 4, 3)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(observable_channels=0), "observable_channels"),
        (dict(hidden_channels=-1), "hidden_channels"),
        (dict(activation="softmax"), "activation must be one of"),
        (dict(update_probability=1.5), "update_probability"),
        (dict(update_probability=0.0), "update_probability must be > 0"),
        (dict(boundary="open"), "boundary must be one of"),
        (dict(kernels=("laplace",)), "unknown kernel"),
        (dict(hidden_width=0), "hidden_width"),
    ],
)
def test_bad_hyperparameters(key, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(key, **kwargs)


def test_one_compilation_for_repeated_rollouts(key, rng):
    model = make(key)
    traces = []

    @eqx.filter_jit
    def run(m, x):
        traces.append(1)
        return m.advance(x, 4)

    for _ in range(3):
        run(model, jnp.asarray(rng.normal(size=(6, 6, 5)).astype(np.float32)))
    assert len(traces) == 1
