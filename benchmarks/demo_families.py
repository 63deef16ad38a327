"""Gray-Scott models on initial-condition families and seeds none of them was chosen on:
relative error at the horizon and at twice it, beside persistence and the spatial mean.

    python benchmarks/demo_families.py NAME=MODEL.eqx [NAME=MODEL.eqx ...]

The lattice is 64x64, t = 32, the horizon n = 512 (the demo's); the models are runs of
``stnca demo`` or ``benchmarks/ablation.py``.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from stnca.analysis import evaluate
from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition
from stnca.serialization import load_model

CASES = (("smooth", 7), ("noise", 11), ("high_frequency", 99))
T, HORIZON = 32, 512


def main() -> None:
    models = dict(argument.split("=", 1) for argument in sys.argv[1:])
    frames = HORIZON // T
    for family, seed in CASES:
        initial = initial_condition(family, 64, key=jax.random.key(seed))
        truth = np.asarray(gray_scott.simulate(initial, 2 * HORIZON, every=T))
        cells = []
        for name, path in models.items():
            evaluation = evaluate(load_model(path), truth, T)
            once, twice = evaluation.at_frame(frames), evaluation.at_frame(2 * frames)
            cells.append(f"{name} {once['nca']['relative_error']:.3f}/")
            cells[-1] += f"{twice['nca']['relative_error']:.3f}"
        for baseline in ("persistence", "spatial_mean"):
            cells.append(
                f"{baseline} {once[baseline]['relative_error']:.3f}/"
                f"{twice[baseline]['relative_error']:.3f}"
            )
        print(f"{family:15s} seed {seed:3d} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
