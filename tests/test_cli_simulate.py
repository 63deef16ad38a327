import numpy as np
import pytest
from typer.testing import CliRunner

from stnca.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "simulate" in result.output


def test_simulate_writes_n_over_k_plus_one_frames_and_png(tmp_path):
    out = tmp_path / "gs.npy"
    result = invoke(
        "simulate",
        "gray-scott",
        "--size",
        16,
        "--steps",
        64,
        "--every",
        16,
        "--out",
        out,
        "--png",
        "--seed",
        3,
    )
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data.shape == (5, 16, 16, 2) and data.dtype == np.float32
    assert out.with_suffix(".png").stat().st_size > 1000
    again = tmp_path / "again.npy"
    invoke(
        "simulate",
        "gray-scott",
        "--size",
        16,
        "--steps",
        64,
        "--every",
        16,
        "--out",
        again,
        "--seed",
        3,
    )
    np.testing.assert_array_equal(np.load(again), data)


def test_simulate_batch_and_init_file(tmp_path):
    out = tmp_path / "b.npy"
    result = invoke(
        "simulate",
        "gray-scott",
        "--size",
        12,
        "--steps",
        8,
        "--every",
        4,
        "--batch",
        3,
        "--init",
        "high_frequency",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (3, 3, 12, 12, 2)
    init = tmp_path / "init.npy"
    state = np.zeros((2, 10, 8, 2), np.float32)
    state[..., 0] = 1
    np.save(init, state)
    out2 = tmp_path / "c.npy"
    result = invoke(
        "simulate",
        "gray-scott",
        "--steps",
        4,
        "--every",
        2,
        "--init-file",
        init,
        "--out",
        out2,
        "--DA",
        0.2,
        "--alpha",
        0.05,
    )
    assert result.exit_code == 0, result.output
    data = np.load(out2)
    assert data.shape == (2, 3, 10, 8, 2)
    np.testing.assert_array_equal(data[:, -1], state)  # A=1, B=0 is a fixed point


def _nan_file(tmp_path):
    path = tmp_path / "nan.npy"
    state = np.ones((8, 8, 2), np.float32)
    state[2, 3, 1] = np.nan
    np.save(path, state)
    return path


def _wrong_shape_file(tmp_path):
    path = tmp_path / "wrong.npy"
    np.save(path, np.ones((8, 8, 3), np.float32))
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--init", "stripes"], "unknown --init 'stripes'"),
        (["--steps", 100, "--every", 32], "must be a multiple of every"),
        (["--init-file", "MISSING"], "not found"),
        (["--init-file", "WRONG"], "must have shape (H, W, 2)"),
        (["--init-file", "NAN"], "non-finite"),
        (["--size", 2], "--size must be at least 3"),
        (["--dt", -1], "dt must be > 0"),
        (["--init", "smooth", "--init-file", "WRONG"], "either --init or --init-file"),
    ],
)
def test_bad_arguments_exit_2_one_line_and_no_output(tmp_path, args, message):
    files = {
        "MISSING": tmp_path / "missing.npy",
        "WRONG": _wrong_shape_file(tmp_path),
        "NAN": _nan_file(tmp_path),
    }
    args = [files.get(a, a) if isinstance(a, str) else a for a in args]
    out = tmp_path / "out.npy"
    result = invoke(
        "simulate", "gray-scott", "--steps", 8, "--every", 4, "--size", 8, *args, "--out", out
    )
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.strip().count("\n") == 0
    assert not out.exists()


def test_existing_output_survives_a_failed_run(tmp_path):
    out = tmp_path / "out.npy"
    np.save(out, np.arange(3.0))
    result = invoke("simulate", "gray-scott", "--steps", 7, "--every", 2, "--out", out)
    assert result.exit_code == 2
    np.testing.assert_array_equal(np.load(out), np.arange(3.0))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "gray-scott"], "Missing option '--out'"),
        (
            ["simulate", "gray-scott", "--out", "x.npy", "--size", "abc"],
            "Invalid value for '--size'",
        ),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["simulate", "gray-scott", "--out", "x.npy", "--colour", "red"], "No such option"),
    ],
)
def test_console_script_usage_errors_are_one_line_exit_2(
    argv, message, capsys, tmp_path, monkeypatch
):
    from stnca.cli import run

    monkeypatch.chdir(tmp_path)
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.npy").exists()


def test_console_script_help_and_version(capsys):
    from stnca.cli import run

    assert run(["--version"]) == 0 and "stnca" in capsys.readouterr().out
    assert run([]) == 0 and "simulate" in capsys.readouterr().out
