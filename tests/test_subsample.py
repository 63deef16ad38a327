"""The sub-sampled loss (training.loss_fraction): a random subset of cells per comparison."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stnca.losses import LOSSES, SUBSAMPLED, cell_weights, get_loss, subsampled
from stnca.train import config_from_dict, initial_states, train
from stnca.train.algorithm import make_epoch, make_optimizer, transition_losses

SHAPE = (3, 8, 8, 2)  # batch, height, width, channels
KEYS = 20_000


@pytest.fixture
def fields(rng):
    prediction = jnp.asarray(rng.uniform(size=SHAPE).astype(np.float32))
    target = jnp.asarray(rng.uniform(size=SHAPE).astype(np.float32))
    return prediction, target


def estimates(loss, prediction, target, key, count=KEYS):
    """``count`` draws of a sub-sampled loss, shape ``(count, batch)``."""
    keys = jax.random.split(key, count)
    return jax.vmap(lambda k: loss(prediction, target, key=k))(keys)


def assert_mean_within_noise(draws, full):
    """The mean of the draws equals ``full`` within 4.5 standard errors, per batch element."""
    draws = np.asarray(draws, np.float64)
    error = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(error > 0)
    assert np.all(np.abs(draws.mean(axis=0) - np.asarray(full)) <= 4.5 * error), (
        draws.mean(axis=0),
        full,
        error,
    )


@pytest.mark.parametrize("patch", [1, 3])
@pytest.mark.parametrize("name", ["mse", "l1"])
def test_mean_over_keys_is_the_full_loss(fields, key, name, patch):
    prediction, target = fields
    draws = estimates(subsampled(name, 0.3, patch), prediction, target, key)
    assert_mean_within_noise(draws, get_loss(name)(prediction, target))


@pytest.mark.parametrize("patch", [1, 3])
def test_euclidean_squared_is_unbiased(fields, key, patch):
    # the sum of squared differences under the root is the unbiased part
    prediction, target = fields
    draws = estimates(subsampled("euclidean", 0.3, patch), prediction, target, key)
    assert_mean_within_noise(draws**2, get_loss("euclidean")(prediction, target) ** 2)


def test_euclidean_is_biased_low_as_documented(fields, key):
    # Jensen: E sqrt(S_hat) < sqrt(S); to second order by Var(S_hat) / (8 S^2) relative
    prediction, target = fields
    fraction = 0.5
    draws = np.asarray(
        estimates(subsampled("euclidean", fraction), prediction, target, key, 100_000), np.float64
    )
    squared = np.asarray((prediction - target) ** 2, np.float64).sum(axis=-1)  # per cell
    total = squared.sum(axis=(-2, -1))
    variance = (1 - fraction) / fraction * (squared**2).sum(axis=(-2, -1))
    predicted = -variance / (8 * total**2)
    measured = draws.mean(axis=0) / np.sqrt(total) - 1
    error = draws.std(axis=0) / np.sqrt(draws.shape[0]) / np.sqrt(total)
    assert np.all(measured < 0)
    assert np.all(np.abs(measured - predicted) <= 0.3 * np.abs(predicted) + 4.5 * error), (
        measured,
        predicted,
    )
    assert np.all(np.abs(predicted) < 0.01)  # small at 64 cells and f = 1/2


def test_mse_gradient_is_unbiased(fields, key):
    prediction, target = fields
    estimate = subsampled("mse", 0.25, 2)

    def gradient(k):
        return jax.grad(lambda p: jnp.sum(estimate(p, target, key=k)))(prediction)

    draws = jax.jit(jax.vmap(gradient))(jax.random.split(key, 4000)).reshape(4000, -1)
    full = jax.grad(lambda p: jnp.sum(get_loss("mse")(p, target)))(prediction).reshape(-1)
    assert_mean_within_noise(draws, full)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_fraction_one_is_the_full_loss_bit_for_bit(fields, key, name):
    prediction, target = fields
    assert subsampled(name, 1.0) is get_loss(name)
    np.testing.assert_array_equal(
        subsampled(name, 1.0, 4)(prediction, target, key=key),
        get_loss(name)(prediction, target, key=key),
    )


def test_cell_weights_keep_blocks_together_with_probability_fraction(key):
    weights = cell_weights(key, (4000, 7, 7), 0.25, patch=3)
    assert weights.shape == (4000, 7, 7, 1)
    assert set(np.unique(np.asarray(weights)).tolist()) <= {0.0, 4.0}
    # 3x3 blocks from the corner (the last row and column of blocks cut to 1 cell)
    blocks = np.asarray(weights[..., 0])
    assert np.all(blocks[:, :3, :3] == blocks[:, :1, :1])
    assert np.all(blocks[:, 6:, 3:6] == blocks[:, 6:, 3:4])
    assert not np.all(blocks[:, :1, :1] == blocks[:, :1, 3:4])
    # mean weight 1 in every cell
    np.testing.assert_allclose(blocks.mean(axis=0), 1.0, atol=0.1)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="'spectral' loss cannot be sub-sampled"):
        subsampled("spectral", 0.5)
    with pytest.raises(ValueError, match="fraction must be in \\(0, 1\\], got 0"):
        subsampled("mse", 0)
    with pytest.raises(ValueError, match="patch must be an integer >= 1, got 0"):
        subsampled("mse", 0.5, 0)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        subsampled("mse", 0.5)(jnp.zeros(SHAPE), jnp.zeros(SHAPE))
    with pytest.raises(ValueError, match="training.loss_fraction must be in \\(0, 1\\]"):
        config_from_dict({"training": {"loss_fraction": 1.5}})
    with pytest.raises(ValueError, match="training.loss_fraction < 1 needs a loss"):
        config_from_dict({"training": {"loss_fraction": 0.5, "loss": "hellinger"}})
    with pytest.raises(ValueError, match="training.loss_patch must be >= 1"):
        config_from_dict({"training": {"loss_patch": 0}})
    assert set(SUBSAMPLED) == {"euclidean", "mse", "l1"}


def test_loss_fraction_one_leaves_the_epoch_unchanged(key, rng):
    # an explicit loss_fraction = 1 (with a patch size) builds the very same epoch
    data = jnp.asarray(rng.uniform(size=(2, 3, 6, 6, 2)).astype(np.float32))
    results = []
    for extra in ({}, {"loss_fraction": 1.0, "loss_patch": 3}):
        training = config_from_dict(
            {"training": {"steps_between_frames": 2, "minibatches": 2, **extra}}
        ).training
        from stnca import NCA

        model = NCA(2, 1, key=key)
        model = eqx.tree_at(lambda m: m.w_out, model, 0.05 * jnp.ones_like(model.w_out))
        optimizer = make_optimizer(training)
        opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
        epoch = make_epoch(training, optimizer)
        results.append(
            epoch(model, opt_state, initial_states(model, data), data, key, jnp.asarray(jnp.inf))
        )
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_subsampled_training_lowers_the_full_loss(tmp_path):
    # 8x8 Gray-Scott, a quarter of the cells (2x2 blocks) compared in every loss
    config = config_from_dict(
        {
            "model": {"hidden_channels": 2},
            "data": {"source": "gray_scott", "size": 8, "steps": 64, "trajectories": 2},
            "training": {
                "epochs": 40,
                "steps_between_frames": 8,
                "minibatches": 2,
                "learning_rate": 0.01,
                "loss_fraction": 0.25,
                "loss_patch": 2,
                "select_by": "loss",
            },
        }
    )
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    model = result.final_model
    y = model.encode(result.data)
    full = transition_losses(model, initial_states(model, y), y[:, 1:], 8, "euclidean")
    untrained = result.metrics[0]["loss"]  # row 0 is the full loss of the untrained model
    # measured: 0.84 -> 0.26 (a full-loss run of the same length: 0.20)
    assert float(jnp.mean(full)) < untrained / 2, (float(jnp.mean(full)), untrained)
