"""Penalties for small rules (stnca.train.parsimony): their gradients are the documented
(sub)gradients, and a training update moves by exactly the penalty's step."""

import equinox as eqx
import jax
import numpy as np
import pytest
from helpers import tiny_config

from stnca import NCA
from stnca.train import config_from_dict, train
from stnca.train.parsimony import channel_lasso, kernel_lasso, l1


def model_with_a_dead_block():
    model = NCA(2, 2, kernels=("identity", "laplacian"), key=jax.random.key(0))
    w_out = jax.random.normal(jax.random.key(1), model.w_out.shape)
    b_out = jax.random.normal(jax.random.key(2), model.b_out.shape)
    w_in = model.w_in.at[:, 1, 0].set(0.0)  # channel 1's identity block: dead
    return eqx.tree_at(lambda m: (m.w_in, m.w_out, m.b_out), model, (w_in, w_out, b_out))


def test_the_penalties_have_their_documented_gradients():
    model = model_with_a_dead_block()
    # expectations in NumPy (JAX op by op would compile every operation)
    w_in, w_out, b_out = (np.asarray(a) for a in (model.w_in, model.w_out, model.b_out))
    grad = jax.jit(jax.grad(l1))(model)  # compiled once
    alive = w_in != 0  # (at 0 JAX takes the subgradient 1)
    np.testing.assert_array_equal(np.asarray(grad.w_in)[alive], np.sign(w_in)[alive])
    np.testing.assert_array_equal(grad.w_out, np.sign(w_out))
    grad = jax.jit(jax.grad(kernel_lasso))(model)
    norms = np.sqrt(np.sum(w_in**2, axis=0, keepdims=True))
    expected = np.where(norms > 0, w_in / np.where(norms > 0, norms, 1.0), 0.0)
    np.testing.assert_allclose(grad.w_in, expected, atol=1e-5)
    assert np.all(np.asarray(grad.w_in[:, 1, 0]) == 0)  # a dead block: 0, not NaN
    grad = jax.jit(jax.grad(channel_lasso))(model)
    for c in range(2):  # hidden channel c: input channel 2 + c, updated channel 2 + c
        group = np.sqrt(np.sum(w_in[:, 2 + c] ** 2) + np.sum(w_out[2 + c] ** 2) + b_out[2 + c] ** 2)
        np.testing.assert_allclose(grad.w_in[:, 2 + c], w_in[:, 2 + c] / group, rtol=1e-5)
        np.testing.assert_allclose(grad.w_out[2 + c], w_out[2 + c] / group, rtol=1e-5)
        np.testing.assert_allclose(grad.b_out[2 + c], b_out[2 + c] / group, rtol=1e-5)
    # the observable channels are not penalised
    grad_in, grad_out, grad_b = (np.asarray(a) for a in (grad.w_in, grad.w_out, grad.b_out))
    assert not np.any(grad_in[:, :2]) and not np.any(grad_out[:2]) and not np.any(grad_b[:2])


@pytest.mark.parametrize("name", ["l1_penalty", "kernel_lasso", "channel_lasso"])
def test_an_sgd_update_moves_by_exactly_the_penalty_step(tmp_path, name):
    def config(**changes):  # the same data every time (tiny_config draws it from rng)
        return tiny_config(tmp_path, np.random.default_rng(0), **{**settings, **changes})

    quiet = dict(progress=False, log=lambda _: None)
    settings = dict(
        epochs=1, optimizer="sgd", gradient_normalisation=False, minibatches=1, learning_rate=0.05
    )
    plain = train(config(), tmp_path / "plain", **quiet)
    weight = 0.3
    moved = train(config(**{name: weight}), tmp_path / "penalised", **quiet)
    # both start from the same weights (epochs = 0 gives them); optax's Nesterov SGD's first
    # step is lr (1 + momentum) g, so the penalty moves the weights by that of its gradient
    penalty = {"l1_penalty": l1, "kernel_lasso": kernel_lasso, "channel_lasso": channel_lasso}[name]
    first = train(config(epochs=0), tmp_path / "start", **quiet)
    grad = jax.jit(jax.grad(penalty))(first.final_model)
    for field in ("w_in", "w_out", "b_out"):
        difference = getattr(moved.final_model, field) - getattr(plain.final_model, field)
        np.testing.assert_allclose(
            difference, -0.05 * 1.9 * weight * getattr(grad, field), atol=1e-6, err_msg=field
        )


def test_negative_weights_are_refused():
    for name in ("l1_penalty", "kernel_lasso", "channel_lasso"):
        with pytest.raises(ValueError, match=f"training.{name} must be >= 0"):
            config_from_dict({"training": {name: -1.0}})
