"""N seeds of one config: N sequential ``train()`` calls against one ``train_seeds`` call.

    python benchmarks/seeds_speedup.py [--seeds 4] [--epochs 8]

The configuration is ``stnca/presets/demo.toml`` (Gray-Scott, 32x32, 4 trajectories of
16 transitions, t = 32) with fewer epochs, a rollout validation and a checkpoint every 4
epochs. Each way runs in a fresh Python process (so that neither reuses the other's
compilations) and is timed from the first training call to the last return: data, compiling,
training, validation and every file written, nothing excluded. The time per epoch after
compilation is read from each run's ``metrics.csv`` (``elapsed_seconds`` from epoch 1 to the
last epoch, divided by the epochs in between): for the sequential runs it is the sum over
the N runs, i.e. the time to advance all N seeds by one epoch. Prints one line per way and
the ratios sequential / together (> 1: together is faster).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def config(epochs: int):
    from stnca.demo import DEMO_CONFIG
    from stnca.train import load_config

    return load_config(DEMO_CONFIG).replace(
        "training", epochs=epochs, validate_every=4, checkpoint_every=4
    )


def per_epoch(metrics) -> float:
    """Seconds per epoch after epoch 1 (which includes compiling the epoch function)."""
    first, last = metrics[1], metrics[-1]
    return (last["elapsed_seconds"] - first["elapsed_seconds"]) / (last["epoch"] - first["epoch"])


def measure(way: str, seeds: int, epochs: int, folder: Path) -> dict[str, float]:
    """Train ``seeds`` seeds one way in this process; the wall time and time per epoch."""
    from stnca.train import train, train_seeds

    settings = config(epochs)
    quiet = dict(progress=False, log=lambda _: None)
    outs = [folder / way / f"seed{k}" for k in range(seeds)]
    start = time.perf_counter()
    if way == "sequential":
        results = [
            train(settings.replace("training", seed=k), out, **quiet) for k, out in enumerate(outs)
        ]
    else:
        results = train_seeds(settings, outs, list(range(seeds)), **quiet)
    wall = time.perf_counter() - start
    epoch_times = [per_epoch(result.metrics) for result in results]
    step = sum(epoch_times) if way == "sequential" else epoch_times[0]
    return {"wall": wall, "per_epoch": step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--way", choices=["sequential", "together"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (epoch 1 includes the compilation)")
    if args.way:  # one way, in a child process
        print(json.dumps(measure(args.way, args.seeds, args.epochs, args.folder)))
        return
    print(f"demo config, 32x32, {args.epochs} epochs, {args.seeds} seeds")
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        for way in ("sequential", "together"):
            command = [sys.executable, __file__, "--way", way, "--folder", folder]
            command += ["--seeds", str(args.seeds), "--epochs", str(args.epochs)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            timings[way] = json.loads(output.strip().splitlines()[-1])
            label = f"{args.seeds} x train()" if way == "sequential" else "train_seeds()"
            print(
                f"{label:>14}: wall {timings[way]['wall']:7.1f} s   per epoch (all seeds, after "
                f"compiling) {timings[way]['per_epoch']:6.2f} s"
            )
    sequential, together = timings["sequential"], timings["together"]
    print(
        f"speed-up (sequential / together): wall {sequential['wall'] / together['wall']:.2f}x, "
        f"per epoch {sequential['per_epoch'] / together['per_epoch']:.2f}x"
    )


if __name__ == "__main__":
    main()
