"""The training half of Fig 12: asymmetric vs symmetric kernels, trained on normal vs
rotation-augmented data, each tested on rotated and flipped initial conditions.

From one image-morphing config, four runs are trained in ``OUT/NAME``:

==========================  ==========================================  ================
name                        kernels                                     data
==========================  ==========================================  ================
``asymmetric-normal``       identity, gradient_x, gradient_y, laplacian  translated copies
``asymmetric-augmented``    the same                                    + random rotations
``symmetric-normal``        identity, laplacian, average                translated copies
``symmetric-augmented``     the same                                    + random rotations
==========================  ==========================================  ================

A base config with learnable kernels (``model.learnable_kernels``) keeps them in every
variant; the symmetric ones tie them under the square's rotations and reflections
(``model.learnable_kernel_symmetry = "d4"``), so that they stay symmetric.

"Augmented" sets ``data.rotate = "any"`` (every copy but copy 0 rotated by a uniform
angle, redrawn every ``data.redraw_every`` epochs). Each run is then tested from the
first image of the sequence with ``symmetry_report``; the table compares the
equivariance errors and the error at the training horizon against the final image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from .. import viz
from .._files import json_safe, write_text
from ..analysis.metrics import relative_error
from ..analysis.report import symmetry_report
from ..train import Config, load_config, train
from ..train.run_folder import CHECKPOINT_FILE

KERNELS = {
    "asymmetric": ("identity", "gradient_x", "gradient_y", "laplacian"),
    "symmetric": ("identity", "laplacian", "average"),
}
DATA = {"normal": "none", "augmented": "any"}
VARIANTS = tuple(f"{k}-{d}" for k in KERNELS for d in DATA)
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "symmetry_cpu.toml"
"""The experiment's CPU config, in a clone of the repository (the README's editable install)."""


def default_config() -> Path:
    """``configs/symmetry_cpu.toml`` of the clone this package runs from, wherever the
    command is run (it was looked up in the current folder)."""
    if not DEFAULT_CONFIG.is_file():
        raise ValueError(
            f"{DEFAULT_CONFIG} not found: the default config is configs/symmetry_cpu.toml of a "
            "clone of the repository (install it with pip install -e .); give a config's path"
        )
    return DEFAULT_CONFIG


def variant_config(base: Config, name: str) -> Config:
    """``base`` with the kernels and rotation augmentation of variant ``name`` (a symmetric
    variant's learnable kernels, if any, tied under D4)."""
    kernels, data = name.split("-")
    tied = (
        {"learnable_kernel_symmetry": "d4"}
        if kernels == "symmetric" and base.model.learnable_kernels
        else {}
    )
    model = base.replace("model", kernels=KERNELS[kernels], **tied)
    return model.replace("data", rotate=DATA[data])


def symmetry_experiment(
    base: Config | str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> dict:
    """Train the four variants (a finished one is reused, an interrupted one resumed), test
    each on symmetric perturbations; write ``symmetry_experiment.json``, ``.md`` and ``.png``.

    Args:
        base: an image-morphing config (``data.source = "images"``); ``None``: the
            repository's ``configs/symmetry_cpu.toml``.
        out_dir: the experiment's folder.
        epochs: override ``training.epochs``.
        steps: NCA steps of the test (default: the training horizon).
        seed: PRNG seed of the stochastic updates in the tests.
    """
    if base is None:
        base = default_config()
    base = base if isinstance(base, Config) else load_config(base)
    if base.data.source != "images":
        raise ValueError(
            f"the symmetry experiment needs an image-morphing config, got data.source = "
            f"{base.data.source!r}"
        )
    steps = base.horizon() if steps is None else steps
    if steps is None or steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out = Path(out_dir)
    rows: dict[str, dict] = {}
    inputs: dict[str, np.ndarray] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for name in VARIANTS:
        folder = out / name
        config = variant_config(base, name)
        log(f"{name}: kernels {', '.join(config.model.kernels)}; rotate {config.data.rotate}")
        # a finished or interrupted run goes on; one killed before its first checkpoint
        # left nothing worth keeping and starts afresh
        resume = (folder / CHECKPOINT_FILE).is_file()
        result = train(
            config,
            folder,
            epochs=epochs,
            resume=resume,
            overwrite=not resume,
            log=log,
            progress=progress,
        )
        sequence = np.load(folder / "train_data.npy")[0]
        report = symmetry_report(
            result.model, sequence[0], folder, steps=steps, key=jax.random.key(seed)
        )
        reference = np.load(folder / "symmetry_finals.npz")
        rows[name] = {
            "kernels": list(config.model.kernels),
            "rotate": config.data.rotate,
            "chosen_epoch": result.best_epoch,
            "error_at_horizon": float(relative_error(reference["identity"], sequence[-1])),
            **report,
        }
        inputs = {key: reference[f"input {key}"] for key in _names(reference)}
        outputs[name] = {key: reference[key] for key in _names(reference)}
    table = _table(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "symmetry_experiment.json", json.dumps(json_safe(rows), indent=2))
    write_text(out / "symmetry_experiment.md", table)
    names = list(inputs)
    viz.frames_figure(
        [[_render(inputs[n])] + [_render(outputs[v][n]) for v in VARIANTS] for n in names],
        out / "symmetry_experiment.png",
        row_labels=names,
        column_labels=["input", *(v.replace("-", "\n") for v in VARIANTS)],
        title=f"symmetric perturbations: the state at n = {steps} of each model",
    )
    log(table)
    return rows


def _names(finals) -> list[str]:
    return [k for k in finals.files if not k.startswith("input ")]


def _render(state: np.ndarray) -> np.ndarray:
    return viz.render(np.nan_to_num(state))


def _table(rows: dict) -> str:
    transforms = list(next(iter(rows.values()))["relative_error"])
    header = ["model", "horizon error", *transforms, "mean on-lattice", "noise floor"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, row in rows.items():
        cells = [name, f"{row['error_at_horizon']:.3f}"]
        cells += [f"{row['relative_error'][t]:.3f}" for t in transforms]
        cells += [f"{row['mean_on_lattice']:.3f}", f"{row['stochastic_noise_floor']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
