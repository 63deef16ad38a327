"""Which training settings matter: train a config with settings changed, several seeds each,
and test every run on an unseen initial condition beyond the training horizon.

    python benchmarks/ablation.py stnca/presets/demo.toml --out runs/ablation --seeds 0 1 \
        --variant "recipe" \
        --variant "no-penalty: training.state_penalty=0" \
        --variant "per-epoch: training.update_every='epoch'"

A variant is ``NAME: KEY=VALUE; KEY=VALUE`` (values in TOML syntax; none: the config as it
is). Every run trains into ``OUT/NAME/seedS`` (a finished run is skipped, so the script can
be re-run to fill gaps) with ``training.seed = S``; the Gray-Scott test is the demo's:
an unseen ``high_frequency`` initial condition on a 64x64 lattice, run to twice the
training horizon (``--test FILE.npy`` gives a trajectory of your own instead, with the
config's frame interval). For an image sequence the test is the morph report: the error at
the training horizon and at 2x and 4x it against the final image. ``OUT/results.csv`` gets
one row per run and ``OUT/results.md`` the mean and standard deviation per variant.
``--jobs N`` runs N trainings at once in separate processes (for a GPU; on a 2-core CPU
keep 1).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

PDE_COLUMNS = (
    "nca_horizon",
    "persistence_horizon",
    "mean_horizon",
    "nca_twice",
    "persistence_twice",
    "mean_twice",
    "ratio_twice",
    "final_nca_twice",
)
IMAGE_COLUMNS = ("image_errors", "horizon", "twice", "four_times", "final_four_times")
COLUMNS = (
    "variant",
    "seed",
    "settings",
    "untrained_loss",
    "lowest_loss",
    "lowest_reinitialised_loss",
    "chosen_epoch",
    *PDE_COLUMNS,
    *IMAGE_COLUMNS,
    "seconds",
)


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    name, _, settings = text.partition(":")
    changes = {}
    for item in filter(None, (part.strip() for part in settings.split(";"))):
        key, _, value = item.partition("=")
        changes[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
    return name.strip(), changes


def configure(config_path: str, changes: dict[str, object], seed: int, epochs: int | None):
    from stnca.train import load_config

    config = load_config(config_path)
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if isinstance(value, list):
            value = tuple(value)
        config = config.replace(section, **{name: value})
    config = config.replace("training", seed=seed)
    if epochs is not None:
        config = config.replace("training", epochs=epochs)
    return config


def test_truth(config, test: str | None) -> tuple[np.ndarray, int]:
    """The unseen trajectory (R, T, H, W, C) in physical units, and the horizon in frames."""
    from stnca.demo import unseen_trajectory

    if test is not None:
        truth = np.load(test)
        truth = truth if truth.ndim == 5 else truth[None]
        return truth, (truth.shape[1] - 1) // 2
    t = config.training.steps_between_frames
    return unseen_trajectory(2 * config.data.steps, t)[None], config.data.steps // t


def pde_scores(config, out: Path, result, test: str | None) -> dict:
    from stnca.analysis import evaluate
    from stnca.serialization import load_model

    truth, horizon = test_truth(config, test)
    t = config.training.steps_between_frames
    chosen = evaluate(result.model, truth, t)
    final = evaluate(load_model(out / "final.eqx"), truth, t)

    def error(evaluation, who: str, frame: int) -> float:
        return evaluation.at_frame(frame)[who]["relative_error"]

    twice = chosen.at_frame(2 * horizon)
    _pde_figure(truth, chosen, t, out)
    return {
        "nca_horizon": error(chosen, "nca", horizon),
        "persistence_horizon": error(chosen, "persistence", horizon),
        "mean_horizon": error(chosen, "spatial_mean", horizon),
        "nca_twice": twice["nca"]["relative_error"],
        "persistence_twice": twice["persistence"]["relative_error"],
        "mean_twice": twice["spatial_mean"]["relative_error"],
        "ratio_twice": twice["nca"]["euclidean"] / twice["persistence"]["euclidean"],
        "final_nca_twice": error(final, "nca", 2 * horizon),
    }


def _pde_figure(truth: np.ndarray, evaluation, t: int, out: Path) -> None:
    """The chosen model on the unseen initial condition: evaluation.png and .json."""
    from stnca import viz
    from stnca.analysis.evaluate import json_safe

    viz.evaluation_figure(
        truth[0],
        evaluation.prediction[0],
        t,
        out / "evaluation.png",
        title="unseen initial condition: truth vs NCA (chosen model)",
    )
    (out / "evaluation.json").write_text(json.dumps(json_safe(evaluation.to_json()), indent=2))


def image_scores(config, out: Path, result) -> dict:
    from stnca.analysis.morphing import morph_report
    from stnca.serialization import load_model

    sequence = np.load(out / "train_data.npy")[0]
    t = config.training.steps_between_frames
    report = morph_report(result.model, sequence, t, out, videos=False)
    final = morph_report(load_model(out / "final.eqx"), sequence, t, out / "final", videos=False)
    later = {row["multiple"]: row["relative_error"] for row in report["extrapolation"]}
    return {
        "image_errors": " ".join(f"{row['relative_error']:.3f}" for row in report["images"]),
        "horizon": report["images"][-1]["relative_error"],
        "twice": later[2],
        "four_times": later[4],
        "final_four_times": final["extrapolation"][-1]["relative_error"],
    }


def run_one(args, name: str, changes: dict[str, object], seed: int) -> dict:
    from stnca.train import train

    out = Path(args.out) / name / f"seed{seed}"
    summary = out / "ablation.json"
    if summary.is_file():
        return json.loads(summary.read_text())
    config = configure(args.config, changes, seed, args.epochs)
    start = time.perf_counter()
    resume = (out / "checkpoint.eqx").is_file()
    out.mkdir(parents=True, exist_ok=True)
    with open(Path(args.out) / name / f"seed{seed}.log", "a") as log_file:

        def log(line: str) -> None:
            print(line, file=log_file, flush=True)

        result = train(config, out, resume=resume, overwrite=not resume, progress=False, log=log)
    seconds = time.perf_counter() - start
    row = {
        "variant": name,
        "seed": seed,
        "settings": "; ".join(f"{k}={v}" for k, v in changes.items()) or "(as configured)",
        "untrained_loss": result.metrics[0]["loss"],
        "lowest_loss": result.lowest_loss,
        "lowest_reinitialised_loss": min(
            m["reinitialised_loss"] for m in result.metrics if m["epoch"] > 0
        ),
        "chosen_epoch": result.best_epoch,
        "seconds": seconds,
    }
    if config.data.source == "images":
        row.update(image_scores(config, out, result))
    else:
        row.update(pde_scores(config, out, result, args.test))
    row = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    summary.write_text(json.dumps(row, indent=2))
    return row


def table(rows: list[dict]) -> str:
    kind = ("nca_horizon", "nca_twice", "ratio_twice", "final_nca_twice", "mean_twice")
    if rows and rows[0].get("horizon") is not None:
        kind = ("horizon", "twice", "four_times", "final_four_times")
    shown = ("lowest_loss", "chosen_epoch", *kind, "seconds")
    lines = [
        "| variant | settings | runs | " + " | ".join(shown) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in shown) + " |",
    ]
    for name in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == name]
        cells = []
        for column in shown:
            values = np.array([np.nan if r[column] is None else r[column] for r in group], float)
            if column == "chosen_epoch" or column == "seconds":
                cells.append(" / ".join(f"{v:.0f}" for v in values))
            else:
                cells.append(
                    f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"
                    + (f" ({np.isnan(values).sum()} diverged)" if np.isnan(values).any() else "")
                )
        lines.append(
            f"| {name} | {group[0]['settings']} | {len(group)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--test", default=None, help="unseen trajectory .npy (default: demo's)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--collect", action="store_true", help="only gather finished runs")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    variants = [parse_variant(v) for v in (args.variant or ["as-configured"])]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = [(name, changes, seed) for name, changes in variants for seed in args.seeds]
    if args.only is not None:  # a worker process: one run
        name, seed = args.only.rsplit("/", 1)
        changes = dict(variants)[name]
        run_one(args, name, changes, int(seed))
        return
    if args.jobs > 1 and not args.collect:
        pending = list(runs)
        active: list[subprocess.Popen] = []
        base = [sys.executable, __file__, *sys.argv[1:]]
        while pending or active:
            while pending and len(active) < args.jobs:
                name, _, seed = pending.pop(0)
                active.append(subprocess.Popen(base + ["--only", f"{name}/{seed}"]))
            time.sleep(1)
            active = [p for p in active if p.poll() is None]
    rows = []
    for name, changes, seed in runs:
        summary = Path(args.out) / name / f"seed{seed}" / "ablation.json"
        if args.jobs > 1 or args.collect:  # the workers trained; only gather
            if summary.is_file():
                rows.append(json.loads(summary.read_text()))
            else:
                print(f"{name} seed {seed}: no result", file=sys.stderr)
            continue
        try:
            rows.append(run_one(args, name, changes, seed))
        except Exception as error:  # one failed run must not lose the others
            print(f"{name} seed {seed}: {type(error).__name__}: {error}", file=sys.stderr)
    with open(Path(args.out) / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    text = table(rows)
    (Path(args.out) / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    main()
