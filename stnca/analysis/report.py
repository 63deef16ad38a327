"""The ``stnca analyse`` reports: run an analysis, write its figure (PNG) and numbers (JSON).

Each function takes the initial condition in physical units, works in the model's units
(see ``perturbation``, ``adversarial``, ``symmetry``) and shows states in physical units.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import viz
from .._files import atomic_path, json_safe, write_text
from ..model import NCA
from .adversarial import MODES, adversarial
from .inputs import data_bounds
from .perturbation import final_state, local_perturbations, nca_run, pde_run, perturbed_finals
from .symmetry import symmetry


def _renderer(model: NCA, states: Sequence[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """States in model units -> RGB in physical units, one colour range for all of them."""
    physical = [np.asarray(model.decode(jnp.asarray(s))) for s in states]
    low = min(float(np.min(p)) for p in physical)
    high = max(float(np.max(p)) for p in physical)

    def render(state: np.ndarray) -> np.ndarray:
        shown = np.asarray(model.decode(jnp.asarray(state)))
        return viz.render(np.nan_to_num(shown), vmin=low, vmax=high)

    return render


def _write_json(path: Path, report: dict) -> None:
    write_text(path, json.dumps(json_safe(report), indent=2))


def perturb_report(
    model: NCA,
    initial: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    steps: int,
    size: int = 1,
    kind: str = "invert",
    stride: int = 1,
    threshold: float = 0.1,
    key: jax.Array,
    pde: tuple[Callable, int, str] | None = None,
    montage: int = 6,
    chunk: int = 64,
) -> dict:
    """Local perturbations (Fig 10): ``perturb.png`` and ``perturb.json`` in ``out_dir``
    (and ``perturb_pde.png`` with ``pde``).

    Args:
        pde: ``(step, pde_steps, name)`` to count the same for the PDE the data came from
            (``step(state) -> state`` in physical units, ``pde_steps`` of them in the time
            the NCA takes ``steps``).
        chunk: perturbations run at once (bounds memory).
        montage: how many final states to show (at evenly spaced positions, the most
            sensitive one first).
    """
    out = Path(out_dir)
    k_noise, k_run = jax.random.split(key)
    x0 = np.asarray(model.encode(jnp.asarray(initial, jnp.float32)))
    bounds = data_bounds(model, x0)
    settings = dict(
        steps=steps,
        size=size,
        kind=kind,
        stride=stride,
        threshold=threshold,
        bounds=bounds,
        key=k_noise,
        chunk=chunk,
    )
    run = nca_run(model, steps, key=k_run)
    result = local_perturbations(run, x0, **settings)
    report = {"nca": result.summary(), "counts": result.counts.tolist()}
    pde_result = None
    if pde is not None:
        step, pde_steps, name = pde
        pde_result = local_perturbations(pde_run(step, pde_steps, model), x0, **settings)
        report["pde"] = {
            "name": name,
            "pde_steps": pde_steps,
            **pde_result.summary(),
            "counts": pde_result.counts.tolist(),
        }
    render = _perturb_figure(model, out, x0, run, result, montage, settings)
    if pde is not None:
        _perturb_pde_figure(out, render, x0, result, pde_result, pde, settings)
    _write_json(out / "perturb.json", report)
    return report


def _montage(counts: np.ndarray, montage: int) -> list[int]:
    """The flat indices of the positions shown: the most sensitive one, then evenly spaced
    ones, ``montage`` in all."""
    flat = counts.reshape(-1)
    chosen = [int(np.argmax(flat))]
    chosen += [int(i) for i in np.linspace(0, flat.size - 1, montage + 1).round()[1:-1]]
    return list(dict.fromkeys(chosen))[:montage]


def _extent(
    size: int, stride: int, grid_shape: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The heatmap's extent: pixel (i, j) is the patch at (i s, j s), centred on the patch."""
    centre, rows, columns = (size - 1) / 2, *grid_shape
    return (
        centre - stride / 2,
        centre + (columns - 0.5) * stride,
        centre + (rows - 0.5) * stride,
        centre - stride / 2,
    )


def _perturb_figure(model, out, x0, run, result, montage, settings) -> Callable:
    """``perturb.png``: the heatmap of changed cells beside the initial condition, the
    unperturbed state at ``n`` and the montage of perturbed final states; returns the
    renderer (its colour range is the PDE figure's too)."""
    steps, size, kind = settings["steps"], settings["size"], settings["kind"]
    threshold = settings["threshold"]
    flat = result.counts.reshape(-1)
    chosen = _montage(result.counts, montage)
    positions = result.positions[chosen]
    finals = perturbed_finals(
        run, x0, positions, size=size, kind=kind, bounds=settings["bounds"], key=settings["key"]
    )
    render = _renderer(model, [x0, result.reference, *finals])
    centre = (size - 1) / 2
    out.mkdir(parents=True, exist_ok=True)
    viz.heatmap_figure(
        result.counts,
        [render(x0), render(result.reference), *[render(f) for f in finals]],
        out / "perturb.png",
        extent=_extent(size, settings["stride"], result.grid_shape),
        panel_labels=["initial condition (n = 0)", f"unperturbed, n = {steps}"]
        + [
            f"{kind} at ({r}, {c}): {int(flat[i])}"
            for (r, c), i in zip(positions, chosen, strict=True)
        ],
        markers=[None, None] + [(r + centre, c + centre) for r, c in positions],
        heatmap_label="changed cells per perturbed position",
        colorbar_label=f"cells changed by > {threshold}",
        title=f"local perturbations ({size}x{size} {kind}) of the initial condition: "
        f"cells of the state at n = {steps} that change",
    )
    return render


def _perturb_pde_figure(out, render, x0, result, pde_result, pde, settings) -> None:
    """``perturb_pde.png``: the same heatmap for the PDE, beside the initial condition and
    the PDE's unperturbed state, in the NCA figure's colours (``render``)."""
    _, pde_steps, name = pde
    viz.heatmap_figure(
        pde_result.counts,
        [render(x0), render(pde_result.reference)],
        out / "perturb_pde.png",
        extent=_extent(settings["size"], settings["stride"], result.grid_shape),
        panel_labels=["initial condition", f"{name}, unperturbed, {pde_steps} PDE steps"],
        heatmap_label="changed cells per perturbed position",
        colorbar_label=f"cells changed by > {settings['threshold']}",
        title=f"the same perturbations of the {name} PDE itself",
    )


def adversarial_report(
    model: NCA,
    initial: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    steps: int,
    modes: Sequence[str] = MODES,
    iterations: int = 200,
    learning_rate: float = 0.01,
    budget: float | None = None,
    key: jax.Array,
    snapshots: int = 4,
) -> dict:
    """Adversarial initial conditions (Fig 11): ``adversarial.png`` / ``.json`` in ``out_dir``.

    The figure's rows: unperturbed, then per mode the optimised perturbation and its random
    control of the same norm; columns: snapshots from 0 to ``n`` and the extrapolation to 2n.
    """
    out = Path(out_dir)
    x0 = jnp.asarray(model.encode(jnp.asarray(initial, jnp.float32)))
    bounds = data_bounds(model, np.asarray(x0))
    results = [
        adversarial(
            model,
            x0,
            steps,
            mode=m,
            iterations=iterations,
            learning_rate=learning_rate,
            budget=budget,
            bounds=bounds,
            key=key,
        )
        for m in modes
    ]
    rollout_key = results[0].rollout_key
    times = [int(n) for n in np.linspace(0, steps, snapshots + 1).round()] + [2 * steps]
    rows, labels = [], []
    starts = [("unperturbed", x0)]
    for r in results:
        starts.append((f"{r.mode}:\noptimised", x0 + r.perturbation))
        starts.append((f"{r.mode}:\nrandom control", x0 + r.control))
    states = [
        [np.asarray(final_state(model, x, n, rollout_key)) if n else np.asarray(x) for n in times]
        for _, x in starts
    ]
    render = _renderer(model, [s for row in states for s in row])
    for (label, _), row in zip(starts, states, strict=True):
        rows.append([render(s) for s in row])
        labels.append(label)
    out.mkdir(parents=True, exist_ok=True)
    viz.frames_figure(
        rows,
        out / "adversarial.png",
        row_labels=labels,
        column_labels=[f"n = {n}" for n in times[:-1]] + [f"n = {2 * steps} (2n)"],
        title=f"adversarial initial conditions for n = {steps} (kappa = ||x~|| - "
        f"||Phi^n(x0 + x~) - Phi^n(x0)||), each beside a random perturbation of the same norm",
    )
    report = {
        "steps": steps,
        "units": "model units: norms and changes of the observable channels in the units the "
        "model works in (images and min-max scaled data: [0, 1])",
        "bounds": list(bounds),
        "budget": budget,
        "learning_rate": learning_rate,
        "modes": {r.mode: r.numbers for r in results},
    }
    _write_json(out / "adversarial.json", report)
    return report


def symmetry_report(
    model: NCA,
    initial: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    steps: int,
    key: jax.Array,
) -> dict:
    """Symmetry perturbations (Fig 12): ``symmetry.png``, ``symmetry.json`` and
    ``symmetry_finals.npz`` (inputs ``"input NAME"`` and states at ``n`` per transformation,
    physical units) in ``out_dir``.

    Columns: the transformed input, the NCA's state at ``n`` from it, and the transformed
    unperturbed state at ``n`` it should equal.
    """
    out = Path(out_dir)
    x0 = np.asarray(model.encode(jnp.asarray(initial, jnp.float32)))
    result = symmetry(model, x0, steps, key=key)
    names = ["identity", *result.errors]
    inputs = [x0, *result.inputs.values()]
    outputs = [result.reference, *result.outputs.values()]
    expected = [result.reference, *result.expected.values()]
    render = _renderer(model, inputs + outputs)
    out.mkdir(parents=True, exist_ok=True)
    errors = {"identity": 0.0, **result.errors}
    viz.frames_figure(
        [
            [render(a), render(b), render(c)]
            for a, b, c in zip(inputs, outputs, expected, strict=True)
        ],
        out / "symmetry.png",
        row_labels=[f"{n}\nerror {errors[n]:.3f}" for n in names],
        column_labels=["input T x0", f"NCA: Phi^{steps}(T x0)", f"expected: T Phi^{steps}(x0)"],
        title="symmetry perturbations",
    )
    report = {"steps": steps, **result.to_json()}
    finals = {"identity": result.reference, **result.outputs}
    finals.update({f"input {n}": x for n, x in zip(names, inputs, strict=True)})
    with atomic_path(out / "symmetry_finals.npz") as temporary:
        arrays = {n: np.asarray(model.decode(x), np.float32) for n, x in finals.items()}
        np.savez(temporary, allow_pickle=False, **arrays)
    _write_json(out / "symmetry.json", report)
    return report
