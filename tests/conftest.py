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
