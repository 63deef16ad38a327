"""Learnable 3x3 kernels (``stnca.learnable_kernels``, ``NCA(learnable_kernels=...)``): the
D4 tie, the correlation against the named stencils, a model without them as before, files,
training and resume, what inspect reads from them, and the refusals."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import diffusion_data, leaves

from stnca.analysis.inspect import inspect_model
from stnca.analysis.inspect_function import perturbed_weights
from stnca.analysis.inspect_report import summary, write_inspection
from stnca.analysis.learned_kernels import read_kernel
from stnca.analysis.prune import prune
from stnca.export import page_data
from stnca.learnable_kernels import d4_images, kernel_arrays, perceive_learnable
from stnca.model import NCA
from stnca.serialization import load_model, read_header, save_model
from stnca.stencils import KERNELS, perceive
from stnca.train import build_model, config_from_dict, train
from stnca.train.config import ModelConfig

QUIET = dict(progress=False, log=lambda _: None)
LAPLACIAN_D4 = jnp.array([-3.0, 0.5, 0.25])  # centre, edge, corner of KERNELS["laplacian"]


def moving(model: NCA, key) -> NCA:
    """``model`` with a random output layer, so that its step does something."""
    w_out = 0.1 * jax.random.normal(key, model.w_out.shape)
    return eqx.tree_at(lambda m: m.w_out, model, w_out)


def test_d4_kernels_are_invariant_and_a_d4_rule_commutes_with_the_squares_symmetries(key):
    tied = NCA(
        1, 1, kernels=("identity",), learnable_kernels=3, learnable_kernel_symmetry="d4", key=key
    )
    assert tied.kernel_weights.shape == (3, 3)
    for kernel in np.asarray(tied.learned_kernels()):
        for image in d4_images(kernel):
            np.testing.assert_array_equal(image, kernel)
    free = NCA(1, 1, learnable_kernels=1, key=key)
    kernel = np.asarray(free.learned_kernels()[0])
    assert free.kernel_weights.shape == (1, 3, 3)
    assert not all(np.array_equal(image, kernel) for image in d4_images(kernel))
    # the whole rule of identity + tied kernels is then equivariant, exactly on the lattice
    x = jax.random.uniform(jax.random.fold_in(key, 1), (8, 8, 2))
    rule = moving(tied, jax.random.fold_in(key, 2))
    for transform in (lambda s: jnp.rot90(s, 1, axes=(0, 1)), lambda s: jnp.swapaxes(s, 0, 1)):
        np.testing.assert_allclose(rule(transform(x)), transform(rule(x)), atol=1e-6)


@pytest.mark.parametrize("boundary", ["periodic", "fixed", "reflect"])
def test_free_kernels_agree_with_the_named_stencils(rng, boundary):
    x = jnp.asarray(rng.normal(size=(2, 5, 6, 3)).astype(np.float32))
    kernels = jnp.asarray(np.stack(list(KERNELS.values())))
    np.testing.assert_allclose(
        perceive_learnable(x, kernels, "none", boundary),
        perceive(x, tuple(KERNELS), boundary),
        atol=1e-6,
    )
    # the model's D4 path (centre, edge and corner sums) is the same as its kernels' arrays
    tied = jnp.asarray(rng.normal(size=(2, 3)).astype(np.float32))
    np.testing.assert_allclose(
        perceive_learnable(x, tied, "d4", boundary),
        perceive_learnable(x, kernel_arrays(tied, "d4"), "none", boundary),
        atol=1e-5,
    )


def test_without_them_a_model_and_its_file_are_as_before(key, tmp_path):
    model = NCA(2, 3, key=key)
    assert model.kernel_weights is None and model.learnable_kernels == 0
    assert model.perception_names == model.kernels == ("identity", "laplacian")
    assert set(model.hyperparameters()) == {
        "observable_channels", "hidden_channels", "kernels", "activation", "hidden_width",
        "update_probability", "boundary", "hidden_bias", "scaling", "conditions",
    }  # fmt: skip
    # the parameters: the same draw as before, the same three arrays
    np.testing.assert_array_equal(model.w_in, 0.1 * jax.random.normal(key, (20, 5, 2)))
    assert len(leaves(model)) == 3
    # the shipped model, loaded and saved again, is the shipped file byte for byte
    from stnca.serialization import resolve_model

    shipped = resolve_model("gray_scott_paper")
    header = read_header(shipped, kind="model")
    extra = {
        k: v for k, v in header.items() if k not in ("format", "version", "kind", "hyperparameters")
    }
    save_model(tmp_path / "again.eqx", load_model(shipped), **extra)
    assert (tmp_path / "again.eqx").read_bytes() == shipped.read_bytes()


@pytest.mark.parametrize("symmetry", ["none", "d4"])
def test_a_model_with_learnable_kernels_saves_and_loads_bit_identically(key, tmp_path, symmetry):
    model = NCA(2, 1, kernels=(), learnable_kernels=2, learnable_kernel_symmetry=symmetry, key=key)
    assert model.kernels == () and model.perception_names == ("learned_1", "learned_2")
    model = moving(model, jax.random.fold_in(key, 1))
    save_model(tmp_path / "m.eqx", model)
    header = read_header(tmp_path / "m.eqx")["hyperparameters"]
    assert header["learnable_kernels"] == 2 and header["learnable_kernel_symmetry"] == symmetry
    # the same arrays and the same static structure (the symmetry), so the same outputs
    assert eqx.tree_equal(load_model(tmp_path / "m.eqx"), model)


def test_the_learnable_kernels_train_and_a_run_resumes_with_them(tmp_path, rng):
    diffusion_data(tmp_path / "d.npy", rng, size=8, frames=3, steps=2)
    config = config_from_dict(
        {
            "model": {
                "hidden_channels": 1,
                "kernels": ["identity"],
                "learnable_kernels": 1,
                "learnable_kernel_symmetry": "d4",
            },
            "data": {"source": "file", "path": "d.npy"},
            # two updates: the first moves only the output layer (it starts at zero, so the
            # kernels' gradient is zero), the second the kernels too
            "training": {"epochs": 1, "steps_between_frames": 2, "minibatches": 2},
        },
        base_dir=tmp_path,
    )
    trained = train(config, tmp_path / "run", **QUIET).final_model
    untrained = build_model(config, 1, jax.random.split(jax.random.key(0))[0])  # seed 0's
    assert trained.kernel_weights.shape == untrained.kernel_weights.shape == (1, 3)
    assert not np.array_equal(trained.kernel_weights, untrained.kernel_weights)
    # the checkpoint (weights and optimiser state) reads back into the run's structure
    resumed = train(config, tmp_path / "run", resume=True, **QUIET).final_model
    assert eqx.tree_equal(resumed, trained, load_model(tmp_path / "run" / "final.eqx"))


def test_read_kernel_finds_the_stencil_and_the_identity_plus_stencil_fit():
    laplacian = np.asarray(KERNELS["laplacian"])
    reading = read_kernel(-2 * laplacian)
    assert reading.closest == "laplacian" and reading.closest_cosine == pytest.approx(-1)
    euler = read_kernel(np.asarray(KERNELS["identity"]) + 0.1 * laplacian)
    assert euler.closest_pair == "identity+laplacian"
    assert euler.pairs["identity+laplacian"] == pytest.approx(1)
    np.testing.assert_allclose(euler.coefficients, (1.0, 0.1), atol=1e-6)
    # a D4 kernel is exactly identity, average and Laplacian combined
    tied = read_kernel(np.asarray(kernel_arrays(jnp.array([[0.3, -0.2, 0.7]]), "d4"))[0])
    assert tied.stencil_fit_cosine == pytest.approx(1)
    assert tied.stencil_fit["gradient_x"] == pytest.approx(0, abs=1e-6)
    gradient = read_kernel(np.asarray(KERNELS["gradient_y"]).T)  # gradient_x, up to float
    assert gradient.closest == "gradient_x"
    with pytest.raises(ValueError, match=r"kernel must be 3x3, got shape \(2, 2\)"):
        read_kernel(np.zeros((2, 2)))


def test_inspect_reports_a_kernel_set_to_the_laplacian_as_the_laplacian(key, tmp_path):
    model = NCA(
        2, 1, kernels=("identity",), learnable_kernels=2, learnable_kernel_symmetry="d4", key=key
    )
    model = eqx.tree_at(
        lambda m: m.kernel_weights, model, model.kernel_weights.at[1].set(LAPLACIAN_D4)
    )
    np.testing.assert_allclose(model.learned_kernels()[1], KERNELS["laplacian"])
    inspection = inspect_model(model, [1.0, 0.0], size=4)
    assert inspection.kernels == ("identity", "learned_1", "learned_2")
    assert inspection.importance.shape == (3, 3)
    report = inspection.to_json()["learned_kernels"]
    assert [r["name"] for r in report] == ["learned_1", "learned_2"]
    assert report[1]["closest"] == "laplacian"
    assert report[1]["closest_cosine"] == pytest.approx(1, abs=1e-6)
    assert any(
        line.startswith("learned_2: closest stencil laplacian")
        for line in summary(inspection, None)
    )
    # the report's figure of the kernels, beside inspect.json and inspect.png
    files = write_inspection(inspection, tmp_path / "report")
    assert [f.name for f in files] == ["inspect.json", "inspect.png", "kernels.png"]
    # a model without learnable kernels: no such key
    assert "learned_kernels" not in inspect_model(NCA(2, 1, key=key), [1.0, 0.0], size=4).to_json()


def test_the_commands_that_read_the_weights_take_the_learnable_kernels(key):
    model = NCA(2, 2, kernels=("identity",), learnable_kernels=1, key=key)
    # the web page runs them as 3x3 weights, like the fixed ones
    perceptions = page_data(model, [("start", np.zeros((4, 4, 2), np.float32))])["perceptions"]
    assert [p["name"] for p in perceptions] == ["identity", "learned_1"]
    np.testing.assert_array_equal(
        np.reshape(perceptions[1]["weights"], (3, 3)), model.learned_kernels()[0]
    )
    # prune keeps them when it drops channels and names their blocks (a tolerance that
    # lets it take everything); weight noise shakes them too
    truth = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (3, 4, 4, 2)))
    pruned = prune(moving(model, jax.random.fold_in(key, 2)), truth, 1, tolerance=1e6)
    assert pruned.model.hidden_channels == 0
    np.testing.assert_array_equal(pruned.model.kernel_weights, model.kernel_weights)
    assert {"channel": 0, "kernel": "learned_1"} in pruned.to_json()["removed_blocks"]
    shaken = perturbed_weights(model, 0.1, jax.random.key(0))
    assert not np.array_equal(shaken.kernel_weights, model.kernel_weights)


def test_bad_learnable_kernels_are_refused_by_the_model_the_config_and_the_cli(key, tmp_path):
    for settings, message in [
        (dict(learnable_kernels=-1), "learnable_kernels must be an integer >= 0, got -1"),
        (dict(learnable_kernels=1, dimensions=3), "learnable_kernels needs a 2-D lattice"),
        (dict(learnable_kernel_symmetry="d4"), "needs learnable_kernels >= 1"),
        (dict(learnable_kernels=1, learnable_kernel_symmetry="c4"), "must be one of"),
        (dict(kernels=()), "kernels must name at least one"),
    ]:
        with pytest.raises(ValueError, match=message):
            NCA(2, 1, key=key, **settings)
        with pytest.raises(ValueError, match=f"model.*{message}"):
            ModelConfig(**settings)
    from typer.testing import CliRunner

    from stnca.cli import app

    path = tmp_path / "c.toml"
    path.write_text(
        '[model]\nlearnable_kernels = 2\ndimensions = 3\n[data]\nsource = "gray_scott"\n'
    )
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "model.learnable_kernels needs a 2-D lattice" in lines[0]
    assert not (tmp_path / "run").exists()
