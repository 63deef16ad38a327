"""Is a trained Gray-Scott NCA's step the PDE's step, or only its map over t steps?

    python benchmarks/step_fidelity.py MODEL [MODEL ...]

From a PDE state (``fourier_mid`` seed 5, 64x64, after 256 Euler steps of the paper's
Gray-Scott), for n = 1, 2, 4, 8, 16, 32: the relative L2 difference, per species, between
the model's change of the state over n steps and the PDE's. Then the roughness in time of
the first ten steps of each: ``||d_{n+1} - d_n|| / ||d_n||`` with ``d_n = x_{n+1} - x_n``
(small for a trajectory whose increment changes slowly).
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition
from stnca.serialization import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    start = initial_condition("fourier_mid", 64, key=jax.random.key(5))
    x = np.asarray(gray_scott.simulate(start, 256, every=256))[-1]  # (64, 64, 2)
    for path in args.models:
        model = load_model(path)
        print(path)
        for n in (1, 2, 4, 8, 16, 32):
            truth = np.asarray(gray_scott.simulate(x, n, every=n))[-1] - x
            state = model.initial_state(model.encode(x[None]))
            for _ in range(n):
                state = model(state)
            change = np.asarray(model.decode(state[..., : model.observable_channels]))[0] - x
            error = np.sqrt(
                np.sum((change - truth) ** 2, axis=(0, 1)) / np.sum(truth**2, axis=(0, 1))
            )
            print(f"  n = {n:2d}: change off the PDE's by {np.round(error, 3)} (A, B)")
        for name, advance in (("model", model), ("PDE", None)):
            state = model.initial_state(model.encode(x[None])) if advance else x
            increments = []
            for _ in range(11):
                nxt = advance(state) if advance else gray_scott.step(state)
                increments.append(np.asarray(nxt - state)[..., :2])
                state = nxt
            rough = [
                np.linalg.norm(increments[i + 1] - increments[i]) / np.linalg.norm(increments[i])
                for i in range(10)
            ]
            print(f"  {name}: ||d_(n+1) - d_n|| / ||d_n||, n = 0..9: {np.round(rough, 3)}")


if __name__ == "__main__":
    main()
