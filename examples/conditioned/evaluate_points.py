"""Evaluate a Gray-Scott NCA conditioned on (alpha, gamma) at parameter points it was trained
on, between them, and outside them, each against the PDE at the same point.

    stnca train configs/gray_scott_conditioned_cpu.toml --out runs/conditioned
    python examples/conditioned/evaluate_points.py runs/conditioned --out runs/conditioned/points

For every point the truth is the Gray-Scott simulation from an initial condition of the
training family (smooth blobs) drawn with a seed never used in training, to the training
horizon (and, with ``--horizons 2``, to twice it); the NCA runs from the same frame 0 with
``--condition alpha=... --condition gamma=...``, exactly as `stnca evaluate` does. Baselines:
persistence (frame 0 held) and the spatial mean of the truth at each frame.

Writes ``training_data.png`` (the training trajectories, species B), ``points.csv`` and
``points.md`` (relative error ``||x - y|| / ||y||`` at the horizon, per point and
predictor), and ``points.png`` (truth | NCA at half the horizon and at the horizon, one row
per point).

Then a parameter gradient: on a lattice three times as wide, alpha ramps across x over the
training points' range (gamma fixed); the NCA runs with the ramp as a condition field
(``--condition alpha=ramp.npy`` on the command line), the PDE with the same field
(``gray_scott.simulate(..., fields=...)``): ``gradient.png`` and the relative error.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

import stnca
from stnca import viz
from stnca.analysis import evaluate, predict
from stnca.analysis.inputs import run_config
from stnca.analysis.metrics import relative_error
from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition

TEST_SEED = 2024
"""Seed of the unseen initial conditions (training used ``data.seed`` and its fold-ins)."""

BETWEEN = [(0.038, 0.0605), (0.048, 0.0605), (0.036, 0.059)]
"""Points inside the training points' range, never trained on."""
OUTSIDE = [(0.025, 0.055), (0.0623, 0.06268), (0.046, 0.063), (0.020, 0.055)]
"""Points outside the training range (below, beyond, across)."""


def points_table(rows: list[dict], tests: int) -> str:
    """The results as a markdown table."""
    out = io.StringIO()
    out.write(
        "| (alpha, gamma) | kind | patterns: PDE, NCA, agree | NCA | persistence | spatial mean |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
    )
    for row in rows:
        out.write(
            f"| ({row['alpha']}, {row['gamma']}) | {row['kind']} | "
            f"{row['pattern']}, {row['nca_pattern']}, {row['agree']} of {tests} | "
            f"{row['nca']:.3f} | {row['persistence']:.3f} | {row['spatial_mean']:.3f} |\n"
        )
    return out.getvalue()


def patterned(finals: np.ndarray) -> np.ndarray:
    """Which final B fields hold a pattern (the others have decayed to a uniform state: less
    than 0.05 between their lowest and highest B)."""
    b = finals[..., 1]
    return b.max(axis=(1, 2)) - b.min(axis=(1, 2)) >= 0.05


GRADIENT_GAMMA = 0.0605
"""gamma of the parameter-gradient experiment (inside the training range)."""


def parameter_gradient(model, config, alphas: list[float], out: Path) -> float:
    """Run the NCA and the PDE across a ramp of alpha; return the relative error at the
    horizon and write ``gradient.png``."""
    data = config.data
    height, width = data.size, 3 * data.size
    ramp = np.linspace(min(alphas), max(alphas), width, dtype=np.float32)[None].repeat(height, 0)
    key = jax.random.key(TEST_SEED + 1)
    initial = np.asarray(initial_condition(data.initial_condition, (height, width), key=key))
    params = gray_scott.GrayScottParams(gamma=GRADIENT_GAMMA)
    fields = {"alpha": ramp}
    truth = np.asarray(
        gray_scott.simulate(initial, data.steps, every=data.steps, params=params, fields=fields)
    )
    start = model.with_conditions(initial[None], {"alpha": ramp, "gamma": GRADIENT_GAMMA})
    nca = predict(model, start, data.steps, every=data.steps)[0]
    error = float(relative_error(nca[-1], truth[-1]))
    figure = Figure(figsize=(9, 4.6))
    axes = figure.subplots(2, 1)
    for ax, field, name in zip(axes, (truth[-1], nca[-1]), ("PDE", "NCA"), strict=True):
        ax.imshow(field[..., 1], vmin=0.0, vmax=0.6, interpolation="nearest")
        ax.set_ylabel(name)
        ax.set_yticks([])
        ticks = np.linspace(0, width - 1, 5)
        ax.set_xticks(ticks, [f"{ramp[0, int(i)]:.4f}" for i in ticks])
    axes[1].set_xlabel("alpha (the condition field's value in each column)")
    figure.suptitle(
        f"species B at n = {data.steps} across an alpha ramp, gamma {GRADIENT_GAMMA}: "
        f"relative error {error:.3f}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(out / "gradient.png", dpi=100)
    return error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training run's folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--horizons", type=int, default=1, help="evaluate to k horizons")
    parser.add_argument("--tests", type=int, default=3, help="unseen initial conditions")
    args = parser.parse_args(argv)
    model = stnca.load_model(args.run / "model.eqx")
    config = run_config(args.run / "model.eqx")
    if config is None or model.condition_names != ("alpha", "gamma"):
        raise SystemExit("needs a run of a Gray-Scott model conditioned on alpha, gamma")
    data, t = config.data, config.training.steps_between_frames
    args.out.mkdir(parents=True, exist_ok=True)

    trained = np.load(args.run / "train_data.npy")
    points = [(p.alpha, p.gamma) for p in data.parameter_points(model.condition_names)]
    labels = [f"({alpha}, {gamma})" for alpha, gamma in points]
    shown = trained[:: data.trajectories, ..., :2]  # one trajectory per point
    picked = viz.evenly_spaced(shown.shape[1], 6)
    rgb = viz.render(shown[:, picked], channel=1, vmin=0.0, vmax=float(shown[..., 1].max()))
    viz.frames_figure(
        [list(r) for r in rgb],
        args.out / "training_data.png",
        row_labels=labels,
        column_labels=[f"n = {i * t}" for i in picked],
        title="training data: species B at each (alpha, gamma)",
    )

    steps = args.horizons * data.steps
    initial = np.stack(
        [
            initial_condition(
                data.initial_condition,
                data.size,
                key=jax.random.fold_in(jax.random.key(TEST_SEED), i),
            )
            for i in range(args.tests)
        ]
    )
    rows, panels, names = [], [], []
    kinds = [("trained", p) for p in points]
    kinds += [("between", p) for p in BETWEEN] + [("outside", p) for p in OUTSIDE]
    for kind, (alpha, gamma) in kinds:
        params = gray_scott.GrayScottParams(alpha=alpha, gamma=gamma)
        truth = np.asarray(
            gray_scott.simulate(initial, steps, every=t, params=params)
        )  # (R, T, ...)
        result = evaluate(model, truth, t, conditions={"alpha": alpha, "gamma": gamma})
        # the mean over the test initial conditions, at the last frame
        error = {who: float(m["relative_error"][:, -1].mean()) for who, m in result.metrics.items()}
        rows.append(
            {
                "alpha": alpha,
                "gamma": gamma,
                "kind": kind,
                "pattern": int(patterned(truth[:, -1]).sum()),
                "nca_pattern": int(patterned(result.prediction[:, -1]).sum()),
                "agree": int(
                    np.sum(patterned(truth[:, -1]) == patterned(result.prediction[:, -1]))
                ),
            }
            | error
        )
        half = truth.shape[1] // 2
        frames = [
            truth[0, half],
            result.prediction[0, half],
            truth[0, -1],
            result.prediction[0, -1],
        ]
        panels.append(list(viz.render(np.stack(frames), channel=1, vmin=0.0, vmax=0.6)))
        names.append(f"{alpha}, {gamma}\n{kind}")
    half_step = (steps // t // 2) * t
    viz.frames_figure(
        panels,
        args.out / "points.png",
        row_labels=names,
        column_labels=[
            f"PDE n={half_step}",
            f"NCA n={half_step}",
            f"PDE n={steps}",
            f"NCA n={steps}",
        ],
        title="one conditioned NCA vs the PDE at each (alpha, gamma): species B",
    )
    with open(args.out / "points.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = points_table(rows, args.tests)
    error = parameter_gradient(model, config, [alpha for alpha, _ in points], args.out)
    table += f"\nParameter gradient (alpha ramp, gamma {GRADIENT_GAMMA}): NCA error {error:.3f}\n"
    (args.out / "points.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
