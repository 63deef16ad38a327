"""Where a training epoch's time goes: a ``jax.profiler`` trace of the jitted epoch of one
``benchmarks/cpu_step.py`` step, summed per XLA operation (ms per epoch, calls per epoch).

    python benchmarks/epoch_profile.py [--step demo2] [--width 64] [--top 25]

For old code against new, run it from each checkout with ``PYTHONPATH=CHECKOUT``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import tempfile

import cpu_step
import equinox as eqx
import jax
import numpy as np

from stnca.train.algorithm import initial_states, make_epoch, make_optimizer
from stnca.train.config import config_from_dict
from stnca.train.loop import build_model

RUNTIME = ("Thunk", "api.py", "profiler", "Slinky", "Pjit", "pjit", "_jit.py", "core.py")
"""Trace events of the runtime and of Python, not operations of the compiled epoch."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=list(cpu_step.STEPS), default="demo2")
    parser.add_argument(
        "--width", type=int, default=64, help="hidden_width (default 64, the demo's)"
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    s = cpu_step.STEPS[args.step]
    width = {"hidden_width": args.width}
    config = config_from_dict({"model": {**s["model"], **width}, "training": s["training"]})
    shape = (s["trajectories"], s["transitions"] + 1, s["size"], s["size"], s["observable"])
    y = jax.numpy.asarray(np.random.default_rng(0).uniform(size=shape).astype(np.float32))
    model = build_model(config, s["observable"], jax.random.key(0))
    model = eqx.tree_at(lambda m: m.w_out, model, 0.01 * jax.numpy.ones_like(model.w_out))
    optimizer = make_optimizer(config.training)
    arguments = (model, optimizer.init(eqx.filter(model, eqx.is_inexact_array)))
    epoch = make_epoch(config.training, optimizer, parallel=None)
    lowest = jax.numpy.asarray(np.inf, np.float32)
    keys = [jax.random.key(i) for i in range(args.epochs + 1)]
    jax.block_until_ready(epoch(*arguments, initial_states(model, y), y, keys[0], lowest))
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder)
        for key in keys[1:]:
            jax.block_until_ready(epoch(*arguments, initial_states(model, y), y, key, lowest))
        jax.profiler.stop_trace()
        (path,) = glob.glob(f"{folder}/plugins/profile/*/*.trace.json.gz")
        events = json.load(gzip.open(path))["traceEvents"]
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for event in events:
        if event.get("ph") == "X" and not any(word in event["name"] for word in RUNTIME):
            totals[event["name"]][0] += 1
            totals[event["name"]][1] += event["dur"]
    ranked = sorted(totals.items(), key=lambda item: -item[1][1])
    print(f"{args.step}, width {model.hidden_width}: operations, ms per epoch (calls per epoch)")
    for name, (calls, microseconds) in ranked[: args.top]:
        print(f"{microseconds / 1e3 / args.epochs:9.2f}  {calls / args.epochs:6.0f}  {name[:80]}")
    whole = sum(total for _, total in totals.values()) / 1e3 / args.epochs
    print(f"{whole:9.2f}  all operations")


if __name__ == "__main__":
    main()
