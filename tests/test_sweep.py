"""Sweeps (`stnca sweep`, `stnca reproduce`): the grid, resuming, sharding, the results."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from stnca.cli import app
from stnca.experiments.reproduce import FIGURES, SCALES, load_plan, sweep_file
from stnca.experiments.sweep import (
    collect_sweep,
    expand,
    parse_vary,
    read_results,
    run_sweep,
    select_shard,
)
from stnca.train.config import config_from_dict

runner = CliRunner()

TINY = {
    "model": {"hidden_channels": 2},
    "data": {"source": "gray_scott", "size": 8, "steps": 16, "trajectories": 2},
    "training": {
        "epochs": 3,
        "steps_between_frames": 4,
        "minibatches": 2,
        "checkpoint_every": 1,
        "validate_every": 1,
    },
}
VARY = [("t", [4, 8]), ("model.activation", ["relu", "tanh"])]
RUN = [("t", [4, 8]), ("model.activation", ["relu"])]
"""The grid the tests train: two cells (two keys, so the names and columns are as general)."""


def tiny_base():
    return config_from_dict({k: dict(v) for k, v in TINY.items()})


def quiet(_):
    pass


def without_wall(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.pop("wall_seconds")
    return rows


@pytest.fixture(scope="module")
def finished(shared_folder):
    """A finished sweep of the two cells x 2 seeds, run once for all xdist workers (the
    tests only read it) and its summary."""
    from helpers import made_once

    def make(folder):
        folder.mkdir(parents=True)
        summary = run_sweep(tiny_base(), RUN, folder / "whole", seeds=2, log=quiet, progress=False)
        (folder / "summary.json").write_text(json.dumps(summary, default=str))

    folder = made_once(shared_folder, "sweep-finished", make)
    return folder / "whole", json.loads((folder / "summary.json").read_text())


def test_the_grid_expands_in_order_with_the_papers_time_sampling():
    cells = expand(tiny_base(), VARY)
    assert [c.name for c in cells] == [
        "t=4_model.activation=relu",
        "t=4_model.activation=tanh",
        "t=8_model.activation=relu",
        "t=8_model.activation=tanh",
    ]
    coarse = cells[2].config
    # t is both the PDE steps between frames and the NCA steps; N fixed, so M = 16 / 8 = 2
    assert coarse.data.every == 8 and coarse.training.steps_between_frames == 8
    assert coarse.data.steps == 16 and coarse.model.activation == "relu"
    # transitions per mini-batch kept: the base has 4 x 2 / 2 = 4; t = 8 gives 2 x 2 -> 1 batch
    assert cells[0].config.training.minibatches == 2 and coarse.training.minibatches == 1
    # varying the NCA's steps alone keeps the data's frame spacing
    (alone,) = expand(tiny_base(), [("training.steps_between_frames", [2])])
    assert alone.config.data.every == 4 and alone.config.training.steps_between_frames == 2
    (spacing,) = expand(tiny_base(), [("data.every", [8])])
    assert spacing.config.data.every == 8 and spacing.config.training.steps_between_frames == 4


def test_parse_vary_values():
    assert parse_vary("data.noise=0,0.1,1e-2") == ("data.noise", [0, 0.1, 0.01])
    assert parse_vary("model.kernels=identity+laplacian,identity") == (
        "model.kernels",
        [["identity", "laplacian"], "identity"],
    )
    assert parse_vary("training.hold_final=true,false") == ("training.hold_final", [True, False])


def test_shards_cover_the_grid_once():
    cells = expand(tiny_base(), VARY)
    shards = [select_shard(cells, f"{i}/3") for i in range(3)]
    assert sorted(c.name for s in shards for c in s) == sorted(c.name for c in cells)
    with pytest.raises(ValueError, match="0 <= i < n"):
        select_shard(cells, "3/3")


def test_a_sweep_writes_results_and_figure(finished):
    out, summary = finished
    assert summary["missing"] == []
    rows = read_results(out / "results.csv")
    assert len(rows) == 2 * 2  # cells x seeds
    assert [(r["t"], r["model.activation"], r["seed"]) for r in rows[:3]] == [
        (4.0, "relu", 0.0),
        (4.0, "relu", 1.0),
        (8.0, "relu", 0.0),
    ]
    for row in rows:
        assert row["min_training_loss"] > 0 and row["wall_seconds"] > 0
        for who in ("nca", "persistence", "spatial_mean"):
            assert np.isfinite(row[f"{who}_horizon"]) and np.isfinite(row[f"{who}_twice"])
    # the baselines do not depend on the model: one value per t
    persistence = {(r["t"], r["persistence_twice"]) for r in rows}
    assert len(persistence) == 2
    assert (out / "sweep.png").stat().st_size > 10_000
    for k in range(2):
        assert (out / "cells" / "t=8_model.activation=relu" / f"seed{k}" / "model.eqx").is_file()


def test_seeds_differ_and_match_separate_trainings(finished):
    out, _ = finished
    rows = read_results(out / "results.csv")
    first = [r for r in rows if r["t"] == 4.0 and r["model.activation"] == "relu"]
    assert first[0]["min_training_loss"] != first[1]["min_training_loss"]


def test_a_killed_sweep_resumes_to_the_same_results(finished, tmp_path, monkeypatch):
    import stnca.train.run_state as loop  # where the metrics are written

    out = tmp_path / "killed"
    original = loop.write_metrics

    def dying(path, rows):
        # the second cell, once its epoch-1 checkpoint is saved: a kill mid-cell
        if "t=8_model.activation=relu" in str(path) and rows[-1]["epoch"] >= 2:
            raise KeyboardInterrupt
        return original(path, rows)

    monkeypatch.setattr(loop, "write_metrics", dying)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tiny_base(), RUN, out, seeds=2, log=quiet, progress=False)
    monkeypatch.setattr(loop, "write_metrics", original)
    assert (out / "cells" / "t=4_model.activation=relu" / "result.json").is_file()
    assert not (out / "cells" / "t=8_model.activation=relu" / "result.json").exists()
    lines = []
    run_sweep(tiny_base(), RUN, out, seeds=2, log=lines.append, progress=False)
    assert any("done earlier, skipped" in line for line in lines)
    assert without_wall(out / "results.csv") == without_wall(finished[0] / "results.csv")


def test_two_shards_and_collect_equal_one_run(finished, tmp_path):
    out = tmp_path / "sharded"
    first = run_sweep(tiny_base(), RUN, out, seeds=2, shard="0/2", log=quiet, progress=False)
    assert len(first["missing"]) == 1 and not (out / "results.csv").exists()
    lines = []
    missing = run_sweep(tiny_base(), RUN, out, seeds=2, collect=True, log=lines.append)
    assert missing["missing"] == ["t=8_model.activation=relu"]
    assert "t=8_model.activation=relu" in lines[-1]  # names the missing cells
    run_sweep(tiny_base(), RUN, out, seeds=2, shard="1/2", log=quiet, progress=False)
    run_sweep(tiny_base(), RUN, out, seeds=2, collect=True, log=quiet)
    assert without_wall(out / "results.csv") == without_wall(finished[0] / "results.csv")


def test_a_folder_of_another_grid_is_refused(finished):
    out, _ = finished
    with pytest.raises(ValueError, match="holds another sweep"):
        run_sweep(tiny_base(), VARY[:1], out, seeds=2, log=quiet)


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("training.colour=1,2", "unknown key"),
        ("data.noise=0.1,2", "data.noise"),
        ("data.noise=", "comma-separated list"),
        ("noise", "KEY=V1,V2"),
        ("t=3", "must divide the horizon"),
        ("training.epochs=1,2", "not a key a sweep may vary"),
        ("training.minibatches=1,3", "must divide the number of transitions"),
    ],
)
def test_bad_vary_is_refused_before_training(tmp_path, vary, message):
    config = tmp_path / "c.toml"
    config.write_text(
        "[model]\nhidden_channels = 1\n[data]\nsize = 8\nsteps = 16\ntrajectories = 1\n"
        "[training]\nepochs = 1\nsteps_between_frames = 4\n"
    )
    result = runner.invoke(
        app, ["sweep", str(config), "--vary", vary, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("figure", sorted(FIGURES))
@pytest.mark.parametrize("scale", SCALES)
def test_every_figure_file_loads_and_expands(figure, scale):
    plan = load_plan(sweep_file(figure), scale)
    cells = expand(plan.base, plan.vary)
    assert len(cells) >= 3 and plan.seeds >= 1
    if figure == "fig4":
        assert [c.config.data.every for c in cells] == [
            c.config.training.steps_between_frames for c in cells
        ]


def test_the_cli_runs_a_sweep_and_names_missing_cells(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        "[model]\nhidden_channels = 1\n[data]\nsize = 8\nsteps = 16\ntrajectories = 1\n"
        "[training]\nepochs = 2\nsteps_between_frames = 4\n"
    )
    out = tmp_path / "o"
    common = ["sweep", str(config), "--vary", "t=4,8", "--out", str(out)]
    result = runner.invoke(app, [*common, "--shard", "1/2"])
    assert result.exit_code == 0, result.output
    assert "1 of 2 cells not finished: t=4" in result.output
    result = runner.invoke(app, [*common, "--collect"])
    assert result.exit_code == 1 and "t=4" in result.output  # incomplete: named, exit 1
    result = runner.invoke(app, [*common, "--shard", "0/2", "--collect"])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(app, common)
    assert result.exit_code == 0, result.output
    assert "t=8: done earlier, skipped" in result.output
    assert len(read_results(out / "results.csv")) == 2


def test_t_follows_a_co_varied_horizon_and_trajectories():
    (cell,) = expand(tiny_base(), [("t", [8]), ("data.steps", [32]), ("data.trajectories", [4])])
    config = cell.config
    assert config.data.every == 8 and config.data.steps == 32 and config.data.trajectories == 4
    # the base has 4 transitions per mini-batch; this cell has 4 x 4 = 16 -> 4 mini-batches
    assert config.training.minibatches == 4
    (kept,) = expand(tiny_base(), [("t", [8]), ("training.minibatches", [2])])
    assert kept.config.training.minibatches == 2


def fake_cell(out, cell, errors, rng):
    """A finished cell's files without training (for the collect and figure code)."""
    import json

    folder = out / "cells" / cell.name
    folder.mkdir(parents=True)
    rows = [
        {
            "seed": k,
            "min_training_loss": 1.0 + k,
            "chosen_epoch": 3,
            "diverged": False,
            "wall_seconds": 1.0,
            **{
                f"{w}_{n}": e
                for w in ("nca", "persistence", "spatial_mean")
                for n in ("horizon", "twice")
            },
        }
        for k, e in enumerate(errors)
    ]
    (folder / "result.json").write_text(
        json.dumps(
            {
                "cell": cell.name,
                "values": [list(v) for v in cell.values],
                "steps_between_frames": 4,
                "test_steps": [16, 32],
                "rows": rows,
            }
        )
    )
    np.save(folder / "snapshots.npy", rng.uniform(size=(len(errors), 8, 8, 2)).astype(np.float32))
    np.save(folder / "truth.npy", rng.uniform(size=(2, 8, 8, 2)).astype(np.float32))


def test_collect_and_figure_with_boolean_values_and_blown_up_models(tmp_path, rng):
    cells = expand(tiny_base(), [("model.hidden_bias", [True, False])])
    for cell, errors in zip(cells, ([0.2, 1e30], [0.3, float("nan")]), strict=True):
        fake_cell(tmp_path, cell, errors, rng)
    result = collect_sweep(tmp_path, cells, log=quiet)
    assert result["missing"] == [] and (tmp_path / "sweep.png").stat().st_size > 10_000
    rows = read_results(tmp_path / "results.csv")
    assert [r["model.hidden_bias"] for r in rows] == ["True", "True", "False", "False"]


def test_nothing_is_written_for_a_bad_shard_or_an_empty_collect(tmp_path):
    out = tmp_path / "fresh"
    with pytest.raises(ValueError, match="0 <= i < n"):
        run_sweep(tiny_base(), VARY, out, seeds=1, shard="5/2", log=quiet)
    with pytest.raises(ValueError, match="no sweep to collect"):
        run_sweep(tiny_base(), VARY, out, seeds=1, collect=True, log=quiet)
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('base = 3\n[cpu]\nvary = [["t", [4]]]\n', "base must name"),
        ('base = "c.toml"\ncpu = 3\n', "no [cpu] table"),
        ('base = "c.toml"\n[cpu]\nconfig = 3\nvary = [["t", [4]]]\n', "[cpu.config]"),
        ('base = "c.toml"\n[cpu]\nseeds = "abc"\nvary = [["t", [4]]]\n', "cpu.seeds"),
        ('base = "c.toml"\n[cpu]\nseeds = 2.7\nvary = [["t", [4]]]\n', "cpu.seeds"),
        ('base = "c.toml"\n[cpu]\nseeds = 0\nvary = [["t", [4]]]\n', "cpu.seeds"),
        ('base = "c.toml"\n[cpu]\nseeds = 1\n', "non-empty list"),
        ('base = "c.toml"\n[cpu]\ntest_size = 2\nvary = [["t", [4]]]\n', "cpu.test_size"),
    ],
)
def test_bad_sweep_files_are_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "c.toml").write_text(
        "[model]\nhidden_channels = 1\n[data]\nsize = 8\nsteps = 16\ntrajectories = 1\n"
        "[training]\nepochs = 1\nsteps_between_frames = 4\n"
    )
    sweep = tmp_path / "s.toml"
    sweep.write_text(text)
    result = runner.invoke(app, ["reproduce", str(sweep), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "s.toml" in lines[0]
    assert not (tmp_path / "o").exists()


def test_a_grid_recorded_before_an_option_existed_is_the_same_grid(finished, tmp_path):
    out = tmp_path / "older"
    out.mkdir()
    path = out / "sweep.json"
    grid = json.loads((finished[0] / "sweep.json").read_text())
    del grid["base"]["training"]["damage_fill"]  # as an older version wrote it
    path.write_text(json.dumps(grid))
    assert run_sweep(tiny_base(), RUN, out, seeds=2, collect=True, log=quiet)["missing"]
    grid["base"]["training"]["state_penalty"] = 0.5  # a setting that differs
    path.write_text(json.dumps(grid))
    with pytest.raises(ValueError, match="holds another sweep"):
        run_sweep(tiny_base(), RUN, out, seeds=2, collect=True, log=quiet)
