"""Keep JAX strict in tests and hand out keys through fixtures."""

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(1234)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def config_file(tmp_path, rng):
    """A tiny training config (a diffusing field from a file, 4 epochs) for CLI tests."""
    from test_train import diffusion_data

    diffusion_data(tmp_path / "d.npy", rng, size=10, frames=4, steps=2)
    path = tmp_path / "c.toml"
    path.write_text(
        "[model]\nhidden_channels = 1\n"
        '[data]\nsource = "file"\npath = "d.npy"\n'
        "[training]\nepochs = 4\nsteps_between_frames = 2\ncheckpoint_every = 2\n"
    )
    return path
