"""The end-to-end demo: learn Gray-Scott dynamics on a laptop CPU in a few minutes.

1. simulate training trajectories from four families of initial conditions;
2. train a small NCA with Algorithm 2;
3. test it on an *unseen* high-frequency initial condition, on a larger lattice, for twice
   the training horizon, against the persistence and spatial-mean baselines;
4. write figures, a video and metrics, and summarise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import viz
from ._files import write_text
from .analysis import evaluate
from .analysis.evaluate import write_evaluation
from .data import gray_scott
from .data.initial_conditions import unseen_initial_condition
from .data.io import save_array
from .train import load_config, train

DEMO_CONFIG = Path(__file__).with_name("presets") / "demo.toml"
"""The demo's training configuration (a copy is written to ``DIR/config.toml`` by the run)."""

TEST_SIZE = 64
DEMO_FILES = (
    "model.eqx",
    "final.eqx",
    "checkpoint.eqx",
    "config.toml",
    "metrics.csv",
    "loss.png",
    "train_data.npy",
    "train_data.png",
    "test_truth.npy",
    "test_prediction.npy",
    "evaluation.json",
    "evaluation.png",
    "evaluation.mp4",
    "summary.json",
)
"""Every file the demo writes (and the only ones ``--overwrite`` removes)."""


def unseen_trajectory(steps: int, every: int) -> np.ndarray:
    """The demo's test: the Gray-Scott PDE from the unseen initial condition
    (``stnca.data.initial_conditions.unseen_initial_condition``, ``TEST_SIZE`` x
    ``TEST_SIZE``), frames ``(T, H, W, 2)``."""
    initial = unseen_initial_condition(TEST_SIZE)
    return np.asarray(gray_scott.simulate(initial, steps, every=every))


def _clear(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a folder")
    existing = [name for name in DEMO_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{out} already holds a demo run ({existing[0]}); pass overwrite=True to replace "
            f"it, or another out_dir"
        )
    for name in existing:
        (out / name).unlink()


def run_demo(
    out_dir: str | os.PathLike = "stnca-demo",
    *,
    epochs: int | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the demo and return its summary (also written to ``DIR/summary.json``).

    Args:
        out_dir: output folder.
        epochs: override the number of training epochs (default: ``DEMO_CONFIG``'s).
        overwrite: replace an earlier demo run in ``out_dir``.
        progress: progress bar on/off (default: on a terminal).
        log: where messages go.
    """
    out = Path(out_dir)
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1 for the demo, got {epochs}")
    _clear(out, overwrite)
    config = load_config(DEMO_CONFIG)
    if epochs is not None:
        config = config.replace("training", epochs=epochs)
    result = _train(config, out, progress, log)
    evaluation = _test(result.model, config, out, log)
    summary = _summary(result, evaluation, config, out)
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _train(config, out: Path, progress: bool | None, log: Callable[[str], None]):
    """Steps 1 and 2: the training data, the training, the data's figure."""
    log(
        f"1/4 simulating {config.data.trajectories} Gray-Scott trajectories "
        f"({config.data.size}x{config.data.size}, {config.data.steps} steps) from "
        f"{', '.join(config.data.families)} initial conditions"
    )
    result = train(config, out, progress=progress, log=log)
    t = config.training.steps_between_frames
    viz.trajectory_figure(
        result.data, out / "train_data.png", every=t, title="training data (species B)"
    )
    log(
        f"2/4 trained {result.epochs} epochs: lowest training loss {result.lowest_loss:.4g} "
        f"(untrained {result.untrained['loss']:.4g}); chosen model: epoch {result.best_epoch} "
        f"(free-rollout loss {result.best_loss:.4g}, "
        f"untrained {result.untrained['rollout_loss']:.4g})"
    )
    return result


def _test(model, config, out: Path, log: Callable[[str], None]):
    """Steps 3 and 4: the unseen test at twice the horizon, its figures and video."""
    t, horizon = config.training.steps_between_frames, config.data.steps
    log(
        f"3/4 testing on an unseen high-frequency initial condition ({TEST_SIZE}x{TEST_SIZE}) "
        f"for {2 * horizon} steps, twice the training horizon"
    )
    truth = unseen_trajectory(2 * horizon, t)
    save_array(out / "test_truth.npy", truth)
    evaluation = evaluate(model, truth, t, allow_diverged=True)
    save_array(out / "test_prediction.npy", evaluation.prediction[0])
    log("4/4 writing figures and video")
    write_evaluation(
        evaluation,
        truth,
        out,
        video=out / "evaluation.mp4",
        title="unseen initial condition: PDE vs NCA (species B)",
    )
    return evaluation


def _summary(result, evaluation, config, out: Path) -> dict:
    """``summary.json``: the training, the test at 1x and 2x the horizon, the files."""
    t, horizon = config.training.steps_between_frames, config.data.steps

    def at(step: int) -> dict:
        row = evaluation.at_frame(step // t)
        nca, persistence = row["nca"], row["persistence"]
        return {
            "step": step,
            **{f"{who}_relative_error": row[who]["relative_error"] for who in row},
            **{f"{who}_spectrum_distance": row[who]["spectrum_distance"] for who in row},
            "nca_over_persistence": nca["euclidean"] / persistence["euclidean"],
        }

    return {
        "training": {
            "epochs": result.epochs,
            "chosen_epoch": result.best_epoch,
            "chosen_by": result.selected_by,
            "chosen_rollout_loss": result.best_loss,
            "untrained_rollout_loss": result.untrained["rollout_loss"],
            "lowest_loss": result.lowest_loss,
            "final_loss": result.metrics[-1]["loss"],
            "untrained_loss": result.untrained["loss"],
            "seconds": result.metrics[-1]["elapsed_seconds"],
        },
        "test_at_training_horizon": at(horizon),
        "test_at_twice_the_horizon": at(2 * horizon),
        "files": {
            "model": str(out / "model.eqx"),
            "figure": str(out / "evaluation.png"),
            "video": str(out / "evaluation.mp4"),
            "training_data_figure": str(out / "train_data.png"),
            "loss_curve": str(out / "loss.png"),
            "metrics": str(out / "evaluation.json"),
        },
    }
