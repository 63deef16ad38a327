"""The files of ``stnca analyse regenerate``: ``regenerate.json`` (every number),
``regenerate.md`` (a table a row per damage) and ``regenerate.png`` (the recovery curves
above snapshots of the runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import viz
from .._files import json_safe, write_text
from ..model import NCA
from .inputs import data_bounds
from .regeneration import POSITIONS, SIZES, Regeneration, regeneration

FILES = ("regenerate.png", "regenerate.json", "regenerate.md")
"""What ``regenerate_to_folder`` writes into its folder."""


def regenerate_to_folder(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    init: str | os.PathLike | None = None,
    damage_step: int | None = None,
    recovery_steps: int | None = None,
    sizes=SIZES,
    positions=POSITIONS,
    fill: str = "zero",
    tolerance: float = 0.05,
    config: str | os.PathLike | None = None,
    image_size: int | None = None,
    padding: int | None = None,
    key: jax.Array,
) -> tuple[Regeneration, list[Path]]:
    """``stnca analyse regenerate``: erase discs from the state of the model file (or
    shipped model's name) ``model`` at ``damage_step`` and write ``FILES`` into ``out``
    (``stnca.analysis.regeneration``).

    Defaults come from the model's training config (``config``, else ``config.toml``
    beside the model): ``init``, the first image of an image-morphing model's sequence;
    ``damage_step`` and ``recovery_steps``, twice the training horizon each. For an
    image-morphing model the sequence's final image is the ``target`` (the errors against
    it, and the pattern the discs are sized and placed on). Without such a config
    ``init``, ``damage_step`` and ``recovery_steps`` must be given. ``init``,
    ``image_size`` and ``padding`` as for ``stnca.analysis.inputs.load_initial``; the
    other arguments as for ``regeneration``.

    Raises:
        ValueError: bad settings or inputs (nothing is written).
    """
    from ..serialization import load_model
    from ..train import load_config
    from .inputs import image_sequence_of, load_initial, run_config

    loaded = load_model(model)
    if loaded.conditions is not None:
        raise ValueError("regeneration takes unconditioned models (this one has conditions)")
    settings = load_config(config) if config is not None else run_config(model)
    horizon = None if settings is None else settings.horizon()
    damage_step = _default(damage_step, horizon, "damage_step")
    recovery_steps = _default(recovery_steps, horizon, "recovery_steps")
    sequence = image_sequence_of(settings)
    target = None
    if init is None:
        if sequence is None:
            raise ValueError("init: give the initial condition (the model has no image sequence)")
        initial = sequence[0]
    else:
        initial = load_initial(
            init, loaded, config=settings, image_size=image_size, padding=padding
        )
    if sequence is not None and sequence[-1].shape == np.shape(initial):
        target = np.asarray(loaded.encode(jnp.asarray(sequence[-1])))
    x0 = np.asarray(loaded.encode(jnp.asarray(initial, jnp.float32)))
    result = regeneration(
        loaded,
        x0,
        damage_step=damage_step,
        recovery_steps=recovery_steps,
        sizes=sizes,
        positions=positions,
        fill=fill,
        tolerance=tolerance,
        target=target,
        bounds=data_bounds(loaded, x0),
        key=key,
    )
    return result, write_regeneration(result, loaded, out)


def _default(value: int | None, horizon: int | None, name: str) -> int:
    if value is not None:
        return value
    if horizon is None:
        raise ValueError(f"{name}: give it (no training config to take the horizon from)")
    return 2 * horizon


def write_regeneration(result: Regeneration, model: NCA, out: str | os.PathLike) -> list[Path]:
    """Write ``FILES`` for ``result`` (of ``model``) into ``out``, each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = result.rows()
    report = {
        "damage_step": result.damage_step,
        "recovery_steps": result.recovery_steps,
        "tolerance": result.tolerance,
        "fill": result.fill,
        "pattern_box": list(result.pattern_box),
        "pattern_size": result.pattern_size,
        "damages": rows,
        "distance": result.distance.tolist(),
        "noise_floor": None if result.noise_floor is None else result.noise_floor.tolist(),
        "target_error": None if result.target_error is None else result.target_error.tolist(),
    }
    paths = [out / name for name in FILES]
    _figure(result, model, paths[0])
    write_text(paths[1], json.dumps(json_safe(report), indent=2) + "\n")
    write_text(paths[2], "\n".join(table(result)) + "\n")
    return paths


def table(result: Regeneration) -> list[str]:
    """The Markdown table of ``result``, a row per damage (what the command prints)."""
    target = result.target_error is not None
    lines = [
        f"Damage at n = {result.damage_step} (fill {result.fill}), {result.recovery_steps} "
        f"steps after; pattern {result.pattern_size} cells; distance to the undamaged run; "
        f"recovered: within {result.tolerance:g} from then on." + _floor(result),
        "",
        "| size | position | erased cells | after damage | peak | last | recovered after"
        + (" | target error, last (undamaged) |" if target else " |"),
        "| --- | --- | --- | --- | --- | --- | ---" + (" | --- |" if target else " |"),
    ]
    for row in result.rows():
        recovered = row["recovery_steps"]
        cells = [
            f"{row['size']:g}",
            f"({row['position'][0]:g}, {row['position'][1]:g})",
            str(row["erased_cells"]),
            f"{row['distance_after_damage']:.3f}",
            f"{row['peak_distance']:.3f}",
            f"{row['final_distance']:.3f}",
            "never" if recovered is None else f"{recovered} steps",
        ]
        if target:
            cells.append(
                f"{row['final_target_error']:.3f} ({row['undamaged_final_target_error']:.3f})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _floor(result: Regeneration) -> str:
    if result.noise_floor is None:
        return ""
    floor = result.noise_floor
    return (
        f" Noise floor (an undamaged run with other keys): {floor[-1]:.3f} at the end, "
        f"{np.max(floor):.3f} at most."
    )


def _figure(result: Regeneration, model: NCA, path: Path) -> None:
    """Recovery curves (and target errors) above snapshots: the undamaged run, then the
    first position's damage of each size."""
    from matplotlib.figure import Figure

    sizes = list(dict.fromkeys(d["size"] for d in result.damages))
    per_size = len(result.damages) // len(sizes)
    shown = [0] + [1 + i * per_size for i in range(len(sizes))]
    columns = len(result.snapshot_steps)
    errors = result.target_error
    figure = Figure(figsize=(max(8.0, 1.4 * columns), 3.2 + 1.4 * len(shown)), layout="constrained")
    parts = figure.subfigures(2, 1, height_ratios=[3.2, 1.4 * len(shown)], squeeze=False)
    top, bottom = parts[0, 0], parts[1, 0]
    panels = top.subplots(1, 2 if errors is not None else 1, squeeze=False)[0]
    steps = np.arange(result.recovery_steps + 1)
    colours = [f"C{i % 10}" for i in range(len(sizes))]
    curves = panels[0]
    for i, damage in enumerate(result.damages):
        colour = colours[sizes.index(damage["size"])]
        label = f"size {damage['size']:g}" if i % per_size == 0 else None
        curves.plot(steps, np.maximum(result.distance[i], 1e-5), color=colour, lw=1, label=label)
    if result.noise_floor is not None:
        floor = np.maximum(result.noise_floor[1:], 1e-4)  # zero at the damage step
        curves.plot(steps[1:], floor, color="grey", lw=2, alpha=0.7, label="noise floor")
    curves.axhline(result.tolerance, color="black", ls="--", lw=0.8, label="tolerance")
    curves.set_yscale("log")
    curves.set_xlabel(f"steps after the damage at n = {result.damage_step}")
    curves.set_ylabel("distance to the undamaged run")
    curves.legend(fontsize=7)
    curves.grid(alpha=0.3)
    if errors is not None:
        panel = panels[1]
        for i, damage in enumerate(result.damages):
            colour = colours[sizes.index(damage["size"])]
            panel.plot(steps, errors[1 + i], color=colour, lw=1)
        panel.plot(steps, errors[0], color="black", lw=2, label="undamaged")
        panel.set_xlabel("steps after the damage")
        panel.set_ylabel("relative error against the target")
        panel.legend(fontsize=7)
        panel.grid(alpha=0.3)
    physical = np.asarray(model.decode(jnp.asarray(result.snapshots)))
    low, high = float(np.nanmin(physical)), float(np.nanmax(physical))
    labels = ["undamaged"] + [f"size {s:g}" for s in sizes]
    images = bottom.subplots(len(shown), columns, squeeze=False)
    for r, run in enumerate(shown):
        for c, step in enumerate(result.snapshot_steps):
            ax = images[r][c]
            frame = np.nan_to_num(physical[c, run])
            ax.imshow(viz.render(frame, vmin=low, vmax=high), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"+{step}", fontsize=9)
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=9)
    top.suptitle(
        f"regeneration: discs erased at n = {result.damage_step} ({result.fill}); below, the "
        f"first position's disc of each size",
        fontsize=10,
    )
    viz._save_figure(figure, path)
