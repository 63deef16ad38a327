"""The generalisation benchmark: its metrics on hand-made fields, its families' defining
properties, its runs against the PDE and a given truth, and its refusals."""

import jax
import numpy as np
import pytest
from scipy import ndimage

from stnca.analysis.benchmark import Suite, run_benchmark
from stnca.analysis.metrics import correlation_time, pearson, vrmse
from stnca.cli import run
from stnca.data.initial_conditions import MIXED, _compiled, initial_condition
from stnca.experiments.benchmark import benchmark_model
from stnca.model import NCA
from stnca.serialization import save_model
from stnca.train import load_config
from stnca.train.dataset import _initial_conditions

TINY_GRAY_SCOTT = """
[model]
hidden_channels = 2
[data]
size = 8
steps = 32
trajectories = 1
[training]
steps_between_frames = 16
"""


def _field(rng, shape=(3, 5, 16, 16, 2)):
    return rng.normal(size=shape)


def test_vrmse_is_one_for_the_mean_and_zero_for_the_truth(rng):
    truth = _field(rng)
    mean = np.broadcast_to(truth.mean(axis=(-3, -2), keepdims=True), truth.shape)
    np.testing.assert_allclose(vrmse(mean, truth), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vrmse(truth, truth), 0.0)
    shifted = truth + 2 * truth.std(axis=(-3, -2), keepdims=True)  # RMSE = 2 standard deviations
    np.testing.assert_allclose(vrmse(shifted, truth), 2.0, rtol=1e-6)


def test_pearson_and_correlation_time_of_the_truth_itself(rng):
    truth = _field(rng)
    correlation = pearson(truth, truth)
    np.testing.assert_allclose(correlation, 1.0)
    steps = np.arange(truth.shape[1]) * 7
    np.testing.assert_array_equal(correlation_time(correlation, steps), steps[-1])
    flat = np.zeros_like(truth)  # constant fields: 1 where they agree, 0 where they do not
    np.testing.assert_array_equal(pearson(flat, flat), 1.0)
    np.testing.assert_array_equal(pearson(flat, truth), 0.0)
    np.testing.assert_allclose(pearson(-truth, truth), -1.0)


def test_correlation_time_of_persistence_on_a_travelling_wave():
    """A sine of wavelength 64 moving one cell per frame: persistence correlates as
    cos(2 pi m / 64), which drops below 0.8 after m = 64 arccos(0.8) / (2 pi) = 6.55."""
    x = np.arange(64)
    frames = np.stack([np.sin(2 * np.pi * (x - m) / 64) for m in range(20)])
    truth = np.broadcast_to(frames[:, None, :, None], (20, 8, 64, 1))
    persistence = np.broadcast_to(truth[:1], truth.shape)
    correlation = pearson(persistence, truth)
    np.testing.assert_allclose(correlation, np.cos(2 * np.pi * np.arange(20) / 64), atol=1e-12)
    assert correlation_time(correlation, np.arange(20) * 10) == 60  # frame 6, 10 steps each
    assert correlation_time(np.array([0.5, 0.9]), np.array([0, 1])) == 0


def _binary(b):
    return set(np.unique(b)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("family", "shortest", "longest"),
    [("fourier_low", 16, 32), ("fourier_mid", 8, 16), ("fourier_high", 4, 8)],
)
def test_fourier_families_have_their_wavelengths(family, shortest, longest):
    for seed in range(3):
        b = np.asarray(initial_condition(family, 128, key=jax.random.key(seed)))[..., 1]
        assert b.min() == 0.0 and 0.3 < b.max() <= 1.0
        power = np.abs(np.fft.fft2(b - b.mean())) ** 2
        k = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
        peak = k.flat[np.argmax(power)]  # the strongest wave (cycles per cell)
        assert shortest * 0.9 <= 1 / peak <= longest * 1.1, (family, seed, 1 / peak)


def test_sparse_noise_seeds_lines_and_mixture_have_their_shapes(key):
    b = np.asarray(initial_condition("sparse_noise", 32, key=key))[..., 1]
    assert 0.15 < np.mean(b > 0) < 0.25 and b.max() <= 1.0
    seeds = np.asarray(initial_condition("seeds", 32, key=key))[..., 1]
    labels, number = ndimage.label(seeds)
    assert _binary(seeds) and 1 <= number <= 32 * 32 // 256
    assert np.bincount(labels.ravel())[1:].max() <= 2 * 9  # squares of 1-3 cells (two may touch)
    lines = np.asarray(initial_condition("lines", 32, key=key))[..., 1]
    assert _binary(lines) and lines.sum() > 32
    assert ndimage.minimum_filter(lines, size=5, mode="wrap").max() == 0  # thin: no 5x5 solid
    # the mixture's quadrants are quadrants of its source families (compiled as it is; the
    # same programs as tests/test_gray_scott.py's 16x16 batches)
    mixed = np.asarray(initial_condition("mixture", 16, key=key))
    _, *keys = jax.random.split(key, 1 + len(MIXED))
    sources = [np.asarray(_compiled(n, (16, 16), k)) for n, k in zip(MIXED, keys, strict=True)]
    for rows in (slice(0, 8), slice(8, 16)):
        for cols in (slice(0, 8), slice(8, 16)):
            assert any(np.allclose(mixed[rows, cols], s[rows, cols], atol=1e-6) for s in sources)


def test_a_config_mixes_families_in_turn(tmp_path, key):
    path = tmp_path / "mix.toml"
    path.write_text(TINY_GRAY_SCOTT.replace("trajectories = 1", "trajectories = 3"))
    one = load_config(path).data
    np.testing.assert_array_equal(
        _initial_conditions(one, key), initial_condition("smooth", 8, key=key, batch=3)
    )
    mixed = "trajectories = 3\ninitial_condition = ['smooth', 'lines']"
    path.write_text(TINY_GRAY_SCOTT.replace("trajectories = 1", mixed))
    data = load_config(path).data
    assert data.families == ("smooth", "lines")
    states = np.asarray(_initial_conditions(data, key))
    keys = jax.random.split(key, 3)
    for r, family in enumerate(("smooth", "lines", "smooth")):
        np.testing.assert_array_equal(states[r], initial_condition(family, 8, key=keys[r]))
    path.write_text(TINY_GRAY_SCOTT.replace("trajectories = 1", "initial_condition = []"))
    with pytest.raises(ValueError, match="at least one family"):
        load_config(path)


@pytest.fixture
def gray_scott_model(tmp_path, key):
    """An untrained Gray-Scott-shaped model beside a tiny Gray-Scott training config."""
    (tmp_path / "config.toml").write_text(TINY_GRAY_SCOTT)
    return save_model(tmp_path / "model.eqx", NCA(2, 2, key=key))


TINY_SUITE = Suite(families=("smooth", "lines"), draws=2, size=8, large_size=12, horizons=(1, 2))


def test_the_benchmark_runs_a_model_against_its_pde_and_baselines(gray_scott_model, tmp_path):
    from stnca.analysis.benchmark import model_and_config

    model, config = model_and_config(gray_scott_model)
    result = run_benchmark(model, config=config, suite=TINY_SUITE, seed=3)
    assert result.horizon_frames == 2 and result.steps_between_frames == 16
    cases = {(r["size"], r["family"]) for r in result.rows}
    assert cases == {("8x8", "smooth"), ("8x8", "lines"), ("12x12", "mixture")}
    rows = {(r["size"], r["family"], r["predictor"], r["horizon"]): r for r in result.rows}
    mean = rows[("8x8", "lines", "spatial_mean", 2)]
    assert mean["vrmse"] == pytest.approx(1.0, abs=0.01) and mean["step"] == 64  # + 1e-7
    assert mean["pde_step"] == 64 and mean["draws"] == 2
    assert rows[("8x8", "lines", "persistence", 1)]["correlation_time"] < 32
    again = run_benchmark(model, config=config, suite=TINY_SUITE, seed=3)
    assert again.rows == result.rows  # the 1%-PDE row (and every other) reproducible
    exact = run_benchmark(model, config=config, suite=TINY_SUITE, seed=3, perturbation=0.0)
    perturbed = [r for r in exact.rows if r["predictor"] == "pde_perturbed"]
    assert all(r["vrmse"] == 0 and r["correlation_time"] == r["step"] for r in perturbed)
    assert any(r["vrmse"] > 0 for r in result.rows if r["predictor"] == "pde_perturbed")


def test_the_command_writes_the_report(gray_scott_model, tmp_path, capsys):
    out = tmp_path / "bench"
    code = run(
        [
            "benchmark",
            str(gray_scott_model),
            "--out",
            str(out),
            "--families",
            "mixture",
            "--draws",
            "1",
            "--size",
            "8",
            "--large-size",
            "16",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean VRMSE at 2x the horizon: nca" in printed
    text = (out / "benchmark.md").read_text()
    assert "| 16x16 | mixture |" in text and "## 4x the horizon (step 128)" in text
    lines = (out / "benchmark.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 4 * 3  # 2 cases (8x8 and 16x16) x 4 predictors x 3 horizons
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "16x16_mixture.png",
        "8x8_mixture.png",
    ]


def test_a_model_without_a_pde_runs_against_a_given_truth(tmp_path, key, rng):
    model = save_model(tmp_path / "model.eqx", NCA(3, 1, key=key))
    truth = rng.uniform(size=(2, 9, 10, 10, 3)).astype(np.float32)
    np.save(tmp_path / "truth.npy", truth)
    result, paths = benchmark_model(
        model, tmp_path / "out", truth=tmp_path / "truth.npy", steps_between_frames=3
    )
    assert result.horizon_frames == 2 and {r["family"] for r in result.rows} == {"truth"}
    assert {r["step"] for r in result.rows} == {6, 12, 24}
    mean = [r for r in result.rows if r["predictor"] == "spatial_mean"]
    assert all(r["vrmse"] == pytest.approx(1.0, abs=1e-6) for r in mean)
    assert paths["csv"].is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--families", "smooth,zigzag"], "families must be one of"),
        (["--size", "4"], "size must be at least 8 cells"),
        (["--large-size", "5"], "large_size must be at least 8 cells"),
        (["--suite", "huge"], "suite must be one of"),
        (["--draws", "0"], "draws must be"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    gray_scott_model, tmp_path, capsys, arguments, message
):
    out = tmp_path / "bench"
    assert run(["benchmark", str(gray_scott_model), "--out", str(out), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert not out.exists()


def test_a_model_with_no_pde_and_no_truth_is_refused(tmp_path, key, capsys):
    model = save_model(tmp_path / "model.eqx", NCA(2, 1, key=key))
    out = tmp_path / "bench"
    assert run(["benchmark", str(model), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "no PDE to compare with: give a truth" in error and "\n" not in error
    assert not out.exists()


def test_peers_train_once_and_are_scored_beside_the_nca(gray_scott_model, tmp_path, capsys):
    out = tmp_path / "bench"
    arguments = ["benchmark", str(gray_scott_model), "--out", str(out), "--families", "lines"]
    arguments += ["--draws", "1", "--size", "8", "--large-size", "0", "--peers", "convnet"]
    assert run([*arguments, "--peer-seconds", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "training the convnet peer" in printed and "convnet: lr 0.0003, unroll 1" in printed
    rows = (out / "benchmark.csv").read_text()
    assert ",convnet," in rows and "| convnet | 21474 |" in (out / "benchmark.md").read_text()
    again = [*arguments, "--peer-seconds", "0.5"]
    assert run(again) == 2  # the report exists: the one output policy
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert run([*again, "--overwrite"]) == 0  # the cached peer is reused
    assert "training the convnet peer" not in capsys.readouterr().out
    assert run([*again, "--overwrite", "--peers", "transformer"]) == 2
    assert "peers must be one of" in capsys.readouterr().err
    fno = ["benchmark", str(gray_scott_model), "--out", str(out), "--peers", "fno", "--overwrite"]
    assert run(fno) == 2
    assert "give peer_seconds" in capsys.readouterr().err
