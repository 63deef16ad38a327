"""Where a rule's sensitivity to its weights sits: ``stnca inspect``'s weight noise, applied
to all its weight arrays, to the network alone (``w_in``, ``w_out``, ``b_out``) and to the
learnable kernels' free parameters alone (``kernel_weights``).

    python benchmarks/kernel_noise.py runs/learnable/*/seed*/model.eqx --levels 0.01 0.03

Each array ``W`` gets ``level * rms(W) * N(0, 1)`` as in
``stnca.analysis.inspect_function.perturbed_weights``, three draws per level with inspect's
keys (so the "all" column is inspect's numbers); the error is inspect's: the mean over
frames of the relative error on the model's unseen test (``high_frequency``, seed 2024, its
training lattice and horizon).
Prints one Markdown row per model: the error without noise, then per level the range over
draws for all arrays / the network only / the kernels only.
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp

NETWORK = ("w_in", "w_out", "b_out")


def shaken(model, names, level, key):
    keys = jax.random.split(key, len(names))
    arrays = []
    for name, k in zip(names, keys, strict=True):
        array = getattr(model, name)
        rms = jnp.sqrt(jnp.mean(array**2))
        arrays.append(array + level * rms * jax.random.normal(k, array.shape))
    return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), model, tuple(arrays))


def main() -> None:
    from stnca.analysis.inputs import parts_trajectory, run_config
    from stnca.analysis.inspect_function import LEVELS, perturbed_weights, rollout_error
    from stnca.serialization import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.01, 0.03], choices=LEVELS)
    args = parser.parse_args()
    draws = jax.random.split(jax.random.key(0), (2, len(LEVELS), 3))[0]  # inspect's noise keys
    print("| model | error | " + " | ".join(f"{x:g}: all / network / kernels" for x in args.levels))
    for path in args.models:
        model = load_model(path)
        truth, every, _ = parts_trajectory(model, run_config(path), None, None)
        cells = [f"{rollout_error(model, truth, every):.3f}"]
        for level in args.levels:
            keys = draws[LEVELS.index(level)]
            parts = [lambda m, x, k: perturbed_weights(m, x, k)]
            parts.append(lambda m, x, k: shaken(m, NETWORK, x, k))
            if model.learnable_kernels:
                parts.append(lambda m, x, k: shaken(m, ("kernel_weights",), x, k))
            ranges = []
            for part in parts:
                errors = [rollout_error(part(model, level, k), truth, every) for k in keys]
                ranges.append(f"{min(errors):.3g}-{max(errors):.3g}")
            cells.append(" / ".join(ranges + ["-"] * (3 - len(ranges))))
        print(f"| {path} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
