"""A live view of a training run in TensorBoard (``[training] tensorboard = true``).

Event files go to ``OUT/tensorboard/``; view them with ``tensorboard --logdir OUT/tensorboard``
(the viewer is its own package, ``pip install tensorboard``). Each epoch's metrics row gives
the scalars ``loss/train``, ``loss/reinitialised``, ``loss/rollout`` (the epochs it was
computed), ``gradient_norm`` and ``learning_rate``, with the epoch as the step; the image
``prediction`` shows rows truth / NCA / |difference| at evenly spaced frames of the data.
``metrics.csv`` stays the record: this is a view of it.

A resumed run appends a new event file whose first event purges, in the viewer, whatever an
interrupted run logged after its last checkpoint, so each step shows once.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np
from jaxtyping import Array, Float

from .. import viz
from ..model import NCA, observable_rollout
from ..viz_volumes import as_pictures

FOLDER = "tensorboard"
"""The run folder's subfolder of event files."""
SCALARS = {
    "loss": "loss/train",
    "reinitialised_loss": "loss/reinitialised",
    "rollout_loss": "loss/rollout",
    "gradient_norm": "gradient_norm",
    "learning_rate": "learning_rate",
}
"""Metrics column -> TensorBoard tag."""
IMAGE = "prediction"
COLUMNS = 8
"""At most this many frames of the data in a prediction image."""
MIN_FRAME = 64
"""Small lattices are magnified (nearest neighbour) to at least this many pixels."""


def check_available(out: Path) -> None:
    """Raise ``ValueError`` unless tensorboardX can be imported and ``out`` can hold its folder."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise ValueError(
            'training.tensorboard needs tensorboardX: pip install "stnca[tensorboard]"'
        ) from None
    if (out / FOLDER).exists() and not (out / FOLDER).is_dir():
        raise ValueError(f"cannot write TensorBoard events to {out / FOLDER}: it is not a folder")


def prediction_image(
    model: NCA, truth: Float[np.ndarray, "frames H W obs"], steps_between_frames: int
) -> Float[np.ndarray, "height width 3"]:
    """Truth, the model's free rollout from ``truth[0]`` and their difference, as one image.

    Args:
        model: the NCA (physical units in and out).
        truth: one trajectory, frames ``steps_between_frames`` NCA steps apart (the data
            channels: a conditioned model's trailing conditions included).
        steps_between_frames: NCA steps between frames (t).

    Returns:
        RGB in [0, 1]: rows truth / NCA / |difference|, columns at most ``COLUMNS`` evenly
        spaced frames, small lattices magnified to ``MIN_FRAME`` pixels.
    """
    frames = truth.shape[0]
    predicted: Float[Array, "frames H W obs"] = observable_rollout(
        model,
        truth[0],
        (frames - 1) * steps_between_frames,
        steps_between_frames,
        jax.random.key(0),
    )
    picked = viz.evenly_spaced(frames, COLUMNS)
    observed = truth[picked][..., : model.observable_channels]
    predicted_frames = np.asarray(predicted)[picked]
    if model.dimensions != 2:  # a volume's slices and projections; a line's frames as strips
        dims = model.dimensions
        observed = as_pictures(observed, 3) if dims == 3 else observed[:, None]
        predicted_frames = (
            as_pictures(predicted_frames, 3) if dims == 3 else predicted_frames[:, None]
        )
    rows = viz._comparison_panels(observed, predicted_frames, None)
    factor = -(-MIN_FRAME // min(observed.shape[1:3]))
    rows = [np.repeat(np.repeat(r, factor, axis=-3), factor, axis=-2) for r in rows]
    strips = [viz.side_by_side(*r) for r in rows]  # each (H, columns W + gaps, 3)
    gap = np.ones((2,) + strips[0].shape[1:], np.float32)
    return np.concatenate([strips[0], gap, strips[1], gap, strips[2]], axis=0)


class TensorBoardWriter:
    """Writes a run's scalars and prediction images to ``OUT/tensorboard/``.

    Args:
        out: the run folder.
        truth: the trajectory the prediction images show, ``(frames, H, W, obs)``, physical
            units.
        steps_between_frames: NCA steps between its frames (t).
        reinitialised: whether to log ``loss/reinitialised`` (some trajectories restart
            from the data; otherwise it equals the training loss).
        start: the first step this writer logs (0 for a new run, the resumed epoch + 1):
            the viewer drops what earlier files logged from that step on.
    """

    def __init__(
        self,
        out: Path,
        truth: np.ndarray,
        steps_between_frames: int,
        *,
        reinitialised: bool,
        start: int,
    ):
        check_available(out)
        from tensorboardX import SummaryWriter

        self.truth = np.asarray(truth, np.float32)
        self.steps_between_frames = steps_between_frames
        self.reinitialised = reinitialised
        # the start step in the name keeps a quick resume (same second) from replacing the
        # previous file, and keeps the files in the order they were written
        self.writer = SummaryWriter(
            str(out / FOLDER), purge_step=start, filename_suffix=f".start{start:010d}"
        )

    def scalars(self, epoch: int, row: dict[str, float]) -> None:
        """Log a metrics row's losses, gradient norm and learning rate (NaN ones are left out)."""
        for column, tag in SCALARS.items():
            if column == "reinitialised_loss" and not self.reinitialised:
                continue
            value = float(row.get(column, math.nan))
            if not math.isnan(value):
                self.writer.add_scalar(tag, value, epoch)

    def image(self, epoch: int, model: NCA) -> None:
        """Log ``model``'s prediction image (see ``prediction_image``)."""
        rgb = prediction_image(model, self.truth, self.steps_between_frames)
        self.writer.add_image(IMAGE, rgb, epoch, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
