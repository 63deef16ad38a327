"""Outputs never destroy inputs or earlier runs, are checked before any work, and a killed
write leaves nothing behind for long (issue: hardening, items 2-6)."""

import json
import os
import shutil
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from stnca import NCA
from stnca._files import atomic_path, remove_stale_temporaries
from stnca.cli import app
from stnca.serialization import read_header, save_model

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.fixture
def model_file(tmp_path, key):
    return save_model(tmp_path / "m.eqx", NCA(2, 1, key=key))


# --- item 2: nonsense epochs, strict JSON headers, resume below the epochs done -----------


def test_epochs_beyond_any_run_are_refused(tmp_path, config_file):
    text = config_file.read_text().replace("epochs = 4", "epochs = 99999999999999999999")
    config_file.write_text(text)
    one_line_error(
        invoke("train", config_file, "--out", tmp_path / "r"), "training.epochs must be <="
    )
    assert not (tmp_path / "r").exists()


def test_untrained_model_header_is_strict_json(tmp_path, config_file):
    result = invoke("train", config_file, "--out", tmp_path / "r", "--epochs", 0)
    assert result.exit_code == 0, result.output
    # the report gives the untrained numbers metrics.csv holds, not an infinite "lowest loss"
    assert "trained 0 epochs: model.eqx is the untrained model (training loss" in result.output
    assert "inf" not in result.output
    for name in ("model.eqx", "checkpoint.eqx"):
        line = (tmp_path / "r" / name).read_bytes().split(b"\n", 1)[0].decode()
        assert "Infinity" not in line and "NaN" not in line, (name, line)
        json.loads(line)
    assert read_header(tmp_path / "r" / "model.eqx")["loss"] is None  # infinite: no model yet
    more = invoke("train", config_file, "--out", tmp_path / "r", "--epochs", 2, "--resume")
    assert more.exit_code == 0, more.output  # a null best loss reads back as infinity


def test_resume_cannot_go_backwards(tmp_path, config_file):
    out = tmp_path / "r"
    assert invoke("train", config_file, "--out", out).exit_code == 0
    saved = (out / "config.toml").read_text()
    one_line_error(
        invoke("train", config_file, "--out", out, "--epochs", 2, "--resume"),
        "already at epoch 4: epochs = 2 would not continue it",
    )
    assert (out / "config.toml").read_text() == saved


# --- item 3: an output that is an input -------------------------------------------------


def test_rollout_refuses_to_overwrite_its_inputs(tmp_path, model_file):
    init = tmp_path / "x.npy"
    np.save(init, np.zeros((6, 6, 2), np.float32))
    before = model_file.read_bytes()
    one_line_error(
        invoke("rollout", model_file, "--init", init, "--out", init), "is the --init file"
    )
    np.testing.assert_array_equal(np.load(init), 0)
    copy = tmp_path / "m.npy"
    copy.write_bytes(before)  # a model saved under a .npy name
    one_line_error(invoke("rollout", copy, "--init", init, "--out", copy), "is the MODEL file")
    assert copy.read_bytes() == before


def test_simulate_refuses_to_overwrite_its_initial_state(tmp_path):
    init = tmp_path / "x.npy"
    np.save(init, np.full((6, 6, 2), 0.5, np.float32))
    one_line_error(
        invoke("simulate", "gray-scott", "--init-file", init, "--out", init, "--steps", 2),
        "is the --init-file file",
    )
    np.testing.assert_array_equal(np.load(init), 0.5)


def test_evaluate_refuses_to_overwrite_its_truth(tmp_path, model_file):
    truth = tmp_path / "evaluation.png"  # a truth file that happens to sit where the figure goes
    np.save(tmp_path / "t.npy", np.zeros((3, 6, 6, 2), np.float32))
    os.replace(tmp_path / "t.npy", truth)
    result = invoke(
        "evaluate", model_file, "--truth", truth, "--steps-between-frames", 2, "--out", tmp_path
    )
    one_line_error(result, "is the --truth file")
    assert not (tmp_path / "evaluation.json").exists()


# --- item 4: every output location checked before the work -------------------------------


def test_simulate_png_target_checked_before_writing(tmp_path):
    (tmp_path / "x.png").mkdir()
    result = invoke(
        "simulate", "gray-scott", "--out", tmp_path / "x.npy", "--steps", 2, "--size", 6, "--png"
    )
    one_line_error(result, f"{tmp_path / 'x.png'} is a folder")
    assert not (tmp_path / "x.npy").exists()


def test_evaluate_output_file_that_is_a_folder(tmp_path, model_file):
    np.save(tmp_path / "t.npy", np.zeros((3, 6, 6, 2), np.float32))
    out = tmp_path / "eval"
    (out / "evaluation.json").mkdir(parents=True)
    result = invoke(
        "evaluate",
        model_file,
        "--truth",
        tmp_path / "t.npy",
        "--steps-between-frames",
        2,
        "--out",
        out,
    )
    one_line_error(result, "evaluation.json is a folder")
    assert not (out / "evaluation.png").exists()


def test_unwritable_video_folder_checked_first(tmp_path, model_file, monkeypatch):
    init = tmp_path / "x.npy"
    np.save(init, np.zeros((6, 6, 2), np.float32))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    # as root every folder is writable: pretend, as for any other user, that this one is not
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    result = invoke(
        "rollout",
        model_file,
        "--init",
        init,
        "--out",
        tmp_path / "o.npy",
        "--video",
        locked / "v.mp4",
    )
    one_line_error(result, "permission denied")
    assert not (tmp_path / "o.npy").exists()


def test_train_metrics_file_that_is_a_folder(tmp_path, config_file):
    (tmp_path / "r" / "metrics.csv").mkdir(parents=True)
    one_line_error(invoke("train", config_file, "--out", tmp_path / "r"), "is a folder")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["metrics.csv"]


def test_errors_name_the_users_path_not_a_temporary(tmp_path):
    (tmp_path / "target.txt").mkdir()
    with pytest.raises(OSError) as raised:
        with atomic_path(tmp_path / "target.txt") as temporary:
            temporary.write_text("data")
    assert raised.value.filename == str(tmp_path / "target.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["target.txt"]  # no temporary left


# --- item 5: another run's files without a checkpoint -----------------------------------


def test_train_keeps_files_of_a_run_killed_before_its_first_checkpoint(tmp_path, config_file):
    out = tmp_path / "r"
    out.mkdir()
    for name in ("config.toml", "metrics.csv", "loss.png", "train_data.npy"):
        (out / name).write_text("earlier run")
    one_line_error(invoke("train", config_file, "--out", out), "pass --overwrite")
    assert all((out / n).read_text() == "earlier run" for n in ("config.toml", "metrics.csv"))
    result = invoke("train", config_file, "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "model.eqx").is_file() and "earlier run" not in (out / "metrics.csv").read_text()
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"


# --- item 6: temporaries of killed writes -------------------------------------------------


def test_stale_temporaries_are_removed_on_start_and_resume(tmp_path, config_file):
    out = tmp_path / "r"
    assert invoke("train", config_file, "--out", out, "--epochs", 2).exit_code == 0
    stale = [
        out / n
        for n in (
            ".checkpoint.ab12cd.tmp.eqx",
            ".model.x1.tmp.eqx",
            ".metrics.zz.tmp.csv",
            ".loss.q9.tmp.png",
            ".final.k.tmp.eqx",
        )
    ]
    for path in stale:
        path.write_bytes(b"half written")
    (out / ".notes.tmp.txt").write_text("not ours")
    result = invoke("train", config_file, "--out", out, "--epochs", 4, "--resume")
    assert result.exit_code == 0, result.output
    assert not any(path.exists() for path in stale)
    assert (out / ".notes.tmp.txt").exists()  # only our own temporaries are touched


def test_remove_stale_temporaries_matches_atomic_path_names(tmp_path):
    with atomic_path(tmp_path / "model.eqx") as temporary:
        temporary.write_bytes(b"x")
        name = temporary.name  # what a write killed at this moment would leave behind
    (tmp_path / name).write_bytes(b"half written")
    (tmp_path / ".other.ab.tmp.eqx").write_bytes(b"another file's")
    removed = remove_stale_temporaries(tmp_path, ["model.eqx"])
    assert [p.name for p in removed] == [name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ab.tmp.eqx", "model.eqx"]


def test_garbage_metrics_on_resume_is_named(tmp_path, config_file):
    out = tmp_path / "r"
    assert invoke("train", config_file, "--out", out, "--epochs", 2).exit_code == 0
    (out / "metrics.csv").write_text("epoch,loss\nfour,x\n")
    result = invoke("train", config_file, "--out", out, "--epochs", 4, "--resume")
    one_line_error(result, f"{out / 'metrics.csv'} is not a metrics file written by stnca")


def test_a_forged_model_header_is_refused_before_allocating(tmp_path, model_file):
    header, rest = model_file.read_bytes().split(b"\n", 1)
    forged = json.loads(header)
    forged["hyperparameters"]["hidden_width"] = 10**12  # 4e13 weights: never allocate that
    path = tmp_path / "forged.eqx"
    path.write_bytes(json.dumps(forged).encode() + b"\n" + rest)
    one_line_error(
        invoke("rollout", path, "--init", model_file, "--out", tmp_path / "o.npy"),
        "header describes",
    )


# --- item 7: resource limits, refused with an estimate before anything is allocated -------


@pytest.mark.parametrize(
    "args, message",
    [
        (("--size", "1000000000000"), "needs about"),
        (("--size", "4096", "--batch", "100000"), "needs about"),
        (("--steps", "9223372036854775808", "--every", "1"), "steps must be at most"),
    ],
)
def test_simulate_refuses_what_cannot_fit(tmp_path, args, message):
    result = invoke("simulate", "gray-scott", "--out", tmp_path / "x.npy", *args)
    one_line_error(result, message)
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize(
    "tables, message",
    [
        (
            "[data]\nsize = 1000000\nsteps = 64\n[training]\nsteps_between_frames = 32\n",
            "needs about",
        ),
        (
            "[model]\nhidden_channels = 1000000\n[data]\nsize = 8\nsteps = 64\n"
            "[training]\nsteps_between_frames = 32\n",
            "needs about",
        ),
    ],
)
def test_train_refuses_a_config_that_cannot_fit(tmp_path, tables, message):
    (tmp_path / "c.toml").write_text(tables)
    one_line_error(invoke("train", tmp_path / "c.toml", "--out", tmp_path / "r"), message)
    assert not (tmp_path / "r").exists()


def test_rollout_refuses_frames_that_cannot_fit(tmp_path, model_file):
    np.save(tmp_path / "x.npy", np.zeros((64, 64, 2), np.float32))
    result = invoke(
        "rollout",
        model_file,
        "--init",
        tmp_path / "x.npy",
        "--out",
        tmp_path / "o.npy",
        "--steps",
        2_000_000_000,
    )
    one_line_error(result, "needs about")


def test_a_large_simulation_is_streamed_to_disk_with_the_same_frames(tmp_path, monkeypatch):
    args = ("simulate", "gray-scott", "--size", 12, "--steps", 64, "--every", 16, "--batch", 2)
    held = invoke(*args, "--out", tmp_path / "held.npy")
    assert held.exit_code == 0, held.output
    monkeypatch.setattr("stnca.data.simulation.STREAM_ABOVE", 0)  # everything counts as large
    streamed = invoke(*args, "--out", tmp_path / "streamed.npy", "--png")
    assert streamed.exit_code == 0, streamed.output
    assert "writing each frame as it comes" in streamed.output and "step 64/64" in streamed.output
    np.testing.assert_array_equal(
        np.load(tmp_path / "streamed.npy"), np.load(tmp_path / "held.npy")
    )
    assert (tmp_path / "streamed.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "held.npy",
        "streamed.npy",
        "streamed.png",
    ]  # no temporary left


def test_a_long_simulation_reports_progress_within_one_frame_interval(tmp_path, monkeypatch):
    """Few frames but much work: streamed in chunks smaller than a frame interval, each
    reporting its step, and the same frames as held in memory."""
    args = ("simulate", "gray-scott", "--size", 10, "--steps", 60, "--every", 30)
    held = invoke(*args, "--out", tmp_path / "held.npy")
    assert held.exit_code == 0, held.output
    assert "step" not in held.output  # small work: held in memory, no progress lines
    monkeypatch.setattr("stnca.data.simulation.LONG_SIMULATION", 0)  # everything counts as long
    monkeypatch.setattr("stnca.data.gray_scott.CHUNK_CELL_UPDATES", 7 * 100)  # 7 steps
    lines = []
    monkeypatch.setattr("stnca.cli.simulate._step_progress", lambda total: lines.append)
    chunked = invoke(*args, "--out", tmp_path / "chunked.npy")
    assert chunked.exit_code == 0, chunked.output
    assert "MiB of memory" in chunked.output and "G cell-updates" in chunked.output
    # 30 = 7 + 7 + 7 + 7 + 2 per frame interval
    assert lines == [7, 14, 21, 28, 30, 37, 44, 51, 58, 60]
    np.testing.assert_array_equal(np.load(tmp_path / "chunked.npy"), np.load(tmp_path / "held.npy"))


def test_a_streamed_simulation_that_diverges_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("stnca.data.simulation.STREAM_ABOVE", 0)
    result = invoke(
        "simulate",
        "gray-scott",
        "--size",
        8,
        "--steps",
        64,
        "--every",
        8,
        "--dt",
        50,
        "--out",
        tmp_path / "x.npy",
    )
    assert result.exit_code == 2, result.output
    # progress lines may come first; the error is one line, the last
    assert result.output.strip().splitlines()[-1].startswith("error: the simulation diverged")
    assert list(tmp_path.iterdir()) == []


def test_a_large_rollout_is_streamed_with_the_same_frames(tmp_path, key, monkeypatch):
    import equinox as eqx

    model = NCA(2, 2, key=key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.01 * jax.random.normal(key, (4, 16)))
    save_model(tmp_path / "m.eqx", model)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(size=(2, 8, 8, 2)).astype("f4"))
    args = (
        "rollout",
        tmp_path / "m.eqx",
        "--init",
        tmp_path / "x.npy",
        "--steps",
        60,
        "--every",
        20,
    )
    held = invoke(*args, "--out", tmp_path / "held.npy")
    assert held.exit_code == 0, held.output
    monkeypatch.setattr("stnca.analysis.rollout_file.STREAM_ABOVE", 0)
    module = sys.modules["stnca.analysis.evaluate"]  # the module, not the function of that name
    monkeypatch.setattr(module, "CHUNK_STEPS", 7)  # several chunks inside each frame
    streamed = invoke(*args, "--out", tmp_path / "streamed.npy")
    assert streamed.exit_code == 0, streamed.output
    assert "writing each frame as it comes" in streamed.output
    held_frames, streamed_frames = (
        np.load(tmp_path / "held.npy"),
        np.load(tmp_path / "streamed.npy"),
    )
    assert held_frames.shape == streamed_frames.shape == (2, 4, 8, 8, 2)
    np.testing.assert_allclose(streamed_frames, held_frames, atol=1e-6)  # deterministic model


def test_a_long_evaluation_runs_in_chunks_with_progress(tmp_path, key, monkeypatch):
    import equinox as eqx

    model = NCA(2, 2, key=key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.01 * jax.random.normal(key, (4, 16)))
    save_model(tmp_path / "m.eqx", model)
    truth = np.random.default_rng(1).uniform(size=(4, 8, 8, 2)).astype("f4")
    np.save(tmp_path / "t.npy", truth)
    args = (
        "evaluate",
        tmp_path / "m.eqx",
        "--truth",
        tmp_path / "t.npy",
        "--steps-between-frames",
        10,
    )
    held = invoke(*args, "--out", tmp_path / "held")
    assert held.exit_code == 0, held.output
    module = sys.modules["stnca.analysis.evaluate"]
    monkeypatch.setattr(module, "LONG_ROLLOUT", 0)  # everything counts as long
    monkeypatch.setattr(module, "CHUNK_STEPS", 4)
    chunked = invoke(*args, "--out", tmp_path / "chunked")
    assert chunked.exit_code == 0, chunked.output
    assert "step 30/30" in chunked.output  # the progress line at the end
    a = json.loads((tmp_path / "held" / "evaluation.json").read_text())
    b = json.loads((tmp_path / "chunked" / "evaluation.json").read_text())
    assert a == b  # a deterministic model: the same numbers, chunked or not
    assert json.loads(held.stdout) == a  # stdout is the JSON alone (progress goes to stderr)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_rollout_that_becomes_nan_fails_and_writes_nothing(tmp_path, key, monkeypatch, streamed):
    """A result that is not finite is a failure: exit 2, the first non-finite step named,
    nothing under the output names."""
    model = NCA(2, 1, key=key)
    model = eqx.tree_at(lambda m: m.w_out, model, jnp.full_like(model.w_out, jnp.nan))
    path = save_model(tmp_path / "nan.eqx", model)
    np.save(tmp_path / "init.npy", np.ones((6, 6, 2), np.float32))
    if streamed:
        monkeypatch.setattr("stnca.analysis.rollout_file.STREAM_ABOVE", 0)
    out, video = tmp_path / "o.npy", tmp_path / "o.gif"
    result = invoke(
        "rollout",
        path,
        "--init",
        tmp_path / "init.npy",
        "--out",
        out,
        "--steps",
        8,
        "--every",
        2,
        "--video",
        video,
    )
    message = "error: the rollout became non-finite (NaN or infinite) at step 2 (frame 1)"
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith(message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.npy", "nan.eqx"]


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("command", ["train", "sweep", "symmetry-experiment"])
def test_an_interrupt_says_how_to_go_on(tmp_path, config_file, monkeypatch, command):
    """train has --resume; sweep, reproduce and the symmetry experiment resume by a rerun."""
    monkeypatch.setattr("stnca.train.train", _interrupt)
    monkeypatch.setattr("stnca.experiments.sweep.run_sweep", _interrupt)
    monkeypatch.setattr("stnca.experiments.symmetry_experiment.symmetry_experiment", _interrupt)
    out = tmp_path / "out"
    arguments = {
        "train": ("train", config_file, "--out", out),
        "sweep": ("sweep", config_file, "--vary", "training.seed=1,2", "--out", out),
        "symmetry-experiment": (
            "analyse",
            "symmetry-experiment",
            "--config",
            config_file,
            "--out",
            out,
        ),
    }[command]
    result = invoke(*arguments)
    assert result.exit_code == 130, result.output
    expected = "with --resume" if command == "train" else "run the same command again"
    assert expected in result.output and "--resume" not in result.output.replace(expected, "")


class _Left(Exception):
    pass


@pytest.mark.parametrize("code", [130, 0, 2])
def test_an_interrupted_command_leaves_without_the_interpreter_teardown(monkeypatch, code):
    """Ctrl-C during training crashed in the interpreter's teardown (exit 139, XLA threads
    still running the step) in 5 of 22 tries; an interrupted command now leaves by
    os._exit(130) once its message is out, every other exit by sys.exit. The crash itself
    takes many tries to show: benchmarks/overwrite_kill_test.py sends 20 Ctrl-C."""
    import stnca.cli
    from stnca import console

    def leave(how):
        def record(value):
            raise _Left(how, value)

        return record

    monkeypatch.setattr(stnca.cli, "run", lambda: code)
    monkeypatch.setattr(console.os, "_exit", leave("os._exit"))
    monkeypatch.setattr(console.sys, "exit", leave("sys.exit"))
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # main() replaces it
    with pytest.raises(_Left) as left:
        console.main()
    assert left.value.args == ("os._exit" if code == 130 else "sys.exit", code)


def test_ctrl_c_during_the_imports_is_one_line_and_130(monkeypatch, capsys):
    """The command's imports take seconds (JAX): Ctrl-C then printed a traceback."""
    import types

    from stnca import console

    class Interrupted(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "stnca.cli", Interrupted("stnca.cli"))
    monkeypatch.setattr(console.os, "_exit", lambda value: (_ for _ in ()).throw(_Left(value)))
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    with pytest.raises(_Left) as left:
        console.main()
    assert left.value.args == (130,)
    assert capsys.readouterr().err == f"error: {console.BEFORE_START}\n"


def test_an_interrupt_a_callback_swallowed_is_delivered_again(monkeypatch):
    """Ctrl-C that lands in a garbage-collector callback or a __del__ (JAX runs one on every
    collection) was printed as "Exception ignored ... KeyboardInterrupt" and lost: the
    training went on to its end. The command's hook sends it again, to the main code."""
    import signal
    import time

    from stnca import console

    monkeypatch.setattr(sys, "unraisablehook", console._redeliver_interrupts)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:

        class SwallowsInterrupts:
            def __del__(self):
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            SwallowsInterrupts()  # collected at once: its interrupt is "unraisable"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the interrupt lands here, in the main code
                pass
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_sweep_refused_for_memory_writes_nothing(tmp_path):
    config_file = tmp_path / "gray_scott.toml"
    config_file.write_text("[data]\nsize = 8\nsteps = 32\n[training]\nsteps_between_frames = 16\n")
    out = tmp_path / "sweep"
    vary = "model.hidden_channels=2,1000000000"
    result = invoke("sweep", config_file, "--vary", vary, "--out", out)
    one_line_error(result, "vary model.hidden_channels=1000000000: training this config")
    assert not out.exists()  # no sweep.json to block the corrected sweep


def test_a_write_removes_temporaries_of_killed_writers_only(tmp_path):
    """kill -9 mid-write leaves .NAME.PID.xxxx.tmp.npy; the next write of NAME removes those
    whose process is gone and keeps a live writer's."""
    import subprocess

    from stnca.data.io import save_array

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    orphan = tmp_path / f".k.{gone}.abc123.tmp.npy"
    live = tmp_path / f".k.{os.getppid()}.def456.tmp.npy"  # the parent: running
    for path in (orphan, live):
        path.write_bytes(bytes(100))
    save_array(tmp_path / "k.npy", np.zeros(3, np.float32))
    assert not orphan.exists() and live.exists() and (tmp_path / "k.npy").is_file()


def test_a_run_stopped_before_its_first_checkpoint_restarts_by_the_same_command(
    tmp_path, config_file
):
    """Ctrl-C after config.toml and train_data.npy but before checkpoint.eqx: nothing was
    trained, so the same command starts the run again; another config's files are kept."""
    from stnca.train import load_config

    out = tmp_path / "run"
    assert invoke("train", config_file, "--out", out).exit_code == 0
    for path in out.iterdir():  # what an interrupt before the first checkpoint leaves
        if path.name not in ("config.toml", "train_data.npy"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = invoke("train", config_file, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "model.eqx").is_file() and (out / "checkpoint.eqx").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text(
        load_config(config_file).replace("training", learning_rate=0.5).to_toml()
    )
    one_line_error(invoke("train", config_file, "--out", other), "pass --overwrite to replace")
    assert sorted(p.name for p in other.iterdir()) == ["config.toml"]


@pytest.mark.parametrize("command", ["simulate", "rollout", "import", "evaluate", "export"])
def test_one_output_policy_an_existing_output_needs_overwrite(tmp_path, model_file, command):
    """Every command refuses to replace an output file the user did not ask to replace
    (one line, exit 2, the file untouched) and replaces it with --overwrite."""
    np.save(tmp_path / "init.npy", np.ones((6, 6, 2), np.float32))
    np.save(tmp_path / "truth.npy", np.ones((3, 6, 6, 2), np.float32))
    target, arguments = {
        "simulate": ("o.npy", ["simulate", "gray-scott", "--size", 6, "--steps", 2, "--every", 1]),
        "rollout": ("o.npy", ["rollout", model_file, "--init", tmp_path / "init.npy"]),
        "import": ("o.npy", ["import", tmp_path / "truth.npy"]),
        "evaluate": (
            "v.gif",
            ["evaluate", model_file, "--truth", tmp_path / "truth.npy"]
            + ["--steps-between-frames", 1, "--out", tmp_path / "e", "--video"],
        ),
        "export": ("web/m.html", ["export", "web", model_file, "--init", tmp_path / "init.npy"]),
    }[command]
    out = tmp_path / target
    out.parent.mkdir(exist_ok=True)
    out.write_text("the user's own file")
    if command == "export":
        arguments = [*arguments, "--out", out.parent]
    elif command != "evaluate":
        arguments = [*arguments, "--out", out]
    else:
        arguments = [*arguments, out]
    one_line_error(invoke(*arguments), "already exists; pass --overwrite to replace it")
    assert out.read_text() == "the user's own file"
    result = invoke(*arguments, "--overwrite")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"the user's own file"


def test_evaluate_refuses_a_rollout_that_becomes_nan(tmp_path, key):
    """An all-NaN model was evaluated to exit 0 with a report of nulls."""
    nan_model = jax.tree_util.tree_map(
        lambda leaf: jnp.full_like(leaf, jnp.nan) if eqx.is_inexact_array(leaf) else leaf,
        NCA(1, 2, key=key),
    )
    model = save_model(tmp_path / "nan.eqx", nan_model)
    np.save(tmp_path / "truth.npy", np.full((3, 6, 6, 1), 0.5, np.float32))
    out = tmp_path / "ev"
    arguments = ("--truth", tmp_path / "truth.npy", "--steps-between-frames", 2, "--out", out)
    result = invoke("evaluate", model, *arguments)
    one_line_error(result, "the model's rollout became non-finite (NaN or infinite) at step 2")
    assert not out.exists()


def test_ctrl_c_inside_an_extension_s_initialisation_is_one_line_and_130(tmp_path):
    """Ctrl-C while jaxlib's compiled extension initialised became "ImportError: Encountered
    an error while initializing the extension" and a traceback: the command now holds Ctrl-C
    until its imports are done. Run in a fresh process (one thread, as the command starts):
    a stand-in for the command's imports sends itself SIGINT and turns an interrupt into
    that ImportError, as the extension does."""
    import subprocess

    script = tmp_path / "interrupted_import.py"
    script.write_text(
        "import os, signal, sys, time, types\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal\n"
        "class Extension(types.ModuleType):\n"
        "    def __getattr__(self, name):\n"
        "        try:\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "            time.sleep(0.2)\n"
        "        except KeyboardInterrupt:\n"
        "            raise ImportError('Encountered an error while initializing the extension')\n"
        "        return lambda: 0\n"
        "sys.modules['stnca.cli'] = Extension('stnca.cli')\n"
        "from stnca.console import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    from stnca.console import BEFORE_START

    assert (done.returncode, done.stderr) == (130, f"error: {BEFORE_START}\n")
