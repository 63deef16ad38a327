"""The ``stnca`` command line: simulate, train, rollout, evaluate, demo.

Every command validates its input before it computes or writes anything. Bad input gives
one line on standard error and exit code 2; files are written atomically, so a failed
command leaves no partial output and never clobbers an earlier good file.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from .data.gray_scott import GrayScottParams

app = typer.Typer(
    name="stnca",
    help="Learn the local rule of a Neural Cellular Automaton from PDE or image time series.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(help="Simulate PDEs to make training data.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
analyse_app = typer.Typer(
    help="Analyse a trained model: local perturbations, adversarial initial conditions, "
    "symmetry (the paper's section 3.2.2).",
    no_args_is_help=True,
)
app.add_typer(analyse_app, name="analyse")
export_app = typer.Typer(
    help="Export a trained model (a web page to play with).", no_args_is_help=True
)
app.add_typer(export_app, name="export")


class UserError(ValueError):
    """A problem with the user's input, reported in one line with exit code 2."""


RERUN_TO_RESUME = "interrupted: run the same command again to continue where it stopped"
"""What an interrupted command that trains many models (sweep, reproduce, the symmetry
experiment) says: it has no --resume; a rerun reuses finished runs and resumes the others."""


def _fail(message: str, code: int = 2):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(command):
    """Turn ``ValueError`` (bad arguments, bad files) into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ValueError as error:
            _fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
        except OSError as error:  # unwritable or unreadable paths
            where = f": {error.filename}" if error.filename else ""
            _fail(f"{error.strerror or error}{where}")

    return wrapper


def _version(value: bool):
    if value:
        from importlib.metadata import version

        typer.echo(f"stnca {version('stnca')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
):
    """Learn the local update rule of a Neural Cellular Automaton from PDE or image time series."""


def _check_folder(path: Path, option: str) -> Path:
    """Fail early if ``path`` cannot be (or become) a writable folder: it or an ancestor is a
    file, or the nearest existing one is not writable."""
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise UserError(f"{option} {path}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise UserError(f"{option} {path}: cannot write in {folder} (permission denied)")
            break
    return path


def _check_output(
    path: Path,
    suffixes: tuple[str, ...],
    option: str,
    inputs: Mapping[str, Path | None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Fail early if ``path`` cannot be written: wrong suffix, a folder, an unwritable place,
    one of the command's ``inputs`` (``{option: path}``), which it would overwrite, or a
    file that exists already and ``overwrite`` (the command's --overwrite) was not given:
    the one output policy of every command."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{option} must end in {' or '.join(suffixes)}, got {path.name!r}")
    if path.exists() and path.is_dir():
        raise UserError(f"{option} {path} is a folder")
    _check_folder(path.parent, option)
    _check_not_input(path, option, inputs or {})
    if path.exists() and not overwrite:
        raise UserError(f"{option}: {path} already exists; pass --overwrite to replace it")
    return path


def _check_outputs_in(
    folder: Path, names, option: str, inputs=None, overwrite: bool = False
) -> None:
    """``_check_output`` for each of a command's files ``names`` in ``folder``."""
    _check_folder(folder, option)
    for name in names:
        _check_output(folder / name, (Path(name).suffix,), option, inputs, overwrite)


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace output files that already exist.")
]


def _check_not_input(path: Path, option: str, inputs: Mapping[str, Path | None]) -> None:
    """Refuse an output that is one of the inputs (it would be destroyed)."""
    for name, source in inputs.items():
        if source is not None and path.exists() and Path(source).exists():
            if os.path.samefile(path, source):
                raise UserError(
                    f"{option} {path} is the {name} file: refusing to overwrite an input"
                )


def _key(seed: int):
    """A PRNG key from a user's --seed (0 <= seed < 2**32)."""
    import jax

    from ._validate import seed as check_seed

    return jax.random.key(check_seed(seed, "--seed"))


STREAM_ABOVE = 2**27
"""Simulations and rollouts with more float values than this (512 MiB of frames) are written
frame by frame, with progress, instead of being held in memory."""
LONG_ROLLOUT = 100_000
"""Rollouts of more NCA steps than this are streamed too, so that they report progress."""
LONG_SIMULATION = 2**31
"""Simulations of more cell-updates than this (about half a minute on a laptop core) are
streamed too, so that they report progress."""


def _step_progress(total: int):
    """A ``progress(steps_done)`` callback printing a line at most every 10 s."""
    import time

    start = last = time.perf_counter()

    def report(done: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last > 10 or done == total:
            last = now
            eta = (total - done) * (now - start) / max(done, 1)
            typer.echo(f"  step {done}/{total}, {now - start:.0f} s, eta {eta:.0f} s", err=True)

    return report


def _write_streamed(out: Path, shape: tuple[int, ...], frames, on_frame=None):
    """Write ``frames`` (an iterator over the frame axis, ``shape[-4]`` of them) to ``out`` as
    they come: a .npy memory map on a temporary file, renamed at the end (nothing is left if
    ``on_frame(frame)`` raises). Returns the file, memory-mapped."""
    import numpy as np

    from ._files import atomic_path

    with atomic_path(out) as temporary:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32, shape=shape)
        for index, frame in enumerate(frames):
            frame = np.asarray(frame)
            if on_frame is not None:
                on_frame(frame)
            array[..., index, :, :, :] = frame
        array.flush()
        del array
    return np.load(out, mmap_mode="r")


@simulate_app.command("gray-scott")
@user_errors
def simulate_gray_scott(
    out: Annotated[Path, typer.Option("--out", help="Output trajectory file (.npy).")],
    size: Annotated[int, typer.Option("--size", help="Lattice size S (S x S cells).")] = 64,
    steps: Annotated[int, typer.Option("--steps", help="Number of Euler steps N.")] = 1024,
    every: Annotated[int, typer.Option("--every", help="Keep every K-th frame.")] = 32,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Number of trajectories R (adds a leading axis).")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option("--init", help="Initial condition: smooth, high_frequency, noise, uniform."),
    ] = None,
    init_file: Annotated[
        Path | None, typer.Option("--init-file", help="(H, W, 2) or (R, H, W, 2) .npy of (A, B).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the initial conditions.")] = 0,
    dt: Annotated[float, typer.Option("--dt", help="Euler time step.")] = GrayScottParams.dt,
    diffusion_a: Annotated[
        float, typer.Option("--DA", help="Diffusion constant of A.")
    ] = GrayScottParams.diffusion_a,
    diffusion_b: Annotated[
        float, typer.Option("--DB", help="Diffusion constant of B.")
    ] = GrayScottParams.diffusion_b,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Feed rate alpha.")
    ] = GrayScottParams.alpha,
    gamma: Annotated[
        float, typer.Option("--gamma", help="Decay rate gamma (B dies at gamma + alpha).")
    ] = GrayScottParams.gamma,
    png: Annotated[
        bool, typer.Option("--png", help="Also write a PNG of frames next to the .npy.")
    ] = False,
    overwrite: OverwriteOption = False,
):
    """Simulate the Gray-Scott equations; write T = N/K + 1 frames as float32 (T, S, S, 2)."""
    import numpy as np

    from . import viz
    from ._resources import check_disk, check_memory
    from .data import gray_scott, io
    from .data.initial_conditions import INITIAL_CONDITIONS, initial_condition

    _check_output(out, (".npy",), "--out", {"--init-file": init_file}, overwrite)
    if png:
        _check_output(out.with_suffix(".png"), (".png",), "--png (next to --out)", None, overwrite)
    if init is not None and init_file is not None:
        raise UserError("give either --init or --init-file, not both")
    params = gray_scott.GrayScottParams(diffusion_a, diffusion_b, alpha, gamma, dt)
    gray_scott._trajectory.check_steps(steps, every)
    if init_file is not None:
        if batch is not None:
            raise UserError("--batch cannot be used with --init-file (its shape sets R)")
        initial = io.load_states(init_file, channels=2, what="--init-file")
    else:
        init = "smooth" if init is None else init
        if init not in INITIAL_CONDITIONS:
            raise UserError(
                f"unknown --init {init!r}; choose from {', '.join(sorted(INITIAL_CONDITIONS))}"
            )
        if size < 3:
            raise UserError(f"--size must be at least 3, got {size}")
        if batch is not None and batch < 1:
            raise UserError(f"--batch must be at least 1, got {batch}")
    frames = steps // every + 1
    state_floats = (batch or 1) * size * size * 2 if init_file is None else initial.size
    cell_updates = steps * state_floats // 2
    stream = state_floats * frames > STREAM_ABOVE or cell_updates > LONG_SIMULATION
    # streamed, the frames go to disk one by one and only a few states are held
    held = 4 if stream else frames + 2
    check_memory(
        state_floats * held,
        f"a {size}x{size} simulation" if init_file is None else "this simulation",
    )
    check_disk(state_floats * frames, out.parent, f"a simulation of {frames} frames")
    if init_file is None:
        initial = np.asarray(initial_condition(init or "smooth", size, key=_key(seed), batch=batch))
    diverged = UserError(
        "the simulation diverged (non-finite values); lower --dt or the diffusion constants"
    )
    if stream:

        def finite(frame):
            if not np.all(np.isfinite(frame)):
                raise diverged

        shape = (*initial.shape[:-3], frames, *initial.shape[-3:])
        typer.echo(
            f"simulating {frames} frames of {initial.shape[-3]}x{initial.shape[-2]} "
            f"({cell_updates / 1e9:.2f} G cell-updates; {4 * state_floats * 4 / 2**20:.0f} MiB "
            f"of memory, {4 * state_floats * frames / 2**20:.0f} MiB on disk), writing each "
            "frame as it comes"
        )
        stream_frames = gray_scott.frames(
            initial, steps, every=every, params=params, progress=_step_progress(steps)
        )
        trajectory = _write_streamed(out, shape, stream_frames, finite)
    else:
        trajectory = np.asarray(gray_scott.simulate(initial, steps, every=every, params=params))
        if not np.all(np.isfinite(trajectory)):
            raise diverged
        io.save_array(out, trajectory)
    typer.echo(f"wrote {out} with shape {trajectory.shape}")
    if png:
        picture = viz.trajectory_figure(
            trajectory, out.with_suffix(".png"), every=every, title="Gray-Scott, species B"
        )
        typer.echo(f"wrote {picture}")


def _load_model(path: Path):
    from .serialization import load_model

    return load_model(path)


CONDITION_HELP = (
    "A conditioned model's parameter: NAME=VALUE, or NAME=FIELD.npy for an (H, W) field "
    "varying in space; repeat for each condition (e.g. --condition alpha=0.061)."
)


def _condition_values(flags: list[str] | None) -> dict:
    """``--condition NAME=VALUE|FIELD.npy`` flags -> values by name (each name once)."""
    from .conditions import parse_condition

    values: dict = {}
    for text in flags or []:
        name, value = parse_condition(text)
        if name in values:
            raise UserError(f"--condition {name} is given twice")
        values[name] = value
    return values


def _unconditioned(model, command: str):
    """Refuse a conditioned model in a command that cannot give it its conditions yet."""
    if model.conditions is not None:
        raise UserError(
            f"the model is conditioned on {', '.join(model.condition_names)}; `stnca {command}` "
            f"does not take conditions yet (use rollout or evaluate with --condition)"
        )
    return model


@app.command("train")
@user_errors
def train_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="CONFIG.toml | IMAGES...",
            help="A TOML config (see configs/), or with --images the image files to morph "
            "through (or emoji:NAME for a packaged emoji).",
        ),
    ],
    images: Annotated[
        bool,
        typer.Option("--images", help="Morph through the given images with the paper's defaults."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: runs/NAME).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Total number of epochs (overrides config).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run saved in --out.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an earlier run's files in --out (start afresh)."),
    ] = False,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Write TensorBoard event files to OUT/tensorboard/ (sets training.tensorboard; "
            'needs pip install "stnca[tensorboard]").',
        ),
    ] = False,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Join a run of several processes first (jax.distributed.initialize(); "
            "SLURM, Open MPI and JAX_COORDINATOR_ADDRESS are detected; also "
            "STNCA_DISTRIBUTED=1): mini-batches split over every process's devices, only "
            "process 0 writes --out. See docs/concepts/scale.md.",
        ),
    ] = False,
):
    """Train an NCA with Algorithm 2; writes model.eqx, metrics.csv, loss.png, config.toml.

    For image sequences it also writes snapshots.png, morph.json and the videos
    trajectory.mp4 and hidden.mp4.
    """
    from .train import distributed as multiprocess

    if multiprocess.requested(distributed):  # before anything uses JAX's devices
        multiprocess.initialise(log=typer.echo)
    from .train import TrainingDiverged, load_config, train
    from .train.config import ImageData

    if images:
        settings = _image_config([str(p) for p in inputs])
        name = f"{Path(str(inputs[0])).stem.split(':')[-1]}-morph"
    else:
        if len(inputs) != 1:
            raise UserError("give one CONFIG.toml (or --images with the image files)")
        settings = load_config(inputs[0])
        name = inputs[0].stem
    if epochs is not None and epochs < 0:
        raise UserError(f"--epochs must be >= 0, got {epochs}")
    if tensorboard:
        settings = settings.replace("training", tensorboard=True)
    out = _check_folder(Path("runs") / name if out is None else out, "--out")
    try:
        result = train(settings, out, epochs=epochs, resume=resume, overwrite=overwrite)
    except TrainingDiverged as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail("interrupted: the same command with --resume continues from the checkpoint", 130)
    if result.epochs == 0:  # nothing trained: no lowest loss, the untrained model is kept
        typer.echo(
            f"trained 0 epochs: model.eqx is the untrained model (training loss "
            f"{result.untrained['loss']:.5g}, free-rollout loss "
            f"{result.untrained['rollout_loss']:.5g}); model: {out / 'model.eqx'}"
        )
    else:
        typer.echo(
            f"trained {result.epochs} epochs: lowest training loss {result.lowest_loss:.5g} "
            f"(untrained {result.untrained['loss']:.5g}); model.eqx is epoch {result.best_epoch} "
            f"(chosen by {result.selected_by}: {result.best_loss:.5g}); model: {out / 'model.eqx'}"
        )
    if isinstance(settings.data, ImageData) and multiprocess.is_primary():
        _report_morph(result, out)  # files: process 0 only


def _image_config(paths: list[str]):
    """The paper's image-morphing defaults (presets/images.toml) with the user's images."""
    import tomllib

    from .train import config_from_dict

    if len(paths) < 2:
        raise UserError(
            f"--images needs at least two images to morph through (the first is where the "
            f"morph starts), got {len(paths)}"
        )
    preset = Path(__file__).with_name("presets") / "images.toml"
    tables = tomllib.loads(preset.read_text(encoding="utf-8"))
    tables["data"]["images"] = paths
    return config_from_dict(tables, base_dir=Path.cwd())


def _report_morph(result, out: Path) -> None:
    from .analysis.morphing import morph_report

    t = result.config.training.steps_between_frames
    report = morph_report(result.model, result.data[0], t, out)
    for row in report["images"] + report["extrapolation"]:
        typer.echo(
            f"  n = {row['step']:>4}: image {row['target']}  "
            f"relative error {row['relative_error']:.3f}"
        )
    typer.echo(f"wrote {out / 'snapshots.png'}, {out / 'trajectory.mp4'}, {out / 'hidden.mp4'}")


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

    from . import viz
    from ._resources import check_disk, check_memory
    from ._trajectory import check_steps, require_finite
    from .analysis import predict
    from .analysis.evaluate import predict_frames
    from .data.io import load_states, save_array

    inputs = {"--init": init, "MODEL": model_path}
    _check_output(out, (".npy",), "--out", inputs, overwrite)
    if video is not None:
        _check_output(video, (".mp4", ".gif"), "--video", inputs, overwrite)
        if video.resolve() == out.resolve():
            raise UserError("--video and --out must be different files")
    check_steps(steps, every)
    key = _key(seed)
    model = _load_model(model_path)
    values = _condition_values(condition)
    initial = load_states(init, channels=model.observable_channels, what="--init")
    initial = model.with_conditions(initial, values)  # + a conditioned model's channels
    count = steps // every + 1
    state_floats = initial.size // model.data_channels * model.channels
    # streamed, the frames go to disk one by one and only a few states are held
    stream = state_floats * count > STREAM_ABOVE or steps > LONG_ROLLOUT
    check_memory(state_floats * (4 if stream else count + 1), f"a rollout of {count} frames")
    frame_floats = initial.size // model.data_channels * model.observable_channels
    check_disk(frame_floats * count, out.parent, f"a rollout of {count} frames")
    if stream:
        shape = (*initial.shape[:-3], count, *initial.shape[-3:-1], model.observable_channels)
        typer.echo(
            f"rolling out {count} frames of {initial.shape[-3]}x{initial.shape[-2]} "
            f"({steps} steps), writing each frame as it comes"
        )
        stream_frames = predict_frames(
            model, initial, steps, every=every, key=key, progress=_step_progress(steps)
        )
        written = iter(range(count))
        frames = _write_streamed(
            out,
            shape,
            stream_frames,
            on_frame=lambda frame: require_finite(
                frame[..., None, :, :, :], every, start=next(written)
            ),
        )
    else:
        frames = predict(
            model, initial if initial.ndim == 4 else initial[None], steps, every=every, key=key
        )
        frames = frames if initial.ndim == 4 else frames[0]
        require_finite(frames, every)
        save_array(out, frames)
    typer.echo(f"wrote {out} with shape {frames.shape}")
    if video is not None:
        shown = frames if frames.ndim == 4 else frames[0]
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
    import json

    from ._validate import count
    from .analysis import evaluate
    from .analysis.evaluate import write_evaluation
    from .data.io import load_trajectory

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
        truth, channels=None if len(channels) > 1 else model.observable_channels, what="--truth"
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


@app.command("benchmark")
@user_errors
def benchmark_command(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: benchmark-MODEL here)."),
    ] = None,
    suite: Annotated[
        str, typer.Option("--suite", help="default (3 draws, 64x64 and 256x256) or quick.")
    ] = "default",
    families: Annotated[
        str | None, typer.Option("--families", help="Comma-separated families instead.")
    ] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="Draws per family.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Lattice side (>= 8).")] = None,
    large_size: Annotated[
        int | None, typer.Option("--large-size", help="The large lattice's side (0: none).")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="True trajectory .npy, for a model with no PDE behind it."),
    ] = None,
    steps_between_frames: Annotated[
        int | None,
        typer.Option("--steps-between-frames", help="NCA steps per frame of --truth."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initial conditions.")] = 0,
    peers: Annotated[
        str,
        typer.Option("--peers", help="Peer emulators to train and score: convnet,resnet,unet,fno."),
    ] = "",
    peer_seconds: Annotated[
        float | None,
        typer.Option("--peer-seconds", help="Training budget per peer (default: the model's)."),
    ] = None,
    overwrite: OverwriteOption = False,
):
    """Generalisation: run the model from many families of initial conditions to 1x, 2x and
    4x its training horizon against the PDE (or --truth), beside persistence, the spatial
    mean and the PDE with its feed rate 1% off; write CSV, Markdown, JSON and figures."""
    from .experiments.benchmark import benchmark_model

    out = Path(f"benchmark-{model_path.stem}") if out is None else out
    names = ("benchmark.csv", "benchmark.md", "benchmark.json")
    _check_outputs_in(out, names, "--out", {"--truth": truth}, overwrite)

    def done(case) -> None:
        typer.echo(f"  {case.family} {case.size[0]}x{case.size[1]} {case.condition}".rstrip())

    benchmark, paths = benchmark_model(
        model_path,
        out,
        suite=suite,
        families=families,
        draws=draws,
        size=size,
        large_size=large_size,
        truth=truth,
        steps_between_frames=steps_between_frames,
        seed=seed,
        peers=peers,
        peer_seconds=peer_seconds,
        progress=done,
        log=typer.echo,
    )
    for horizon in benchmark.horizons:
        means = ", ".join(
            f"{name} {benchmark.mean_vrmse(name, horizon):.3f}" for name in benchmark.predictors
        )
        typer.echo(f"mean VRMSE at {horizon}x the horizon: {means}")
    typer.echo(f"wrote {paths['markdown']}, {paths['csv']}, {paths['json']}, {paths['figures']}/")


@app.command("demo")
@user_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("stnca-demo"),
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override the number of training epochs.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier demo in --out.")
    ] = False,
):
    """Learn Gray-Scott dynamics end to end in a few CPU minutes; write figures, video, metrics."""
    import time

    from .demo import run_demo

    start = time.perf_counter()
    summary = run_demo(out, epochs=epochs, overwrite=overwrite, log=typer.echo)
    minutes = (time.perf_counter() - start) / 60
    horizon = summary["test_at_training_horizon"]
    twice = summary["test_at_twice_the_horizon"]
    typer.echo("")
    typer.echo(f"done in {minutes:.1f} min. Relative error on the unseen initial condition:")
    typer.echo("  step    NCA    persistence  spatial-mean   NCA/persistence")
    for row in (horizon, twice):
        typer.echo(
            f"  {row['step']:>4}  {row['nca_relative_error']:6.3f}  "
            f"{row['persistence_relative_error']:11.3f}  {row['spatial_mean_relative_error']:12.3f}"
            f"   {row['nca_over_persistence']:15.3f}"
        )
    typer.echo("files:")
    for name, path in summary["files"].items():
        typer.echo(f"  {name:22s} {path}")


ModelArgument = Annotated[
    Path,
    typer.Argument(
        metavar="MODEL",
        help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper).",
    ),
]
InitOption = Annotated[
    str,
    typer.Option(
        "--init",
        help="Initial condition: a .npy state (H, W, C) in physical units, an image file or "
        "emoji:NAME.",
    ),
]
AnalysisOut = Annotated[Path, typer.Option("--out", help="Output folder for the figure and JSON.")]
StepsOption = Annotated[
    int | None,
    typer.Option("--steps", help="NCA steps n (default: the training horizon of the model's run)."),
]
ImageSizeOption = Annotated[
    int | None,
    typer.Option("--image-size", help="Resize an image --init to this (default: as in training)."),
]
PaddingOption = Annotated[
    int | None,
    typer.Option("--padding", help="Empty cells around an image --init (default: as in training)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The model's training config (default: config.toml beside the model file).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for stochastic updates and noise.")]


ANALYSIS_FILES = {
    "perturb": ("perturb.png", "perturb.json", "perturb_pde.png"),
    "adversarial": ("adversarial.png", "adversarial.json"),
    "symmetry": ("symmetry.png", "symmetry.json", "symmetry_finals.npz"),
}
"""The files each analysis writes in its --out folder."""


def _analysis_inputs(
    model_path, init, config_path, image_size, padding, steps, out, analysis, overwrite
):
    """Model, initial state (physical units), training config and steps for ``analyse``."""
    from ._validate import count
    from .analysis.inputs import load_initial, run_config
    from .train import load_config

    _check_outputs_in(out, ANALYSIS_FILES[analysis], "--out", None, overwrite)
    model = _unconditioned(_load_model(model_path), "analyse")
    config = load_config(config_path) if config_path is not None else run_config(model_path)
    initial = load_initial(init, model, config=config, image_size=image_size, padding=padding)
    if steps is None:
        steps = None if config is None else config.horizon()
        if steps is None:
            raise UserError("give --steps (no training config found to take the horizon from)")
    count(steps, "--steps", 1)
    return model, initial, config, steps


def _gray_scott_pde(config, steps: int):
    """``(step, pde_steps, name)`` for the Gray-Scott data a model came from, else ``None``."""
    from .data import gray_scott

    if config is None or config.data.source != "gray_scott":
        return None
    data, t = config.data, config.training.steps_between_frames
    every = data.every or t
    if (steps * every) % t:
        typer.echo(
            f"note: {steps} NCA steps are not a whole number of PDE steps ({every} per {t}); "
            "the PDE is not perturbed",
            err=True,
        )
        return None
    step = functools.partial(gray_scott.step, params=data.params())
    return (step, steps * every // t, "Gray-Scott")


@analyse_app.command("perturb")
@user_errors
def perturb_command(
    model_path: ModelArgument,
    init: InitOption,
    out: AnalysisOut,
    steps: StepsOption = None,
    size: Annotated[int, typer.Option("--size", help="Side r of the perturbed patch.")] = 1,
    kind: Annotated[
        str, typer.Option("--kind", help="invert (x -> 1 - x), zero or noise.")
    ] = "invert",
    stride: Annotated[int, typer.Option("--stride", help="Distance between perturbations.")] = 1,
    threshold: Annotated[
        float, typer.Option("--threshold", help="A cell changes if a channel moves by more.")
    ] = 0.1,
    chunk: Annotated[int, typer.Option("--chunk", help="Perturbations run at once.")] = 64,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Local perturbations (Fig 10): perturb each r x r patch, count changed cells at n."""
    from ._validate import count
    from .analysis.perturbation import check_settings
    from .analysis.report import perturb_report

    model, initial, config, steps = _analysis_inputs(
        model_path, init, config_path, image_size, padding, steps, out, "perturb", overwrite
    )
    height, width = initial.shape[:2]
    check_settings(height, width, size, stride, threshold, kind)
    count(chunk, "--chunk", 1)
    report = perturb_report(
        model,
        initial,
        out,
        steps=steps,
        size=size,
        kind=kind,
        stride=stride,
        threshold=threshold,
        key=_key(seed),
        pde=_gray_scott_pde(config, steps),
        chunk=chunk,
    )
    for who in ("nca", "pde"):
        if who in report:
            row = report[who]
            typer.echo(
                f"{who.upper():>4}: {row['positions']} perturbations, changed cells at n = "
                f"{steps}: mean {row['mean_changed_cells']:.1f}, max {row['max_changed_cells']} "
                f"(patch {row['patch_cells']} cells)"
            )
    written = ["perturb.png", *(["perturb_pde.png"] if "pde" in report else []), "perturb.json"]
    typer.echo("wrote " + ", ".join(str(out / name) for name in written))


@analyse_app.command("adversarial")
@user_errors
def adversarial_command(
    model_path: ModelArgument,
    init: InitOption,
    out: AnalysisOut,
    steps: StepsOption = None,
    mode: Annotated[str, typer.Option("--mode", help="destroy, preserve or both.")] = "both",
    iterations: Annotated[int, typer.Option("--iterations", help="Optimiser steps K.")] = 200,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Largest norm of the perturbation.")
    ] = None,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", help="Adam step size (data units).")
    ] = 0.01,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Adversarial initial conditions (Fig 11): optimise kappa^n, beside a random control."""
    from ._resources import MAX_STEPS
    from ._validate import count, real
    from .analysis.adversarial import MODES
    from .analysis.report import adversarial_report

    if mode not in (*MODES, "both"):
        raise UserError(f"--mode must be destroy, preserve or both, got {mode!r}")
    count(iterations, "--iterations", 1, MAX_STEPS)
    if budget is not None and real(budget, "--budget", 0.0) == 0:
        raise UserError("--budget must be > 0")
    if real(learning_rate, "--learning-rate", 0.0) == 0:
        raise UserError("--learning-rate must be > 0")
    model, initial, _, steps = _analysis_inputs(
        model_path, init, config_path, image_size, padding, steps, out, "adversarial", overwrite
    )
    report = adversarial_report(
        model,
        initial,
        out,
        steps=steps,
        modes=MODES if mode == "both" else (mode,),
        iterations=iterations,
        learning_rate=learning_rate,
        budget=budget,
        key=_key(seed),
    )
    typer.echo("mode       who        ||x~||   change at n   kappa   change at 2n")
    for name, numbers in report["modes"].items():
        for who in ("adversarial", "random_control"):
            row = numbers[who]
            typer.echo(
                f"{name:9s}  {who.split('_')[-1]:9s} {row['perturbation_norm']:7.3f}  "
                f"{row['final_change']:11.3f}  {row['kappa']:7.3f}  "
                f"{row['final_change_at_twice_n']:11.3f}"
            )
    typer.echo(f"wrote {out / 'adversarial.png'}, {out / 'adversarial.json'}")


@analyse_app.command("symmetry")
@user_errors
def symmetry_command(
    model_path: ModelArgument,
    init: InitOption,
    out: AnalysisOut,
    steps: StepsOption = None,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Symmetry (Fig 12): run from rotated / flipped --init, compare with the rotated run."""
    from .analysis.report import symmetry_report

    model, initial, _, steps = _analysis_inputs(
        model_path, init, config_path, image_size, padding, steps, out, "symmetry", overwrite
    )
    if initial.shape[0] != initial.shape[1]:
        raise UserError(
            f"symmetry needs a square lattice for rotations, got {initial.shape[0]}x"
            f"{initial.shape[1]}"
        )
    report = symmetry_report(model, initial, out, steps=steps, key=_key(seed))
    for name, error in report["relative_error"].items():
        typer.echo(f"  {name:16s} relative error {error:.4f}")
    typer.echo(f"  stochastic noise floor {report['stochastic_noise_floor']:.4f}")
    typer.echo(f"wrote {out / 'symmetry.png'}, {out / 'symmetry.json'}")


@analyse_app.command("symmetry-experiment")
@user_errors
def symmetry_experiment_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the four runs and the table.")],
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The image-morphing config the four variants share (default: the clone's "
            "configs/symmetry_cpu.toml).",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override the number of training epochs.")
    ] = None,
    steps: StepsOption = None,
    seed: SeedOption = 0,
):
    """Fig 12's 2 x 2: asymmetric vs symmetric kernels, normal vs rotation-augmented data.

    Trains the four (a finished run is reused, an interrupted one resumed), tests each on
    rotated and flipped inputs; writes symmetry_experiment.md/.json/.png in --out.
    """
    from .experiments.symmetry_experiment import default_config, symmetry_experiment
    from .train import TrainingDiverged, load_config

    if epochs is not None and epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    _key(seed)
    _check_folder(out, "--out")
    config = load_config(default_config() if config_path is None else config_path)
    try:
        symmetry_experiment(config, out, epochs=epochs, steps=steps, seed=seed, log=typer.echo)
    except TrainingDiverged as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail(RERUN_TO_RESUME, 130)
    typer.echo(f"wrote {out / 'symmetry_experiment.md'}, .json, .png")


@export_app.command("web")
@user_errors
def export_web_command(
    model_path: ModelArgument,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Initial condition: .npy (H, W, C) in physical units, an image or emoji:NAME "
            "(default: the training data's first frames).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for NAME.html.")] = Path("stnca-web"),
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """A self-contained web page that runs the model live: play, perturb with the mouse."""
    from .analysis.inputs import image_data, load_initial, run_config
    from .export import web_page
    from .serialization import resolve_model
    from .train import load_config

    _check_folder(out, "--out")
    model = _unconditioned(_load_model(model_path), "export")
    path = resolve_model(model_path)
    config = load_config(config_path) if config_path is not None else run_config(model_path)
    frames = []
    if init is not None:
        initial = load_initial(init, model, config=config, image_size=image_size, padding=padding)
        frames.append((Path(init).name if not init.startswith("emoji:") else init, initial))
    frames += _data_frames(path.parent, config, model, seed)
    if not frames:
        raise UserError("give --init: no training data or config found to start from")
    shape = frames[0][1].shape
    frames = [(name, f) for name, f in frames if f.shape == shape]
    box = None
    images = image_data(config)
    if images is not None and images.size:
        box = (images.padding, images.padding, images.size, images.size)
        if shape[:2] != (images.size + 2 * images.padding,) * 2:
            box = None
    name = path.parent.name if path.stem in ("model", "final") else path.stem
    _check_output(out / f"{name}.html", (".html",), "--out", None, overwrite)
    page = web_page(model, frames, out / f"{name}.html", title=f"stnca: {name}", image_box=box)
    typer.echo(
        f"wrote {page} ({page.stat().st_size // 1024} KiB, {len(frames)} initial conditions)"
    )


def _span(text: str | None, option: str) -> tuple[int | None, int | None] | None:
    """``"a:b"`` (either side may be empty) -> ``(a, b)``; ``None`` stays ``None``."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return tuple(int(p) if p.strip() else None for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise UserError(
            f"{option} must look like a:b (integers, either may be empty), got {text!r}"
        ) from None


def _selection(trajectories, frames, every, z, crop, channels, resize, normalise, axes):
    from .data.importers import Selection

    box = None
    if crop is not None:
        spans = [_span(part, "--crop") for part in crop.split(",")]
        if len(spans) != 2 or any(v is None for s in spans for v in s or (None,)):
            raise UserError(f"--crop must look like y0:y1,x0:x1 (all four given), got {crop!r}")
        box = (*spans[0], *spans[1])
    size = None
    if resize is not None:
        try:
            values = [int(v) for v in resize.lower().split("x")]
        except ValueError:
            values = []
        if len(values) not in (1, 2):
            raise UserError(f"--resize must be S or HxW (integers), got {resize!r}")
        size = (values[0], values[-1])
    picked = None
    if channels is not None:
        picked = tuple(c.strip() for c in channels.split(",") if c.strip())
        if not picked:
            raise UserError("--channels names no channel")
    return Selection(
        trajectories=_span(trajectories, "--trajectories"),
        frames=_span(frames, "--frames"),
        every=every,
        z=z,
        crop=box,
        channels=picked,
        resize=size,
        normalise=normalise,
        axes=axes,
    )


@app.command("import")
@user_errors
def import_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SRC...",
            help="TIFF/OME-TIFF, HDF5 (file.h5:/path), video (.mp4, .gif, .avi, ...), a folder "
            "of images, .npz (file.npz:name) or .npy; several make several trajectories.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output trajectory file (.npy).")],
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels",
            help="Comma-separated channel names (HDF5 fields, .npz arrays) or indices, or "
            "grey (luminance of RGB).",
        ),
    ] = None,
    every: Annotated[int, typer.Option("--every", help="Keep every k-th frame.")] = 1,
    frames: Annotated[
        str | None, typer.Option("--frames", help="Frames a:b (before --every).")
    ] = None,
    crop: Annotated[
        str | None, typer.Option("--crop", help="Rows and columns y0:y1,x0:x1.")
    ] = None,
    resize: Annotated[
        str | None, typer.Option("--resize", help="Lattice size S (S x S) or HxW.")
    ] = None,
    normalise: Annotated[
        str,
        typer.Option("--normalise", help="none (values as read) or minmax (channels to [0, 1])."),
    ] = "none",
    z: Annotated[
        int | None,
        typer.Option("--z", help="The Z slice of a Z-stack, 0 to Z-1 (required for one)."),
    ] = None,
    trajectories: Annotated[
        str | None,
        typer.Option("--trajectories", help="Trajectories a:b of a file holding several."),
    ] = None,
    axes: Annotated[
        str | None,
        typer.Option("--axes", help="Axes of an array source, letters of RTZYXC (e.g. TYXC)."),
    ] = None,
    png: Annotated[
        bool, typer.Option("--png", help="Also write a picture of the frames next to --out.")
    ] = False,
    overwrite: OverwriteOption = False,
):
    """Turn users' data into a trajectory file (float32 (T, H, W, C) or (R, T, H, W, C))."""
    from . import viz
    from ._resources import check_disk
    from .data import io
    from .data.importers import read_sources, split_spec

    inputs = {f"SRC {s}": split_spec(s)[0] for s in sources}
    _check_output(
        out, (".npy",), "--out", {k: p for k, p in inputs.items() if p.is_file()}, overwrite
    )
    if png:
        _check_output(out.with_suffix(".png"), (".png",), "--png (next to --out)", None, overwrite)
    selection = _selection(trajectories, frames, every, z, crop, channels, resize, normalise, axes)
    imported = read_sources(sources, selection)
    typer.echo(f"read {imported.describe()}")
    trajectory = imported.trajectories
    if trajectory.shape[0] == 1:
        trajectory = trajectory[0]
    check_disk(trajectory.size, out.parent, f"{out}")
    io.save_array(out, trajectory)
    typer.echo(f"wrote {out} with shape {trajectory.shape}")
    if png:
        picture = viz.trajectory_figure(
            trajectory, out.with_suffix(".png"), title=f"imported: {out.name}"
        )
        typer.echo(f"wrote {picture}")


def _extract_truth(pde: str | None, config):
    """``(Gray-Scott parameters or None, the config they came from)`` for ``--pde``."""
    from .train import load_config

    if pde is None:
        if config is not None and config.data.source == "gray_scott":
            return config.data.params(), config
        return None, config
    if pde == "none":
        return None, config
    if pde == "gray-scott":
        return GrayScottParams(), config
    if not pde.lower().endswith(".toml"):
        raise UserError(f"--pde must be gray-scott, none or a config .toml, got {pde!r}")
    loaded = load_config(Path(pde))
    if loaded.data.source != "gray_scott":
        raise UserError(f"--pde {pde}: its [data] is {loaded.data.source!r}, not Gray-Scott")
    return loaded.data.params(), loaded


def _extract_states(spec: str, what: str, channels: int, size: tuple, key, batch, drawn: str):
    """``(states (R, H, W, C), description)``: a .npy file's states, or ``batch`` (or one)
    of a Gray-Scott family's, drawn with ``key`` (``drawn`` says how, for the report)."""
    import numpy as np

    from .data.initial_conditions import INITIAL_CONDITIONS, initial_condition
    from .data.io import load_states

    if spec.lower().endswith(".npy"):
        states = load_states(Path(spec), channels=channels, what=what)
        return (states[None] if states.ndim == 3 else states), spec
    if spec not in INITIAL_CONDITIONS:
        raise UserError(
            f"{what} must be a .npy file or a Gray-Scott initial condition "
            f"({', '.join(sorted(INITIAL_CONDITIONS))}), got {spec!r}"
        )
    if channels != 2:
        raise UserError(
            f"{what} {spec} is a Gray-Scott initial condition, but there are {channels} channels"
        )
    states = np.asarray(initial_condition(spec, size, key=key, batch=batch))
    return (states[None] if batch is None else states), f"{spec} ({size[0]}x{size[1]}, {drawn})"


def _print_extraction(equation, report, end: float) -> None:
    """The equation, each channel's fit, the coefficient table and the simulation errors."""
    from .analysis.equations import format_equation

    typer.echo("")
    for line in format_equation(equation):
        typer.echo(line)
    for name, fit in equation["fit"].items():
        if not fit.get("static"):
            r2 = fit["held_out_r2"]
            typer.echo(
                f"  {name}: {len(equation['channels'][name])} of {len(equation['library'])} terms, "
                f"threshold {fit['threshold']:.3g}, held-out R^2 "
                + ("-" if r2 is None else f"{r2:.4f}")
            )
    if report["table"] is not None:
        typer.echo("")
        typer.echo(
            f"{'channel':7s}  {'term':28s} {'parameter':17s} {'true':>10s} "
            f"{'recovered':>10s} {'rel. error':>10s}  status"
        )
        for row in report["table"]:
            error = "" if row["relative_error"] is None else f"{100 * row['relative_error']:.3g}%"
            got = "" if row["recovered"] is None else f"{row['recovered']:.5g}"
            typer.echo(
                f"{row['channel']:7s}  {row['term']:28s} {row['parameter']:17s} "
                f"{row['true']:10.5g} {got:>10s} {error:>10s}  {row['status']}"
            )
    errors = report["simulation"]
    typer.echo("")
    typer.echo(
        f"simulated from {errors['initial_condition']} to t = {end:g}, relative "
        f"error against the {errors['reference']}:"
    )
    for name, values in errors["relative_error"].items():
        final = "diverged" if values[-1] is None else f"{values[-1]:.4f}"
        typer.echo(f"  {name:20s} {final}")


@app.command("extract")
@user_errors
def extract_command(
    model_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="MODEL",
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper); "
            "or give --data.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Fit a trajectory .npy (T, H, W, C) or (R, T, H, W, C) instead."
        ),
    ] = None,
    dt: Annotated[
        float | None,
        typer.Option(
            "--dt",
            help="Time per NCA step, or between --data frames; coefficients are per unit time "
            "(default: one PDE step by the model's Gray-Scott config, else 1).",
        ),
    ] = None,
    pde: Annotated[
        str | None,
        typer.Option(
            "--pde",
            help="The true PDE to compare with: gray-scott (the paper's parameters), a config "
            ".toml with Gray-Scott [data], or none (default: the model's training config).",
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Initial conditions of the rollouts: a .npy (R, H, W, C) or a Gray-Scott "
            "family (default: the training family, drawn with another seed).",
        ),
    ] = None,
    rollouts: Annotated[
        int | None, typer.Option("--rollouts", help="Rollouts from a family --init (default 4).")
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="NCA steps per rollout (default: the training horizon)."),
    ] = None,
    burn_in: Annotated[
        int | None,
        typer.Option(
            "--burn-in",
            help="Steps at the start of each rollout not fitted (default: the training's t, "
            "one frame interval, else 0).",
        ),
    ] = None,
    degree: Annotated[
        int | None, typer.Option("--degree", help="Highest degree of the polynomials (default 3).")
    ] = None,
    terms: Annotated[
        str,
        typer.Option(
            "--terms",
            help="Derivatives in the library: any of lap, dx, dy, or none; or the whole "
            "library as a list of terms, e.g. '1,A,A*B^2,lap(A)'.",
        ),
    ] = "lap,dx,dy",
    derivative: Annotated[
        str | None,
        typer.Option("--derivative", help="--data: forward (default) or central differences."),
    ] = None,
    boundary: Annotated[
        str | None,
        typer.Option("--boundary", help="--data: periodic (default), fixed or reflect."),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", help="(Cell, time) samples regressed, 20% held out.")
    ] = 200_000,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            help="Keep the sparsest model within 1 + this of the best held-out error.",
        ),
    ] = 0.1,
    test_init: Annotated[
        str | None,
        typer.Option(
            "--test-init",
            help="Initial condition of the simulated comparison: a .npy state or a Gray-Scott "
            "family drawn with --seed (default: high_frequency for Gray-Scott).",
        ),
    ] = None,
    test_steps: Annotated[
        int | None,
        typer.Option(
            "--test-steps",
            help="Length of the comparison in steps of --dt (default: --steps, or the data's).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("extract"),
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for initial conditions, samples, updates.")
    ] = 2024,
    overwrite: OverwriteOption = False,
):
    """The PDE behind a trained NCA (or data), by sparse regression with PySINDy.

    Rolls the model out densely, fits each observable channel's per-step change on
    polynomials and stencil derivatives of the channels (STLSQ, threshold by
    cross-validation), prints the equation and writes equation.json/.txt; against a known
    Gray-Scott truth, coefficients.csv; and the equation simulated beside the truth and the
    NCA from an unseen initial condition, simulation.png/.json.
    """
    import jax

    from ._validate import choice, count, real
    from .analysis.equations import channel_names, gray_scott_equation
    from .analysis.extract import DERIVATIVES, Library, extract_from_model, fit_equation
    from .analysis.extract_report import FILES, compare, write_report
    from .boundaries import BOUNDARIES
    from .data.io import load_trajectory

    if (model_path is None) == (data is None):
        raise UserError("give a MODEL or --data TRAJ.npy (exactly one)")
    if data is not None:
        for name, value in (
            ("--init", init),
            ("--rollouts", rollouts),
            ("--steps", steps),
            ("--burn-in", burn_in),
        ):
            if value is not None:
                raise UserError(f"{name} applies to a model's rollouts, not to --data")
    elif derivative is not None or boundary is not None:
        raise UserError("--derivative and --boundary apply to --data (a model has its own)")
    derivative = choice(derivative or "forward", "--derivative", DERIVATIVES)
    boundary = choice(boundary or "periodic", "--boundary", BOUNDARIES)
    if dt is not None and real(dt, "--dt", 0.0) == 0:
        raise UserError("--dt must be > 0")
    count(samples, "--samples", 10)
    real(tolerance, "--tolerance", 0.0)
    key = _key(seed)
    inputs: dict[str, Path | None] = {"--data": data}
    for name, spec in (("--init", init), ("--test-init", test_init), ("--pde", pde)):
        if spec is not None and spec.lower().endswith((".npy", ".toml")):
            inputs[name] = Path(spec)
    config = None
    if model_path is not None:
        from .analysis.inputs import run_config
        from .serialization import resolve_model

        inputs["MODEL"] = resolve_model(model_path)
        config = run_config(model_path)
    _check_outputs_in(out, FILES, "--out", inputs, overwrite)
    params, config = _extract_truth(pde, config)
    gray = params is not None
    gray_config = config is not None and config.data.source == "gray_scott"
    size = (config.data.size,) * 2 if gray_config else (64, 64)
    operators = [t.strip() for t in terms.split(",") if t.strip()]
    if model_path is not None:
        model = _unconditioned(_load_model(model_path), "extract")
        names = channel_names(model.observable_channels, gray)
        if init is None and not gray_config:
            raise UserError("give --init (a .npy of initial states): no Gray-Scott training config")
        family = init or config.data.families[0]
        initial, described = _extract_states(
            family,
            "--init",
            model.observable_channels,
            size,
            jax.random.fold_in(key, 2),
            count(4 if rollouts is None else rollouts, "--rollouts", 1),
            f"key fold_in(key({seed}), 2)",
        )
        horizon = config.horizon() if config is not None else None
        rollout_steps = count(steps if steps is not None else horizon or 1024, "--steps", 1)
        if burn_in is None:  # the hidden channels start at zero: skip one frame interval t
            t = config.training.steps_between_frames if config is not None else 0
            burn_in = t if t < rollout_steps else 0
        burn = count(burn_in, "--burn-in", 0)
        time_step = 1.0 if dt is None else dt
        if dt is None and gray_config:  # one NCA step: every / t PDE steps of the data
            t = config.training.steps_between_frames
            time_step = (config.data.every or t) / t * config.data.dt
    if data is not None:
        trajectories = load_trajectory(data, what="--data")
        names = channel_names(trajectories.shape[-1], gray)
        size = trajectories.shape[-3:-1]
        time_step = 1.0 if dt is None else dt
    derivatives = {"lap", "dx", "dy", "none"}
    others = [op for op in operators if op not in derivatives]
    if others and len(others) < len(operators):  # derivatives mixed with something else
        raise UserError(
            f"--terms: {others[0]!r} is not a derivative (lap, dx, dy or none); give "
            "derivatives, or the whole library as a list of terms (e.g. '1,A,lap(A)')"
        )
    if operators and set(operators) <= derivatives:
        wanted = [op for op in operators if op != "none"]
        library = Library.build(names, 3 if degree is None else degree, wanted)
    else:
        if degree is not None:
            raise UserError("give --degree or a list of --terms, not both")
        library = Library.build(names, terms=operators)
    typer.echo(f"library: {len(library.terms)} terms: {', '.join(library.terms)}")
    if model_path is not None:
        typer.echo(f"rolling out {len(initial)} x {rollout_steps} steps from {described}")
        equation = extract_from_model(
            model,
            initial,
            rollout_steps,
            library,
            dt=time_step,
            burn_in=burn,
            samples=samples,
            tolerance=tolerance,
            key=jax.random.fold_in(key, 1),
        )
        source = {
            "model": str(model_path),
            "rollouts": len(initial),
            "steps": rollout_steps,
            "burn_in": burn,
            "initial_conditions": described,
            "seed": seed,
        }
    else:
        equation = fit_equation(
            trajectories,
            library,
            dt=time_step,
            boundary=boundary,
            derivative=derivative,
            samples=samples,
            tolerance=tolerance,
            what=f"--data {data}",
            key=jax.random.fold_in(key, 1),
        )
        source = {
            "data": str(data),
            "trajectories": trajectories.shape[0],
            "frames": trajectories.shape[1],
        }
    equation = {**equation, "source": source}
    channels = len(names)
    truth_frames = None
    if test_init is not None and model_path is None and not gray:
        raise UserError(
            "--test-init with --data needs a truth to compare with: give --pde gray-scott or "
            "a Gray-Scott config (or leave --test-init out to use the data's first trajectory)"
        )
    if test_init is not None or gray:
        tests, test_described = _extract_states(
            test_init or "high_frequency", "--test-init", channels, size, key, None, f"seed {seed}"
        )
        test_initial = tests[0]
    elif model_path is not None:
        test_initial, test_described = initial[0], f"{described}, the first (fitted)"
    else:
        test_initial, truth_frames = trajectories[0, 0], trajectories[0]
        test_described = f"frame 0 of {data} (fitted)"
    if test_steps is None:
        test_steps = rollout_steps if model_path is not None else trajectories.shape[1] - 1
    comparison = compare(
        equation,
        test_initial,
        count(test_steps, "--test-steps", 1),
        description=test_described,
        model=model if model_path is not None else None,
        pde=params,
        truth=truth_frames,
        key=jax.random.fold_in(key, 3),
    )
    report = write_report(
        out,
        equation,
        truth=gray_scott_equation(params) if gray else None,
        comparison=comparison,
        title=f"equation extracted from {model_path or data}, run from {test_described}",
    )
    _print_extraction(equation, report, comparison.times[-1])
    typer.echo("wrote " + ", ".join(str(path) for path in report["files"]))


def _run_sweep(base, vary, out: Path, seeds: int, shard, collect: bool, test_size) -> None:
    from .experiments.sweep import run_sweep

    _check_folder(out, "--out")
    try:
        summary = run_sweep(
            base,
            vary,
            out,
            seeds=seeds,
            shard=shard,
            collect=collect,
            test_size=test_size,
            log=typer.echo,
        )
    except KeyboardInterrupt:
        _fail(RERUN_TO_RESUME, 130)
    if summary["missing"] and (collect or shard is None):
        raise typer.Exit(1)


@app.command("sweep")
@user_errors
def sweep_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="The base config.")],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="KEY=V1,V2,... (repeatable; the grid is the product). KEY is section.key "
            "(e.g. data.noise, model.activation) or t, the paper's time sampling; a+b is a "
            "list value (kernels).",
        ),
    ],
    seeds: Annotated[int, typer.Option("--seeds", help="Random initialisations per cell.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/sweep"),
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Run only slice i/n of the grid (0 <= i < n), e.g. $SLURM_ARRAY_TASK_ID/n.",
        ),
    ] = None,
    collect: Annotated[
        bool,
        typer.Option(
            "--collect",
            help="Train nothing: merge the finished cells into "
            "results.csv and sweep.png, naming any missing cell.",
        ),
    ] = False,
    test_size: Annotated[
        int | None,
        typer.Option(
            "--test-size", help="Lattice of the unseen Gray-Scott test (default: the data's size)."
        ),
    ] = None,
):
    """A grid of trainings over varied config keys, each over several seeds (trained
    together); results.csv and sweep.png with the test errors on an unseen initial condition."""
    from .experiments.sweep import parse_vary
    from .train import load_config

    base = load_config(config_path)
    _run_sweep(base, [parse_vary(v) for v in vary], out, seeds, shard, collect, test_size)


@app.command("reproduce")
@user_errors
def reproduce_command(
    figure: Annotated[
        str, typer.Argument(help="fig4, fig6, fig8 or fig9 (or a sweep file .toml).")
    ],
    scale: Annotated[
        str, typer.Option("--scale", help="cpu (about 30 min on 2 cores) or paper (a GPU).")
    ] = "cpu",
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default runs/FIGURE_SCALE).")
    ] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="As for sweep.")] = None,
    collect: Annotated[bool, typer.Option("--collect", help="As for sweep.")] = False,
):
    """Run a paper figure's sweep (configs/sweeps/): Fig 4 (time sampling), Fig 6 (noise),
    Fig 8 (kernels, activations), Fig 9 (time sampling, channels)."""
    from .experiments.reproduce import load_plan, sweep_file

    path = sweep_file(figure)
    plan = load_plan(path, scale)
    out = out if out is not None else Path("runs") / f"{Path(figure).stem}_{scale}"
    typer.echo(f"{plan.figure} ({scale} scale, {path})")
    _run_sweep(plan.base, plan.vary, out, plan.seeds, shard, collect, plan.test_size)


def _data_frames(folder: Path, config, model, seed: int) -> list:
    """Initial conditions from a run: its training data's first frames (images: every image
    of the sequence), or for a Gray-Scott config without saved data, fresh ones."""
    import numpy as np

    saved = folder / "train_data.npy"
    if saved.is_file() and config is not None:
        from .data.io import load_trajectory

        data = load_trajectory(saved, channels=model.observable_channels, what="train_data.npy")
        if config.data.source == "images":
            return [(f"image {i}", frame) for i, frame in enumerate(data[0])]
        return [(f"training trajectory {r + 1}, frame 0", data[r, 0]) for r in range(len(data))]
    if config is not None and config.data.source == "images":
        from .data.augment import embed
        from .data.images import image_sequence

        data = config.data
        sequence = image_sequence(data.images, data.size, 1, base_dir=config.base_dir)
        embedded = np.asarray(embed(sequence, data.padding))
        return [(name, frame) for name, frame in zip(data.images, embedded, strict=True)]
    if config is not None and config.data.source == "gray_scott":
        import jax

        from .data.initial_conditions import initial_condition

        key = _key(seed)
        return [
            (
                f"{family} (seed {seed})",
                np.asarray(
                    initial_condition(family, config.data.size, key=jax.random.fold_in(key, i))
                ),
            )
            for i, family in enumerate(("smooth", "high_frequency"))
        ]
    return []


def run(argv: list[str] | None = None) -> int:
    """The console script: ``app``, with usage errors (unknown option, missing or unparsable
    value) reduced to one line on stderr and exit code 2."""
    from typer.exceptions import TyperException

    try:
        code = app(args=argv, prog_name="stnca", standalone_mode=False)
    except TyperException as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message())
            return 0
        typer.echo(f"error: {error.format_message()}", err=True)
        return error.exit_code
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


def main_entry() -> None:
    """The installed `stnca` command."""
    code = run()
    if code == 130:
        # Interrupted: XLA's worker threads may still be running the step that Ctrl-C cut
        # short, and tearing the interpreter down under them crashed (a segmentation fault
        # in about 1 of 5 interrupts during training). Every file is already complete (each
        # write is atomic), so leave at once without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
