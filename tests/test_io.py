import numpy as np
import pytest

from stnca.data.io import load_states, load_trajectory, save_array


def test_round_trip_and_float32(tmp_path, rng):
    data = rng.normal(size=(4, 6, 6, 2))
    path = save_array(tmp_path / "sub" / "t.npy", data)
    loaded = load_trajectory(path)
    assert loaded.dtype == np.float32 and loaded.shape == (1, 4, 6, 6, 2)
    np.testing.assert_allclose(loaded[0], data.astype(np.float32))
    assert load_trajectory(save_array(tmp_path / "r.npy", data[None].repeat(3, 0))).shape[0] == 3


def test_failed_save_leaves_old_file_and_no_temporary(tmp_path):
    path = save_array(tmp_path / "t.npy", np.ones((3, 3, 3, 1)))
    with pytest.raises(ValueError):
        save_array(path, np.array(["a", "b"]))
    np.testing.assert_array_equal(np.load(path), np.ones((3, 3, 3, 1)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npy"]


@pytest.mark.parametrize(
    "content, message",
    [
        (np.ones((5, 5, 2)), r"must have shape \(T, H, W, C\)"),
        (np.ones((1, 5, 5, 2)), "at least 2 frames"),
        (np.full((2, 5, 5, 2), np.nan), "non-finite"),
        (np.array(["x"] * 50).reshape(2, 5, 5, 1), "real numbers"),
        (np.ones((2, 5, 5, 0)), "has no channels"),
    ],
)
def test_bad_trajectory_files(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(ValueError, match=message):
        load_trajectory(path)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_states(tmp_path / "nope.npy")
    garbage = tmp_path / "garbage.npy"
    garbage.write_text("hello")
    with pytest.raises(ValueError, match="is not a .npy array file") as raised:
        load_states(garbage)
    assert "pickle" not in str(raised.value)  # never advise unpickling
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        load_states(objects)  # pickled content is refused, never unpickled


def test_special_files_and_lying_headers_are_refused_before_reading(tmp_path):
    import os

    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load_states(fifo)  # would block forever if opened
    with pytest.raises(ValueError, match="not a regular file"):
        load_states("/dev/zero")
    (tmp_path / "folder.npy").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        load_states(tmp_path / "folder.npy")
    # a header claiming (100000, 100000, 2) float32 (74.5 GiB) over a few bytes of data
    liar = tmp_path / "liar.npy"
    with open(liar, "wb") as handle:
        header = {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000, 2)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 64)
    with pytest.raises(ValueError, match="is truncated: its header claims shape"):
        load_states(liar)


def test_states_channel_check(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.ones((6, 6, 3), np.float32))
    assert load_states(path).shape == (6, 6, 3)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        load_states(path, channels=2)


def test_shipped_paper_model_loads_by_name_and_runs(tmp_path):
    import jax
    from typer.testing import CliRunner

    from stnca import load_model
    from stnca.cli import app
    from stnca.data.initial_conditions import initial_condition
    from stnca.serialization import pretrained_models, resolve_model

    assert "gray_scott_paper" in pretrained_models()
    model = load_model("gray_scott_paper")
    assert model.hyperparameters()["kernels"] == ["identity", "laplacian"]
    assert (model.observable_channels, model.hidden_channels) == (2, 6)
    assert np.any(np.asarray(model.w_out) != 0)  # trained, not the untrained identity
    assert resolve_model("gray_scott_paper.eqx") == resolve_model("gray_scott_paper")
    initial = np.asarray(initial_condition("smooth", 16, key=jax.random.key(3)))
    np.save(tmp_path / "init.npy", initial)
    result = CliRunner().invoke(
        app,
        [
            "rollout",
            "gray_scott_paper",
            "--init",
            str(tmp_path / "init.npy"),
            "--steps",
            "64",
            "--every",
            "32",
            "--out",
            str(tmp_path / "run.npy"),
        ],
    )
    assert result.exit_code == 0, result.output
    frames = np.load(tmp_path / "run.npy")
    assert frames.shape == (3, 16, 16, 2) and np.all(np.isfinite(frames))
    assert np.abs(frames[-1] - frames[0]).max() > 1e-3  # the dynamics moved
    missing = CliRunner().invoke(
        app,
        [
            "rollout",
            "no_such_model",
            "--init",
            str(tmp_path / "init.npy"),
            "--out",
            str(tmp_path / "x.npy"),
        ],
    )
    assert missing.exit_code == 2
    assert "shipped models: emoji_morph_cpu, gray_scott_paper" in missing.output


def test_shipped_emoji_model_holds_its_rooster(tmp_path):
    from stnca import load_model
    from stnca.analysis.inputs import run_config
    from stnca.analysis.morphing import morph_report
    from stnca.data.augment import embed
    from stnca.data.images import image_sequence

    model = load_model("emoji_morph_cpu")
    config = run_config("emoji_morph_cpu")  # the config it was trained with, shipped beside it
    assert config.data.images == ("emoji:alien_monster", "emoji:microbe", "emoji:rooster")
    assert config.horizon() == 96
    data = config.data
    sequence = np.asarray(embed(image_sequence(data.images, data.size, data.final_repeats), 6))
    report = morph_report(model, sequence, 24, tmp_path, extrapolate=(2,), videos=False)
    assert [row["step"] for row in report["images"]] == [24, 48, 72, 96]
    # the numbers in stnca/models/README.md: 0.178 at the horizon, 0.189 at twice it
    assert report["images"][-1]["relative_error"] == pytest.approx(0.178, abs=0.01)
    assert report["extrapolation"][0]["relative_error"] == pytest.approx(0.189, abs=0.01)
