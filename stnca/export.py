"""A trained NCA as a self-contained web page: the rule runs live in the browser.

The page (``stnca/web/page.html`` filled in) carries the model's weights, its data scaling
and a few initial conditions as base64 float32 inside one HTML file; it loads nothing from
the network. It runs the same perception (the model's kernels, learnable ones included,
and boundary), MLP and stochastic update as ``stnca.NCA`` (typed-array JavaScript, float32
states), draws the observable channels as the CLI's figures do and the hidden channels three
at a time as RGB, and lets the reader perturb the state with the mouse (erase, or noise, in a
disc) and load another initial condition or, for image models, an image file.
``window.stnca`` exposes the state and the step function to tests and scripts.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from ._files import write_text
from .analysis.inputs import data_bounds
from .model import NCA
from .stencils import KERNELS

TEMPLATE = Path(__file__).with_name("web") / "page.html"

HEADLESS_CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Flags for opening pages in headless Chromium (the tests, benchmarks/web_speed.py): no
window, no background requests of Chromium's own (they would fail on a closed network)."""


def _b64(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _perception(name: str) -> dict:
    if name == "gradient_magnitude":
        return {
            "name": name,
            "magnitude": [
                KERNELS["gradient_x"].ravel().tolist(),
                KERNELS["gradient_y"].ravel().tolist(),
            ],
        }
    return {"name": name, "weights": KERNELS[name].ravel().tolist()}


def _learned(model: NCA) -> list[dict]:
    """The learnable kernels as the page's perceptions: 3x3 weights like the fixed ones."""
    names = model.perception_names[len(model.kernels) :]
    kernels = np.asarray(model.learned_kernels(), np.float32)
    return [
        {"name": name, "weights": kernel.ravel().tolist()}
        for name, kernel in zip(names, kernels, strict=True)
    ]


def page_data(
    model: NCA,
    frames: Sequence[tuple[str, np.ndarray]],
    *,
    image_box: tuple[int, int, int, int] | None = None,
) -> dict:
    """The JSON the page reads: weights, structure, scaling and initial conditions.

    Args:
        model: the NCA.
        frames: ``(name, observable state (H, W, C) in physical units)`` to start from; the
            first is shown first. All share one lattice size.
        image_box: ``(top, left, height, width)`` where a dropped image goes (image models;
            default: the whole lattice).
    """
    if not frames:
        raise ValueError("give at least one initial condition")
    shapes = {np.shape(f) for _, f in frames}
    if len(shapes) != 1:
        raise ValueError(f"initial conditions must share one shape, got {sorted(shapes)}")
    height, width, channels = shapes.pop()
    if channels != model.observable_channels:
        raise ValueError(
            f"initial conditions have {channels} channels, the model has "
            f"{model.observable_channels} observable channels"
        )
    encoded = [(name, np.asarray(model.encode(np.asarray(f, np.float32)))) for name, f in frames]
    physical = np.stack([np.asarray(f, np.float32) for _, f in frames])
    last = physical[..., -1]
    low, high = float(np.min(last)), float(np.max(last))
    viridis = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    return {
        "height": height,
        "width": width,
        "channels": model.channels,
        "observable": model.observable_channels,
        "hidden_width": model.hidden_width,
        "perceptions": [_perception(name) for name in model.kernels] + _learned(model),
        "activation": model.activation,
        "boundary": model.boundary,
        "update_probability": model.update_probability,
        "w_in": _b64(model.w_in),
        "w_out": _b64(model.w_out),
        "b_out": _b64(model.b_out),
        "b_in": None if model.b_in is None else _b64(model.b_in),
        "scaling": None if model.scaling is None else model.scaling.to_json(),
        "range": [low, high if high > low else low + 1.0],
        "noise": list(data_bounds(model, np.stack([f for _, f in encoded]))),
        "colormap": base64.b64encode(viridis.tobytes()).decode("ascii"),
        "image_box": list(image_box) if image_box is not None else [0, 0, height, width],
        "frames": [{"name": name, "data": _b64(f)} for name, f in encoded],
    }


def web_page(
    model: NCA,
    frames: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike,
    *,
    title: str = "a trained NCA",
    image_box: tuple[int, int, int, int] | None = None,
) -> Path:
    """Write the self-contained page for ``model`` to ``path`` (atomically); see ``page_data``.

    Raises:
        NonFiniteError: the model's weights hold NaN or infinite values (a page that could
            only show NaN).
    """
    from ._trajectory import require_finite_weights

    require_finite_weights(model)
    data = json.dumps(page_data(model, frames, image_box=image_box))
    text = TEMPLATE.read_text(encoding="utf-8")
    # "</" inside the JSON would end its <script> element early
    text = text.replace("__TITLE__", html.escape(title)).replace(
        "__DATA__", data.replace("</", "<\\/")
    )
    write_text(path, text)
    return Path(path)
