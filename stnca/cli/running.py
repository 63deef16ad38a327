"""``stnca rollout`` and ``stnca evaluate``: run a trained model, and score it against a truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    UserError,
    app,
    user_errors,
)
from ._common import (
    CONDITION_HELP,
    OverwriteOption,
    _check_output,
    _check_outputs_in,
    _condition_values,
    _key,
    _load_model,
    _step_progress,
)


@app.command("rollout")
@user_errors
def rollout_command(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper).",
        ),
    ],
    init: Annotated[
        Path, typer.Option("--init", help="Observable initial state(s): (H, W, C) or (R, H, W, C).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output trajectory (.npy).")],
    steps: Annotated[int, typer.Option("--steps", help="Number of NCA steps N.")] = 64,
    every: Annotated[int, typer.Option("--every", help="Keep every K-th frame.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed for stochastic updates.")] = 0,
    video: Annotated[
        Path | None, typer.Option("--video", help="Also write a video (.mp4 or .gif).")
    ] = None,
    condition: Annotated[list[str] | None, typer.Option("--condition", help=CONDITION_HELP)] = None,
    overwrite: OverwriteOption = False,
):
    """Run a trained NCA from an initial state; write T = N/K + 1 observable frames.

    A conditioned model runs at the parameter values given with --condition, including
    values it was never trained on."""
    import numpy as np

    from .. import viz
    from .._trajectory import check_steps
    from ..analysis.rollout_file import rollout_to_file
    from ..data.io import load_states

    inputs = {"--init": init, "MODEL": model_path}
    _check_output(out, (".npy",), "--out", inputs, overwrite)
    if video is not None:
        _check_output(video, (".mp4", ".gif"), "--video", inputs, overwrite)
        if video.resolve() == out.resolve():
            raise UserError("--video and --out must be different files")
    check_steps(steps, every)
    key = _key(seed)
    model = _load_model(model_path)
    if video is not None and model.dimensions == 1:
        raise UserError("--video: a 1-D rollout has no video (write the .npy and plot it)")
    values = _condition_values(condition)
    initial = load_states(
        init, channels=model.observable_channels, what="--init", dims=model.dimensions
    )
    initial = model.with_conditions(initial, values)  # + a conditioned model's channels
    frames = rollout_to_file(
        model,
        initial,
        out,
        steps,
        every=every,
        key=key,
        log=typer.echo,
        progress=_step_progress(steps),
    )
    typer.echo(f"wrote {out} with shape {frames.shape}")
    if video is not None:
        from ..viz_volumes import as_pictures

        shown = frames if frames.ndim == model.dimensions + 2 else frames[0]
        shown = as_pictures(shown, model.dimensions)
        low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
        rgb = viz.render(np.nan_to_num(shown), vmin=low, vmax=high)
        viz.write_video(rgb, video, labels=[f"n={i * every}" for i in range(len(rgb))])
        typer.echo(f"wrote {video}")


@app.command("evaluate")
@user_errors
def evaluate_command(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper).",
        ),
    ],
    truth: Annotated[
        Path, typer.Option("--truth", help="True trajectory (T, H, W, C) or (R, T, H, W, C).")
    ],
    steps_between_frames: Annotated[
        int, typer.Option("--steps-between-frames", help="NCA steps t per frame interval.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for evaluation.json/.png (default: the model's)."),
    ] = None,
    video: Annotated[
        Path | None, typer.Option("--video", help="Truth | NCA | difference video (.mp4/.gif).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for stochastic updates.")] = 0,
    condition: Annotated[list[str] | None, typer.Option("--condition", help=CONDITION_HELP)] = None,
    overwrite: OverwriteOption = False,
):
    """Roll the model out from the truth's frame 0 and print per-frame metrics as JSON.

    A conditioned model takes its parameters from --condition, or from the truth's trailing
    channels (a run's train_data.npy carries them)."""

    from .._validate import count
    from ..analysis import evaluate
    from ..analysis.evaluate import write_evaluation
    from ..data.io import load_trajectory

    count(steps_between_frames, "--steps-between-frames", 1)
    inputs = {"--truth": truth, "MODEL": model_path}
    if video is not None:
        _check_output(video, (".mp4", ".gif"), "--video", inputs, overwrite)
    folder = model_path.parent if out is None else out
    _check_outputs_in(folder, ("evaluation.json", "evaluation.png"), "--out", inputs, overwrite)
    key = _key(seed)
    model = _load_model(model_path)
    values = _condition_values(condition)
    channels = {model.observable_channels, model.data_channels}
    data = load_trajectory(
        truth,
        channels=None if len(channels) > 1 else model.observable_channels,
        what="--truth",
        dims=model.dimensions,
    )
    steps = (data.shape[1] - 1) * steps_between_frames
    evaluation = evaluate(
        model,
        data,
        steps_between_frames,
        key=key,
        progress=_step_progress(steps),
        conditions=values,
    )
    observed = data[0][..., : model.observable_channels]
    report = write_evaluation(evaluation, observed, folder, video=video)
    typer.echo(json.dumps(report, indent=2))
