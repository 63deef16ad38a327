"""One recipe across the zoo: the paper's minimal NCA trained on each pattern-forming system
(``stnca.data.systems``) in 2-D, tested on initial conditions of families it never saw, and
read back as an equation.

For each system, in ``OUT/SYSTEM``:

1. **Training** (``zoo_config``): the paper's minimal model (``C = 2 + hidden`` channels:
   identity and Laplacian kernels, relu, deterministic) on ``trajectories`` runs from the
   system's own initial-condition family (``noise`` for most, ``blobs`` for Gray-Scott,
   ``seeds`` for Fisher-KPP), ``S x S`` periodic, ``M = 16`` frames of ``4 x`` the
   system's frame interval, ``t = 16`` NCA steps per frame, with the demo's recipe (8
   mini-batches, Nadam 3e-3 decaying, the state penalty, restarts every 64 epochs, the
   model chosen by free rollouts). Data in ``minmax`` units; the model predicts physical
   ones.
2. **Test** (``zoo_scores``): two draws (seed 2024) of each other family (``noise``,
   ``blobs``, ``seeds``, not the training one, never ``uniform``), simulated to twice the
   horizon; VRMSE (``stnca.analysis.metrics.vrmse``: 1 is the spatial mean) at 1x and 2x
   the horizon for the NCA, persistence and the spatial mean, averaged over families. A
   family the system smooths to its homogeneous state by twice the horizon (the truth's
   spatial standard deviation below ``FLAT`` times its range at frame 0) is reported but
   left out of the averages: the spatial mean predicts it exactly, and VRMSE, divided by a
   vanishing variance, says nothing.
3. **Equation** (optional, needs PySINDy): ``stnca.analysis.extraction.extract_equation``
   on the model's rollouts from the test's first initial states, with the Laplacian in the
   library, beside the system's true terms (``TRUE_TERMS``).

``zoo_experiment`` writes ``zoo.json``, ``zoo.md`` and ``zoo.png`` (truth and NCA at 2x the
horizon, one row per system). A finished system (its ``model.eqx`` and ``scores.json``) is
reused, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .. import viz
from .._files import json_safe, write_text
from ..analysis.evaluate import predict
from ..analysis.metrics import vrmse
from ..data import systems
from ..data.io import save_array
from ..model import parameter_count
from ..serialization import load_model
from ..train import Config, config_from_dict, train
from ..train.run_folder import METRICS_FILE, read_metrics

FRAMES = 16
"""Training frames ``M`` per trajectory."""
STRIDE = 4
"""A training frame is this many of the system's own frame intervals."""
STEPS_PER_FRAME = 16
"""NCA steps ``t`` per frame."""
TEST_SEED = 2024
TEST_DRAWS = 2
FLAT = 1e-3
"""A truth whose spatial standard deviation at 2x the horizon is below this fraction of its
range at frame 0 has gone homogeneous (left out of the averages)."""

TRUE_TERMS: dict[str, str] = {
    "gray_scott": "A: lap(A), A*B^2, A, 1; B: lap(B), A*B^2, B",
    "brusselator": "u: lap(u), u, u^2*v, 1; v: lap(v), u, u^2*v",
    "fitzhugh_nagumo": "u: lap(u), u, u^3, v, 1; v: lap(v), u, v",
    "swift_hohenberg": "u: u, lap(u), lap(lap(u)), u^2, u^3",
    "allen_cahn": "u: lap(u), u, u^3",
    "cahn_hilliard": "u: lap(u^3), lap(u), lap(lap(u))",
    "fisher_kpp": "u: lap(u), u, u^2",
}
"""The terms of each system's right-hand side (``stnca/data/systems``' equations):
``lap(lap(u))`` and ``lap(u^3)`` are not in a 3x3 stencil's reach in one step."""


def zoo_config(
    name: str, *, size: int = 32, trajectories: int = 4, epochs: int = 400, seed: int = 0
) -> Config:
    """The shared recipe for system ``name`` (the module's docstring)."""
    chosen = systems.system(name)
    every = STRIDE * type(chosen).every
    return config_from_dict(
        {
            "model": {"hidden_channels": 6, "kernels": ["identity", "laplacian"]},
            "data": {
                "source": "pde",
                "system": name,
                "size": size,
                "steps": FRAMES * every,
                "every": every,
                "trajectories": trajectories,
                "seed": seed,
            },
            "training": {
                "epochs": epochs,
                "steps_between_frames": STEPS_PER_FRAME,
                "minibatches": 8,
                "update_every": "minibatch",
                "learning_rate": 3e-3,
                "lr_decay_rate": 0.1,
                "lr_decay_epochs": epochs,
                "state_penalty": 0.01,
                "restart_every": 64,
                "restart_hidden_noise": 0.1,
                "select_by": "rollout",
                "checkpoint_every": max(1, epochs // 4),
                "seed": seed,
            },
        }
    )


def unseen_families(name: str) -> tuple[str, ...]:
    """The families a system's model is tested on: every one but its training family and
    ``uniform``."""
    trained = type(systems.system(name)).initial_condition
    return tuple(f for f in systems.FAMILIES if f not in (trained, "uniform"))


def zoo_scores(model, name: str, size: int) -> dict[str, Any]:
    """VRMSE of the NCA, persistence and the spatial mean at 1x and 2x the horizon on the
    test families (the module's docstring), and the first truth and prediction."""
    every = STRIDE * type(systems.system(name)).every
    scores: dict[str, Any] = {"families": {}}
    example = None
    for index, family in enumerate(unseen_families(name)):
        key = jax.random.fold_in(jax.random.key(TEST_SEED), index)
        truth = systems.simulate_systems(
            name, family, 2 * FRAMES * every, every=every, size=size, batch=TEST_DRAWS, key=key
        )
        prediction = predict(
            model, truth[:, 0], 2 * FRAMES * STEPS_PER_FRAME, every=STEPS_PER_FRAME
        )
        row: dict[str, Any] = {}
        spread = float(np.ptp(truth[:, 0])) or 1.0
        row["homogeneous"] = bool(truth[:, -1].std(axis=(1, 2)).max() < FLAT * spread)
        for horizon, frame in (("1x", FRAMES), ("2x", 2 * FRAMES)):
            target = truth[:, frame]
            mean = np.broadcast_to(target.mean(axis=(1, 2), keepdims=True), target.shape)
            row[horizon] = {
                "nca": float(np.mean(vrmse(prediction[:, frame], target))),
                "persistence": float(np.mean(vrmse(truth[:, 0], target))),
                "spatial_mean": float(np.mean(vrmse(mean, target))),
            }
        scores["families"][family] = row
        if example is None:
            example = (truth[0], prediction[0], truth[:, 0])
    kept = [r for r in scores["families"].values() if not r["homogeneous"]]
    for horizon in ("1x", "2x"):
        scores[horizon] = {
            predictor: float(np.mean([r[horizon][predictor] for r in kept])) if kept else None
            for predictor in ("nca", "persistence", "spatial_mean")
        }
    scores["example"] = example
    return scores


def _train_or_reuse(config: Config, folder: Path, log: Callable[[str], None]) -> tuple[Any, float]:
    """The trained model of ``folder`` (trained now unless a finished run is there) and its
    training time in seconds."""
    model_file = folder / "model.eqx"
    if not (folder / "scores.json").is_file():
        if folder.exists() and (folder / "checkpoint.eqx").is_file():
            train(config, folder, resume=True, progress=False, log=log)
        else:
            train(config, folder, overwrite=True, progress=False, log=log)
    rows = read_metrics(folder / METRICS_FILE)
    return load_model(model_file), rows[-1]["elapsed_seconds"]


def _extract(model_file: Path, initial: np.ndarray, name: str, folder: Path, log) -> str | None:
    """The equation extracted from the model's rollouts (``None`` without PySINDy)."""
    try:
        import pysindy  # noqa: F401
    except ImportError:
        log("pysindy is not installed (pip install -e '.[extract]'): no equation extracted")
        return None
    from ..analysis.extract_report import equation_text
    from ..analysis.extraction import extract_equation

    init = folder / "extract_init.npy"
    save_array(init, initial)
    every = STRIDE * type(systems.system(name)).every
    dt = every * systems.system(name).dt / STEPS_PER_FRAME
    try:
        extraction = extract_equation(
            model_file,
            out=folder / "extract",
            init=str(init),
            steps=FRAMES * STEPS_PER_FRAME,
            dt=dt,
            degree=3,
            terms="lap",
            log=lambda _: None,
        )
    except ValueError as error:  # e.g. a model whose rollouts do not change: say so
        return f"not extracted: {error}"
    lines = equation_text(extraction.equation).splitlines()
    return "; ".join(line for line in lines if line.strip() and not line.startswith("#"))


def zoo_experiment(
    out: str | os.PathLike,
    names: Sequence[str] | None = None,
    *,
    size: int = 32,
    epochs: int = 400,
    seed: int = 0,
    extract: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, test and read back the minimal NCA on each system of ``names`` (default all
    of ``stnca.data.systems.SYSTEMS``); write ``zoo.json``, ``zoo.md`` and ``zoo.png`` in
    ``out`` and return the JSON report."""
    names = tuple(systems.SYSTEMS) if names is None else tuple(names)
    for name in names:
        systems.system(name)  # refuses an unknown name before any training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"size": size, "epochs": epochs, "seed": seed, "systems": {}}
    examples = []
    for name in names:
        folder = out / name
        config = zoo_config(name, size=size, epochs=epochs, seed=seed)
        log(f"{name}: training {epochs} epochs on {size}x{size}")
        started = time.perf_counter()
        model, seconds = _train_or_reuse(config, folder, log)
        scores = zoo_scores(model, name, size)
        example = scores.pop("example")
        examples.append((name, example))
        equation = None
        if extract:
            equation = _extract(folder / "model.eqx", example[2], name, folder, log)
        channels = len(type(systems.system(name)).channels)
        entry = {
            "channels": list(type(systems.system(name)).channels),
            "parameters": parameter_count(channels, 6, 2),
            "training_seconds": seconds,
            "scores": scores,
            "equation": equation,
            "true_terms": TRUE_TERMS[name],
        }
        write_text(folder / "scores.json", json.dumps(json_safe(entry), indent=2))
        report["systems"][name] = entry
        took = time.perf_counter() - started
        log(f"{name}: VRMSE at 2x {scores['2x']}, {took:.0f} s")
    write_text(out / "zoo.json", json.dumps(json_safe(report), indent=2))
    write_text(out / "zoo.md", zoo_table(report))
    _figure(examples, out / "zoo.png")
    return report


def zoo_table(report: dict[str, Any]) -> str:
    """The experiment's Markdown table."""
    lines = [
        "| system | weights | train s | VRMSE 1x: NCA / persistence / mean "
        "| 2x: NCA / persistence / mean | extracted | true terms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in report["systems"].items():
        s = entry["scores"]
        cells = [
            " / ".join(
                "-" if s[h][p] is None else f"{s[h][p]:.3f}"
                for p in ("nca", "persistence", "spatial_mean")
            )
            for h in ("1x", "2x")
        ]
        equation = (entry["equation"] or "-").replace("\n", "; ").replace("|", "\\|")
        lines.append(
            f"| {name} | {entry['parameters']} | {entry['training_seconds']:.0f} | {cells[0]} "
            f"| {cells[1]} | {equation} | {entry['true_terms']} |"
        )
    return "\n".join(lines) + "\n"


def _figure(examples, path: Path) -> None:
    rows, labels = [], []
    for name, (truth, prediction, _) in examples:
        low, high = float(truth[..., -1].min()), float(truth[..., -1].max())
        frames = [truth[0], truth[FRAMES], truth[-1], prediction[FRAMES], prediction[-1]]
        rows.append([viz.render(f[None], channel=-1, vmin=low, vmax=high)[0] for f in frames])
        labels.append(name)
    columns = ["truth n = 0", "truth 1x", "truth 2x", "NCA 1x", "NCA 2x"]
    viz.frames_figure(rows, path, row_labels=labels, column_labels=columns, title="the zoo")
