"""Sweeps (`stnca sweep`, `stnca reproduce`): the grid, resuming, sharding, the results."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from stnca.analysis.reproduce import FIGURES, SCALES, load_plan, sweep_file
from stnca.analysis.sweep import expand, parse_vary, read_results, run_sweep, select_shard
from stnca.cli import app
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
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "whole"
    summary = run_sweep(tiny_base(), VARY, out, seeds=2, log=quiet, progress=False)
    return out, summary


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
    assert len(rows) == 4 * 2  # cells x seeds
    assert [(r["t"], r["model.activation"], r["seed"]) for r in rows[:3]] == [
        (4.0, "relu", 0.0),
        (4.0, "relu", 1.0),
        (4.0, "tanh", 0.0),
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
        assert (out / "cells" / "t=8_model.activation=tanh" / f"seed{k}" / "model.eqx").is_file()


def test_seeds_differ_and_match_separate_trainings(finished):
    out, _ = finished
    rows = read_results(out / "results.csv")
    first = [r for r in rows if r["t"] == 4.0 and r["model.activation"] == "relu"]
    assert first[0]["min_training_loss"] != first[1]["min_training_loss"]


def test_a_killed_sweep_resumes_to_the_same_results(finished, tmp_path, monkeypatch):
    import stnca.train.loop as loop

    out = tmp_path / "killed"
    original = loop.write_metrics

    def dying(path, rows):
        # the second cell, once its epoch-1 checkpoint is saved: a kill mid-cell
        if "t=4_model.activation=tanh" in str(path) and rows[-1]["epoch"] >= 2:
            raise KeyboardInterrupt
        return original(path, rows)

    monkeypatch.setattr(loop, "write_metrics", dying)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tiny_base(), VARY, out, seeds=2, log=quiet, progress=False)
    monkeypatch.setattr(loop, "write_metrics", original)
    assert (out / "cells" / "t=4_model.activation=relu" / "result.json").is_file()
    assert not (out / "cells" / "t=4_model.activation=tanh" / "result.json").exists()
    lines = []
    run_sweep(tiny_base(), VARY, out, seeds=2, log=lines.append, progress=False)
    assert any("done earlier, skipped" in line for line in lines)
    assert without_wall(out / "results.csv") == without_wall(finished[0] / "results.csv")


def test_two_shards_and_collect_equal_one_run(finished, tmp_path):
    out = tmp_path / "sharded"
    first = run_sweep(tiny_base(), VARY, out, seeds=2, shard="0/2", log=quiet, progress=False)
    assert len(first["missing"]) == 2 and not (out / "results.csv").exists()
    lines = []
    missing = run_sweep(tiny_base(), VARY, out, seeds=2, collect=True, log=lines.append)
    assert missing["missing"] == ["t=4_model.activation=tanh", "t=8_model.activation=tanh"]
    assert "t=4_model.activation=tanh" in lines[-1]  # names the missing cells
    run_sweep(tiny_base(), VARY, out, seeds=2, shard="1/2", log=quiet, progress=False)
    run_sweep(tiny_base(), VARY, out, seeds=2, collect=True, log=quiet)
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
