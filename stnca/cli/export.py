"""``stnca export web``: a self-contained page that runs a model live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    UserError,
    export_app,
    user_errors,
)
from ._common import (
    ConfigOption,
    ImageSizeOption,
    ModelArgument,
    OverwriteOption,
    PaddingOption,
    SeedOption,
    _check_folder,
    _check_output,
    _key,
    _load_model,
    _unconditioned,
)


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
    from ..analysis.inputs import image_data, load_initial, run_config
    from ..export import web_page
    from ..serialization import resolve_model
    from ..train import load_config

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


def _data_frames(folder: Path, config, model, seed: int) -> list:
    """Initial conditions from a run: its training data's first frames (images: every image
    of the sequence), or for a Gray-Scott config without saved data, fresh ones."""
    import numpy as np

    saved = folder / "train_data.npy"
    if saved.is_file() and config is not None:
        from ..data.io import load_trajectory

        data = load_trajectory(saved, channels=model.observable_channels, what="train_data.npy")
        if config.data.source == "images":
            return [(f"image {i}", frame) for i, frame in enumerate(data[0])]
        return [(f"training trajectory {r + 1}, frame 0", data[r, 0]) for r in range(len(data))]
    if config is not None and config.data.source == "images":
        from ..data.augment import embed
        from ..data.images import image_sequence

        data = config.data
        sequence = image_sequence(data.images, data.size, 1, base_dir=config.base_dir)
        embedded = np.asarray(embed(sequence, data.padding))
        return [(name, frame) for name, frame in zip(data.images, embedded, strict=True)]
    if config is not None and config.data.source == "gray_scott":
        import jax

        from ..data.initial_conditions import initial_condition

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
