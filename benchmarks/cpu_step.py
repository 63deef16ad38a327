"""Training-step speed, old vs new, measured side by side in one run (issue "Speed and scale").

The unit measured is one epoch of Algorithm 2 as ``stnca train`` runs it (``make_epoch``:
every mini-batch rolled out, differentiated and applied with Nadam, the state penalty, the
propagation of the start states), median over repeats after a compile call:

- ``gray_scott``: the paper's configuration (configs/gray_scott_paper.toml): C = 8 (2
  observable, 6 hidden), identity + Laplacian, relu, width 32, 64 x 64, t = 32, R = 4
  trajectories x M = 32 transitions in 4 mini-batches of 32;
- ``morph``: the paper's image-morphing step: C = 16 (4 observable), identity,
  gradient_x, gradient_y, Laplacian, width 64, p = 0.5, fixed boundary, 72 x 72, t = 64,
  8 copies x 3 transitions in 4 mini-batches of 6;
- ``demo``: the earlier ``stnca demo`` step: C = 8, 32 x 32, t = 16, R = 4 trajectories x
  M = 32 transitions in 16 mini-batches of 8, one Nadam update per mini-batch;
- ``demo2``: today's ``stnca demo`` step (stnca/presets/demo.toml): the same data and
  mini-batches, C = 2 (no hidden channels), identity + Laplacian, a hidden layer with a
  bias, averaged weights; variants ``width 32`` and ``width 64``.

For old code against new, run the script from each checkout in turn
(``PYTHONPATH=CHECKOUT python CHECKOUT/benchmarks/cpu_step.py --step demo2``), side by side.

Variants (each in its own process, because the number of host devices is fixed when JAX
starts), by their ``[training]`` settings:

- ``reference``: the defaults, one device: today's training step (the code path that is
  bit-for-bit the training before this work), measured first and last to see drift;
- ``rollout_chunk = k``: each mini-batch rolled out and differentiated k transitions at a
  time, the gradients summed;
- ``remat_every = k``: blocks of k steps rematerialised instead of every step;
- ``checkpoint_rollout = false``: no step rematerialised (every step's activations kept for
  the backward pass);
- ``2 devices``: the CPU split into 2 host devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count=2``), each mini-batch (or chunk)
  split over them (``training.devices = 0``, ``stnca.train.sharding``).

    python benchmarks/cpu_step.py [--step gray_scott|morph|demo|all] [--repeats 5]

Prints each variant's median epoch, its throughput and its ratio to the reference
(reference time / time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

STEPS = {
    "gray_scott": {
        "model": {"hidden_channels": 6, "kernels": ["identity", "laplacian"]},
        "observable": 2,
        "size": 64,
        "trajectories": 4,
        "transitions": 32,
        "training": {"steps_between_frames": 32, "minibatches": 4, "state_penalty": 0.01},
        "variants": [
            ("reference", 1, {}),
            ("rollout_chunk = 4", 1, {"rollout_chunk": 4}),
            ("rollout_chunk = 8", 1, {"rollout_chunk": 8}),
            ("remat_every = 4", 1, {"remat_every": 4}),
            ("2 devices", 2, {}),
            ("2 devices, chunk 8", 2, {"rollout_chunk": 8}),
            ("reference (again)", 1, {}),
        ],
    },
    "morph": {
        "model": {
            "hidden_channels": 12,
            "kernels": ["identity", "gradient_x", "gradient_y", "laplacian"],
            "update_probability": 0.5,
            "boundary": "fixed",
        },
        "observable": 4,
        "size": 72,
        "trajectories": 8,
        "transitions": 3,
        "training": {
            "steps_between_frames": 64,
            "minibatches": 4,
            "state_penalty": 0.01,
            "reinitialised_batches": 1,
        },
        "variants": [
            ("reference", 1, {}),
            ("rollout_chunk = 2", 1, {"rollout_chunk": 2}),
            ("rollout_chunk = 3", 1, {"rollout_chunk": 3}),
            ("2 devices", 2, {}),
            ("2 devices, chunk 2", 2, {"rollout_chunk": 2}),
            ("reference (again)", 1, {}),
        ],
    },
    "demo": {
        "model": {"hidden_channels": 6, "kernels": ["identity", "laplacian"]},
        "observable": 2,
        "size": 32,
        "trajectories": 4,
        "transitions": 32,
        "training": {
            "steps_between_frames": 16,
            "minibatches": 16,
            "update_every": "minibatch",
            "state_penalty": 0.01,
        },
        "variants": [
            ("reference", 1, {}),
            ("checkpoint_rollout off", 1, {"checkpoint_rollout": False}),
            ("rollout_chunk = 4", 1, {"rollout_chunk": 4}),
            ("2 devices", 2, {}),
            ("2 devices, no remat", 2, {"checkpoint_rollout": False}),
            ("reference (again)", 1, {}),
        ],
    },
}
# today's demo step: the earlier one's data and mini-batches, 2 channels (no hidden ones), a
# hidden layer with a bias, averaged weights
STEPS["demo2"] = {
    **STEPS["demo"],
    "model": {"hidden_channels": 0, "hidden_bias": True, "kernels": ["identity", "laplacian"]},
    "training": {**STEPS["demo"]["training"], "select_by": "rollout", "weight_average": 0.999},
    "variants": [
        ("width 32", 1, {"model": {"hidden_width": 32}}),
        ("width 64", 1, {"model": {"hidden_width": 64}}),
        ("width 32 (again)", 1, {"model": {"hidden_width": 32}}),
        ("width 64 (again)", 1, {"model": {"hidden_width": 64}}),
    ],
}


def worker(step: str, options: dict, repeats: int) -> dict:
    """Time epochs in this process (JAX already configured with its host devices)."""
    import statistics
    import time

    import equinox as eqx
    import jax
    import numpy as np

    from stnca.train.algorithm import initial_states, make_epoch, make_optimizer
    from stnca.train.config import config_from_dict
    from stnca.train.loop import build_model
    from stnca.train.sharding import plan

    s = STEPS[step]
    options = dict(options)
    model_options = options.pop("model", {})
    config = config_from_dict(
        {"model": {**s["model"], **model_options}, "training": {**s["training"], **options}}
    )
    training = config.training
    rng = np.random.default_rng(0)
    shape = (s["trajectories"], s["transitions"] + 1, s["size"], s["size"], s["observable"])
    y = jax.numpy.asarray(rng.uniform(size=shape).astype(np.float32))
    model = build_model(config, s["observable"], jax.random.key(0))
    # a non-zero output layer, so that the backward pass does real work
    model = eqx.tree_at(lambda m: m.w_out, model, 0.01 * jax.numpy.ones_like(model.w_out))
    batch = s["trajectories"] * s["transitions"] // training.minibatches
    parallel = plan(training.devices, training.rollout_chunk or batch, log=lambda _: None)
    optimizer = make_optimizer(training)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    states = initial_states(model, y)
    epoch = make_epoch(training, optimizer, parallel=parallel)
    arguments = (model, opt_state, states, y)
    if parallel is not None:
        arguments = parallel.place(arguments)
    lowest = jax.numpy.asarray(np.inf, np.float32)
    key = jax.random.key(1)
    start = time.perf_counter()
    jax.block_until_ready(epoch(*arguments, key, lowest))
    compile_s = time.perf_counter() - start
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(epoch(*arguments, jax.random.fold_in(key, i), lowest))
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    updates = s["trajectories"] * s["transitions"] * training.steps_between_frames * s["size"] ** 2
    return {
        "median_s": median,
        "min_s": min(times),
        "compile_s": compile_s,
        "cell_updates_per_s": updates / median,
        "devices": 1 if parallel is None else parallel.devices,
        "jax": jax.__version__,
    }


def run_variant(step: str, devices: int, options: dict, repeats: int) -> dict:
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    if devices > 1:
        flags += f" --xla_force_host_platform_device_count={devices}"
    env["XLA_FLAGS"] = flags.strip()
    command = [sys.executable, __file__, "--worker", step, json.dumps(options), str(repeats)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=[*STEPS, "all", "both"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine  {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    chosen = {"all": list(STEPS), "both": ["gray_scott", "morph"]}.get(args.step, [args.step])
    for step in chosen:
        s = STEPS[step]
        print(
            f"\n{step}: C={s['observable'] + s['model']['hidden_channels']}, "
            f"{'+'.join(s['model']['kernels'])}, {s['size']}x{s['size']}, "
            f"t={s['training']['steps_between_frames']}, {s['trajectories']} x "
            f"{s['transitions']} transitions in {s['training']['minibatches']} mini-batches"
        )
        print(f"{'variant':<22} {'epoch':>9} {'M cell-updates/s':>17} {'ratio':>6}")
        reference = None
        for name, devices, options in s["variants"]:
            result = run_variant(step, devices, options, args.repeats)
            reference = reference or result["median_s"]
            print(
                f"{name:<22} {result['median_s'] * 1e3:7.0f}ms "
                f"{result['cell_updates_per_s'] / 1e6:17.2f} "
                f"{reference / result['median_s']:6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
