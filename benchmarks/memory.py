"""Peak memory of Gray-Scott training against lattice size S and frame interval t.

Each setting trains 2 epochs of the paper's model (C = 8, identity + Laplacian) on 4
Gray-Scott trajectories of 4 transitions (R x M = 16 transitions, one mini-batch of 16) in
its own process, and reports that process's peak resident memory (max RSS, which includes
the ~0.4 GB of Python, JAX and XLA themselves) and the seconds per epoch. Memory per
mini-batch grows as (transitions at once) x S^2 x C x (t + 2) floats with every step
rematerialised (one state kept per step); ``remat_every = t`` keeps one state per
transition but a whole block's activations while it is recomputed (measured: more).

    python benchmarks/memory.py [--sizes 64,128,256] [--steps 32,64]

On a GPU the same script reports JAX's ``peak_bytes_in_use`` beside the RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

SETTINGS = [
    ("defaults (every step rematerialised)", {}),
    ("rollout_chunk = 4", {"rollout_chunk": 4}),
    ("remat_every = t", {"remat_every": None}),
]


def worker(size: int, t: int, options: dict) -> dict:
    import time

    import jax

    from stnca.train import train
    from stnca.train.config import config_from_dict

    training = {"steps_between_frames": t, "minibatches": 1, "epochs": 2, "validate_every": 1}
    training |= {k: (t if v is None else v) for k, v in options.items()}
    config = config_from_dict(
        {
            "data": {"size": size, "steps": 4 * t, "trajectories": 4},
            "training": training,
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = train(config, folder, progress=False, log=lambda _: None)
        elapsed = time.perf_counter() - start
    stats = jax.devices()[0].memory_stats() or {}
    return {
        "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "device_peak_gib": stats.get("peak_bytes_in_use", 0) / 2**30 or None,
        "seconds": elapsed,
        "epoch_seconds": result.metrics[-1]["elapsed_seconds"]
        - result.metrics[1]["elapsed_seconds"],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        size, t = int(sys.argv[2]), int(sys.argv[3])
        print(json.dumps(worker(size, t, json.loads(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--steps", default="32,64")
    args = parser.parse_args()
    print(f"{'S':>5} {'t':>4}  {'setting':<38} {'max RSS':>9} {'device peak':>12} {'s/epoch':>8}")
    for t in map(int, args.steps.split(",")):
        for size in map(int, args.sizes.split(",")):
            for name, options in SETTINGS:
                command = [sys.executable, __file__, "--worker", str(size), str(t)]
                out = subprocess.run(
                    [*command, json.dumps(options)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=dict(os.environ),
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                device = "-" if r["device_peak_gib"] is None else f"{r['device_peak_gib']:.2f} GiB"
                print(
                    f"{size:>5} {t:>4}  {name:<38} {r['max_rss_gib']:7.2f} GiB {device:>12} "
                    f"{r['epoch_seconds']:8.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
