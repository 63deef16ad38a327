import json
import tomllib
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import EMOJI, tiny_morph_config
from typer.testing import CliRunner

from stnca.analysis.morphing import hidden_as_rgb, morph_report
from stnca.cli import app
from stnca.train import load_config, train
from stnca.train.config import ImageData
from stnca.train.dataset import TrainingData, training_data

ROOT = Path(__file__).resolve().parents[1]


def test_paper_config_is_the_images_preset_plus_the_emoji():
    paper = tomllib.loads((ROOT / "configs" / "emoji_morph_paper.toml").read_text())
    preset = tomllib.loads((ROOT / "stnca" / "presets" / "images.toml").read_text())
    assert paper["data"].pop("images") == EMOJI
    assert paper == preset
    config = load_config(ROOT / "configs" / "emoji_morph_paper.toml")
    assert config.model.hidden_channels + 4 == 16
    assert config.model.update_probability == 0.5 and config.model.boundary == "fixed"
    assert config.training.steps_between_frames == 64


def test_image_training_data_copies_and_redraws(tmp_path):
    config = tiny_morph_config(tmp_path)
    base = training_data(config)
    assert base.shape == (1, 4, 12, 12, 4)  # 3 images + the rooster again, 8 + 2 * 2 cells
    np.testing.assert_array_equal(base[0, 2], base[0, 3])
    data = TrainingData(config, base)
    first = data.trajectories(1)
    assert first.shape == (2, 4, 12, 12, 4)
    np.testing.assert_array_equal(first[0], base[0])
    assert data.draw(10) == 0 and data.draw(11) == 1
    np.testing.assert_array_equal(data.trajectories(10), first)
    assert not np.array_equal(data.trajectories(11)[1], first[1])


def test_tiny_morphing_run_lowers_its_loss_and_reports(tmp_path):
    # 200 epochs: the best loss is 0.63 of the first by then (0.71 at 100), still well
    # below the bar of 0.7 that an untrained or broken update never reaches
    config = tiny_morph_config(tmp_path, epochs=200)
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    first = result.metrics[0]["loss"]
    assert result.lowest_loss < 0.7 * first, (first, result.lowest_loss)
    sequence = np.load(tmp_path / "run" / "train_data.npy")[0]
    report = morph_report(result.model, sequence, 4, tmp_path / "run")
    assert [row["step"] for row in report["images"]] == [4, 8, 12]
    assert [row["step"] for row in report["extrapolation"]] == [24, 48]
    assert [row["multiple"] for row in report["extrapolation"]] == [2, 4]
    assert all(row["target"] == 3 for row in report["extrapolation"])
    for name in ("snapshots.png", "morph.json", "trajectory.mp4", "hidden.mp4"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "run" / "morph.json").read_text()) == report


@pytest.mark.parametrize(
    "options",
    [{}, {"hold_final": True, "minibatches": 2, "state_penalty": 0.01, "validate_every": 3}],
    ids=["defaults", "hold-final"],
)
def test_resume_with_redrawn_copies_is_exact(tmp_path, options):
    quiet = dict(progress=False, log=lambda _: None)
    config = tiny_morph_config(tmp_path, epochs=14, checkpoint_every=7, **options)
    full = train(config, tmp_path / "full", **quiet)
    train(config, tmp_path / "part", epochs=7, **quiet)
    resumed = train(config, tmp_path / "part", epochs=14, resume=True, **quiet)
    leaves = lambda m: jax.tree_util.tree_leaves(m)  # noqa: E731
    for a, b in zip(leaves(full.final_model), leaves(resumed.final_model), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(full.model), leaves(resumed.model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert full.best_epoch == resumed.best_epoch


def test_hidden_channels_as_rgb():
    frames = np.zeros((2, 5, 5, 4 + 7), np.float32)
    frames[..., 4] = 2.0
    frames[..., 5] = -1.0
    stacks = hidden_as_rgb(frames, 4)
    assert len(stacks) == 3 and all(s.shape == (2, 5, 5, 3) for s in stacks)
    np.testing.assert_allclose(stacks[0][..., 0], 1.0)
    np.testing.assert_allclose(stacks[0][..., 1], 0.0)
    np.testing.assert_allclose(stacks[2][..., 1:], 0.5)  # channels 11, 12 do not exist


def test_images_shortcut_on_the_cli(tmp_path, monkeypatch):
    """``train --images`` builds the paper's preset around the images (checked on the config
    it builds) and runs the whole command: training, the morph report and its figure.

    The run itself is shrunk (an 8x8 lattice, 4 copies, 2 hidden channels, t = 4): at the preset's
    80x80 lattice, 16 channels and t = 64 one epoch and the report's rollouts to 4x the
    horizon cost over a minute of CPU, and they exercise no code the toy run does not."""
    import stnca.cli.train

    built = []

    def toy(paths):
        config = real(paths)
        built.append(config)
        config = config.replace("model", hidden_channels=2)
        config = config.replace("data", size=8, padding=2, copies=4)
        return config.replace("training", steps_between_frames=4)

    real = stnca.cli.train.images_config
    monkeypatch.setattr(stnca.cli.train, "images_config", toy)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["train", "--images", *EMOJI, "--out", "morph", "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    (preset,) = built
    assert isinstance(preset.data, ImageData) and preset.data.images == tuple(EMOJI)
    assert preset.training.steps_between_frames == 64 and preset.data.size == 60
    assert preset.model.hidden_channels == 12 and preset.model.update_probability == 0.5
    config = load_config(tmp_path / "morph" / "config.toml")  # the run's own record
    assert config.data.images == tuple(EMOJI) and config.training.steps_between_frames == 4
    assert "n =   24: image 3" in result.output  # the last image, held to 2x the horizon
    assert (tmp_path / "morph" / "snapshots.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--images", "missing.png", "emoji:rooster"], "image not found"),
        (["--images", "notes.png", "emoji:rooster"], "is not a readable image"),
        (["--images", "emoji:dragon", "emoji:rooster"], "unknown packaged image"),
        (["--images", "emoji:rooster"], "needs at least two images to morph through"),
        (["a.toml", "b.toml"], "give one CONFIG.toml"),
    ],
)
def test_bad_images_on_the_cli(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("hello")
    result = CliRunner().invoke(app, ["train", *args, "--out", "run"])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.strip().count("\n") == 0
    assert not (tmp_path / "run" / "model.eqx").exists()
