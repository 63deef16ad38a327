import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from stnca.losses import LOSSES, euclidean, get_loss, hellinger, sliced_wasserstein, spectral

NAMES = sorted(LOSSES)


def fields(rng, shape=(3, 12, 10, 2)):
    x = rng.uniform(0.1, 1.0, size=shape).astype(np.float32)
    y = rng.uniform(0.1, 1.0, size=shape).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


@pytest.mark.parametrize("name", NAMES)
def test_zero_on_identical_inputs(name, rng, key):
    x, _ = fields(rng)
    value = get_loss(name)(x, x, key=key)
    assert value.shape == (3,)
    np.testing.assert_array_equal(value, 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_positive_on_different_inputs(name, rng, key):
    x, y = fields(rng)
    value = np.asarray(get_loss(name)(x, y, key=key))
    assert np.all(value > 1e-4), value


@pytest.mark.parametrize("name", NAMES)
def test_finite_value_and_gradient_on_constant_and_identical_inputs(name, key):
    loss = get_loss(name)
    # jitted as training uses it, and compiled once for the four pairs (eager, each of the
    # loss's operations compiled on its own: 10-14 s for the slower losses)
    value_and_grad = jax.jit(jax.value_and_grad(lambda p, y: loss(p, y, key=key)))
    for x, y in [
        (jnp.full((8, 8, 2), 0.5), jnp.full((8, 8, 2), 0.5)),
        (jnp.zeros((8, 8, 2)), jnp.zeros((8, 8, 2))),
        (jnp.full((8, 8, 2), 0.5), jnp.full((8, 8, 2), 0.25)),
        (jnp.full((8, 8, 2), -1.0), jnp.zeros((8, 8, 2))),
    ]:
        value, grad = value_and_grad(x, y)
        assert np.isfinite(value)
        assert np.all(np.isfinite(grad)), (name, x[0, 0], y[0, 0])


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name, rng, key):
    with jax.enable_x64(True):
        x = jnp.asarray(rng.uniform(0.2, 1.0, size=(6, 5, 2)))
        y = jnp.asarray(rng.uniform(0.2, 1.0, size=(6, 5, 2)))
        check_grads(  # jitted: compiled once, not operation by operation for each call
            jax.jit(lambda p: get_loss(name)(p, y, key=key)),
            (x,),
            order=1,
            modes=["rev"],
            eps=1e-6,
            atol=1e-4,
            rtol=1e-4,
        )


@pytest.mark.parametrize("name", NAMES)
def test_gradient_descends(name, rng, key):
    # a small step against the gradient lowers the loss
    x, y = fields(rng, (10, 10, 2))
    loss = get_loss(name)
    value, grad = jax.jit(jax.value_and_grad(lambda p: loss(p, y, key=key).sum()))(x)
    stepped = jax.jit(loss)(x - 1e-2 * grad / jnp.linalg.norm(grad), y, key=key).sum()
    assert stepped < value


def test_euclidean_is_the_paper_formula(rng):
    x, y = fields(rng)
    expected = np.sqrt(np.sum((np.asarray(x) - np.asarray(y)) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(euclidean(x, y), expected, rtol=1e-6)


def test_hellinger_is_scale_invariant_and_bounded(rng):
    x, y = fields(rng)
    np.testing.assert_allclose(hellinger(x, 3.0 * x), 0.0, atol=1e-3)
    assert np.all(np.asarray(hellinger(x, y)) <= 1.0)
    # disjoint supports: maximal distance 1
    a = jnp.zeros((4, 4, 1)).at[0, 0].set(1.0)
    b = jnp.zeros((4, 4, 1)).at[3, 3].set(1.0)
    assert float(hellinger(a, b)) == pytest.approx(1.0, abs=1e-3)


def test_spectral_ignores_translation(rng):
    x, _ = fields(rng, (8, 8, 2))
    shifted = jnp.roll(x, (3, 2), axis=(0, 1))
    assert float(spectral(x, shifted)) == pytest.approx(0.0, abs=1e-5)
    assert float(euclidean(x, shifted)) > 0.5


def test_sliced_wasserstein_ignores_permutation_and_uses_the_key(rng, key):
    x, y = fields(rng, (8, 8, 2))
    permuted = jnp.asarray(np.asarray(x).reshape(-1, 2)[rng.permutation(64)].reshape(8, 8, 2))
    assert float(sliced_wasserstein(x, permuted, key=key)) == pytest.approx(0.0, abs=1e-6)
    k1, k2 = jax.random.split(key)
    assert float(sliced_wasserstein(x, y, key=k1)) != float(sliced_wasserstein(x, y, key=k2))
    assert float(sliced_wasserstein(x, y, key=k1)) == float(sliced_wasserstein(x, y, key=k1))


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("wasserstein")


def test_box_penalty_on_hand_made_states():
    from stnca.losses import box_penalty

    inside = jnp.asarray([[[[0.0, 0.5, 1.0, 0.25]]]])  # (1, 1, 1, 4): all in [0, 1]
    assert float(box_penalty(inside)) == 0.0
    # two states, 2x1 cells, 3 channels (the last one a hidden channel)
    states = np.zeros((2, 2, 1, 3), np.float32)
    states[0, 0, 0] = [-0.5, 0.2, 1.75]  # 0.5 below, 0.75 above (hidden channel)
    states[1, 1, 0] = [1.0, -2.0, 0.0]  # 2 below
    assert float(box_penalty(jnp.asarray(states))) == pytest.approx(0.5 + 0.75 + 2.0)
    # other bounds, and only the hidden channel outside
    hidden_only = np.full((1, 2, 2, 3), 0.5, np.float32)
    hidden_only[..., 2] = 3.0
    assert float(box_penalty(jnp.asarray(hidden_only), -1.0, 2.0)) == pytest.approx(4 * 1.0)
