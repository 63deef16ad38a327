"""Score a 3-D Gray-Scott NCA on unseen 3-D initial conditions (REPRODUCTION.md, "Other
systems and dimensions").

    python examples/volumes/evaluate_3d.py RUN_FOLDER [--out DIR]

For each family the model was not trained on, two initial conditions (seed 2024) are drawn
on the run's lattice and simulated with the paper's finite-difference Gray-Scott to twice
the training horizon; the NCA, persistence and the spatial mean are scored by VRMSE and
relative error at 1x and 2x. Writes ``volumes.md`` and ``volumes.json`` and, per family,
``stnca evaluate``'s figure (middle slices and maximum projections).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from stnca.analysis.evaluate import evaluate, write_evaluation
from stnca.analysis.metrics import relative_error, vrmse
from stnca.data import gray_scott
from stnca.data.initial_volumes import initial_state
from stnca.serialization import load_model
from stnca.train import load_config

UNSEEN = ("sparse_noise", "fourier_high", "fourier_low", "seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or args.run / "volumes"
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(args.run / "config.toml")
    model = load_model(args.run / "model.eqx")
    dims, size = config.model.dimensions, config.data.size
    t = config.training.steps_between_frames
    frames = config.data.steps // (config.data.every or t)
    trained = config.data.families
    rows, report = [], {}
    for index, family in enumerate(f for f in UNSEEN if f not in trained):
        key = jax.random.fold_in(jax.random.key(2024), index)
        initial = initial_state(family, size, dims, key=key, batch=2)
        truth = np.asarray(gray_scott.simulate(initial, 2 * frames * t, every=t, dims=dims))
        evaluation = evaluate(model, truth, t)
        write_evaluation(evaluation, truth[0], out / family, title=f"3-D, unseen {family}")
        prediction = evaluation.prediction
        scores = {}
        for horizon, frame in (("1x", frames), ("2x", 2 * frames)):
            target = truth[:, frame]
            mean = np.broadcast_to(
                target.mean(axis=tuple(range(1, 1 + dims)), keepdims=True), target.shape
            )
            predictors = {"nca": prediction[:, frame], "persistence": truth[:, 0], "mean": mean}
            scores[horizon] = {
                name: {
                    "vrmse": float(np.mean(vrmse(p, target, dims))),
                    "relative_error": float(np.mean(relative_error(p, target, dims))),
                }
                for name, p in predictors.items()
            }
        if float(truth[:, -1].std(axis=tuple(range(1, 1 + dims))).max()) < 1e-3:
            # the PDE smooths it to the homogeneous state, which the spatial mean predicts
            rows.append(f"| {family} | decays to the homogeneous state: left out | |")
            continue
        report[family] = scores
        rows.append(
            f"| {family} | "
            + " | ".join(
                " / ".join(f"{scores[h][p]['vrmse']:.3f}" for p in ("nca", "persistence", "mean"))
                for h in ("1x", "2x")
            )
            + " |"
        )
    for horizon in ("1x", "2x"):
        report[f"mean_{horizon}"] = {
            p: float(np.mean([report[f][horizon][p]["vrmse"] for f in report if f in UNSEEN]))
            for p in ("nca", "persistence", "mean")
        }
    heading = f"3-D Gray-Scott NCA {args.run}: lattice {size}^{dims}, t = {t}"
    table = [
        f"{heading}, horizon {frames * t} steps",
        "",
        "| unseen family | VRMSE at 1x: NCA / persistence / mean "
        "| at 2x: NCA / persistence / mean |",
        "| --- | --- | --- |",
        *rows,
        "| **mean** | "
        + " | ".join(
            " / ".join(f"{report[f'mean_{h}'][p]:.3f}" for p in ("nca", "persistence", "mean"))
            for h in ("1x", "2x")
        )
        + " |",
    ]
    (out / "volumes.md").write_text("\n".join(table) + "\n")
    (out / "volumes.json").write_text(json.dumps(report, indent=2))
    print("\n".join(table))


if __name__ == "__main__":
    main()
