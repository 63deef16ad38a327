import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from stnca.cli import app
from stnca.serialization import load_model

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def trained(tmp_path, trained_run):
    """A copy of the suite's tiny trained run (conftest.trained_run), to change at will."""
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    return out


def test_train_writes_the_run_folder(trained):
    for name in ("model.eqx", "checkpoint.eqx", "config.toml", "metrics.csv", "loss.png"):
        assert (trained / name).is_file()
    assert len((trained / "metrics.csv").read_text().splitlines()) == 6  # header, epochs 0-4


def test_train_resume_extends_and_refuses_to_overwrite(tmp_path, config_file):
    trained = tmp_path / "run"
    assert invoke("train", config_file, "--out", trained).exit_code == 0
    again = invoke("train", config_file, "--out", trained)
    assert again.exit_code == 2 and "already holds a training run" in again.output
    assert "--resume to continue it, --overwrite to replace it" in again.output  # both ways on
    more = invoke("train", config_file, "--out", trained, "--epochs", 6, "--resume")
    assert more.exit_code == 0, more.output
    assert len((trained / "metrics.csv").read_text().splitlines()) == 8


@pytest.mark.parametrize(
    "content, message",
    [
        ("[training]\nepochs = -3\n", "training.epochs must be >= 0"),
        ("[trainig]\nepochs = 3\n", "unknown table [trainig]"),
        ('[data]\nsource = "file"\npath = "missing.npy"\n', "data.path not found"),
        (
            "[training]\nminibatches = 7\nepochs = 1\n[data]\nsize = 8\nsteps = 64\n",
            "must divide the number of transitions",
        ),
    ],
)
def test_bad_configs_exit_2_one_line(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    result = invoke("train", path, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "out" / "model.eqx").exists()


def test_missing_config_and_bad_data_file(tmp_path):
    assert invoke("train", tmp_path / "no.toml").exit_code == 2
    np.save(tmp_path / "nan.npy", np.full((3, 6, 6, 1), np.nan, np.float32))
    path = tmp_path / "c.toml"
    path.write_text('[data]\nsource = "file"\npath = "nan.npy"\n')
    result = invoke("train", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "non-finite" in result.output


def test_rollout_shapes_any_lattice_and_video(trained, tmp_path, rng):
    init = tmp_path / "init.npy"
    np.save(init, rng.uniform(size=(20, 14, 1)).astype(np.float32))  # not the training size
    out = tmp_path / "roll.npy"
    video = tmp_path / "roll.gif"
    result = invoke(
        "rollout",
        trained / "model.eqx",
        "--init",
        init,
        "--steps",
        12,
        "--every",
        4,
        "--out",
        out,
        "--video",
        video,
    )
    assert result.exit_code == 0, result.output
    frames = np.load(out)
    assert frames.shape == (4, 20, 14, 1)
    np.testing.assert_allclose(frames[0], np.load(init))
    assert video.stat().st_size > 0
    batch = tmp_path / "batch.npy"
    np.save(batch, rng.uniform(size=(3, 9, 9, 1)).astype(np.float32))
    result = invoke(
        "rollout",
        trained / "model.eqx",
        "--init",
        batch,
        "--steps",
        4,
        "--out",
        tmp_path / "b.npy",
        "--video",
        tmp_path / "b.mp4",
    )
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "b.npy").shape == (3, 5, 9, 9, 1)
    assert (tmp_path / "b.mp4").stat().st_size > 0
    # the model is the one saved: a rollout matches the library's, in physical units (the
    # model was trained on min-max scaled data)
    model = load_model(trained / "model.eqx")
    assert model.scaling is not None
    state = model.initial_state(model.encode(np.load(batch)))
    expected = model.decode(model.observable(model.rollout(state, 4)))
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), expected, atol=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--init", "WRONG"], "must have shape (H, W, 1)"),
        (["--init", "GOOD", "--steps", 10, "--every", 3], "multiple of every"),
        (["--init", "GOOD", "--video", "v.avi"], "--video must end in .mp4 or .gif"),
        (["--init", "GOOD", "--model", "JUNK"], "not an stnca file"),
        (["--init", "GOOD", "--model", "RUN"], "is a folder, not a model file (a training run"),
    ],
)
def test_rollout_bad_input(trained, tmp_path, args, message):
    np.save(tmp_path / "wrong.npy", np.ones((5, 5, 2), np.float32))
    np.save(tmp_path / "good.npy", np.ones((5, 5, 1), np.float32))
    (tmp_path / "junk.eqx").write_text("not a model")
    files = {
        "WRONG": tmp_path / "wrong.npy",
        "GOOD": tmp_path / "good.npy",
        "JUNK": tmp_path / "junk.eqx",
        "RUN": trained,
    }
    args = [files.get(a, a) if isinstance(a, str) else a for a in args]
    model = trained / "model.eqx"
    if "--model" in args:
        i = args.index("--model")
        model = args[i + 1]
        del args[i : i + 2]
    out = tmp_path / "o.npy"
    result = invoke("rollout", model, *args, "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_evaluate_prints_json_and_writes_figure(trained, tmp_path):
    truth = np.load(trained / "train_data.npy")
    np.save(tmp_path / "truth.npy", truth[0])
    result = invoke(
        "evaluate",
        trained / "model.eqx",
        "--truth",
        tmp_path / "truth.npy",
        "--steps-between-frames",
        2,
        "--out",
        tmp_path / "ev",
        "--video",
        tmp_path / "ev.gif",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["frames"]) == truth.shape[1]
    first = report["frames"][0]
    assert first["nca"]["euclidean"] == 0 and first["persistence"]["euclidean"] == 0
    last = report["frames"][-1]
    assert last["persistence"]["relative_error"] > 0
    assert set(last) == {"frame", "step", "nca", "persistence", "spatial_mean"}
    assert set(last["nca"]) == {"euclidean", "relative_error", "spectrum_distance"}
    assert (tmp_path / "ev" / "evaluation.png").stat().st_size > 1000
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text()) == report
    assert (tmp_path / "ev.gif").stat().st_size > 0


def test_evaluate_bad_truth(trained, tmp_path):
    np.save(tmp_path / "t.npy", np.ones((3, 5, 5, 2), np.float32))
    result = invoke(
        "evaluate",
        trained / "model.eqx",
        "--truth",
        tmp_path / "t.npy",
        "--steps-between-frames",
        2,
    )
    assert result.exit_code == 2 and "must have shape (T, H, W, 1)" in result.output


@pytest.fixture
def small_demo(tmp_path, monkeypatch):
    """The demo on a shrunk copy of its preset (16x16, 128 steps, tested on 16x16): the
    preset itself loads and validates here, and every step of the command (simulate, train,
    test beyond the horizon, figures, video, summary) still runs; only the lattice and the
    horizon are smaller (the full-size demo program took 35 s of the suite)."""
    from stnca import demo
    from stnca.train import load_config

    preset = demo.DEMO_CONFIG.read_text()
    assert load_config(demo.DEMO_CONFIG).data.size == 32
    small = preset.replace("size = 32", "size = 16").replace("steps = 512", "steps = 128")
    assert small.count("= 16") == 1 + preset.count("= 16") and "steps = 128" in small
    path = tmp_path / "small_demo.toml"
    path.write_text(small)
    monkeypatch.setattr(demo, "DEMO_CONFIG", path)
    monkeypatch.setattr(demo, "TEST_SIZE", 16)


def test_demo_wires_everything_together(tmp_path, small_demo):
    out = tmp_path / "demo"
    result = invoke("demo", "--out", out, "--epochs", 2)
    assert result.exit_code == 0, result.output
    for name in (
        "model.eqx",
        "evaluation.png",
        "evaluation.mp4",
        "train_data.png",
        "loss.png",
        "summary.json",
        "evaluation.json",
        "test_truth.npy",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training"]["epochs"] == 2
    assert (
        summary["test_at_twice_the_horizon"]["step"]
        == 2 * summary["test_at_training_horizon"]["step"]
    )
    assert "NCA/persistence" in result.output
    again = invoke("demo", "--out", out, "--epochs", 2)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_more_bad_inputs_exit_2(trained, tmp_path):
    np.save(tmp_path / "t.npy", np.ones((3, 5, 5, 1), np.float32))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    result = invoke(
        "evaluate",
        trained / "model.eqx",
        "--truth",
        tmp_path / "t.npy",
        "--steps-between-frames",
        2,
        "--out",
        a_file,
    )
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    result = invoke(
        "rollout",
        trained / "model.eqx",
        "--init",
        tmp_path / "t.npy",
        "--seed",
        2**64,
        "--out",
        tmp_path / "r.npy",
    )
    assert result.exit_code == 2 and "--seed must be in" in result.output
    result = invoke(
        "rollout", trained / "model.eqx", "--init", tmp_path / "t.npy", "--out", a_file / "r.npy"
    )
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    header_only = tmp_path / "h.eqx"
    header_only.write_text('{"format": "stnca", "version": 1, "kind": "model"}\n')
    result = invoke(
        "rollout", header_only, "--init", tmp_path / "t.npy", "--out", tmp_path / "r.npy"
    )
    assert result.exit_code == 2 and "no model hyperparameters" in result.output
    bad = tmp_path / "bad.toml"
    for text, message in [
        ("data = 3\n", "[data] must be a single table"),
        ("[data]\nsource = ['x']\n", "data.source must be one of"),
        ("[training]\nseed = -1\n", "training.seed must be in"),
    ]:
        bad.write_text(text)
        result = invoke("train", bad, "--out", tmp_path / "o")
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "r.npy").exists() and not (tmp_path / "o").exists()


def test_demo_overwrite_removes_only_its_own_files(tmp_path, small_demo):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "summary.json").write_text("{}")
    assert invoke("demo", "--out", out, "--epochs", 0).exit_code == 2
    result = invoke("demo", "--out", out, "--epochs", 1, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["training"]["epochs"] == 1


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    import stnca

    assert stnca.__version__ == version("stnca")
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"stnca {stnca.__version__}"
