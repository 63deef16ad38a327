"""The files of ``stnca inspect``: ``inspect.json`` and one figure of the rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._files import json_safe, write_text
from ..model import require_plane
from .inspect import Inspection
from .inspect_function import Function

FILES = ("inspect.json", "inspect.png", "function.png", "kernels.png")
"""What ``write_inspection`` writes into its folder (``kernels.png`` for a model with
learnable kernels)."""


def write_inspection(
    inspection: Inspection, out: str | os.PathLike, function: Function | None = None
) -> list[Path]:
    """Write ``inspect.json`` (every number) and ``inspect.png`` (the kernel-by-channel
    importance, the layers' singular values, the growth factors beside the PDE's) into
    ``out``, with ``function`` (the parts taken away on a test) ``function.png``, and for a
    model with learnable kernels ``kernels.png`` (each kernel and its cosine with each fixed
    stencil); each file atomically."""
    from matplotlib.figure import Figure

    from ..viz import _save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / FILES[0]
    report = inspection.to_json() | {"function": None if function is None else function.to_json()}
    write_text(json_path, json.dumps(json_safe(report), indent=2) + "\n")

    figure = Figure(figsize=(15, 4.2))
    left, middle, right = figure.subplots(1, 3)
    importance = inspection.importance
    image = left.imshow(importance, cmap="viridis", aspect="auto")
    left.set_xticks(range(len(inspection.kernels)), inspection.kernels, rotation=30)
    left.set_yticks(range(len(inspection.channels)), inspection.channels)
    left.set_title("first layer: kernel x channel importance")
    figure.colorbar(image, ax=left)
    for name, values in inspection.spectra.items():
        middle.semilogy(np.arange(1, len(values) + 1), np.maximum(values, 1e-12), "o-", label=name)
    ranks = inspection.ranks()
    middle.set_title(
        "singular values (99% energy: " + ", ".join(f"{k} {v}" for k, v in ranks.items()) + ")"
    )
    middle.set_xlabel("index")
    middle.legend()
    q = inspection.wavenumbers
    for c in range(inspection.observable):
        (line,) = right.plot(q, inspection.growth[:, c], label=f"NCA {inspection.channels[c]}")
        if inspection.pde_growth is not None:
            right.plot(
                q,
                inspection.pde_growth[:, c],
                "--",
                color=line.get_color(),
                label=f"PDE {inspection.channels[c]}",
            )
    right.plot(q, inspection.radius, ":", color="gray", label="NCA largest |eigenvalue|")
    right.axhline(1.0, color="black", linewidth=0.5)
    right.set_xlabel("wavenumber q_x (q_y = 0), radians per cell")
    right.set_title("growth factor per step at rest")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure_path = _save_figure(figure, out / FILES[1])
    files = [json_path, figure_path]
    if function is not None:
        files.append(_function_figure(inspection, function, out / FILES[2]))
    if inspection.learned:
        files.append(_kernels_figure(inspection, out / FILES[3]))
    return files


def _kernels_figure(inspection: Inspection, path: Path) -> Path:
    from matplotlib.figure import Figure

    from ..stencils import KERNELS
    from ..viz import _save_figure

    readings = inspection.learned
    figure = Figure(figsize=(3.2 * len(readings), 6.4))
    axes = figure.subplots(2, len(readings), squeeze=False)
    for reading, (top, bottom) in zip(readings, axes.T, strict=True):
        limit = float(np.abs(reading.kernel).max()) or 1.0
        top.imshow(reading.kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (i, j), value in np.ndenumerate(reading.kernel):
            colour = "white" if abs(value) > 0.6 * limit else "black"  # legible on dark cells
            top.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=9, color=colour)
        top.set_xticks([])
        top.set_yticks([])
        a, b = reading.coefficients
        other = reading.closest_pair.split("+")[1]
        top.set_title(
            f"{reading.name}: ~ {reading.closest} ({reading.closest_cosine:+.2f})\n"
            f"{a:.2g} identity {b:+.2g} {other} ({reading.pairs[reading.closest_pair]:.2f})",
            fontsize=9,
        )
        names = list(KERNELS)
        bottom.bar(range(len(names)), [reading.cosines[n] for n in names])
        bottom.set_xticks(range(len(names)), names, rotation=40, fontsize=8)
        bottom.set_ylim(-1, 1)
        bottom.axhline(0.0, color="black", linewidth=0.5)
        bottom.set_title("cosine with each stencil", fontsize=9)
    figure.tight_layout()
    return _save_figure(figure, path)


def _function_figure(inspection: Inspection, function: Function, path: Path) -> Path:
    from matplotlib.figure import Figure

    from ..viz import _save_figure

    ceiling = max(10 * function.error, 1.0)  # a blown-up rule is drawn at the ceiling

    def shown(values):
        return np.minimum(np.nan_to_num(np.asarray(values), nan=ceiling, posinf=ceiling), ceiling)

    figure = Figure(figsize=(15, 4.2))
    left, middle, right = figure.subplots(1, 3)
    image = left.imshow(np.log10(shown(function.kernel_removed) / function.error), aspect="auto")
    left.set_xticks(range(len(inspection.kernels)), inspection.kernels, rotation=30)
    left.set_yticks(range(len(inspection.channels)), inspection.channels)
    left.set_title(f"log10 error ratio, kernel of channel removed (error capped at {ceiling:g})")
    figure.colorbar(image, ax=left)
    hidden = inspection.channels[inspection.observable :]
    middle.bar(range(len(hidden)), shown(function.hidden_removed) / function.error)
    middle.set_xticks(range(len(hidden)), hidden, rotation=30)
    middle.set_yscale("log")
    middle.axhline(1 + function.tolerance, color="black", linewidth=0.5)
    middle.set_title(f"error ratio, hidden channel off ({function.effective_channels} needed)")
    for name, values in (("Gaussian noise", function.noise), ("dropout", function.dropout)):
        shaken = shown(values) / function.error
        levels = np.maximum(np.asarray(function.levels), 1e-3)
        right.errorbar(
            levels, shaken.mean(1), yerr=shaken.std(1), marker="o", capsize=3, label=name
        )
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("relative noise / dropout rate (0 drawn at 1e-3)")
    right.set_title("error ratio, weights shaken")
    right.legend()
    figure.tight_layout()
    return _save_figure(figure, path)


def inspect_to_folder(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    rest: list[float] | None = None,
    size: int = 32,
    truth: str | os.PathLike | None = None,
    steps_between_frames: int | None = None,
    log=print,
) -> tuple[Inspection, Function | None, list[Path]]:
    """``stnca inspect``: read the rule of the model file (or shipped model's name)
    ``model`` and write ``FILES`` into ``out``. ``rest`` defaults to Gray-Scott's resting
    state (A = 1, B = 0) for a model trained on Gray-Scott data, whose PDE is then
    linearised beside it; any other model needs ``rest`` (its observable channels' values
    at rest, physical units). The parts of the rule are taken away on a test trajectory:
    ``truth`` (a trajectory ``.npy``, ``steps_between_frames`` NCA steps per frame), or for
    a Gray-Scott model the unseen test (``high_frequency``, seed 2024) on its training
    lattice to its training horizon; with neither, that part is left out."""
    from ..serialization import load_model
    from .inputs import gray_scott_partner, parts_trajectory, run_config
    from .inspect import inspect_model
    from .inspect_function import function_of_parts

    loaded = require_plane(load_model(model), "inspect")
    config = run_config(model)
    partner = gray_scott_partner(config, 1, log=log)
    names = ("A", "B") if partner is not None else None
    if rest is None:
        if partner is None:
            raise ValueError(
                "rest: give the observable channels' values at rest (the model's training "
                "config is not Gray-Scott, so there is no default)"
            )
        rest = [1.0, 0.0]
    inspection = inspect_model(
        loaded,
        rest,
        channel_names=names,
        pde_step=None if partner is None else partner[0],
        pde_steps=1 if partner is None else partner[1],
        size=size,
    )
    test = parts_trajectory(loaded, config, truth, steps_between_frames)
    function = None
    if test is not None:
        log(f"taking the rule apart on {test[2]}")
        function = function_of_parts(loaded, test[0], test[1])
    return inspection, function, write_inspection(inspection, out, function)


def summary(inspection: Inspection, function: Function | None) -> list[str]:
    """The report's headline numbers, a line each (what ``stnca inspect`` prints)."""
    spectra = inspection.spectra
    lines = [
        "effective rank (99% energy): "
        + ", ".join(
            f"{name} {rank} of {len(spectra[name])}" for name, rank in inspection.ranks().items()
        ),
        f"increment at rest: {inspection.rest_increment:.3g} (0 = a fixed point)",
    ]
    pde = inspection.pde_growth
    for c in range(inspection.observable):
        growth, name = inspection.growth[:, c], inspection.channels[c]
        line = f"growth at rest, {name}: q = 0 {growth[0]:.4f}, q = pi {growth[-1]:.4f}"
        if pde is not None:
            line += f" (PDE {pde[0, c]:.4f}, {pde[-1, c]:.4f})"
        lines.append(line)
    lines += [reading.describe() for reading in inspection.learned]
    if function is not None:
        lines.append(
            f"test error {function.error:.4g}; channels needed (error within "
            f"{1 + function.tolerance:g}x): {function.effective_channels} of "
            f"{len(inspection.channels)}"
        )
        for level, noise, dropout in zip(
            function.levels, function.noise.mean(1), function.dropout.mean(1), strict=True
        ):
            lines.append(f"  weights shaken {level:g}: noise {noise:.4g}, dropout {dropout:.4g}")
    return lines
