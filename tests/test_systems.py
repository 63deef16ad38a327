"""The zoo of systems (stnca.data.systems): each solver against a property it must have,
known independently of the code (a conserved quantity, a front speed, a linear growth
rate, the finite-difference reference), and every system in 1-D, 2-D and 3-D."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition
from stnca.data.systems import FAMILIES, SYSTEMS, simulate_system, simulate_systems, system

LINES_AND_VOLUMES = ("brusselator", "swift_hohenberg", "cahn_hilliard", "fisher_kpp")
"""The systems run on lines and in volumes here: each kind of stepper (our reaction terms on
exponax's ETDRK, with one or two channels; exponax's own second- and fourth-order ones).
Gray-Scott runs in 1-D and 3-D in its own test below, Cahn-Hilliard, Swift-Hohenberg,
Allen-Cahn and Fisher-KPP in 1-D in the property tests; every system runs in 2-D."""


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_every_system_runs_in_every_dimension(dims):
    size = {1: 32, 2: 16, 3: 8}[dims]
    names = SYSTEMS if dims == 2 else LINES_AND_VOLUMES
    for name in names:
        cls = SYSTEMS[name]
        y = simulate_systems(name, steps=2, every=1, dims=dims, size=size, batch=2)
        assert y.shape == (2, 3, *(size,) * dims, len(cls.channels)), name
        assert y.dtype == np.float32 and np.all(np.isfinite(y)), name
        assert y.std() > 0, name  # the default initial condition is not uniform


def test_every_family_draws_for_every_system():
    for name, cls in SYSTEMS.items():
        chosen = cls()
        assert len(chosen.blob_direction) == len(chosen.channels), name
        for family in FAMILIES:  # (Gray-Scott's 2-D families: tests/test_gray_scott.py)
            state = chosen.initial_state(family, 2, 8, key=jax.random.key(0))
            assert state.shape == (8, 8, len(chosen.channels)), (name, family)
            assert bool(jnp.all(jnp.isfinite(state))), (name, family)


def test_defaults_are_documented_and_valid():
    for name, cls in SYSTEMS.items():
        chosen = cls()
        assert chosen.name == name and chosen.source and chosen.pattern and chosen.equations
        assert chosen.steps % chosen.every == 0
        for field in chosen.parameter_names():
            assert type(chosen).__dataclass_fields__[field].metadata["doc"]


def _mode_amplitude(frames, index):
    return np.abs(
        np.fft.rfftn(frames[..., 0], axes=range(1, frames.ndim - 1))[(slice(None),) + index]
    )


def test_cahn_hilliard_conserves_the_mean_in_1d_and_2d():
    for shape in [(64, 1), (32, 32, 1)]:
        noise = jax.random.uniform(jax.random.key(1), shape, minval=-1, maxval=1)
        y = simulate_system("cahn_hilliard", 0.3 + 0.2 * np.asarray(noise), 60, every=20)
        mean = y.mean(axis=tuple(range(1, y.ndim)))
        assert np.abs(mean - mean[0]).max() / abs(mean[0]) < 1e-5  # measured: 0.0
        assert np.abs(y[-1] - y[0]).max() > 0.1  # while the field itself changed


def test_fisher_kpp_front_moves_at_two_sqrt_dr():
    """Bramson (1983): from a compact seed the front is at 2 sqrt(D r) t - (3/2) sqrt(D/r)
    ln t + const; measured in r t from 7.5 to 15 (after that the float32 roundoff ahead of
    the front, grown at rate r, ignites the empty state)."""
    chosen = system("fisher_kpp")
    size, every = 512, 8
    x = np.arange(size, dtype=np.float32)
    seed = np.exp(-0.5 * ((x - size // 2) / 4) ** 2)[:, None]
    y = simulate_system(chosen, seed, 240, every=every)  # t = 60, r t = 15
    right = y[:, size // 2 :, 0]
    crossing = np.argmax(right < 0.5, axis=1)
    before, after = right[np.arange(len(y)), crossing - 1], right[np.arange(len(y)), crossing]
    front = crossing - 1 + (before - 0.5) / (before - after)  # linear interpolation
    t = np.arange(len(y)) * every * chosen.dt
    late = t >= 30
    speed = 2 * np.sqrt(chosen.diffusivity * chosen.reactivity)
    raw = np.polyfit(t[late], front[late], 1)[0]
    corrected = front + 1.5 * np.sqrt(chosen.diffusivity / chosen.reactivity) * np.log(t + 1e-9)
    fitted = np.polyfit(t[late], corrected[late], 1)[0]
    assert abs(raw / speed - 1) < 0.1  # measured: 0.934
    assert abs(fitted / speed - 1) < 0.03  # measured: 0.993


@pytest.mark.parametrize("mode", [(8,), (5,), (11,), (8, 3)])
def test_swift_hohenberg_small_mode_grows_at_the_linear_rate(mode):
    chosen = system("swift_hohenberg")
    size = 64
    extent = size * chosen.dx
    x = np.arange(size) * chosen.dx
    wave = np.ones(())
    for axis, m in enumerate(mode):
        shape = [1] * len(mode)
        shape[axis] = size
        wave = wave * np.cos(2 * np.pi * m / extent * x).reshape(shape)
    k2 = sum((2 * np.pi * m / extent) ** 2 for m in mode)
    expected = chosen.r - (chosen.q**2 - k2) ** 2
    y = simulate_system(chosen, (1e-6 * wave)[..., None], 20, every=20)
    rate = np.log(_mode_amplitude(y, mode)[1] / _mode_amplitude(y, mode)[0]) / (20 * chosen.dt)
    assert abs(rate - expected) < 1e-3 * max(abs(expected), 0.1)  # measured: < 1e-6


def test_allen_cahn_small_mode_grows_and_the_wall_stays():
    chosen = system("allen_cahn")
    size, m = 64, 3
    k = 2 * np.pi * m / (size * chosen.dx)
    x = np.arange(size) * chosen.dx
    y = simulate_system(chosen, (1e-5 * np.cos(k * x))[:, None], 40, every=40)
    rate = np.log(_mode_amplitude(y, (m,))[1] / _mode_amplitude(y, (m,))[0]) / (40 * chosen.dt)
    assert abs(rate - (1 - chosen.diffusivity * k**2)) < 1e-3  # measured: 3e-7
    # two tanh(x / sqrt(2 nu)) walls: a stationary solution (up to their exponentially
    # weak attraction across half the lattice)
    size = 128
    x = np.arange(size) * chosen.dx
    width = np.sqrt(2 * chosen.diffusivity)
    walls = np.tanh((x - size / 4) / width) * np.tanh((3 * size / 4 - x) / width)
    y = simulate_system(chosen, walls[:, None], 200, every=200)
    assert np.abs(y[-1, :, 0] - walls).max() < 3e-3  # measured: 1.3e-3


def _turing_rate(jacobian, diffusion, k2):
    return np.linalg.eigvals(jacobian - k2 * np.diag(diffusion)).real.max()


def _check_linear_growth(chosen, jacobian, diffusion):
    """The homogeneous state stays put; a small mode along the fastest eigenvector grows at
    the linearisation's eigenvalue (the Turing instability)."""
    size = 64
    base = np.asarray(chosen.homogeneous(), np.float32)
    still = simulate_system(chosen, np.broadcast_to(base, (size, 2)), 40, every=40)
    assert np.abs(still - base).max() < 1e-5
    extent = size * chosen.dx
    rates = []
    for m in range(1, size // 4):
        k2 = (2 * np.pi * m / extent) ** 2
        rates.append(_turing_rate(jacobian, diffusion, k2))
    m = int(np.argmax(rates)) + 1
    k2 = (2 * np.pi * m / extent) ** 2
    values, vectors = np.linalg.eig(jacobian - k2 * np.diag(diffusion))
    vector = vectors[:, np.argmax(values.real)].real
    x = np.arange(size) * chosen.dx
    amplitude = 1e-4 * np.abs(base).max()
    initial = base + amplitude * np.cos(2 * np.pi * m / extent * x)[:, None] * vector
    steps = 40
    y = simulate_system(chosen, initial, steps, every=steps)
    growth = _mode_amplitude(y, (m,))
    rate = np.log(growth[1] / growth[0]) / (steps * chosen.dt)
    assert rates[m - 1] > 0  # a Turing-unstable mode
    # measured: Brusselator mode 10 at 0.3583 (linearisation 0.3569), FitzHugh-Nagumo
    # mode 5 at 0.4983 (0.4974)
    assert abs(rate / rates[m - 1] - 1) < 1e-2, (rate, rates[m - 1])


def test_brusselator_turing_mode_grows_at_the_linear_rate():
    chosen = system("brusselator")
    a, b = chosen.a, chosen.b
    jacobian = np.array([[b - 1, a * a], [-b, -a * a]])
    _check_linear_growth(chosen, jacobian, (chosen.diffusion_u, chosen.diffusion_v))


def test_fitzhugh_nagumo_turing_mode_grows_at_the_linear_rate():
    chosen = system("fitzhugh_nagumo")
    u = np.cbrt(chosen.k)
    jacobian = np.array([[1 - 3 * u * u, -1], [1 / chosen.tau, -1 / chosen.tau]])
    diffusion = (chosen.diffusion_u, chosen.diffusion_v / chosen.tau)
    _check_linear_growth(chosen, jacobian, diffusion)


def test_gray_scott_agrees_with_the_finite_difference_reference():
    """64 Euler steps of the paper's simulator against the spectral ETDRK2 solver from the
    same smooth initial condition: the fields move by up to 0.87; they agree to 0.06 (max)
    and 0.02 (root mean square), about the reference's own error (forward Euler at dt = 1
    differs from dt = 0.1 by 0.034 at most)."""
    initial = np.asarray(initial_condition("smooth", 64, key=jax.random.key(0)))
    reference = np.asarray(gray_scott.simulate(initial, 64, every=64))[-1]
    spectral = simulate_system("gray_scott", initial, 64, every=64)[-1]
    difference = spectral - reference
    assert np.abs(reference - initial).max() > 0.5
    assert np.abs(difference).max() < 0.08
    assert np.sqrt(np.mean(difference**2)) < 0.025


def test_gray_scott_stays_bounded_in_1d_and_3d():
    for dims, size in [(1, 64), (3, 12)]:
        y = simulate_system("gray_scott", dims=dims, size=size, steps=128, every=64)
        assert y.min() > -0.05 and y.max() < 1.05


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="unknown system 'nope'"):
        system("nope")
    with pytest.raises(ValueError, match="unknown parameter of brusselator"):
        system("brusselator", {"zeta": 1.0})
    with pytest.raises(ValueError, match="tau must be > 0, got -1"):
        system("fitzhugh_nagumo", {"tau": -1.0})
    with pytest.raises(ValueError, match="substeps must be a whole number"):
        system("allen_cahn", {"substeps": 1.5})
    with pytest.raises(ValueError, match="dims must be 1, 2 or 3, got 4"):
        simulate_systems("allen_cahn", dims=4, size=8, steps=2)
    with pytest.raises(ValueError, match="unknown initial condition 'smooth'"):
        simulate_systems("allen_cahn", "smooth", dims=1, size=8, steps=2)
    with pytest.raises(ValueError, match="must be a multiple of every"):
        simulate_systems("allen_cahn", dims=1, size=8, steps=3, every=2)
