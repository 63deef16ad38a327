import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stnca.data import gray_scott
from stnca.data.gray_scott import GrayScottParams, simulate
from stnca.data.initial_conditions import INITIAL_CONDITIONS, initial_condition


def numpy_gray_scott(state, steps, da, db, alpha, gamma, dt):
    """Independent float64 reference: plain NumPy loop, 9-point Laplacian by np.roll."""
    x = state.astype(np.float64)

    def lap(f):
        edges = sum(np.roll(f, s, axis=a) for s in (1, -1) for a in (0, 1))
        corners = sum(np.roll(f, (s, t), axis=(0, 1)) for s in (1, -1) for t in (1, -1))
        return (corners + 2 * edges - 12 * f) / 4

    a, b = x[..., 0].copy(), x[..., 1].copy()
    for _ in range(steps):
        reaction = a * b * b
        a, b = (
            a + dt * (da * lap(a) - reaction + alpha * (1 - a)),
            b + dt * (db * lap(b) + reaction - (gamma + alpha) * b),
        )
    return np.stack([a, b], axis=-1)


def test_matches_plain_numpy_loop_over_200_steps(key):
    initial = np.asarray(initial_condition("smooth", 32, key=key))
    ours = np.asarray(simulate(initial, 200, every=200))[-1]
    reference = numpy_gray_scott(initial, 200, 0.1, 0.05, 0.06230, 0.06268, 1.0)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert np.abs(reference - initial).max() > 0.1  # the dynamics did something


def test_nondefault_parameters_match_numpy(key):
    params = GrayScottParams(diffusion_a=0.16, diffusion_b=0.08, alpha=0.035, gamma=0.06, dt=0.5)
    initial = np.asarray(initial_condition("noise", 16, key=key))
    ours = np.asarray(simulate(initial, 50, every=50, params=params))[-1]
    reference = numpy_gray_scott(initial, 50, 0.16, 0.08, 0.035, 0.06, 0.5)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("channel, diffusion", [(0, 0.1), (1, 0.05)])
@pytest.mark.parametrize("mode", [(1, 0), (2, 3)])
def test_fourier_mode_of_pure_diffusion_decays_at_the_discrete_rate(channel, diffusion, mode):
    # alpha = gamma = 0 and the other species zero: each species only diffuses. A mode
    # cos(k i + l j) is multiplied by 1 + dt D s(k, l) per step, with the 9-point symbol
    # s = -3 + cos k + cos l + cos k cos l.
    size, steps, dt, eps = 32, 100, 1.0, 1e-3
    k, l = (2 * np.pi * m / size for m in mode)
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    wave = np.cos(k * i + l * j)
    state = np.zeros((size, size, 2), np.float32)
    state[..., channel] = eps * wave
    params = GrayScottParams(alpha=0.0, gamma=0.0, dt=dt)
    final = np.asarray(simulate(state, steps, every=steps, params=params))[-1]
    factor = (1 + dt * diffusion * (-3 + np.cos(k) + np.cos(l) + np.cos(k) * np.cos(l))) ** steps
    np.testing.assert_allclose(final[..., channel], eps * factor * wave, atol=1e-8)
    np.testing.assert_allclose(final[..., 1 - channel], 0.0, atol=1e-12)
    assert factor < 0.99  # a real decay was checked


def test_uniform_steady_state_stays_fixed():
    uniform = initial_condition("uniform", 16, key=None)
    frames = np.asarray(simulate(uniform, 1000, every=100))
    np.testing.assert_array_equal(frames, np.broadcast_to(np.asarray(uniform), frames.shape))


def test_frames_every_k_including_frame_zero(key):
    initial = initial_condition("smooth", 16, key=key, batch=3)
    frames = simulate(initial, 40, every=8)
    assert frames.shape == (3, 6, 16, 16, 2)
    np.testing.assert_array_equal(frames[:, 0], initial)
    step_by_step = simulate(initial, 40, every=1)
    np.testing.assert_allclose(frames, step_by_step[:, ::8], atol=0)


def test_step_is_the_paper_equation():
    state = jnp.asarray(np.random.default_rng(0).uniform(size=(5, 5, 2)).astype(np.float32))
    p = GrayScottParams()
    out = np.asarray(gray_scott.step(state, p))
    ref = numpy_gray_scott(
        np.asarray(state), 1, p.diffusion_a, p.diffusion_b, p.alpha, p.gamma, p.dt
    )
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of every"):
        simulate(jnp.zeros((8, 8, 2)), 10, every=3)
    with pytest.raises(ValueError, match=r"\(height, width, 2\)"):
        simulate(jnp.zeros((8, 8, 3)), 10)
    with pytest.raises(ValueError, match="dt must be > 0"):
        GrayScottParams(dt=0)
    with pytest.raises(ValueError, match="alpha"):
        GrayScottParams(alpha=float("nan"))


@pytest.mark.parametrize("name", sorted(INITIAL_CONDITIONS))
def test_initial_conditions_shape_range_and_determinism(name, key):
    x = np.asarray(initial_condition(name, (24, 20), key=key))
    assert x.shape == (24, 20, 2) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x[..., 0], 1 - x[..., 1], atol=1e-6)
    assert name == "uniform" or x[..., 1].max() > 0  # never the empty state by accident
    np.testing.assert_array_equal(x, initial_condition(name, (24, 20), key=key))
    batch = np.asarray(initial_condition(name, 16, key=key, batch=3))
    assert batch.shape == (3, 16, 16, 2)


def high_frequency_fraction(b):
    power = np.abs(np.fft.fft2(b - b.mean())) ** 2
    k = np.fft.fftfreq(b.shape[0])
    radius = np.hypot(*np.meshgrid(k, k, indexing="ij"))
    return power[radius > 1 / 10].sum() / power.sum()


def test_high_frequency_family_has_more_high_frequency_power_than_smooth():
    keys = jax.random.split(jax.random.key(0), 8)
    smooth = [
        high_frequency_fraction(np.asarray(initial_condition("smooth", 64, key=k))[..., 1])
        for k in keys
    ]
    sharp = [
        high_frequency_fraction(np.asarray(initial_condition("high_frequency", 64, key=k))[..., 1])
        for k in keys
    ]
    assert max(smooth) < 0.05 < 0.2 < min(sharp)
    assert np.all(np.asarray(initial_condition("smooth", 64, key=keys[0]))[..., 1].max() > 0.3)


def test_seeds_differ(key):
    a, b = jax.random.split(key)
    for name in ("smooth", "high_frequency", "noise"):
        assert np.any(initial_condition(name, 16, key=a) != initial_condition(name, 16, key=b))


def test_unknown_initial_condition(key):
    with pytest.raises(ValueError, match="unknown initial condition"):
        initial_condition("stripes", 16, key=key)


def test_simulate_to_file_draws_checks_and_writes(tmp_path):
    """The library call behind `stnca simulate gray-scott`: a family's states drawn after
    the memory check (a lattice too large is refused before anything is allocated)."""
    from stnca.data.simulation import simulate_to_file

    key = jax.random.key(3)
    out = tmp_path / "t.npy"
    written = simulate_to_file(out, "smooth", 8, every=4, size=8, batch=2, key=key, log=None)
    expected = gray_scott.simulate(initial_condition("smooth", 8, key=key, batch=2), 8, every=4)
    assert written.shape == (2, 3, 8, 8, 2)
    np.testing.assert_array_equal(np.load(out), np.asarray(expected))
    with pytest.raises(ValueError, match="needs about"):
        simulate_to_file(tmp_path / "huge.npy", "smooth", 8, size=2_000_000, log=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npy"]
