"""``stnca prune``'s files: the model's test trajectory and training data found, the pruned
model, its training config and ``prune.json`` written."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._files import json_safe, write_text
from ..model import require_plane
from ..serialization import load_model, resolve_model, save_model
from .inputs import parts_trajectory, run_config
from .prune import Pruned, prune

FILES = ("model.eqx", "config.toml", "prune.json")
"""What ``prune_to_folder`` writes into its folder (the config when the model has one)."""


def fine_tune_inputs(model: str | os.PathLike, config, data, observable: int, dims: int):
    """What fine-tuning trains on: ``(trajectories, training settings, augment_noise)``.

    The trajectories are ``data`` (a ``.npy`` file ``(R, M + 1, H, W, C)``, physical units)
    or the run's: its folder's ``train_data.npy``, else rebuilt from its training config
    (``training_data``); for image data the first draw of its augmented copies. The
    settings are the config's ``[training]`` (``None`` without a config: ``prune``'s
    default)."""
    from ..data.io import load_trajectory
    from ..train.dataset import TrainingData, training_data
    from ..train.run_folder import DATA_FILE

    if data is None and config is None:
        raise ValueError(
            "data: give the training trajectories to fine-tune on (the model has no "
            "training config to rebuild them from)"
        )
    if data is not None:
        base = load_trajectory(data, channels=observable, what="data", dims=dims)
    elif (resolve_model(model).parent / DATA_FILE).is_file():
        base = load_trajectory(resolve_model(model).parent / DATA_FILE, what="data", dims=dims)
    else:
        base = training_data(config)
    if config is None:
        return base, None, 0.0
    trajectories = TrainingData(config, base)
    return trajectories.trajectories(1), config.training, trajectories.augment_noise


def prune_to_folder(
    model: str | os.PathLike,
    out,
    *,
    tolerance: float = 0.1,
    truth=None,
    steps_between_frames: int | None = None,
    fine_tune_epochs: int = 0,
    data=None,
    fine_tune_learning_rate: float | None = None,
    log=print,
) -> tuple[Pruned, list]:
    """``stnca prune``: prune the model file (or shipped model's name) ``model`` on its test
    trajectory (``inputs.parts_trajectory``: ``truth``, or a Gray-Scott model's unseen test)
    and write the smaller model, the original's training config (for the horizon and the
    PDE; its ``hidden_channels`` is the original's) and ``prune.json`` into ``out``.

    With ``fine_tune_epochs > 0`` it retrains between rounds on ``data`` or the run's
    training data (``fine_tune_inputs``); see ``prune``. Nothing is written before the
    inputs are checked."""
    from .._validate import count

    count(fine_tune_epochs, "fine_tune_epochs")
    loaded = require_plane(load_model(model), "prune")
    config = run_config(model)
    test = parts_trajectory(loaded, config, truth, steps_between_frames)
    if test is None:
        raise ValueError(
            "truth: give a test trajectory (the model's training config is not Gray-Scott, "
            "so there is no default)"
        )
    y, training, noise = None, None, 0.0
    if fine_tune_epochs:
        y, training, noise = fine_tune_inputs(
            model, config, data, loaded.observable_channels, loaded.dimensions
        )
        log(f"fine-tuning {fine_tune_epochs} epochs a round on {len(y)} trajectories")
    log(f"pruning on {test[2]}")
    result = prune(
        loaded,
        test[0],
        test[1],
        tolerance=tolerance,
        fine_tune_epochs=fine_tune_epochs,
        data=y,
        training=training,
        fine_tune_learning_rate=fine_tune_learning_rate,
        augment_noise=noise,
        log=log,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [save_model(out / FILES[0], result.model)]
    source = resolve_model(model)
    for candidate in (source.parent / FILES[1], source.with_suffix(".toml")):
        if config is not None and candidate.is_file():
            note = (
                f"# the training config of {source.name}, which {FILES[0]} was pruned from "
                "(stnca prune):\n# its model is smaller (prune.json)\n"
            )
            write_text(out / FILES[1], note + candidate.read_text())
            files.append(out / FILES[1])
            break
    report = result.to_json() | {"model": str(model), "test": test[2]}
    if fine_tune_epochs:
        report["data"] = str(data) if data is not None else "the run's training data"
    write_text(out / FILES[2], json.dumps(json_safe(report), indent=2) + "\n")
    return result, [*files, out / FILES[2]]
