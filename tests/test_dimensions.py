"""Lines and volumes: the stencils, the NCA, the Gray-Scott data and training in 1-D and 3-D,
and 2-D unchanged by them."""

import functools
import itertools
import operator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import D, leaves

from stnca import NCA
from stnca.boundaries import pad
from stnca.data import gray_scott
from stnca.data.initial_volumes import FAMILIES, initial_state
from stnca.data.io import load_trajectory, save_array
from stnca.serialization import load_model, save_model
from stnca.stencils import KERNELS, kernels_for, perceive
from stnca.train import config_from_dict, train

QUIET = dict(progress=False, log=lambda _: None)


def symbol(name: str, k: np.ndarray) -> complex:
    """The analytic symbol ``G(k)`` of a kernel of the family (``z = G(k) x`` for
    ``x = exp(i k.x)``): built from ``d = [1, 0, -1] / 2`` (symbol ``-i sin k``) and
    ``s = [1, 2, 1] / 4`` (symbol ``cos^2(k / 2)``)."""
    smooth = np.cos(k / 2) ** 2
    if name == "identity":
        return 1.0
    if name == "average":
        return float(np.prod((1 + 2 * np.cos(k)) / 3))
    if name == "laplacian":
        return 4 * (float(np.prod(smooth)) - 1)
    axis = "xyz".index(name[-1])
    others = np.prod([smooth[a] for a in range(len(k)) if a != axis])
    return -1j * np.sin(k[axis]) * others


@pytest.mark.parametrize("dims", [1, 3])
def test_every_stencil_matches_its_analytic_symbol_on_sinusoids(dims):
    size = 12
    grid = np.stack(np.meshgrid(*[np.arange(size)] * dims, indexing="ij"))
    for modes in [(1,) * dims, (2, 0, 3)[:dims], (5, 1, 0)[:dims]]:
        k = 2 * np.pi * np.array(modes) / size
        phase = np.tensordot(k, grid, axes=1) + 0.3
        x = jnp.asarray(np.sin(phase)[..., None], jnp.float32)
        for name in kernels_for(dims):
            z = np.asarray(perceive(x, (name,), "periodic", dims))[..., 0, 0]
            g = symbol(name, k)
            expected = np.real(g) * np.sin(phase) + np.imag(g) * np.cos(phase)
            np.testing.assert_allclose(z, expected, atol=1e-5, err_msg=f"{name} {modes}")


def test_the_family_gives_the_papers_2d_kernels_and_reduces_across_dimensions():
    from stnca.stencils import _stencil_family

    for name, kernel in _stencil_family(2).items():
        np.testing.assert_array_equal(kernel, KERNELS[name])
    # a volume constant along its first axis sees the 2-D Laplacian; a plane constant
    # along one axis sees the 1-D one
    volume = np.asarray(kernels_for(3)["laplacian"]).sum(axis=0)
    np.testing.assert_allclose(volume, KERNELS["laplacian"], atol=1e-7)
    np.testing.assert_allclose(KERNELS["laplacian"].sum(axis=0), kernels_for(1)["laplacian"])
    np.testing.assert_array_equal(kernels_for(1)["laplacian"], [1, -2, 1])
    assert kernels_for(3)["laplacian"].shape == (3, 3, 3)
    with pytest.raises(ValueError, match="dimensions must be 1, 2 or 3, got 4"):
        kernels_for(4)


@pytest.mark.parametrize("dims", [1, 3])
@pytest.mark.parametrize("boundary", ["periodic", "fixed", "reflect"])
def test_perceive_against_direct_correlation(rng, dims, boundary):
    x = rng.normal(size=(2, *([5] * dims), 3)).astype(np.float32)
    names = tuple(kernels_for(dims))
    z = np.asarray(perceive(jnp.asarray(x), names, boundary, dims))
    padded = np.asarray(pad(jnp.asarray(x), boundary, dims=dims))
    for index, name in enumerate(names):
        kernel = kernels_for(dims)[name]
        expected = np.zeros_like(x)
        for offset in itertools.product(range(3), repeat=dims):
            window = tuple(slice(o, o + 5) for o in offset)
            expected += kernel[offset] * padded[(slice(None), *window, slice(None))]
        np.testing.assert_allclose(z[..., index], expected, atol=1e-5, err_msg=name)


def perceive_before_other_dimensions(x, kernels, boundary):
    """``perceive`` as it was before the lattices of other dimensions (verbatim)."""
    height, width = x.shape[-3], x.shape[-2]
    padded = pad(x, boundary)
    offsets = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]

    def shifted(di, dj):
        return padded[..., 1 + di : 1 + di + height, 1 + dj : 1 + dj + width, :]

    def linear(name):
        terms = [
            shifted(di, dj) * KERNELS[name][di + 1, dj + 1].item()
            for di, dj in offsets
            if KERNELS[name][di + 1, dj + 1] != 0
        ]
        return functools.reduce(operator.add, terms)

    outputs = []
    for name in kernels:
        if name == "gradient_magnitude":
            squared = linear("gradient_x") ** 2 + linear("gradient_y") ** 2
            positive = squared > 0
            outputs.append(jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0))
        else:
            outputs.append(linear(name))
    return jnp.stack(outputs, axis=-1)


def test_2d_perception_and_a_2d_model_are_bit_identical_to_before(rng):
    x = jnp.asarray(rng.normal(size=(2, 7, 6, 3)).astype(np.float32))
    names = (*KERNELS, "gradient_magnitude")
    for boundary in ("periodic", "fixed", "reflect"):
        new = jax.jit(lambda x, b=boundary: perceive(x, names, b))(x)
        old = jax.jit(lambda x, b=boundary: perceive_before_other_dimensions(x, names, b))(x)
        np.testing.assert_array_equal(new, old)
    model = NCA(3, 2, kernels=names, key=jax.random.key(1))
    assert model.dimensions == 2 and "dimensions" not in model.hyperparameters()


def diffusion_nca_3d():
    """x' = x + D laplacian(x) on a volume: one linear hidden unit reading the Laplacian."""
    model = NCA(1, 0, activation="linear", hidden_width=1, dimensions=3, key=jax.random.key(0))
    w_in = jnp.zeros_like(model.w_in).at[0, 0, 1].set(1.0)
    w_out = jnp.zeros_like(model.w_out).at[0, 0].set(D)
    return eqx.tree_at(lambda m: (m.w_in, m.w_out), model, (w_in, w_out))


def test_a_3d_diffusion_nca_matches_the_fourier_solution_of_its_laplacian():
    size, steps = 8, 20
    rng = np.random.default_rng(0)
    x = rng.normal(size=(size, size, size)).astype(np.float32)
    model = diffusion_nca_3d()
    final = np.asarray(model.advance(jnp.asarray(x)[..., None], steps))[..., 0]
    k = 2 * np.pi * np.fft.fftfreq(size)
    kx, ky, kz = np.meshgrid(k, k, k, indexing="ij")
    growth = 1 + D * 4 * (np.cos(kx / 2) ** 2 * np.cos(ky / 2) ** 2 * np.cos(kz / 2) ** 2 - 1)
    expected = np.real(np.fft.ifftn(np.fft.fftn(x) * growth**steps))
    np.testing.assert_allclose(final, expected, atol=1e-5)
    # a 3-D rollout keeps the frames axis before the lattice axes
    frames = model.rollout(jnp.zeros((2, 4, 4, 4, 1)), 6, every=3)
    assert frames.shape == (2, 3, 4, 4, 4, 1)


def test_the_nca_refuses_what_its_lattice_cannot_take():
    with pytest.raises(ValueError, match="dimensions must be 1, 2 or 3, got 4"):
        NCA(2, 1, dimensions=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"unknown kernel\(s\) \['gradient_y'\] on a 1-D lattice"):
        NCA(2, 1, dimensions=1, kernels=("identity", "gradient_y"), key=jax.random.key(0))
    volume = NCA(2, 1, dimensions=3, kernels=("identity", "gradient_z"), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"state must have shape \(\.\.\., D, H, W, 3\)"):
        volume(jnp.zeros((4, 4, 3)))
    line = NCA(1, 0, dimensions=1, key=jax.random.key(0))
    assert line(jnp.ones((5, 1))).shape == (5, 1)


def test_gray_scott_on_lines_and_volumes_agrees_with_the_plane():
    plane = np.asarray(initial_state("fourier_mid", 12, 2, key=jax.random.key(0)))
    # a volume constant along its first axis evolves as the plane; a plane constant along
    # its second axis as a line
    volume = np.broadcast_to(plane[None], (5, 12, 12, 2))
    a = np.asarray(gray_scott.simulate(plane, 64, every=64))
    b = np.asarray(gray_scott.simulate(volume, 64, every=64, dims=3))
    np.testing.assert_allclose(b[:, 3], a, atol=1e-5)
    line = plane[:, 0]
    sheet = np.broadcast_to(line[:, None], (12, 6, 2))
    c = np.asarray(gray_scott.simulate(sheet, 64, every=64))
    d = np.asarray(gray_scott.simulate(line, 64, every=64, dims=1))
    np.testing.assert_allclose(d, c[:, :, 2], atol=1e-5)
    with pytest.raises(ValueError, match=r"\(D, H, W, 2\)"):
        gray_scott.simulate(plane[0], 4, dims=3)


@pytest.mark.parametrize("dims", [1, 3])
def test_every_family_draws_its_shape_and_range(dims):
    for name in FAMILIES:
        x = np.asarray(initial_state(name, 8, dims, key=jax.random.key(1), batch=2))
        assert x.shape == (2, *([8] * dims), 2), name
        assert np.all(x >= 0) and np.all(x <= 1) and np.allclose(x[..., 0], 1 - x[..., 1])
    with pytest.raises(ValueError, match="'lines' \\(a 2-D family\\) is not drawn on 3-D"):
        initial_state("lines", 8, 3, key=jax.random.key(0))


def volume_config(tmp_path, epochs=4, **training):
    return config_from_dict(
        {
            "model": {"hidden_channels": 2, "dimensions": 3},
            "data": {"size": 16, "steps": 32, "trajectories": 2, "seed": 3},
            "training": {
                "epochs": epochs,
                "steps_between_frames": 8,
                "minibatches": 4,
                "update_every": "minibatch",
                "learning_rate": 3e-3,
                "state_penalty": 0.01,
                "checkpoint_every": 2,
                **training,
            },
        },
        base_dir=tmp_path,
    )


def test_a_3d_gray_scott_nca_trains_resumes_exactly_and_saves_its_dimension(tmp_path):
    config = volume_config(tmp_path, epochs=4)
    full = train(config, tmp_path / "full", **QUIET)
    assert full.data.shape == (2, 5, 16, 16, 16, 2)
    # the transition loss from the data (every start state a data frame) drops on 16^3:
    # 5.26 to 4.48 (1.17x) by epoch 3 here
    untrained = full.metrics[0]["reinitialised_loss"]
    assert min(r["reinitialised_loss"] for r in full.metrics[1:]) < untrained / 1.1
    train(config, tmp_path / "part", epochs=2, **QUIET)
    resumed = train(config, tmp_path / "part", epochs=4, resume=True, **QUIET)
    for a, b in zip(leaves(full.final_model), leaves(resumed.final_model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in full.metrics] == [r["loss"] for r in resumed.metrics]
    loaded = load_model(tmp_path / "full" / "model.eqx")
    assert loaded.dimensions == 3 and loaded.hyperparameters()["dimensions"] == 3
    save_model(tmp_path / "again.eqx", loaded)
    again = load_model(tmp_path / "again.eqx")
    for a, b in zip(leaves(again), leaves(full.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_line_trains_from_a_file_and_bad_dimensions_are_refused(tmp_path):
    line = np.asarray(initial_state("fourier_mid", 16, 1, key=jax.random.key(2), batch=2))
    save_array(tmp_path / "line.npy", gray_scott.simulate(line, 32, every=8, dims=1))
    assert load_trajectory(tmp_path / "line.npy", dims=1).shape == (2, 5, 16, 2)
    config = config_from_dict(
        {
            "model": {"hidden_channels": 1, "dimensions": 1, "kernels": ["identity", "gradient_x"]},
            "data": {"source": "file", "path": "line.npy"},
            "training": {"epochs": 2, "steps_between_frames": 8},
        },
        base_dir=tmp_path,
    )
    result = train(config, tmp_path / "run", **QUIET)
    assert result.model.dimensions == 1 and np.isfinite(result.lowest_loss)
    for model, message in [
        ({"dimensions": 4}, "model.dimensions must be 1, 2 or 3, got 4"),
        ({"dimensions": 1, "kernels": ["gradient_y"]}, "model.kernels: unknown kernel"),
    ]:
        with pytest.raises(ValueError, match=message):
            config_from_dict({"model": model}, base_dir=tmp_path)
    with pytest.raises(ValueError, match=r"must have shape \(T, D, H, W, C\)"):
        load_trajectory(tmp_path / "line.npy", dims=3)


def test_the_2d_only_commands_refuse_a_volume_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from stnca.cli import app

    path = tmp_path / "volume.eqx"
    save_model(path, NCA(2, 1, dimensions=3, key=jax.random.key(0)))
    for command in (
        ["inspect", str(path), "--out", str(tmp_path / "o")],
        ["prune", str(path), "--out", str(tmp_path / "o")],
        ["benchmark", str(path), "--out", str(tmp_path / "o")],
        ["extract", str(path), "--out", str(tmp_path / "o")],
        ["export", "web", str(path), "--out", str(tmp_path / "o")],
    ):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "works on 2-D models; this one is 3-D" in lines[0], command
        assert not (tmp_path / "o").exists(), command


@pytest.mark.parametrize("streamed", [False, True])
def test_rollout_and_evaluate_a_volume_on_the_command_line(tmp_path, monkeypatch, streamed):
    from typer.testing import CliRunner

    import stnca.analysis.rollout_file as rollout_file
    from stnca.cli import app

    if streamed:  # frames go to disk one by one
        monkeypatch.setattr(rollout_file, "STREAM_ABOVE", 1)
    path = tmp_path / "volume.eqx"
    save_model(path, diffusion_nca_3d())
    x = np.random.default_rng(0).normal(size=(6, 6, 6, 1)).astype(np.float32)
    np.save(tmp_path / "init.npy", x)
    runner = CliRunner()
    out, video = tmp_path / "out.npy", tmp_path / "out.gif"
    arguments = ["--init", str(tmp_path / "init.npy"), "--steps", "4", "--every", "2"]
    result = runner.invoke(
        app, ["rollout", str(path), *arguments, "--out", str(out), "--video", str(video)]
    )
    assert result.exit_code == 0, result.output
    frames = np.load(out)
    expected = np.asarray(diffusion_nca_3d().rollout(jnp.asarray(x), 4, every=2))
    assert frames.shape == (3, 6, 6, 6, 1) and video.stat().st_size > 0
    np.testing.assert_allclose(frames, expected, atol=1e-6)
    np.save(tmp_path / "truth.npy", frames)
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(path),
            "--truth",
            str(tmp_path / "truth.npy"),
            "--steps-between-frames",
            "2",
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "evaluation.png").stat().st_size > 0
    line = tmp_path / "line.eqx"
    save_model(line, NCA(1, 0, dimensions=1, key=jax.random.key(0)))
    np.save(tmp_path / "x.npy", np.zeros((8, 1), np.float32))
    refused = runner.invoke(
        app,
        [
            "rollout",
            str(line),
            "--init",
            str(tmp_path / "x.npy"),
            "--steps",
            "2",
            "--out",
            str(tmp_path / "l.npy"),
            "--video",
            str(tmp_path / "l.gif"),
        ],
    )
    assert refused.exit_code == 2 and "a 1-D rollout has no video" in refused.output
    assert not (tmp_path / "l.npy").exists() and not (tmp_path / "l.gif").exists()


def test_a_sweep_tests_a_volume_on_its_own_unseen_family():
    from matplotlib.figure import Figure

    from stnca.experiments import sweep, sweep_results

    config = volume_config(".").replace("data", size=8)
    truth, t = sweep.test_truth(config)
    assert truth.shape == (9, 8, 8, 8, 2) and t == 8  # to twice the horizon
    ax = Figure().subplots()
    sweep_results._show_frame(ax, truth[-1], "volume", 0.0, 1.0)  # middle slices and MIPs
    assert ax.get_images()[0].get_array().shape[:2] == (17, 26)


def test_tensorboard_images_of_a_volume_and_a_line():
    from stnca.train.tensorboard import prediction_image

    volume = np.random.default_rng(1).uniform(size=(3, 6, 6, 6, 1)).astype(np.float32)
    image = prediction_image(diffusion_nca_3d(), volume, 2)
    assert image.ndim == 3 and image.shape[-1] == 3 and np.all(np.isfinite(image))
    line = NCA(1, 0, dimensions=1, key=jax.random.key(0))
    image = prediction_image(line, volume[:, 0, 0], 2)  # (T, X, C)
    assert image.ndim == 3 and image.shape[-1] == 3
