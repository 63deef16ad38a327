"""The stability and symmetry analyses of section 3.2.2: local perturbations, adversarial
initial conditions, symmetry."""

import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from typer.testing import CliRunner

from stnca import NCA
from stnca.analysis.adversarial import adversarial, kappa
from stnca.analysis.perturbation import (
    final_state,
    local_perturbations,
    nca_run,
    patch_positions,
    perturbed_finals,
)
from stnca.analysis.symmetry import ON_LATTICE, symmetry
from stnca.cli import app
from stnca.data import gray_scott
from stnca.scaling import Scaling
from stnca.serialization import load_model, save_model
from stnca.stencils import perceive
from stnca.train import train

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_morph_config  # noqa: E402

runner = CliRunner()


def with_random_output(model: NCA, key, scale=0.1) -> NCA:
    """An NCA whose output layer is random (an untrained one leaves every state unchanged)."""
    w_out = scale * jax.random.normal(key, model.w_out.shape)
    return eqx.tree_at(lambda m: m.w_out, model, w_out)


def diffusion_nca(rate: float) -> NCA:
    """The NCA ``x -> x + rate * laplacian(x)`` (one channel, linear, periodic)."""
    model = NCA(
        1,
        0,
        kernels=("identity", "laplacian"),
        activation="linear",
        hidden_width=1,
        key=jax.random.key(0),
    )
    model = eqx.tree_at(lambda m: m.w_in, model, jnp.array([[[0.0, 1.0]]]))
    return eqx.tree_at(lambda m: m.w_out, model, jnp.array([[rate]]))


# --- local perturbations ---------------------------------------------------------------


@pytest.mark.parametrize("size, stride", [(1, 1), (2, 1), (3, 2)])
def test_identity_model_heatmap_is_the_patch_footprint(key, size, stride):
    model = NCA(3, 2, key=key)  # untrained: the final state is the initial state
    initial = jax.random.uniform(key, (9, 7, 3), maxval=0.4)  # invert moves every cell > 0.2
    result = local_perturbations(nca_run(model, 5), initial, steps=5, size=size, stride=stride)
    rows, columns = len(range(0, 9 - size + 1, stride)), len(range(0, 7 - size + 1, stride))
    assert result.counts.shape == (rows, columns)
    np.testing.assert_array_equal(result.counts, size * size)
    positions = patch_positions(9, 7, size, stride)[[0, -1]]
    finals = perturbed_finals(nca_run(model, 5), initial, positions, size=size)
    for (r, c), final in zip(positions, finals, strict=True):
        changed = np.any(np.abs(final - np.asarray(initial)) > 0.1, axis=-1)
        footprint = np.zeros((9, 7), bool)
        footprint[r : r + size, c : c + size] = True
        np.testing.assert_array_equal(changed, footprint)


def test_diffusion_spreads_a_perturbation_to_the_analytic_radius():
    rate, steps, threshold, size = 0.2, 20, 0.002, 24
    result = local_perturbations(
        nca_run(diffusion_nca(rate), steps),
        jnp.zeros((size, size, 1)),
        steps=steps,
        stride=6,
        threshold=threshold,
    )
    # exact: the Fourier symbol of the 9-point Laplacian is cos a cos b + cos a + cos b - 3
    a = 2 * np.pi * np.fft.fftfreq(size)
    symbol = np.cos(a)[:, None] * np.cos(a)[None, :] + np.cos(a)[:, None] + np.cos(a)[None] - 3
    green = np.real(np.fft.ifft2((1 + rate * symbol) ** steps))
    expected = int(np.sum(green > threshold))
    np.testing.assert_array_equal(result.counts, expected)  # the same at every position
    # and the continuum: a Gaussian of variance 2 rate n per axis exceeds the threshold
    # within r^2 = 2 sigma^2 ln(1 / (2 pi sigma^2 threshold))
    variance = 2 * rate * steps
    radius_squared = 2 * variance * np.log(1 / (2 * np.pi * variance * threshold))
    assert abs(expected - np.pi * radius_squared) < 0.1 * np.pi * radius_squared


def test_stochastic_model_noise_is_not_counted(key):
    k_model, k_out, k_x, k_run, k_other = jax.random.split(key, 5)
    model = NCA(2, 2, update_probability=0.5, key=k_model)
    model = with_random_output(model, k_out, scale=0.3)
    initial = jax.random.uniform(k_x, (16, 16, 2))
    run = nca_run(model, 4, key=k_run)
    result = local_perturbations(run, initial, steps=4, stride=16, threshold=0.01, kind="zero")
    # common random numbers: only the 9x9 light cone of 4 steps can differ
    assert 0 < result.counts[0, 0] <= 81
    # with other random numbers for the perturbed run the noise alone changes far more
    perturbed = initial.at[0, 0].set(0.0)
    other = final_state(model, perturbed, 4, k_other)
    changed = np.sum(np.any(np.abs(np.asarray(other - result.reference)) > 0.01, axis=-1))
    assert changed > 2 * 81


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 10}, "larger than the 8x8 lattice"),
        ({"kind": "blur"}, "kind must be one of"),
        ({"stride": 0}, "stride must be an integer >= 1"),
        ({"threshold": -1.0}, "threshold must be"),
    ],
)
def test_bad_perturbation_settings(key, kwargs, message):
    with pytest.raises(ValueError, match=message):
        local_perturbations(nca_run(NCA(1, 0, key=key), 2), jnp.zeros((8, 8, 1)), steps=2, **kwargs)


# --- adversarial initial conditions ------------------------------------------------------


def test_kappa_gradient_matches_finite_differences(key):
    k_model, k_out, k_x, k_p = jax.random.split(key, 4)
    model = with_random_output(NCA(2, 2, activation="tanh", key=k_model), k_out, scale=0.5)
    initial = jax.random.uniform(k_x, (5, 5, 2))
    perturbation = 0.1 * jax.random.normal(k_p, (5, 5, 2))
    check_grads(  # jitted: compiled once, not operation by operation per call
        jax.jit(lambda p: kappa(model, initial, p, 3)),
        (perturbation,),
        order=1,
        modes=["rev"],
        eps=1e-2,
        atol=2e-2,
        rtol=2e-2,
    )


@pytest.fixture(scope="module")
def trained_morph(shared_folder):
    """A tiny morph trained 150 epochs, once for all xdist workers: its chosen model (as
    saved: loading is bit-exact), first frame and run folder (read only)."""
    from helpers import made_once

    def make(folder):
        folder.mkdir(parents=True)
        config = tiny_morph_config(folder, epochs=150, checkpoint_every=150)
        train(config, folder / "run", progress=False, log=lambda _: None)

    run = made_once(shared_folder, "trained-morph", make) / "run"
    first = np.load(run / "train_data.npy")[0, 0]
    return load_model(run / "model.eqx"), first, run


def test_destroy_beats_and_preserve_undercuts_a_random_control(trained_morph, key):
    model, first, _ = trained_morph
    destroy = adversarial(model, first, 12, mode="destroy", iterations=60, key=key).numbers
    preserve = adversarial(model, first, 12, mode="preserve", iterations=60, key=key).numbers
    for numbers in (destroy, preserve):
        a, c = numbers["adversarial"], numbers["random_control"]
        assert a["perturbation_norm"] == pytest.approx(c["perturbation_norm"], rel=1e-3)
    assert destroy["adversarial"]["final_change"] > 1.5 * destroy["random_control"]["final_change"]
    assert preserve["adversarial"]["final_change"] < preserve["random_control"]["final_change"]
    assert preserve["adversarial"]["kappa"] > preserve["random_control"]["kappa"]
    assert destroy["adversarial"]["kappa"] < destroy["random_control"]["kappa"]


def test_adversarial_keeps_the_data_range_and_the_budget(trained_morph, key):
    model, first, _ = trained_morph
    result = adversarial(model, first, 8, mode="preserve", iterations=30, budget=2.0, key=key)
    perturbed = first + result.perturbation
    assert perturbed.min() >= -1e-6 and perturbed.max() <= 1 + 1e-6
    assert np.linalg.norm(result.perturbation) <= 2.0 + 1e-4


def test_adversarial_rejects_a_model_that_blows_up(key):
    model = NCA(1, 0, kernels=("identity",), activation="linear", hidden_width=1, key=key)
    model = eqx.tree_at(
        lambda m: (m.w_in, m.w_out), model, (jnp.ones((1, 1, 1)), 10 * jnp.ones((1, 1)))
    )
    with pytest.raises(ValueError, match="non-finite"):
        adversarial(model, jnp.full((4, 4, 1), 0.5), 60, iterations=3, key=key)


# --- symmetry ----------------------------------------------------------------------------


def test_untrained_model_is_exactly_equivariant(key):
    result = symmetry(NCA(3, 2, key=key), jax.random.uniform(key, (10, 10, 3)), 4)
    assert max(result.errors.values()) == 0.0 and result.noise_floor == 0.0


@pytest.mark.parametrize(
    "kernels, equivariant",
    [
        (("identity", "laplacian", "average"), True),
        (("identity", "laplacian", "gradient_magnitude"), True),
        (("identity", "gradient_x", "gradient_y", "laplacian"), False),
    ],
)
def test_symmetric_kernels_are_equivariant_on_the_lattice(key, kernels, equivariant):
    k_model, k_out, k_x = jax.random.split(key, 3)
    model = with_random_output(NCA(2, 3, kernels=kernels, key=k_model), k_out, scale=0.3)
    result = symmetry(model, jax.random.uniform(k_x, (12, 12, 2)), 6)
    on_lattice = [result.errors[name] for name in ON_LATTICE]
    if equivariant:
        assert max(on_lattice) < 1e-5, result.errors
    else:
        assert result.errors["rotate 90"] > 1e-2, result.errors


def test_gradient_magnitude_perception(key):
    ramp = jnp.broadcast_to(0.3 * jnp.arange(6.0)[None, :, None], (6, 6, 1))
    magnitude = perceive(ramp, ("gradient_magnitude",), "reflect")[1:-1, 1:-1, 0, 0]
    # the Sobel-type gradients of a slope-0.3 ramp along the columns: 0.3 * 4 * 2 / 8
    np.testing.assert_allclose(magnitude, 0.3, rtol=1e-6)
    x = jax.random.uniform(key, (7, 7, 2))
    rotated = perceive(jnp.rot90(x), ("gradient_magnitude",), "periodic")
    np.testing.assert_allclose(
        rotated, jnp.rot90(perceive(x, ("gradient_magnitude",), "periodic")), atol=1e-6
    )
    gradient = jax.grad(lambda x: perceive(x, ("gradient_magnitude",), "periodic").sum())
    assert np.all(np.isfinite(gradient(jnp.ones((5, 5, 1)))))


# --- the CLI -----------------------------------------------------------------------------


@pytest.fixture
def model_file(tmp_path, key):
    path = tmp_path / "model.eqx"
    model = with_random_output(
        NCA(4, 2, kernels=("identity", "laplacian"), boundary="fixed", key=key), key, scale=0.05
    )
    save_model(path, model)
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_analyse_commands_write_figure_and_json(tmp_path, model_file):
    common = ("--init", "emoji:rooster", "--image-size", "8", "--padding", "2", "--steps", "4")
    for command, extra in (
        ("perturb", ("--stride", "3")),
        ("adversarial", ("--iterations", "5")),
        ("symmetry", ()),
    ):
        out = tmp_path / command
        result = invoke("analyse", command, model_file, *common, "--out", out, *extra)
        assert result.exit_code == 0, result.output
        assert (out / f"{command}.png").stat().st_size > 0
    perturb = json.loads((tmp_path / "perturb" / "perturb.json").read_text())
    assert np.asarray(perturb["counts"]).shape == (4, 4)  # 12x12 lattice, stride 3
    assert perturb["nca"]["positions"] == 16 and perturb["nca"]["steps"] == 4
    assert "pde" not in perturb  # no Gray-Scott config beside the model
    adversarial = json.loads((tmp_path / "adversarial" / "adversarial.json").read_text())
    assert set(adversarial["modes"]) == {"destroy", "preserve"}
    for numbers in adversarial["modes"].values():
        adversarial_norm = numbers["adversarial"]["perturbation_norm"]
        assert adversarial_norm > 0
        assert numbers["random_control"]["perturbation_norm"] == pytest.approx(adversarial_norm)
    symmetric = json.loads((tmp_path / "symmetry" / "symmetry.json").read_text())
    assert set(symmetric["relative_error"]) == {
        "rotate 90",
        "rotate 180",
        "rotate 270",
        "rotate 45",
        "flip left-right",
        "flip up-down",
    }
    finals = np.load(tmp_path / "symmetry" / "symmetry_finals.npz")
    assert finals["identity"].shape == (12, 12, 4) and "input rotate 90" in finals.files


@pytest.mark.parametrize(
    "args, message",
    [
        (("perturb", "--size", "100"), "larger than the 12x12 lattice"),
        (("perturb", "--steps", "0"), "--steps must be an integer >= 1"),
        (("adversarial", "--mode", "break"), "--mode must be destroy, preserve or both"),
        (("adversarial", "--iterations", "1000000000000"), "--iterations must be at most"),
        (("symmetry", "--init", "CHANNELS2"), "must have shape (H, W, 4)"),
        (("perturb", "--init", "missing.png"), "no such file"),
    ],
)
def test_analyse_bad_input(tmp_path, model_file, args, message):
    two = tmp_path / "two.npy"
    np.save(two, np.zeros((12, 12, 2), np.float32))
    args = [two if a == "CHANNELS2" else a for a in args]
    if "--init" not in args:
        args = [*args, "--init", "emoji:rooster"]
    if "--steps" not in args:
        args = [*args, "--steps", "3"]
    out = tmp_path / "out"
    result = invoke(
        "analyse",
        *args[:1],
        model_file,
        *args[1:],
        "--image-size",
        "8",
        "--padding",
        "2",
        "--out",
        out,
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_an_image_size_of_zero_is_refused_not_the_native_size(tmp_path, model_file):
    out = tmp_path / "out"
    for flags in (["--image-size", "0"], ["--image-size", "8", "--padding", "-1"]):
        arguments = ["perturb", model_file, "--init", "emoji:microbe", "--steps", "3", *flags]
        result = invoke("analyse", *arguments, "--out", out)
        assert result.exit_code == 2, result.output
        assert (
            "image_size must be an integer >= 1" in result.output or "padding must" in result.output
        )
        assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_symmetry_experiment_trains_four_variants_and_tabulates(tmp_path):
    config = tmp_path / "symmetry.toml"
    config.write_text(
        '[model]\nhidden_channels = 2\nboundary = "fixed"\n'
        '[data]\nsource = "images"\nimages = ["emoji:alien_monster", "emoji:rooster"]\n'
        "size = 8\npadding = 3\nmax_shift = 1\ncopies = 2\n"
        "[training]\nepochs = 6\nsteps_between_frames = 3\ncheckpoint_every = 3\n"
    )
    out = tmp_path / "experiment"
    result = invoke("analyse", "symmetry-experiment", "--config", config, "--out", out)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "symmetry_experiment.json").read_text())
    assert list(rows) == [
        "asymmetric-normal",
        "asymmetric-augmented",
        "symmetric-normal",
        "symmetric-augmented",
    ]
    assert rows["symmetric-augmented"]["kernels"] == ["identity", "laplacian", "average"]
    assert rows["asymmetric-augmented"]["rotate"] == "any"
    saved = (out / "asymmetric-augmented" / "config.toml").read_text()
    assert 'rotate = "any"' in saved and "gradient_x" in saved
    table = (out / "symmetry_experiment.md").read_text().splitlines()
    assert len(table) == 2 + 4 and "rotate 45" in table[0]
    assert (out / "symmetry_experiment.png").stat().st_size > 0
    # a second call reuses the finished runs: no model is written again
    models = {v: (out / v / "model.eqx").stat().st_mtime_ns for v in rows}
    again = invoke("analyse", "symmetry-experiment", "--config", config, "--out", out)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "symmetry_experiment.json").read_text()) == rows
    assert {v: (out / v / "model.eqx").stat().st_mtime_ns for v in rows} == models


def test_symmetry_experiment_needs_images(tmp_path):
    config = tmp_path / "pde.toml"
    config.write_text('[data]\nsource = "gray_scott"\nsize = 8\nsteps = 8\n')
    out = tmp_path / "experiment"
    result = invoke("analyse", "symmetry-experiment", "--config", config, "--out", out)
    assert result.exit_code == 2 and "needs an image-morphing config" in result.output
    assert not out.exists()


def test_perturb_counts_the_gray_scott_pde_too(tmp_path, key):
    folder = tmp_path / "run"
    folder.mkdir()
    scaling = Scaling(offset=(0.0, -0.2), scale=(1.25, 1.25))  # model units differ from physical
    model = NCA(2, 1, scaling=scaling, key=key)
    save_model(folder / "model.eqx", model)
    (folder / "config.toml").write_text(
        '[data]\nsource = "gray_scott"\nsize = 8\nsteps = 16\nevery = 8\n'
        "[training]\nsteps_between_frames = 4\n"
    )
    uniform = np.zeros((8, 8, 2), np.float32)
    uniform[..., 0] = 1.0  # A = 1, B = 0: a fixed point of the Gray-Scott equations
    np.save(tmp_path / "uniform.npy", uniform)
    out = tmp_path / "out"
    result = invoke(
        "analyse",
        "perturb",
        folder / "model.eqx",
        "--init",
        tmp_path / "uniform.npy",
        "--out",
        out,
        "--stride",
        "4",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "perturb.json").read_text())
    assert report["nca"]["steps"] == 8  # the horizon: 2 frames x t = 4
    assert report["pde"]["pde_steps"] == 16  # 8 PDE steps per 4 NCA steps
    np.testing.assert_array_equal(report["counts"], 1)  # the untrained NCA: the cell itself
    # the PDE's count, computed directly in physical units: invert in model units ([0, 1])
    x0 = np.asarray(model.encode(uniform))
    reference = np.asarray(model.encode(gray_scott.simulate(uniform, 16, every=16)[-1]))
    perturbed = x0.copy()
    perturbed[0, 0] = 1.0 - perturbed[0, 0]
    final = gray_scott.simulate(np.asarray(model.decode(perturbed)), 16, every=16)[-1]
    changed = np.any(np.abs(np.asarray(model.encode(final)) - reference) > 0.1, axis=-1)
    # a uniform periodic lattice: every position gives the same count
    np.testing.assert_array_equal(report["pde"]["counts"], int(changed.sum()))
    assert changed.sum() > 1
    assert (out / "perturb_pde.png").stat().st_size > 0


def test_stochastic_symmetric_model_with_common_random_numbers(key):
    k_model, k_out, k_x, k_run = jax.random.split(key, 4)
    kernels = ("identity", "laplacian", "average")
    model = NCA(2, 3, kernels=kernels, update_probability=0.5, key=k_model)
    model = with_random_output(model, k_out, scale=0.3)
    initial = jax.random.uniform(k_x, (12, 12, 2))
    result = symmetry(model, initial, 6, key=k_run)
    # the unperturbed run is the model's own rollout with the same key
    k_first, _ = jax.random.split(k_run)
    np.testing.assert_allclose(result.reference, final_state(model, initial, 6, k_first), atol=1e-6)
    # the masks follow the transformation: an isotropic stochastic rule is exactly equivariant
    assert max(result.errors[name] for name in ON_LATTICE) < 1e-5, result.errors
    assert result.noise_floor > 1e-2  # while two runs with different keys differ


@pytest.mark.parametrize("command", ["perturb", "adversarial", "symmetry"])
def test_every_analysis_refuses_a_model_with_nan_weights(tmp_path, key, command):
    """An all-NaN model was analysed to exit 0 (perturb counted NaN finals as 'no change');
    every analysis now refuses it in one line and writes nothing."""
    nan_model = jax.tree_util.tree_map(
        lambda leaf: jnp.full_like(leaf, jnp.nan) if eqx.is_inexact_array(leaf) else leaf,
        NCA(1, 2, key=key),
    )
    path = save_model(tmp_path / "nan.eqx", nan_model)
    np.save(tmp_path / "init.npy", np.full((6, 6, 1), 0.5, np.float32))
    out = tmp_path / "out"
    arguments = [command, path, "--init", tmp_path / "init.npy", "--steps", "3", "--out", out]
    result = invoke("analyse", *arguments, *(["--iterations", "2"] * (command == "adversarial")))
    assert result.exit_code == 2, result.output
    assert "non-finite" in result.output or "NaN" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_symmetry_experiment_finds_its_default_config_from_any_folder(tmp_path, monkeypatch):
    """The default --config was configs/symmetry_cpu.toml of the current folder: from any
    other folder the command failed with "config file not found"."""
    seen = {}
    monkeypatch.setattr(
        "stnca.experiments.symmetry_experiment.symmetry_experiment",
        lambda config, out, **kwargs: seen.update(config=config),
    )
    monkeypatch.chdir(tmp_path)
    result = invoke("analyse", "symmetry-experiment", "--out", tmp_path / "experiment")
    assert result.exit_code == 0, result.output
    assert seen["config"].data.source == "images"
