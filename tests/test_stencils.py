import jax.numpy as jnp
import numpy as np
import pytest

from stnca.boundaries import pad
from stnca.stencils import KERNELS, apply_kernel, perceive

S = 32


def symbol(name, k, l):
    """Analytic discrete symbol s(k, l): kernel applied to exp(i(k i + l j)) = s * field.

    Derived by hand from equation (2) with correlation z[i, j] = sum g[di, dj] x[i+di, j+dj]
    (rows di, columns dj), independently of the arrays in stnca.stencils.
    """
    return {
        "identity": 1.0 + 0j,
        "average": (1 + 2 * np.cos(k)) * (1 + 2 * np.cos(l)) / 9 + 0j,
        "gradient_x": -0.5j * np.sin(k) * (1 + np.cos(l)),
        "gradient_y": -0.5j * np.sin(l) * (1 + np.cos(k)),
        "laplacian": -3 + np.cos(k) + np.cos(l) + np.cos(k) * np.cos(l) + 0j,
    }[name]


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("modes", [(1, 0), (0, 3), (2, 5), (7, 4)])
@pytest.mark.parametrize("phase", [0.0, 0.7])
def test_kernel_matches_analytic_symbol_on_sinusoids(name, modes, phase):
    k, l = (2 * np.pi * m / S for m in modes)
    i, j = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    angle = k * i + l * j + phase
    field = np.cos(angle)[..., None].astype(np.float32)
    expected = np.real(symbol(name, k, l) * np.exp(1j * angle))
    got = np.asarray(apply_kernel(jnp.asarray(field), name, "periodic"))[..., 0]
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_laplacian_and_gradients_are_unit_scaled_for_long_waves():
    # On a long wave the kernels approach the continuum operators: lap -> -k^2, and the
    # Sobel gradients -> -d/di and -d/dj (the sign and orientation of equation 2).
    size = 128
    k = 2 * np.pi / size
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    along_i = jnp.asarray(np.sin(k * i)[..., None].astype(np.float32))
    along_j = jnp.asarray(np.sin(k * j)[..., None].astype(np.float32))
    lap = np.asarray(apply_kernel(along_i, "laplacian", "periodic"))[..., 0]
    np.testing.assert_allclose(lap, -(k**2) * np.sin(k * i), atol=2e-5)
    grad_x = np.asarray(apply_kernel(along_i, "gradient_x", "periodic"))[..., 0]
    np.testing.assert_allclose(grad_x, -k * np.cos(k * i), atol=1e-4)
    grad_y = np.asarray(apply_kernel(along_j, "gradient_y", "periodic"))[..., 0]
    np.testing.assert_allclose(grad_y, -k * np.cos(k * j), atol=1e-4)
    assert np.abs(np.asarray(apply_kernel(along_i, "gradient_y", "periodic"))).max() < 1e-6


def test_perceive_any_subset_and_order_depthwise(rng):
    x = rng.normal(size=(2, 3, 9, 11, 5)).astype(np.float32)
    order = ("laplacian", "identity", "gradient_y")
    z = np.asarray(perceive(jnp.asarray(x), order, "periodic"))
    assert z.shape == (2, 3, 9, 11, 5, 3)
    for k, name in enumerate(order):
        single = np.asarray(apply_kernel(jnp.asarray(x), name, "periodic"))
        np.testing.assert_allclose(z[..., k], single, atol=1e-6)
    # depthwise: each channel on its own equals the multi-channel result
    for c in range(5):
        alone = np.asarray(perceive(jnp.asarray(x[..., c : c + 1]), order, "periodic"))
        np.testing.assert_allclose(z[..., c : c + 1, :], alone, atol=1e-6)
    np.testing.assert_allclose(z[..., 1], x, atol=0)


def test_perceive_against_direct_correlation(rng):
    x = rng.normal(size=(7, 6, 2)).astype(np.float32)
    for name, g in KERNELS.items():
        expected = np.zeros_like(x)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                shifted = np.roll(x, (-di, -dj), axis=(0, 1))  # shifted[i] = x[i + di]
                expected += g[di + 1, dj + 1] * shifted
        got = np.asarray(apply_kernel(jnp.asarray(x), name, "periodic"))
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "kernels, message",
    [
        ((), "at least one"),
        (("laplacian", "sobel"), "unknown kernel"),
        (("identity", "identity"), "must not repeat"),
    ],
)
def test_bad_kernel_selection(kernels, message):
    with pytest.raises(ValueError, match=message):
        perceive(jnp.zeros((4, 4, 1)), kernels, "periodic")


def test_boundary_padding_values():
    x = jnp.arange(12.0).reshape(3, 4, 1)
    periodic = np.asarray(pad(x, "periodic"))[..., 0]
    fixed = np.asarray(pad(x, "fixed"))[..., 0]
    reflect = np.asarray(pad(x, "reflect"))[..., 0]
    inner = np.asarray(x)[..., 0]
    for padded in (periodic, fixed, reflect):
        np.testing.assert_array_equal(padded[1:-1, 1:-1], inner)
    np.testing.assert_array_equal(periodic[0, 1:-1], inner[-1])
    np.testing.assert_array_equal(periodic[1:-1, -1], inner[:, 0])
    assert periodic[0, 0] == inner[-1, -1]
    assert np.all(fixed[0] == 0) and np.all(fixed[:, -1] == 0)
    np.testing.assert_array_equal(reflect[0, 1:-1], inner[1])
    np.testing.assert_array_equal(reflect[1:-1, 0], inner[:, 1])


def test_boundaries_on_a_constant_field():
    ones = jnp.ones((6, 6, 1))
    for boundary in ("periodic", "reflect"):
        np.testing.assert_allclose(apply_kernel(ones, "laplacian", boundary), 0.0, atol=1e-6)
        np.testing.assert_allclose(apply_kernel(ones, "gradient_x", boundary), 0.0, atol=1e-6)
    fixed = np.asarray(apply_kernel(ones, "laplacian", "fixed"))[..., 0]
    np.testing.assert_allclose(fixed[1:-1, 1:-1], 0.0, atol=1e-6)
    assert fixed[0, 3] == pytest.approx(-1.0)  # edge: the 3 outside neighbours (1+2+1)/4 lost
    assert fixed[0, 0] == pytest.approx(-1.75)  # corner: 5 outside neighbours (1+2+1+2+1)/4
    grad = np.asarray(apply_kernel(ones, "gradient_x", "fixed"))[..., 0]
    assert grad[0, 3] == pytest.approx(-0.5) and grad[-1, 3] == pytest.approx(0.5)


def test_reflect_boundary_is_mirror_symmetric(rng):
    # A field mirrored about the edge row evolves the same: the stencil sees x[-1] = x[1].
    x = rng.normal(size=(5, 5, 1)).astype(np.float32)
    mirrored = np.concatenate([x[:0:-1], x], axis=0)  # rows 4..1 then 0..4, centre at row 4
    big = np.asarray(apply_kernel(jnp.asarray(mirrored), "laplacian", "reflect"))
    small = np.asarray(apply_kernel(jnp.asarray(x), "laplacian", "reflect"))
    np.testing.assert_allclose(big[4, 1:-1], small[0, 1:-1], atol=1e-5)


def test_unknown_boundary():
    with pytest.raises(ValueError, match="boundary must be one of"):
        pad(jnp.zeros((3, 3, 1)), "toroidal")
